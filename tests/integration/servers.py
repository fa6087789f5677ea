"""Real servers for the integration and end-to-end tests, started on loopback by the test setup.

PostgreSQL (a throwaway cluster from initdb), Redis, Celery worker processes and a uvicorn ASGI
server. No mocks, no skips: a missing server binary is an error that says what to install.

This module is also a pytest plugin (``-p tests.integration.servers`` in pytest.ini) for one
reason: ordering. pytest-django imports the Django settings before any conftest.py is loaded, and
the settings read DATABASE_URL and REDIS_URL at import. So the plugin's
``pytest_load_initial_conftests`` hook runs first and, when the session will run integration or
e2e tests, picks free ports and exports DATABASE_URL / REDIS_URL / CELERY_EMBEDDED_WORKER=0. The
settings then derive everything else themselves (Celery broker on Redis db 0, channel layer on
Redis db 1), in the test process and in every server process alike. The servers themselves start
lazily, in session fixtures (tests/conftest.py), only when a test needs them.

HEMICYCLE_TEST_STACK decides: "1" always, "0" never (unit runs: DATABASE_URL and REDIS_URL are
removed so unit tests always get SQLite and the memory broker), unset: only when a path given to
pytest (or testpaths) reaches into tests/integration or tests/e2e.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_SWITCH = "HEMICYCLE_TEST_STACK"
STACK_DIRS = (REPO_ROOT / "tests" / "integration", REPO_ROOT / "tests" / "e2e")
DATABASE_NAME = "hemicycle"
LOG_DIR = REPO_ROOT / "var" / "test-logs"
START_TIMEOUT_S = float(os.environ.get("HEMICYCLE_TEST_START_TIMEOUT_S", "90"))


class StackError(RuntimeError):
    """A server the tests need is missing or would not start; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# Small helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; raise StackError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except StackError:
            raise
        except Exception:  # noqa: BLE001 - not up yet; the deadline decides
            pass
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def read_tail(path: Path, *, lines: int = 80, since: int = 0) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the test process dies (no orphan servers)."""
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def http_get(url: str, *, timeout: float = 10.0) -> tuple[int, str]:
    """GET url: (status, body), 4xx and 5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def session_log_dir() -> Path:
    """A log folder for this session; folders of sessions no longer running are removed.

    One per session because engineers run the suite side by side in the same checkout.
    """
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for old in LOG_DIR.iterdir():
        pid = old.name.rsplit("-", 1)[-1]
        if old.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = LOG_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    return folder


def temp_root(prefix: str) -> Path:
    """A temporary folder for one server, recorded as ours; folders that an earlier, killed test
    process left behind (its pid no longer running) are removed first."""
    for old in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((old / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not _pid_alive(owner):
            shutil.rmtree(old, ignore_errors=True)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / "owner.pid").write_text(str(os.getpid()))
    return root


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Every log a server writes, so a failing test can show what the servers said during it.
LOG_SOURCES: list[tuple[str, Path]] = []


def register_log(name: str, path: Path) -> None:
    if (name, path) not in LOG_SOURCES:
        LOG_SOURCES.append((name, path))


def log_sizes() -> dict[Path, int]:
    return {path: (path.stat().st_size if path.exists() else 0) for _, path in LOG_SOURCES}


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bindir() -> Path:
    """Debian keeps the server binaries in /usr/lib/postgresql/<ver>/bin; PG_BINDIR overrides."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    raise StackError(
        "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin, "
        "PG_BINDIR or PATH. Install them with `apt-get install postgresql` (or run `make test`, "
        "which installs what the tests need)."
    )


def _server_os_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: as root, run it as the 'postgres' OS user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "hemicycle-test"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "hemicycle-test"],
        check=True,
    )
    return pwd.getpwnam("hemicycle-test")


class ChatServer:
    """An OpenAI-compatible chat endpoint on loopback, in the test process (a worker process
    reaches it as it would a vLLM host): `reply(body, headers)` gives the assistant's text for each
    request, or None to close the connection unanswered. ``.url`` is the API base; ``.close()``."""

    def __init__(self, reply: Callable[[dict, Mapping[str, str]], str | None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                content = reply(body, self.headers)
                if content is None:
                    self.close_connection = True
                    return
                answer = json.dumps(
                    {
                        "choices": [{"message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 20, "completion_tokens": 6},
                    }
                ).encode()
                self.send_response(200 if self.path == "/v1/chat/completions" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@dataclass
class PostgresServer:
    """A throwaway cluster: initdb into a temporary folder, trust auth, loopback only.

    The postmaster is our child (not daemonised by pg_ctl), so it dies with the test process.
    """

    port: int
    superuser: str = "postgres"
    root: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def url(self, dbname: str = DATABASE_NAME) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        bindir = postgres_bindir()
        os_user = _server_os_user()
        as_user = {"user": os_user.pw_uid, "group": os_user.pw_gid, "extra_groups": []} if os_user else {}
        self.root = temp_root("hemicycle-pg-")
        if os_user:
            os.chown(self.root, os_user.pw_uid, os_user.pw_gid)
        data = self.root / "data"
        initdb = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                self.superuser,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            cwd=self.root,
            **as_user,
        )
        if initdb.returncode != 0:
            raise StackError(f"initdb failed ({initdb.returncode}):\n{initdb.stdout}{initdb.stderr}")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
                # A throwaway cluster: durability buys nothing, speed does.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
            preexec_fn=_die_with_parent,
            **as_user,
        )
        log.close()
        register_log("postgres", self.log_path)
        try:
            wait_until(self._accepts_connections, timeout=START_TIMEOUT_S, what=f"PostgreSQL on port {self.port}")
        except StackError as error:
            raise StackError(f"{error}\n{read_tail(self.log_path)}") from None
        self.create_database(DATABASE_NAME)

    def _accepts_connections(self) -> bool:
        import psycopg

        if self.process is None or self.process.poll() is not None:
            raise StackError(f"postgres exited while starting:\n{read_tail(self.log_path)}")
        with psycopg.connect(self.url("postgres"), connect_timeout=2):
            return True

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # immediate shutdown: nothing here is kept
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


# ---------------------------------------------------------------------------------------------
# Redis


@dataclass
class RedisServer:
    port: int
    root: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "redis.log"

    def client(self, db: int = 0):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db)

    def start(self) -> None:
        binary = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
        )
        if binary is None:
            raise StackError(
                "redis-server not found on PATH. Install it with `apt-get install redis-server` "
                "(or run `make test`, which installs what the tests need)."
            )
        self.root = temp_root("hemicycle-redis-")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--daemonize",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()
        register_log("redis", self.log_path)
        client = self.client()
        try:
            wait_until(
                lambda: self.process.poll() is None and client.ping(),
                timeout=START_TIMEOUT_S,
                what=f"redis-server on port {self.port}",
            )
        except StackError as error:
            raise StackError(f"{error}\n{read_tail(self.log_path)}") from None
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.process = None
        self.root = None


# ---------------------------------------------------------------------------------------------
# Our own processes: Celery workers and the ASGI server


class ManagedProcess:
    """A child process with its output in a log file; start, stop, SIGKILL and restart.

    ``ready`` is polled after start until true (or the process dies, or START_TIMEOUT_S passes).
    The log file is appended to across restarts; ``started_at`` is its size at the last start.
    """

    def __init__(self, name: str, argv: list[str], *, env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.started_at = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid} alive={self.alive}>"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        return True

    def log_text(self, *, since_start: bool = True) -> str:
        return read_tail(self.log_path, lines=10**9, since=self.started_at if since_start else 0)

    def start(self, *, env: Mapping[str, str] | None = None) -> ManagedProcess:
        """Start (again), with ``env`` merged over the environment given at construction."""
        if self.alive:
            raise StackError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        log.write(f"\n==== {self.name} starting: {' '.join(self.argv)}\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO_ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        log.close()
        register_log(self.name, self.log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready():
            if not self.alive:
                raise StackError(
                    f"{self.name} exited with {self.process.returncode} while starting:\n{read_tail(self.log_path, since=self.started_at)}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise StackError(
                    f"{self.name} not ready after {START_TIMEOUT_S:.0f}s:\n{read_tail(self.log_path, since=self.started_at)}"
                )
            time.sleep(0.1)
        return self

    def kill(self) -> None:
        """SIGKILL the process and everything it started (no cleanup, like a crash)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL if it lingers."""
        if not self.alive:
            self.kill()  # reap leftovers of its process group, if any
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def restart(self, *, env: Mapping[str, str] | None = None) -> ManagedProcess:
        self.stop()
        return self.start(env=env)

    def ensure_running(self) -> ManagedProcess:
        return self if self.alive else self.start()


class CeleryWorker(ManagedProcess):
    """``celery -A worker.celery worker`` with the thread pool, as production runs it."""

    def __init__(
        self,
        *,
        name: str,
        env: Mapping[str, str],
        log_dir: Path,
        queues: str = "runs,models",
        concurrency: int = 2,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.hostname = f"{name}@hemicycle-test"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.celery",
            "worker",
            "-Q",
            queues,
            "--pool",
            "threads",
            "-c",
            str(concurrency),
            "-n",
            self.hostname,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "INFO",
            *extra_args,
        ]
        super().__init__(name, argv, env=env, log_path=log_dir / f"{name}.log")
        self.queues = queues.split(",")

    def ready(self) -> bool:
        return f"{self.hostname} ready." in self.log_text()


class CeleryBeat(ManagedProcess):
    """``celery -A worker.celery beat``: the periodic tasks of settings.CELERY_BEAT_SCHEDULE, as the
    production stack's one beat service sends them (its schedule file in the log folder)."""

    def __init__(self, *, name: str, env: Mapping[str, str], log_dir: Path) -> None:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.celery",
            "beat",
            "-l",
            "INFO",
            "-s",
            str(log_dir / f"{name}-schedule"),
            "--max-interval",
            "1",
        ]
        super().__init__(name, argv, env=env, log_path=log_dir / f"{name}.log")

    def ready(self) -> bool:
        return "beat: Starting..." in self.log_text()


class AsgiServer(ManagedProcess):
    """uvicorn serving deliberation.asgi:application (HTTP and websockets) on a free port."""

    def __init__(self, *, name: str, env: Mapping[str, str], log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "deliberation.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--lifespan",
            "off",
            "--log-level",
            "info",
            "--ws-per-message-deflate",
            "false",
        ]
        super().__init__(name, argv, env=env, log_path=log_dir / f"{name}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return http_get(self.url + "/", timeout=2.0)[0] > 0
        except OSError:
            return False


def manage(*args: str, env: Mapping[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``manage.py <args>`` in a subprocess with ``env``; StackError with its output on failure."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise StackError(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def process_env(*, database_url: str, redis_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a server process of ours, pointed at the test servers."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "deliberation.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CELERY_EMBEDDED_WORKER": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the e2e test process needs it; servers must not
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------------------------------
# The plan, decided before Django loads; the pytest plugin part


@dataclass
class StackPlan:
    postgres_port: int
    redis_port: int

    @property
    def database_url(self) -> str:
        return PostgresServer(port=self.postgres_port).url()

    @property
    def redis_url(self) -> str:
        return RedisServer(port=self.redis_port).url


PLAN: StackPlan | None = None


def stack_plan() -> StackPlan:
    if PLAN is None:
        raise StackError(
            f"this pytest session runs without the server stack ({STACK_SWITCH}=0, or no path given "
            "to pytest reaches tests/integration or tests/e2e). Run e.g. `pytest tests/integration`, "
            f"or set {STACK_SWITCH}=1."
        )
    return PLAN


def _session_needs_stack(config: pytest.Config) -> bool:
    switch = os.environ.get(STACK_SWITCH, "").strip().lower()
    if switch in {"1", "true", "yes", "on"}:
        return True
    if switch in {"0", "false", "no", "off"}:
        return False
    invocation_dir = config.invocation_params.dir
    named = list(config.known_args_namespace.file_or_dir or [])
    if not named:
        named = config.getini("testpaths") if invocation_dir == config.rootpath else [str(invocation_dir)]
    for arg in named:
        path = (invocation_dir / arg.split("::", 1)[0]).resolve()
        for stack_dir in STACK_DIRS:
            if path == stack_dir or stack_dir in path.parents or path in stack_dir.parents:
                return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    global PLAN
    # The settings default to production (DEBUG off, which needs a secret key); the tests run the
    # local try-out's settings, as `make run` does, unless a test asks for production ones.
    os.environ.setdefault("DJANGO_DEBUG", "1")
    if _session_needs_stack(early_config):
        PLAN = StackPlan(postgres_port=free_port(), redis_port=free_port())
        os.environ["DATABASE_URL"] = PLAN.database_url
        os.environ["REDIS_URL"] = PLAN.redis_url
        os.environ["CELERY_EMBEDDED_WORKER"] = "0"
    else:
        # Unit tests are hermetic: SQLite and the memory broker, whatever the shell exports.
        for name in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(name, None)


def pytest_report_header(config: pytest.Config) -> str:
    if PLAN is None:
        return "hemicycle stack: off (SQLite, memory broker, in-memory channel layer)"
    return (
        f"hemicycle stack: PostgreSQL on 127.0.0.1:{PLAN.postgres_port}, "
        f"Redis on 127.0.0.1:{PLAN.redis_port} (started when a test needs them)"
    )
