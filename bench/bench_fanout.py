"""Live fan-out latency: N websocket viewers on one run, from each event's database write to its
arrival at every viewer. Goals (DESIGN.md): 500 viewers p99 < 100 ms; 2000 viewers nothing lost.

Everything runs on loopback and is stopped on exit (try/finally and atexit; every wait has a
deadline):
  * a temp SQLite database, migrated, with a user, a six-group record (tests.factories) and a
    PAUSED run (visibility "link", parliament strategy, 5 rounds, fast "scripted:default" model
    and scripted judge: 67 events);
  * uvicorn serving deliberation.asgi:application on a free port: with --layer memory the
    in-memory channel layer and the embedded Celery worker thread; with --layer redis a
    redis-server on a free port (--save '' --appendonly no), REDIS_URL set,
    CELERY_EMBEDDED_WORKER=0, and a Celery worker process (-Q runs,models --pool threads -c 2
    --without-gossip --without-mingle --without-heartbeat);
  * N viewers at /ws/runs/<id>/?after=0&token=<share token> (link access, no session).
The owner signs in over HTTP (login form with CSRF) and POSTs /runs/<id>/resume; the run writes
--preroll events and is paused (POST /runs/<id>/pause) before anyone watches, so each viewer
connects to a transcript and gets it as its replay. With all N connected and replayed, the clock
starts and the run is resumed to its outcome. Event writes are spaced --pace s apart (default 0.2,
the DESIGN.md reference) by a pacer around services.event_append in the process that advances the
run; it waits before the write, so RunEvent.at, and the latency, start after it. This file also
runs those processes (`--role server|worker|setup|dump`, internal).

Latency of a delivery = arrival wall time at the viewer - the event's "at" (RunEvent.at, set when
the row is written; same machine, same clock). Replayed events are checked, not timed. Checks:
every viewer got every stored seq exactly once and in order (deliveries expected vs received,
lost, duplicated, out of order). The viewers are a lean RFC 6455 client offering
permessage-deflate as browsers do (--client websockets for the websockets library): the client
shares the machine's 2 cores with the server, so its per-message work is inside every latency
and takes CPU from the server; the printed caveat says so.

    .venv/bin/python bench/bench_fanout.py                      # memory and redis x 500 and 2000
    .venv/bin/python bench/bench_fanout.py --layer memory --viewers 500
    .venv/bin/python bench/bench_fanout.py --layer redis --viewers 500 2000
    .venv/bin/python bench/bench_fanout.py --layer memory --viewers 2000 --ws-per-message-deflate off

Merges its results into bench/results/fanout.json (keyed by layer, viewers and --label) with the
machine's details, and prints a table. --py-spy PATH profiles the web server during the live phase.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from _load_client import Owner, Viewers, percentile, raise_nofile

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "fanout.json"
PY = sys.executable
SELF = str(Path(__file__).resolve())

FAST_MODEL = "scripted:default"
GROUPS = {  # six 7th-term groups, so the parliament strategy speaks six times a round
    "EPP": (0.82, "EPP backs the proposal and wants its funding secured within the current budget."),
    "SD": (0.35, "S&D asks for binding social safeguards before it can support the text."),
    "ALDE": (0.55, "ALDE supports the aim but wants lighter reporting duties for small firms."),
    "GREEN_EFA": (0.05, "The Greens oppose the proposal unless it carries a binding climate target."),
    "ECR": (0.62, "ECR accepts the goal but rejects any new European agency or levy."),
    "GUE_NGL": (0.15, "The Left wants public ownership of the programme and no market instruments."),
}

# --- subprocess roles (run by this file in the servers' environment) -------------------------


def _django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.chdir(REPO_ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberation.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")  # a local bench: the settings default to production
    import django

    django.setup()


def _pace_events(pace: float) -> None:
    """Space the run's event writes `pace` seconds apart (a steady stream, as in the DESIGN.md
    reference). The wait comes before the write, so RunEvent.at, and the latency, start after it.

    A run writes its steps through services.events_store (several events in one statement where
    the cache answered them; runs/steps.py' writer calls it) and its control events through
    event_append: both are wrapped, and a batch is written one event at a time, each after its
    wait. (The pacer once wrapped event_append alone; once the steps went through events_store,
    nothing was paced and the bench measured bursts: 67 events as fast as the run went.)"""
    if pace <= 0:
        return
    import threading

    from deliberation.runs import services, steps

    lock, last = threading.Lock(), [0.0]

    def wait_turn() -> None:
        with lock:
            wait = last[0] + pace - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            last[0] = time.monotonic()

    event_append, events_store = services.event_append, services.events_store

    def paced_event_append(*, run, event):
        wait_turn()
        return event_append(run=run, event=event)

    def paced_events_store(*, run, events, completions=()):
        status = None
        for index, event in enumerate(events):
            wait_turn()
            # the completions the batch's calls made go with its first event, as the writer's do
            status = events_store(run=run, events=[event], completions=completions if index == 0 else ())
        return status

    # services.event_append_next and runs.steps' writer look them up in their modules
    services.event_append, steps.events_store = paced_event_append, paced_events_store


def role_server(args: argparse.Namespace) -> None:
    raise_nofile()
    _django()
    _pace_events(args.pace)
    import uvicorn

    uvicorn.run(
        "deliberation.asgi:application",
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws=args.ws,
        ws_per_message_deflate=args.ws_per_message_deflate == "on",
        lifespan="off",
        backlog=4096,
    )


def role_worker(args: argparse.Namespace) -> None:
    _django()
    _pace_events(args.pace)
    from worker.celery import app

    app.worker_main(
        [
            "worker",
            "-Q",
            "runs,models",
            "--pool",
            "threads",
            "-c",
            "2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]
    )


def role_setup(args: argparse.Namespace) -> None:
    _django()
    from deliberation.runs.models import Run
    from deliberation.scenarios.services import scenario_config_build
    from tests.factories import make_record, make_user

    user = make_user("bench")
    record = make_record(title="Fan-out bench issue", groups=GROUPS)
    config = scenario_config_build(
        data={
            "record": record.pk,
            "groups": list(GROUPS),
            "seat_structure": "real",
            "goal": "simple_majority",
            "strategy": "parliament",
            "model": args.model,
            "judge": "scripted",
            "seed": 7,
            "strategy_params": {"rounds": args.rounds},
        },
        user=user,
    )  # ScenarioInvalid says what is wrong
    # Created directly (not run_create) so that no task is enqueued: the run waits, paused,
    # until the bench resumes it with every viewer connected.
    run = Run.objects.create(
        owner=user, visibility=Run.Visibility.LINK, status=Run.Status.PAUSED, **config.model_fields()
    )
    print(
        json.dumps(
            {"run_id": run.pk, "token": run.share_token, "username": "bench", "password": "a-long-test-password"}
        )
    )


def role_dump(args: argparse.Namespace) -> None:
    _django()
    from deliberation.runs.models import Run, RunEvent

    run = Run.objects.get(pk=args.run_id)
    events = [
        [seq, type_, at.timestamp()]
        for seq, type_, at in RunEvent.objects.filter(run_id=run.pk).order_by("seq").values_list("seq", "type", "at")
    ]
    print(json.dumps({"status": run.status, "error": run.error, "events": events}))


# --- process management -----------------------------------------------------------------------

from _processes import children as _children, cpu_seconds, exit_on_signal as _on_signal, kill_children as _kill_children  # noqa: E402


def _preexec() -> None:
    raise_nofile()


def spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = open(log, "wb")
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=REPO_ROOT,
        stdout=handle,
        stderr=subprocess.STDOUT,
        preexec_fn=_preexec,
        start_new_session=True,  # own process group: killed as a whole
    )
    handle.close()
    _children.append(proc)
    return proc


def run_json(cmd: list[str], env: dict, timeout: float) -> dict:
    out = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"{what}: process exited with {proc.returncode}\n{tail}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s\n{tail}")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


# --- HTTP: the owner's controls and the stored log -----------------------------------------------


def stored_events(db: Path, run_id: int) -> list[tuple[int, str, str]]:
    """(seq, type, data) of the run's events, read straight from the SQLite file (polling)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        return connection.execute(
            "SELECT seq, type, data FROM runs_runevent WHERE run_id = ? ORDER BY seq", (run_id,)
        ).fetchall()


async def preroll(cfg: argparse.Namespace, owner: Owner, run_id: int) -> int:
    """Let the run write some events before anyone watches, then pause it (the product's own
    pause: the worker writes a `control paused` event after its current one). The viewers then
    connect to a run with a transcript, which they get as their replay."""
    await asyncio.to_thread(owner.control, run_id, "resume")
    deadline = time.monotonic() + 60 + 3 * cfg.preroll * cfg.pace
    while len(await asyncio.to_thread(stored_events, cfg.db, run_id)) < cfg.preroll:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pre-roll: fewer than {cfg.preroll} events in time")
        await asyncio.sleep(0.05)
    await asyncio.to_thread(owner.control, run_id, "pause")
    while True:
        events = await asyncio.to_thread(stored_events, cfg.db, run_id)
        if events[-1][1] == "control" and json.loads(events[-1][2]).get("action") == "paused":
            return len(events)
        if time.monotonic() > deadline:
            raise TimeoutError("pre-roll: the run did not pause in time")
        await asyncio.sleep(0.05)


async def drive_viewers(cfg: argparse.Namespace, base: str, run: dict, server_pids: list[int], env: dict) -> dict:
    owner = Owner(base)  # signed in before the clock starts: password hashing is not fan-out work
    await asyncio.to_thread(owner.sign_in, run["username"], run["password"])
    if cfg.preroll:
        await preroll(cfg, owner, run["run_id"])
    ws_url = base.replace("http://", "ws://") + f"/ws/runs/{run['run_id']}/?after=0&token={run['token']}"
    viewers = Viewers(ws_url, base, cfg.viewers, deflate=cfg.compression == "deflate", client=cfg.client)
    t0 = time.monotonic()
    tasks = viewers.start(cfg.connect_parallel, connect_timeout=cfg.connect_timeout)
    deadline = t0 + cfg.connect_timeout
    while viewers.connected + viewers.finished < cfg.viewers and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    connect_s = time.monotonic() - t0
    if viewers.connected < cfg.viewers:
        raise RuntimeError(
            f"only {viewers.connected}/{cfg.viewers} viewers connected in {connect_s:.1f} s; "
            f"first errors: {viewers.errors[:3]}"
        )

    before = await asyncio.to_thread(run_json, [PY, SELF, "--role", "dump", "--run-id", str(run["run_id"])], env, 120)
    replayed = len(before["events"])
    deadline = time.monotonic() + 30
    while min(len(s) for s in viewers.seqs) < replayed and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if min(len(seqs) for seqs in viewers.seqs) < replayed:
        raise RuntimeError(f"the viewers did not all get the {replayed} replayed events in 30 s")
    await asyncio.sleep(1.0)  # let the server's connection work settle before the clock starts

    profiler = None
    if cfg.py_spy:  # sample the web server during the live phase (collapsed stacks, for flame graphs)
        profiler = spawn(
            [
                cfg.py_spy,
                "record",
                "--pid",
                str(server_pids[0]),
                "--format",
                "raw",
                "--rate",
                "250",
                "--output",
                str(cfg.py_spy_out),
                "--nonblocking",
            ],
            env,
            Path(str(cfg.py_spy_out) + ".log"),
        )
        await asyncio.sleep(1.0)
    load_before = round(os.getloadavg()[0], 2)
    cpu0 = {pid: cpu_seconds(pid, children=True) for pid in server_pids}
    client_cpu0 = time.process_time()
    started = time.time()
    answer = await asyncio.to_thread(owner.control, run["run_id"], "resume")
    try:
        await asyncio.wait_for(viewers.outcome_seen.wait(), cfg.run_timeout)
        await asyncio.wait_for(viewers.all_done.wait(), 30)
    except TimeoutError:
        pass
    live_s = time.time() - started
    load_after = round(os.getloadavg()[0], 2)
    cpu = {pid: round(cpu_seconds(pid, children=True) - cpu0[pid], 2) for pid in server_pids}
    client_cpu = round(time.process_time() - client_cpu0, 2)
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        await asyncio.to_thread(profiler.wait, 30)
    await viewers.close(timeout=10)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    after = await asyncio.to_thread(run_json, [PY, SELF, "--role", "dump", "--run-id", str(run["run_id"])], env, 120)
    return {
        "viewers": viewers,
        "connect_s": connect_s,
        "resume": answer,
        "before": before,
        "after": after,
        "started": started,
        "live_s": live_s,
        "load_before": load_before,
        "load_after": load_after,
        "server_cpu": cpu,
        "client_cpu": client_cpu,
    }


def analyse(cfg: argparse.Namespace, raw: dict) -> dict:
    viewers: Viewers = raw["viewers"]
    events = raw["after"]["events"]
    expected = [seq for seq, _, _ in events]
    at = {seq: stamp for seq, _, stamp in events}
    replayed = {seq for seq, _, _ in raw["before"]["events"]}
    live = [seq for seq in expected if seq not in replayed]
    expected_set = set(expected)

    lost = duplicated = out_of_order = unknown = complete = 0
    latencies: list[float] = []
    per_event_first: dict[int, float] = {}
    per_event_last: dict[int, float] = {}
    for seqs, times in zip(viewers.seqs, viewers.times):
        if seqs == expected:
            complete += 1
        lost += len(expected_set - set(seqs))
        duplicated += len(seqs) - len(set(seqs))
        unknown += len(set(seqs) - expected_set)
        out_of_order += sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
        for seq, arrived in zip(seqs, times):
            if seq in at and seq not in replayed:
                delay = (arrived - at[seq]) * 1000
                latencies.append(delay)
                if delay > per_event_last.get(seq, float("-inf")):
                    per_event_last[seq] = delay
                if delay < per_event_first.get(seq, float("inf")):
                    per_event_first[seq] = delay
    latencies.sort()
    goal_ms = 50 if cfg.viewers <= 500 else 150
    live_at = sorted(at[seq] for seq in live)
    gaps = [b - a for a, b in zip(live_at, live_at[1:])]
    last = sorted(per_event_last.values())
    first = sorted(per_event_first.values())
    received = sum(len(seqs) for seqs in viewers.seqs)
    detail = {}
    if cfg.keep_logs:  # per live event: type, first and last viewer's latency in ms
        detail["per_event"] = [
            [seq, type_, round(per_event_first.get(seq, -1), 1), round(per_event_last.get(seq, -1), 1)]
            for seq, type_, _ in events
            if seq not in replayed
        ]
    return {
        "layer": cfg.layer,
        "viewers": cfg.viewers,
        "label": cfg.label,
        "server": f"uvicorn (ws={cfg.ws}, loop=auto, ws_per_message_deflate={cfg.ws_per_message_deflate})",
        "client": cfg.client,
        "compression_offered": cfg.compression,
        "pace_s": cfg.pace,
        "run_status": raw["after"]["status"],
        "events": len(expected),
        "events_live": len(live),
        "events_replayed": len(replayed),
        "event_interval_s_mean": round(sum(gaps) / len(gaps), 3) if gaps else None,
        "deliveries_expected": len(expected) * cfg.viewers,
        "deliveries_received": received,
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "unknown_seq": unknown,
        "viewers_complete": complete,
        # Messages that carried several events (the hub coalesces what queued during a pass).
        "messages_batched": sum(viewers.batched),
        "nothing_lost": complete == cfg.viewers and received == len(expected) * cfg.viewers,
        "latency_ms": {
            "samples": len(latencies),
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(latencies[-1], 1) if latencies else None,
            "mean": round(sum(latencies) / len(latencies), 1) if latencies else None,
        },
        "first_viewer_ms": {  # per event: when its first viewer had it (write, commit, layer, hub)
            "p50": round(percentile(first, 50), 1),
            "p99": round(percentile(first, 99), 1),
            "max": round(first[-1], 1) if first else None,
        },
        "last_viewer_ms": {  # per event: when its last viewer had it (adds the fan-out itself)
            "p50": round(percentile(last, 50), 1),
            "p99": round(percentile(last, 99), 1),
            "max": round(last[-1], 1) if last else None,
        },
        "connect_s": round(raw["connect_s"], 2),
        "live_s": round(raw["live_s"], 2),
        "cpu_s_during_live": {"server_processes": raw["server_cpu"], "client": raw["client_cpu"]},
        # The web server's CPU per delivered frame: steadier than latency on a shared, busy machine.
        "server_cpu_us_per_delivery": (
            round(next(iter(raw["server_cpu"].values())) * 1e6 / max(1, received - len(replayed) * cfg.viewers), 1)
        ),
        "loadavg_1min": {"before": raw["load_before"], "after": raw["load_after"]},
        "deflate_negotiated_viewers": sum(
            1
            for sock in viewers.sockets
            if sock is not None
            and (
                getattr(sock, "inflater", None) is not None
                or any(
                    "Deflate" in type(ext).__name__
                    for ext in getattr(getattr(sock, "protocol", None), "extensions", ())
                )
            )
        ),
        "viewer_errors": viewers.errors[:5],
        "viewer_error_count": len(viewers.errors),
        # Issue 15: 500 viewers p99 <= 50 ms, 2000 viewers p99 <= 150 ms, nothing lost.
        "goal": f"p99 <= {goal_ms} ms, nothing lost",
        "goal_met": percentile(latencies, 99) <= goal_ms
        and complete == cfg.viewers
        and received == len(expected) * cfg.viewers,
        **detail,
    }


def run_config(cfg: argparse.Namespace) -> dict:
    """One configuration, its own servers and database, torn down at the end."""
    tmp = Path(tempfile.mkdtemp(prefix="fanout-bench-"))
    env = dict(os.environ)
    for name in ("REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "deliberation.settings",
            "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "1"),
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "HEMICYCLE_DEFAULT_MODEL": "scripted:default",
        }
    )
    env.setdefault("DJANGO_DEBUG", "1")  # as `make run` serves (plain HTTP on loopback)
    try:
        server_pids = []
        if cfg.layer == "redis":
            redis_bin = shutil.which("redis-server")
            if not redis_bin:
                raise SystemExit("redis-server not found: apt-get update && apt-get install -y redis-server")
            redis_port = free_port()
            redis = spawn(
                [
                    redis_bin,
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxclients",
                    "10000",
                ],
                env,
                tmp / "redis.log",
            )
            wait_until(lambda: port_open(redis_port), 20, "redis-server", redis, tmp / "redis.log")
            env.update({"REDIS_URL": f"redis://127.0.0.1:{redis_port}", "CELERY_EMBEDDED_WORKER": "0"})
        else:
            env["CELERY_EMBEDDED_WORKER"] = "1"

        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], env=env, cwd=REPO_ROOT, check=True, timeout=300)
        run = run_json([PY, SELF, "--role", "setup", "--model", cfg.model, "--rounds", str(cfg.rounds)], env, 120)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = spawn(
            [
                PY,
                SELF,
                "--role",
                "server",
                "--port",
                str(port),
                "--pace",
                str(cfg.pace),
                "--ws",
                cfg.ws,
                "--ws-per-message-deflate",
                cfg.ws_per_message_deflate,
            ],
            env,
            tmp / "server.log",
        )
        wait_until(lambda: port_open(port), 60, "uvicorn", server, tmp / "server.log")
        server_pids.append(server.pid)
        if cfg.layer == "redis":
            worker_log = tmp / "worker.log"
            worker = spawn([PY, SELF, "--role", "worker", "--pace", str(cfg.pace)], env, worker_log)
            wait_until(
                lambda: " ready." in worker_log.read_text(errors="replace"), 90, "celery worker", worker, worker_log
            )
            server_pids.append(worker.pid)

        cfg.db = tmp / "db.sqlite3"
        raw = asyncio.run(drive_viewers(cfg, base, run, server_pids, env))
        result = analyse(cfg, raw)
        result["server_cpu_pids"] = {
            "uvicorn": server.pid,
            **({"celery": server_pids[1]} if cfg.layer == "redis" else {}),
        }
        if raw["after"]["status"] != "finished":
            result["run_error"] = raw["after"]["error"]
        if cfg.keep_logs:
            result["logs"] = str(tmp)
        return result
    finally:
        _kill_children()
        if not cfg.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)


# --- report -----------------------------------------------------------------------------------


def machine_info() -> dict:
    packages = {}
    for name in (
        "Django",
        "channels",
        "channels-redis",
        "redis",
        "uvicorn",
        "websockets",
        "celery",
        "uvloop",
        "httptools",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    redis_bin = shutil.which("redis-server")
    redis_version = None
    if redis_bin:
        out = subprocess.run([redis_bin, "--version"], capture_output=True, text=True, timeout=10).stdout
        redis_version = next((part.split("=", 1)[1] for part in out.split() if part.startswith("v=")), out.strip())
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "redis_server": redis_version,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


CAVEAT = (
    "client and server share the same {n} cores: the viewers' own per-message work (one asyncio "
    "loop reading every socket) is inside every latency and takes CPU from the server, so the "
    "latencies overstate what the server alone adds; other load on the machine shows in loadavg_1min"
)


def table(results: list[dict]) -> str:
    head = (
        f"{'layer':<7}{'label':<11}{'viewers':>8}{'events':>7}{'replay':>7}{'expected':>10}{'received':>10}"
        f"{'lost':>5}{'dup':>4}{'order':>6}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}{'cpu/frame':>10}  goal"
    )
    lines = [head, "-" * (len(head) + 22)]
    for r in results:
        lat = r["latency_ms"]
        if r["goal_met"] is not None:
            goal = r["goal"] + (": met" if r["goal_met"] else ": MISSED")
        else:
            goal = r["goal"] + (": met" if r["nothing_lost"] else ": MISSED")
        lines.append(
            f"{r['layer']:<7}{r.get('label', ''):<11}{r['viewers']:>8}{r['events']:>7}{r['events_replayed']:>7}"
            f"{r['deliveries_expected']:>10}{r['deliveries_received']:>10}{r['lost']:>5}{r['duplicated']:>4}"
            f"{r['out_of_order']:>6}{lat['p50']:>7}{lat['p95']:>7}{lat['p99']:>7}{lat['max']:>7}"
            f"{r['server_cpu_us_per_delivery']:>8}us  {goal}"
        )
    lines.append(
        "latency ms = arrival at the viewer - RunEvent.at, live events only; cpu/frame = web server "
        "process CPU per live delivery"
    )
    lines.append("caveat: " + CAVEAT.format(n=os.cpu_count()))
    return "\n".join(lines)


def save(results: list[dict], path: Path) -> list[dict]:
    existing = []
    if path.exists():
        try:
            existing = json.loads(path.read_text())["results"]
        except (ValueError, KeyError):
            existing = []
    key = lambda r: (r["layer"], r["viewers"], r.get("label", ""))  # noqa: E731
    fresh = {key(r) for r in results}
    merged = [r for r in existing if key(r) not in fresh] + results
    order = {"before": 0, "after": 1, "no-deflate": 2}
    merged.sort(
        key=lambda r: (order.get(r.get("label", ""), 3), r.get("label", ""), r["layer"] != "memory", r["viewers"])
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps(
            {
                "benchmark": "websocket fan-out latency, bench/bench_fanout.py",
                "machine": machine_info(),
                "caveat": CAVEAT.format(n=os.cpu_count()),
                "results": merged,
            },
            indent=2,
        )
        + "\n"
    )
    tmp.replace(path)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--role", choices=["main", "server", "worker", "setup", "dump"], default="main", help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--layer", nargs="+", choices=["memory", "redis"], default=["memory", "redis"])
    parser.add_argument("--viewers", nargs="+", type=int, default=[500, 2000])
    parser.add_argument(
        "--pace", type=float, default=0.2, help="seconds between event writes (0: as fast as the run goes, bursts)"
    )
    parser.add_argument(
        "--model", default=FAST_MODEL, help="model string of the run (default: the fast scripted model)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="parliament negotiation rounds (0..5)")
    parser.add_argument(
        "--preroll",
        type=int,
        default=12,
        help="events the run writes (then pauses) before the viewers connect: their replay",
    )
    parser.add_argument(
        "--ws", default="auto", help="uvicorn --ws implementation (auto, websockets, websockets-sansio, wsproto)"
    )
    parser.add_argument(
        "--ws-per-message-deflate",
        choices=["on", "off"],
        default="off",
        help="uvicorn's --ws-per-message-deflate (off: as make run and docker/Dockerfile serve; on: uvicorn's default)",
    )
    parser.add_argument(
        "--client",
        choices=["raw", "websockets"],
        default="raw",
        help="viewer implementation: a lean RFC 6455 client (default) or the websockets library",
    )
    parser.add_argument(
        "--compression",
        choices=["deflate", "none"],
        default="deflate",
        help="viewers offer permessage-deflate as browsers do (default) or not",
    )
    parser.add_argument("--connect-parallel", type=int, default=100, help="websocket handshakes in flight at once")
    parser.add_argument("--connect-timeout", type=float, default=180)
    parser.add_argument("--run-timeout", type=float, default=300, help="longest wait for the outcome")
    parser.add_argument("--label", default="", help="tag of this series in the results (e.g. before, after)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--py-spy", metavar="PY_SPY_BIN", help="profile the web server with py-spy during the live phase"
    )
    parser.add_argument(
        "--py-spy-out", type=Path, default=Path("/tmp/fanout-profile.txt"), help="py-spy output (collapsed stacks)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir with server/worker logs")
    args = parser.parse_args()

    if args.role != "main":
        {"server": role_server, "worker": role_worker, "setup": role_setup, "dump": role_dump}[args.role](args)
        return

    signal.signal(signal.SIGTERM, _on_signal)
    nofile = raise_nofile()
    if nofile < max(args.viewers) + 100:
        raise SystemExit(f"open-file limit {nofile} is too low for {max(args.viewers)} viewers")
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # the client's overhead, kept small
    except ImportError:
        pass

    results = []
    try:
        for layer in args.layer:
            for count in args.viewers:
                cfg = argparse.Namespace(**{**vars(args), "layer": layer, "viewers": count})
                print(f"== {layer} layer, {count} viewers", flush=True)
                result = run_config(cfg)
                results.append(result)
                lat = result["latency_ms"]
                print(
                    f"   {result['events']} events, {result['deliveries_received']}/{result['deliveries_expected']} "
                    f"deliveries, p50 {lat['p50']} p99 {lat['p99']} max {lat['max']} ms, "
                    f"cpu {result['cpu_s_during_live']}",
                    flush=True,
                )
    finally:
        _kill_children()
        if results:
            save(results, args.out)
    print()
    print(table(results))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
