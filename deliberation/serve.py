"""`make run`'s server: uvicorn with the embedded worker, one clear block on the console.

Everything the server, Celery and Django log (Celery's banner, warnings, each request) goes to a
file; the console shows where the lab runs, the admin account and where that log is, once the
server is listening:

    python -m deliberation.serve --host 127.0.0.1 --port 8000 --log var/log/hemicycle.log
"""

import argparse
import os
import secrets
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
ADMIN_NAME = "admin"
PASSWORD_FILE = BASE_DIR / "var" / "admin-password.txt"
STARTUP_WAIT_S = 120.0


def admin_account() -> str:
    """The line about the admin account: a superuser exists, or one is made (its password in
    var/admin-password.txt, readable by this user only)."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    existing = users.objects.filter(is_superuser=True).order_by("pk").first()
    if existing is not None:
        if PASSWORD_FILE.is_file() and existing.get_username() == ADMIN_NAME:
            return f"{ADMIN_NAME}, password in {PASSWORD_FILE.relative_to(BASE_DIR)}"
        return (
            f"{existing.get_username()} (reset its password with: manage.py changepassword {existing.get_username()})"
        )
    password = secrets.token_urlsafe(12)
    users.objects.create_superuser(ADMIN_NAME, password=password)
    PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    PASSWORD_FILE.touch(mode=0o600)
    PASSWORD_FILE.write_text(password + "\n")
    return f"{ADMIN_NAME}, password in {PASSWORD_FILE.relative_to(BASE_DIR)} (made just now)"


def banner(*, url: str, admin: str, log: Path, lan: bool) -> str:
    lines = [
        "",
        f"  Hemicycle is running on {url}",
        f"  Admin account: {admin}",
        f"  Logs (requests, the Celery worker, warnings): {log}",
        "  Students on phones: make run HOST=0.0.0.0, then they open /join/"
        if not lan
        else "  Students on phones open /join/ on this machine's address",
        "  Ctrl-C stops it.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log", type=Path, default=BASE_DIR / "var" / "log" / "hemicycle.log")
    args = parser.parse_args(argv)

    args.log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    console = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    log = open(args.log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open while the server runs
    # From here on whatever anything prints or logs (Django's and uvicorn's handlers, Celery's
    # banner, which it writes to the process's own stdout, warnings) lands in the file: the
    # process's stdout and stderr are the file now; the console keeps a copy of the old stdout.
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberation.settings")
    os.environ.setdefault("HEMICYCLE_BIND_HOST", args.host)

    import uvicorn

    config = uvicorn.Config(
        "deliberation.asgi:application",
        host=args.host,
        port=args.port,
        lifespan="off",
        ws_per_message_deflate=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)

    def announce() -> None:
        deadline = time.monotonic() + STARTUP_WAIT_S
        while not server.started and not server.should_exit and time.monotonic() < deadline:
            time.sleep(0.1)
        if not server.started:
            return
        import django

        django.setup()
        from django.conf import settings

        everywhere = args.host in ("0.0.0.0", "::")  # noqa: S104 - the classroom's choice, made by the user
        host = (settings.HEMICYCLE_LAN_ADDRESS or args.host) if everywhere else args.host
        print(
            banner(url=f"http://{host}:{args.port}/", admin=admin_account(), log=args.log, lan=everywhere),
            file=console,
            flush=True,
        )

    threading.Thread(target=announce, name="hemicycle-banner", daemon=True).start()
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind; say so on the console
        pass
    if not server.started:
        tail = args.log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        print("\n  Hemicycle could not start. The end of " + str(args.log) + ":\n", file=console)
        print("\n".join(f"    {line}" for line in tail), file=console, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
