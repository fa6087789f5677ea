"""`make test-compose`: build the production image, start docker-compose.yml, drive it from outside.

    .venv/bin/python tests/compose/drive.py [--keep] [--skip-build]

The stack runs with .env.example's production values (DEBUG off, https redirect, HSTS, secure
cookies, no open signup, the broker's 2-hour visibility timeout) and four changes: a random
secret key and database password, a free port for web, and the proxies web trusts. The run whose worker this script kills
comes back through beat's reclaim of lost runs (about 30 s), not the broker. Requests from here carry
`X-Forwarded-Proto: https`, as the TLS proxy in front of a real deployment does, and this host is
that proxy: FORWARDED_ALLOW_IPS names the private networks docker's port forwarding comes from.

Steps, each with a deadline and a message that says what did not happen:
build the image (docker/build.sh: local Debian bases without Docker Hub), check it (non-root, no
compiler), `docker-compose up -d`, wait for every health check, migrate, `check --deploy`,
import the sample records, create a user and an API token, start a run over the API on the
scripted model and read its events over the websocket to the outcome, start an experiment,
start the same run on the slow scripted model, `docker-compose kill worker-runs` mid-run and
`up -d` it again, check that the run ends with the reference run's transcript and the experiment
finishes, check /healthz, then `docker-compose down -v` (always, also after a failure or Ctrl-C).
Timings go to the summary at the end. Not collected by pytest (no test_ prefix): it needs a
container engine and root, and takes minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookies
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[2]
PROJECT = "hemicycle-compose-test"
SAMPLE_SET = "Sample EP issues"
USERNAME = "compose-driver"
# The longest deliberation the form allows on a sample record (up to 8 groups, 5 rounds): on the
# slow scripted model it lasts long enough (~10 s) for `docker-compose kill` to land mid-run.
SCENARIO = {
    "seat_structure": "random_tenths",
    "goal": "two_thirds_majority",
    "strategy": "parliament",
    "judge": "scripted",
    "seed": 11,
    "rounds": 5,
}
MAX_GROUPS = 8
EXPERIMENT_SEEDS = [1, 2, 3]
LOG_DIR = REPO / "var" / "test-compose"
SERVICES_WITH_HEALTH = ("postgres", "redis", "web", "worker-runs", "worker-models")


class StepFailed(Exception):
    """A step missed its deadline or found something wrong; the message says which."""


timings: list[tuple[str, float]] = []


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    print(f"== {name}", flush=True)
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    timings.append((name, elapsed))
    print(f"   ok ({elapsed:.1f} s)", flush=True)


def wait_until(probe: Callable[[], object], *, timeout: float, what: str, every: float = 1.0) -> object:
    """Poll `probe` until it returns something true; StepFailed naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            result = probe()
            if result:
                return result
        except (httpx.HTTPError, OSError, ValueError, KeyError) as error:
            last_error = f" (last error: {type(error).__name__}: {error})"
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}{last_error}")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def compose_command() -> list[str]:
    """Compose v1 (`docker-compose`, Debian's, which make installs) or else v2's `docker compose`."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
    if probe.returncode == 0:
        return ["docker", "compose"]
    raise StepFailed("neither docker-compose nor `docker compose` is installed")


class Stack:
    """docker-compose for this test's project, with its own env file and image names."""

    def __init__(self, *, env_file: Path, images: dict[str, str]):
        self.env = {**os.environ, **images, "HEMICYCLE_ENV_FILE": str(env_file)}
        self.base = [
            *compose_command(),
            "--project-name",
            PROJECT,
            "--project-directory",
            str(REPO),
            "--file",
            str(REPO / "docker-compose.yml"),
            "--env-file",
            str(env_file),
        ]

    def compose(
        self, *args: str, timeout: float, check: bool = True, what: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run(
                [*self.base, *args],
                env={**self.env, **(env or {})},
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise StepFailed(f"docker-compose {' '.join(args)} took longer than {timeout:.0f} s") from error
        if check and result.returncode != 0:
            raise StepFailed(
                f"{what or 'docker-compose ' + ' '.join(args)} failed (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result

    def manage(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
        """manage.py in the running web container (as its non-root user)."""
        options = [item for key, value in (env or {}).items() for item in ("-e", f"{key}={value}")]
        result = self.compose(
            "exec",
            "-T",
            *options,
            "web",
            "python",
            "manage.py",
            *args,
            timeout=timeout,
            what=f"manage.py {' '.join(args)} in web",
        )
        return result.stdout

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-q", service, timeout=30).stdout.split()
        if not ids:
            raise StepFailed(f"no container for {service}")
        return ids[0]

    def health(self, service: str) -> str:
        result = subprocess.run(
            [
                "docker",
                "inspect",
                "--format",
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
                self.container(service),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout.strip()

    def save_logs(self) -> Path:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        path = LOG_DIR / "compose.log"
        result = self.compose("logs", "--no-color", "--timestamps", timeout=120, check=False)
        path.write_text(result.stdout + result.stderr)
        return path


class Client:
    """HTTP and websockets from outside, as through the TLS proxy (X-Forwarded-Proto: https)."""

    def __init__(self, *, port: int, token: str = ""):
        self.origin = f"https://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        headers = {"X-Forwarded-Proto": "https"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30)

    def get(self, path: str, **params) -> object:
        response = self.http.get(path, params=params)
        if response.status_code != 200:
            raise StepFailed(f"GET {path} answered {response.status_code}: {response.text[:500]}")
        return response.json()

    def post(self, path: str, body: dict, *, expect: int) -> dict:
        response = self.http.post(path, json=body)
        if response.status_code != expect:
            raise StepFailed(f"POST {path} answered {response.status_code}, not {expect}: {response.text[:500]}")
        return response.json()

    def session_cookie(self, *, username: str, password: str) -> str:
        """Sign in through the login form; the cookie is Secure, so it is carried by hand."""
        login = self.http.get("/accounts/login/")
        csrf = cookie_value(login, "csrftoken")
        response = self.http.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
            headers={"Cookie": f"csrftoken={csrf}", "Origin": self.origin, "Referer": f"{self.origin}/accounts/login/"},
        )
        if response.status_code != 302:
            raise StepFailed(f"signing in answered {response.status_code}, not a redirect: {response.text[:300]}")
        return f"sessionid={cookie_value(response, 'sessionid')}"

    def watch(self, run_id: int, *, cookie: str, timeout: float) -> list[dict]:
        """The run's events from its websocket, from the first to the outcome."""
        received: list[dict] = []
        deadline = time.monotonic() + timeout
        url = f"{self.ws_base}/ws/runs/{run_id}/?after=0"
        with connect(
            url,
            origin=self.origin,
            open_timeout=15,
            additional_headers={"Cookie": cookie, "X-Forwarded-Proto": "https"},
        ) as ws:
            while not received or received[-1]["type"] != "outcome":
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StepFailed(
                        f"run {run_id}: no outcome on its websocket within {timeout:.0f} s ({len(received)} events)"
                    )
                try:
                    message = json.loads(ws.recv(timeout=left))
                    received += message if isinstance(message, list) else [message]  # events sent together
                except TimeoutError as error:
                    raise StepFailed(
                        f"run {run_id}: no outcome on its websocket within {timeout:.0f} s ({len(received)} events)"
                    ) from error
        return received

    def events(self, run_id: int) -> list[dict]:
        return self.get(f"/api/v1/runs/{run_id}/events", after=0)

    def run_status(self, run_id: int) -> str:
        run = self.get(f"/api/v1/runs/{run_id}")
        if run["status"] == "failed":
            raise StepFailed(f"run {run_id} failed: {run['error']}")
        return run["status"]


def cookie_value(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        jar = http.cookies.SimpleCookie(header)
        if name in jar:
            return jar[name].value
    raise StepFailed(f"{response.request.url.path} set no {name} cookie")


# The run service's events around the strategy's (engine/events.py SERVICE_EVENT_TYPES): a run
# resumed after its worker was lost says so with a control event, which shifts the numbers after it.
SERVICE_EVENT_TYPES = {"error", "control", "seat_joined"}


def transcript(events: list[dict]) -> list[tuple]:
    """What the strategy said and decided (runs.selectors.run_transcript): no times, no usage, and
    none of the run service's events around it."""
    return [
        (e["type"], {k: v for k, v in e["data"].items() if k != "usage"})
        for e in events
        if e["type"] not in SERVICE_EVENT_TYPES
    ]


def build(*, skip: bool) -> dict[str, str]:
    """docker/build.sh image; answers the image names compose is to use."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / "build.log"
    if skip:
        images = {"HEMICYCLE_IMAGE": os.environ.get("HEMICYCLE_IMAGE", "hemicycle:latest")}
        for key in ("POSTGRES_IMAGE", "REDIS_IMAGE"):
            if os.environ.get(key):
                images[key] = os.environ[key]
        return images
    with log.open("w") as stderr:
        try:
            result = subprocess.run(
                [str(REPO / "docker" / "build.sh"), "image"],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                timeout=3600,
            )
        except subprocess.TimeoutExpired as error:
            raise StepFailed(f"the image build took longer than an hour (log: {log})") from error
    for line in log.read_text().splitlines():
        if line.startswith("[build]"):
            print("   " + line, flush=True)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise StepFailed(f"docker/build.sh failed (exit {result.returncode}; log: {log}):\n{tail}")
    return dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)


def check_image(image: str) -> None:
    script = (
        "id -u; for c in gcc cc c++ g++ clang x86_64-linux-gnu-gcc-12; do "
        "command -v $c >/dev/null && echo compiler:$c; done; true"
    )
    result = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stdout.split()
    if result.returncode != 0 or not lines:
        raise StepFailed(f"could not run {image}: {result.stderr[-500:]}")
    if lines[0] == "0":
        raise StepFailed(f"{image} runs as root")
    compilers = [line.split(":", 1)[1] for line in lines if line.startswith("compiler:")]
    if compilers:
        raise StepFailed(f"{image} has a compiler in its runtime stage: {', '.join(compilers)}")
    # The build stage's secrets (CA bundle, pip index settings) must leave no trace in the image.
    history = subprocess.run(
        ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}", image],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    config = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Env}}", image],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    leaks = [
        word for word in ("/run/secrets", "PIP_CERT", "PIP_CONFIG_FILE", "PIP_INDEX_URL") if word in history + config
    ]
    if leaks:
        raise StepFailed(f"{image}'s history or environment mentions {', '.join(leaks)}")
    print(f"   runs as uid {lines[0]}, no compiler, no build secret in its history or environment", flush=True)


def write_env(directory: Path, *, port: int) -> Path:
    overrides = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
        "WEB_BIND": "127.0.0.1",
        "WEB_PORT": str(port),
        # This host plays the TLS proxy: its requests reach web from the compose network's gateway.
        "FORWARDED_ALLOW_IPS": "127.0.0.1,172.16.0.0/12,192.168.0.0/16,10.0.0.0/8",
    }
    lines = []
    for line in (REPO / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key}={overrides.pop(key)}" if not line.startswith("#") and key in overrides else line)
    lines += [f"{key}={value}" for key, value in overrides.items()]
    path = directory / "compose.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def kill_mid_run(
    stack: Stack, client: Client, *, scenario: dict, experiment_id: int, events: int, tries: int = 3
) -> int:
    """Start the scenario on the slow model and, once it is under way, the experiment; then
    `docker-compose kill worker-runs` and `up -d` it again; answers the run the kill caught mid-run. docker-compose itself can take
    seconds to start on a loaded machine: a run that finished meanwhile proves nothing, so the
    same scenario is tried again (its transcript is the same whichever try is compared)."""
    for attempt in range(1, tries + 1):
        run_id = client.post("/api/v1/runs", {**scenario, "model": "scripted:slow"}, expect=201)["id"]
        wait_until(
            lambda: len(client.events(run_id)) >= 2, timeout=120, what=f"run {run_id} to be under way", every=0.1
        )
        if attempt == 1:  # its runs are queued or under way when the worker dies
            client.post(f"/api/v1/experiments/{experiment_id}/start", {}, expect=200)
        stack.compose("kill", "worker-runs", timeout=60)
        caught = client.run_status(run_id) != "finished"
        progress = client.get(f"/api/v1/experiments/{experiment_id}/progress")
        print(
            f"   worker-runs killed with run {run_id} at {len(client.events(run_id))} of {events} events "
            f"(experiment: {progress['done']} of {progress['total']} runs done)",
            flush=True,
        )
        stack.compose("up", "-d", "--no-build", "--no-deps", "worker-runs", timeout=120)
        if caught:
            return run_id
        print(f"   run {run_id} finished before the kill landed (try {attempt} of {tries})", flush=True)
    raise StepFailed(f"{tries} runs finished before `docker-compose kill worker-runs` landed: nothing was tested")


def drive(stack: Stack, *, port: int) -> None:
    with step("docker-compose up -d, then every health check (deadline 420 s)"):
        stack.compose("up", "-d", "--no-build", timeout=420, what="docker-compose up -d")

        def all_healthy() -> bool:
            states = {service: stack.health(service) for service in (*SERVICES_WITH_HEALTH, "beat")}
            for service, state in states.items():
                if state.startswith(("exited", "dead", "restarting")):
                    raise StepFailed(f"{service} stopped: {state}")
            return states.pop("beat") == "running" and all(state == "running healthy" for state in states.values())

        wait_until(
            all_healthy, timeout=420, what="postgres, redis, web and both workers to be healthy, beat running", every=3
        )

    with step("migrate, check --deploy, non-root web (deadline 300 s)"):
        stack.manage("migrate", "--noinput", timeout=180)
        stack.manage("migrate", "--check", timeout=60)
        stack.manage("check", "--deploy", "--fail-level", "WARNING", timeout=60)
        uid = stack.compose("exec", "-T", "web", "id", "-u", timeout=30).stdout.strip()
        if uid == "0":
            raise StepFailed("web runs as root")

    with step("import the sample records (deadline 300 s)"):
        stack.manage("import_records", "fixtures/sample_records", "--name", SAMPLE_SET, timeout=300)

    with step("create a user and an API token (deadline 120 s)"):
        password = secrets.token_urlsafe(16)
        stack.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            USERNAME,
            "--email",
            "driver@example.org",
            env={"DJANGO_SUPERUSER_PASSWORD": password},
            timeout=60,
        )
        token = stack.manage("api_token", "create", USERNAME, "--name", "make test-compose", timeout=60).strip()
        if not token:
            raise StepFailed("api_token create printed no token")

    client = Client(port=port, token=token)
    with step("production settings from outside: https redirect, HSTS, /healthz (deadline 60 s)"):
        plain = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30)
        if plain.status_code != 301 or not plain.headers.get("location", "").startswith("https://"):
            raise StepFailed(f"plain http was not redirected to https: {plain.status_code}")
        health = client.http.get("/healthz")
        if health.status_code != 200 or "strict-transport-security" not in health.headers:
            raise StepFailed(
                f"/healthz answered {health.status_code} {health.text[:300]} (HSTS: "
                f"{health.headers.get('strict-transport-security')})"
            )
        cookie = client.session_cookie(username=USERNAME, password=password)

    with step("a run on the scripted model over the API, its events over the websocket (deadline 180 s)"):
        sets = [s for s in client.get("/api/v1/record-sets") if s["name"] == SAMPLE_SET]
        if not sets or not sets[0]["records"]:
            raise StepFailed(f"the API lists no record set {SAMPLE_SET!r} with records")
        details = [
            client.get(f"/api/v1/records/{row['id']}")
            for row in client.get("/api/v1/records", record_set=SAMPLE_SET, limit=100)
        ]
        record = max(details, key=lambda detail: len(detail["stances"]), default=None)
        if record is None or len(record["stances"]) < 4:
            raise StepFailed("no sample record has four groups' stances")
        groups = [stance["group"] for stance in record["stances"][:MAX_GROUPS]]
        scenario = {**SCENARIO, "record": record["id"], "groups": groups}
        reference_id = client.post("/api/v1/runs", {**scenario, "model": "scripted:default"}, expect=201)["id"]
        received = client.watch(reference_id, cookie=cookie, timeout=180)
        wait_until(
            lambda: client.run_status(reference_id) == "finished", timeout=60, what=f"run {reference_id} to finish"
        )
        reference = client.events(reference_id)
        if [e["seq"] for e in received] != [e["seq"] for e in reference]:
            raise StepFailed(f"the websocket's events {[e['seq'] for e in received]} are not the stored ones")
        print(
            f"   run {reference_id} ({len(groups)} groups, {SCENARIO['rounds']} rounds): {len(received)} events over "
            "the websocket, the stored ones in order",
            flush=True,
        )

    with step("create an experiment on the slow scripted model (deadline 60 s)"):
        saved = client.post("/api/v1/scenarios", {**scenario, "model": "scripted:slow", "name": "compose"}, expect=201)
        experiment = client.post(
            "/api/v1/experiments",
            {
                "name": "compose",
                "goals": [SCENARIO["goal"]],
                "strategies": [SCENARIO["strategy"]],
                "models": ["scripted:slow"],
                "judges": ["scripted"],
                "seeds": EXPERIMENT_SEEDS,
                "scenario_ids": [saved["id"]],
            },
            expect=201,
        )

    with step("kill worker-runs mid-run, start it again, same transcript (deadline 600 s)"):
        run_id = kill_mid_run(stack, client, scenario=scenario, experiment_id=experiment["id"], events=len(reference))
        wait_until(
            lambda: client.run_status(run_id) == "finished",
            timeout=300,
            what=f"run {run_id} to finish after the restart",
        )
        events = client.events(run_id)
        if transcript(events) != transcript(reference):
            raise StepFailed(f"run {run_id} (killed mid-run) differs from reference run {reference_id}")
        resumed = [e for e in events if e["type"] == "control" and e["data"].get("reason") == "worker_lost"]
        if len(resumed) != 1:
            raise StepFailed(f"run {run_id} has {len(resumed)} 'resumed after a worker was lost' events, not one")
        print(f"   run {run_id}: transcript identical to run {reference_id}, resumed after the lost worker", flush=True)

    with step("the experiment finishes (deadline 300 s)"):

        def finished() -> bool:
            progress = client.get(f"/api/v1/experiments/{experiment['id']}/progress")
            if progress["failed"]:
                raise StepFailed(f"experiment {experiment['id']}: {progress['failed']} runs failed")
            return progress["done"] == progress["total"] == len(EXPERIMENT_SEEDS)

        wait_until(finished, timeout=300, what=f"experiment {experiment['id']}'s {len(EXPERIMENT_SEEDS)} runs", every=2)

    with step("/healthz after the restart (deadline 120 s)"):

        def healthy() -> bool:
            response = client.http.get("/healthz")  # 503 while a check fails: keep polling
            report = response.json()
            workers = report["checks"]["workers"].get("workers", [])
            return (
                report["ok"]
                and any(w.startswith("runs@") for w in workers)
                and any(w.startswith("models@") for w in workers)
            )

        wait_until(healthy, timeout=120, what="/healthz to report the database, Redis and both workers", every=2)


def interrupted(*_) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the stack running (no down -v)")
    parser.add_argument("--skip-build", action="store_true", help="use the images already built")
    args = parser.parse_args()
    # Ctrl-C and a kill from make both end in the finally below.
    signal.signal(signal.SIGTERM, interrupted)
    started = time.monotonic()
    status, stack = 1, None
    with tempfile.TemporaryDirectory(prefix="hemicycle-compose-") as tmp:
        try:
            with step("build the image (docker/build.sh image; deadline 60 min)"):
                images = build(skip=args.skip_build)
            with step("the image: non-root, no compiler, no secrets (deadline 120 s)"):
                check_image(images["HEMICYCLE_IMAGE"])
            port = free_port()
            stack = Stack(env_file=write_env(Path(tmp), port=port), images=images)
            stack.compose("down", "-v", "--remove-orphans", timeout=180, check=False)  # a previous run's leftovers
            drive(stack, port=port)
            status = 0
        except StepFailed as error:
            print(f"!! FAILED: {error}", flush=True)
        except KeyboardInterrupt:
            print("!! interrupted", flush=True)
        finally:
            if stack is not None:
                if status:
                    print(f"   the services' logs: {stack.save_logs()}", flush=True)
                if args.keep:
                    print(f"   left running (--keep): docker-compose -p {PROJECT} down -v", flush=True)
                else:
                    with step("docker-compose down -v (deadline 180 s)"):
                        stack.compose("down", "-v", "--remove-orphans", timeout=180, check=False)
    print("\n== timings")
    for name, elapsed in timings:
        print(f"   {elapsed:7.1f} s  {name}")
    print(f"   {time.monotonic() - started:7.1f} s  in all: {'PASSED' if status == 0 else 'FAILED'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
