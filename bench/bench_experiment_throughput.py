"""Experiment throughput: model calls/s through the whole stack against the model server's own
capacity at the same concurrency, and the speed-up of a cached re-run.

Everything runs on loopback and is stopped on exit (own process groups, try/finally, atexit;
every wait has a deadline):
  * bench/standin_model_server.py on a free port: OpenAI-compatible, a fixed latency per request
    (--latency-ms, default 50), deterministic replies, its own call counter (GET /stats);
  * a throwaway PostgreSQL cluster and a redis-server (tests/integration/servers.py), migrated,
    with the sample record set imported from fixtures/sample_records ("Sample EP issues");
  * one Celery worker process (-Q runs,models --pool threads -c 2C, --worker-threads to change;
    --workers N starts N such processes: more workers is how the product scales out, and on a
    small machine it also spreads the harness over more than one GIL),
    HEMICYCLE_MODEL_CONCURRENCY={"openai/": C, "*": C} so an experiment keeps C runs in flight,
    HEMICYCLE_MODEL_API_BASE pointing at the stand-in.

Phases:
  1. stack: `experiment create` (one-shot strategy, llm judge, model openai/standin, every
     sample task, all goals, --seeds N) and `experiment run`; the worker plays it. Throughput =
     the stand-in's calls / (last call's arrival - first call's arrival). The stand-in records the
     prompts it receives.
  2. direct: the same prompts (the ones recorded in phase 1, same seeds) sent straight to the
     stand-in from C asyncio workers (aiohttp, keep-alive), throughput counted the same way.
     ratio = stack / direct (goal >= 0.90).
  3. re-run: a second experiment with the same grid (same seeds): every completion comes from the
     cache, so the stand-in must see zero calls; speed-up = wall time of experiment 1 / wall time
     of experiment 2 (Experiment.started_at to finished_at; goal >= 50x).

    .venv/bin/python bench/bench_experiment_throughput.py                  # C=4, seed 0 (185 runs, 905 calls), 50 ms
    .venv/bin/python bench/bench_experiment_throughput.py --concurrency 8 --seeds 0 1 2 3 4
    .venv/bin/python bench/bench_experiment_throughput.py --py-spy py-spy  # profile the worker

Writes bench/results/experiment_throughput.json (merged, keyed by concurrency and --label) and
prints a table.
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
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "bench" / "results" / "experiment_throughput.json"
PY = sys.executable
MODEL = "openai/standin"
RECORD_SET = "Sample EP issues"
RATIO_GOAL = 0.90
SPEEDUP_GOAL = 50.0

from tests.integration.servers import PostgresServer, RedisServer, free_port  # noqa: E402

from _processes import children as _children, cpu_seconds, exit_on_signal as _on_signal, kill_children as _kill_children  # noqa: E402


def spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=REPO_ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _children.append(proc)
    return proc


def wait_until(
    predicate,
    *,
    timeout: float,
    what: str,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
    interval: float = 0.1,
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise RuntimeError(f"{what}: process exited with {proc.returncode}\n{tail}")
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        time.sleep(interval)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise TimeoutError(f"{what}: not done after {timeout:.0f} s\n{tail}")


def manage(*args: str, env: dict, timeout: float = 300) -> str:
    out = subprocess.run(
        [PY, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if out.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return out.stdout


def http_json(url: str, *, method: str = "GET", timeout: float = 10) -> dict:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def experiment_row(db_url: str, name: str) -> dict | None:
    import psycopg

    with psycopg.connect(db_url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT id, status, started_at, finished_at FROM runs_experiment WHERE name = %s", (name,)
        ).fetchone()
        if row is None:
            return None
        counts = dict(
            conn.execute(
                "SELECT status, count(*) FROM runs_run WHERE experiment_id = %s GROUP BY status", (row[0],)
            ).fetchall()
        )
    return {"id": row[0], "status": row[1], "started_at": row[2], "finished_at": row[3], "runs": counts}


def run_timings(db_url: str, experiment_id: int) -> dict:
    """Where a run's time goes, means over the experiment's runs (ms): queued (created to started
    by a worker; its median too: a run its task plays as created waits far less than one that went
    through the queue), wall (started to finished), model (the model calls' own seconds, as the
    client timed them), harness (wall - model)."""
    import psycopg

    with psycopg.connect(db_url, connect_timeout=5) as conn:
        queued, queued_median, wall, model = conn.execute(
            "SELECT avg(extract(epoch FROM started_at - created_at)),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at)),"
            " avg(extract(epoch FROM finished_at - started_at)),"
            " avg(model_seconds) FROM runs_run WHERE experiment_id = %s AND status = 'finished'",
            (experiment_id,),
        ).fetchone()
    queued, queued_median, wall, model = (float(value or 0) for value in (queued, queued_median, wall, model))
    ms = lambda value: round(1000 * float(value or 0), 1)  # noqa: E731
    return {
        "queued_ms": ms(queued),
        "queued_median_ms": ms(queued_median),
        "wall_ms": ms(wall),
        "model_ms": ms(model),
        "harness_ms": ms(wall - model),
    }


def play_experiment(
    *,
    name: str,
    create_args: list[str],
    env: dict,
    db_url: str,
    standin: str,
    workers: list[subprocess.Popen],
    worker_log: Path,
    timeout: float,
    py_spy: str | None,
    profile_out: Path | None,
    latency_s: float,
) -> dict:
    out = manage("experiment", "create", "--name", name, *create_args, env=env)
    http_json(f"{standin}/stats/reset", method="POST")
    worker = workers[0]
    cpu_before = sum(cpu_seconds(proc.pid) for proc in workers)
    spy = None
    if py_spy and profile_out is not None:
        # --gil: only the thread holding the GIL is sampled, so the profile is where the CPU goes
        # (without it, threads waiting on PostgreSQL or the model server fill it).
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "-p",
                str(worker.pid),
                "-o",
                str(profile_out),
                "-f",
                "raw",
                "-r",
                "200",
                "--nonblocking",
                "--gil",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _children.append(spy)
    t0 = time.monotonic()
    manage("experiment", "run", name, env=env)
    row = wait_until(
        lambda: (lambda r: r if r and r["status"] not in ("running", "draft") else None)(experiment_row(db_url, name)),
        timeout=timeout,
        what=f"experiment {name}",
        proc=worker,
        log=worker_log,
        interval=0.2,
    )
    t1 = time.monotonic()
    if spy is not None:
        os.killpg(spy.pid, signal.SIGINT)
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(spy.pid, signal.SIGKILL)
    stats = http_json(f"{standin}/stats")
    wall = (row["finished_at"] - row["started_at"]).total_seconds()
    span = (stats["last"] - stats["first"]) if stats["calls"] > 1 else None
    return {
        "name": name,
        "created": out.strip().splitlines()[0],
        "status": row["status"],
        "runs": row["runs"],
        "wall_s": round(wall, 3),
        "bench_wall_s": round(t1 - t0, 3),
        "model_calls": stats["calls"],
        "max_in_flight_at_model": stats["max_in_flight"],
        "calls_span_s": round(span, 3) if span else None,
        "calls_per_s": round((stats["calls"] - 1) / span, 2) if span else 0.0,
        "calls_per_s_over_wall": round(stats["calls"] / wall, 2) if wall else None,
        # Each call holds the model for latency_s: the time-average of calls in flight at the model.
        "mean_in_flight_at_model": round(stats["calls"] * latency_s / span, 2) if span else 0.0,
        "worker_cpu_s": round(sum(cpu_seconds(proc.pid) for proc in workers) - cpu_before, 2),
        "ms_per_run": round(1000 * wall / max(1, sum(row["runs"].values())), 1),
        "per_run": run_timings(db_url, row["id"]),
    }


async def _direct(url: str, prompts: list[dict], concurrency: int, deadline: float) -> int:
    import aiohttp

    queue = list(reversed(prompts))
    done = 0

    async def one(session):
        nonlocal done
        while queue and time.monotonic() < deadline:
            prompt = queue.pop()
            body = {
                "model": "standin",
                "messages": prompt["messages"],
                "seed": prompt["seed"],
                "temperature": 0.0,
                "max_tokens": 512,
            }
            async with session.post(url, json=body) as response:
                data = await response.json()
                assert data["choices"][0]["message"]["content"]
            done += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(one(session) for _ in range(concurrency)))
    return done


def direct_phase(*, standin: str, prompts: list[dict], concurrency: int, timeout: float, latency_s: float) -> dict:
    http_json(f"{standin}/stats/reset", method="POST")
    t0 = time.monotonic()
    done = asyncio.run(_direct(f"{standin}/v1/chat/completions", prompts, concurrency, time.monotonic() + timeout))
    elapsed = time.monotonic() - t0
    stats = http_json(f"{standin}/stats")
    span = stats["last"] - stats["first"]
    return {
        "model_calls": stats["calls"],
        "completed": done,
        "wall_s": round(elapsed, 3),
        "mean_in_flight_at_model": round(stats["calls"] * latency_s / span, 2) if span > 0 else 0.0,
        "max_in_flight_at_model": stats["max_in_flight"],
        "calls_per_s": round((stats["calls"] - 1) / span, 2) if span > 0 else 0.0,
        "ideal_calls_per_s": None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=4, help="C: runs in flight, worker threads, direct workers")
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=None,
        help="worker pool threads (default 2C, as docker-compose.yml runs 8 against a bound of 4: a "
        "thread is free to start the next run while the one that started it finishes)",
    )
    parser.add_argument(
        "--skip-direct", action="store_true", help="no phase 2 (no ratio): for the re-run's speed-up at a long latency"
    )
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes, each with --worker-threads")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--goals", nargs="+", default=["all"])
    parser.add_argument("--timeout", type=float, default=300, help="deadline per experiment (s)")
    parser.add_argument("--py-spy", default=None, help="py-spy binary: profile the worker in phase 1")
    parser.add_argument("--label", default="default")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, recorded prompts)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (merged; default bench/results/...)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    c = args.concurrency
    threads = args.worker_threads or 2 * c

    tmp = Path(tempfile.mkdtemp(prefix="hemicycle-bench-exp-"))
    redis = None
    postgres = None
    try:
        postgres = PostgresServer(port=free_port())
        postgres.start()
        redis = RedisServer(port=free_port())
        redis.start()
        standin_port = free_port()
        standin = f"http://127.0.0.1:{standin_port}"
        prompts_file = tmp / "prompts.jsonl"
        standin_log = tmp / "standin.log"
        standin_proc = spawn(
            [
                PY,
                str(REPO_ROOT / "bench" / "standin_model_server.py"),
                "--port",
                str(standin_port),
                "--latency-ms",
                str(args.latency_ms),
                "--record",
                str(prompts_file),
            ],
            dict(os.environ),
            standin_log,
        )
        wait_until(
            lambda: http_json(f"{standin}/stats", timeout=2) is not None,
            timeout=30,
            what="stand-in model server",
            proc=standin_proc,
            log=standin_log,
        )

        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "deliberation.settings",
                "DATABASE_URL": postgres.url(),
                "REDIS_URL": redis.url,
                "CELERY_EMBEDDED_WORKER": "0",
                "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "WARNING",
                # As production runs (docker/Dockerfile): debug off, so no query log per connection.
                "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": "bench-only-" + "x" * 50,
                # Persistent connections (README: DATABASE_CONN_MAX_AGE): a worker thread keeps its
                # connection from one task to the next (worker/celery.py) instead of a new one per run.
                "DATABASE_CONN_MAX_AGE": "60",  # as .env.example
                "HEMICYCLE_MODEL_API_BASE": f"{standin}/v1",
                "HEMICYCLE_MODEL_API_KEY": "standin-key",
                "HEMICYCLE_MODEL_CONCURRENCY": json.dumps({"openai/": c, "local:": 1, "scripted:": c, "*": c}),
                "HEMICYCLE_DEFAULT_MODEL": MODEL,
            }
        )
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        t_setup = time.monotonic()
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("import_records", "fixtures/sample_records", "--name", RECORD_SET, env=env)
        workers = []
        for index in range(args.workers):
            worker_log = tmp / f"worker{index}.log"
            name = f"bench{index}@hemicycle"
            worker = spawn(
                [
                    PY,
                    "-m",
                    "celery",
                    "-A",
                    "worker.celery",
                    "worker",
                    "-Q",
                    "runs,models",
                    "--pool",
                    "threads",
                    "-c",
                    str(threads),
                    "-n",
                    name,
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-l",
                    "WARNING",
                ],
                env,
                worker_log,
            )
            workers.append(worker)
            wait_until(
                lambda: (
                    subprocess.run(
                        [PY, "-m", "celery", "-A", "worker.celery", "inspect", "ping", "-d", name, "-t", "2"],
                        cwd=REPO_ROOT,
                        env=env,
                        capture_output=True,
                        timeout=30,
                    ).returncode
                    == 0
                ),
                timeout=90,
                what="celery worker",
                proc=worker,
                log=worker_log,
                interval=0.5,
            )
        worker, worker_log = workers[0], tmp / "worker0.log"
        setup_s = time.monotonic() - t_setup

        create_args = [
            "--record-set",
            RECORD_SET,
            "--parties",
            "2",
            "4",
            "6",
            "--goals",
            *args.goals,
            "--strategies",
            "one-shot",
            "--models",
            MODEL,
            "--judges",
            "llm",
            "--seeds",
            *map(str, args.seeds),
        ]
        # Warm-up: a one-run experiment on another seed, so that the model client's first import
        # and the worker's first connections are not inside phase 1. Its cells are not in the grid.
        manage(
            "experiment",
            "create",
            "--name",
            "warmup",
            "--record-set",
            RECORD_SET,
            "--parties",
            "2",
            "--sample",
            "1",
            "--goals",
            "simple_majority",
            "--strategies",
            "one-shot",
            "--models",
            MODEL,
            "--judges",
            "llm",
            "--seeds",
            "999999",
            env=env,
        )
        manage("experiment", "run", "warmup", env=env)
        wait_until(
            lambda: (experiment_row(postgres.url(), "warmup") or {}).get("status") == "finished",
            timeout=120,
            what="warm-up experiment",
            proc=worker,
            log=worker_log,
            interval=0.2,
        )
        print(f"setup done in {setup_s:.1f} s; phase 1: the experiment through the stack (C={c})", flush=True)
        stack = play_experiment(
            name="throughput",
            create_args=create_args,
            env=env,
            db_url=postgres.url(),
            standin=standin,
            workers=workers,
            worker_log=worker_log,
            timeout=args.timeout,
            py_spy=args.py_spy,
            profile_out=tmp / "worker-profile.txt",
            latency_s=args.latency_ms / 1000,
        )
        print(json.dumps(stack, default=str), flush=True)

        prompts = [json.loads(line) for line in prompts_file.read_text().splitlines() if line.strip()]
        direct = None
        if not args.skip_direct:
            print(f"phase 2: {len(prompts)} recorded prompts straight to the stand-in (C={c})", flush=True)
            direct = direct_phase(
                standin=standin, prompts=prompts, concurrency=c, timeout=args.timeout, latency_s=args.latency_ms / 1000
            )
            direct["ideal_calls_per_s"] = round(c / (args.latency_ms / 1000), 2)
            print(json.dumps(direct), flush=True)

        print("phase 3: the same grid again (cached)", flush=True)
        rerun = play_experiment(
            name="throughput-rerun",
            create_args=create_args,
            env=env,
            db_url=postgres.url(),
            standin=standin,
            workers=workers,
            worker_log=worker_log,
            timeout=args.timeout,
            py_spy=args.py_spy,
            profile_out=tmp / "worker-profile-rerun.txt",
            latency_s=args.latency_ms / 1000,
        )
        print(json.dumps(rerun, default=str), flush=True)

        ratio = (stack["calls_per_s"] / direct["calls_per_s"] if direct["calls_per_s"] else 0.0) if direct else None
        speedup = stack["wall_s"] / rerun["wall_s"] if rerun["wall_s"] else float("inf")
        result = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "loadavg_1min": round(os.getloadavg()[0], 2),
            },
            "params": {
                "concurrency": c,
                "worker_processes": args.workers,
                "worker_threads": threads,
                "latency_ms": args.latency_ms,
                "seeds": args.seeds,
                "goals": args.goals,
                "model": MODEL,
                "strategy": "one-shot",
                "judge": "llm",
                "record_set": RECORD_SET,
                "database": "postgresql",
                "broker": "redis",
            },
            "direct": direct,
            "stack": stack,
            "rerun": rerun,
            "ratio_stack_to_direct": None if ratio is None else round(ratio, 3),
            "ratio_goal": RATIO_GOAL,
            "ratio_met": None if ratio is None else ratio >= RATIO_GOAL,
            # The worker processes' CPU per model call (first run) and per cached run (re-run).
            "worker_cpu_ms_per_call": round(1000 * stack["worker_cpu_s"] / max(1, stack["model_calls"]), 2),
            "rerun_cpu_ms_per_run": round(1000 * rerun["worker_cpu_s"] / max(1, sum(rerun["runs"].values())), 2),
            "rerun_model_calls": rerun["model_calls"],
            "rerun_zero_calls": rerun["model_calls"] == 0,
            "rerun_speedup": round(speedup, 2),
            "speedup_goal": SPEEDUP_GOAL,
            "speedup_met": speedup >= SPEEDUP_GOAL,
        }
        if args.py_spy:
            result["profiles"] = [str(path) for path in sorted(tmp.glob("worker-profile*.txt"))]
        out_path = args.out
        out_path.parent.mkdir(parents=True, exist_ok=True)
        merged = json.loads(out_path.read_text()) if out_path.exists() else {}
        merged[f"C={c}|{args.label}"] = result
        out_path.write_text(json.dumps(merged, indent=2, default=str) + "\n")

        print()
        print(f"{'phase':<10} {'calls':>7} {'calls/s':>9} {'wall s':>8} {'in flight mean/peak':>20}  note")
        if direct:
            print(
                f"{'direct':<10} {direct['model_calls']:>7} {direct['calls_per_s']:>9.1f} {direct['wall_s']:>8.2f} "
                f"{direct['mean_in_flight_at_model']:>13.2f} / {direct['max_in_flight_at_model']:<4}  ideal {direct['ideal_calls_per_s']:.0f}/s"
            )
        print(
            f"{'stack':<10} {stack['model_calls']:>7} {stack['calls_per_s']:>9.1f} {stack['wall_s']:>8.2f} "
            f"{stack['mean_in_flight_at_model']:>13.2f} / {stack['max_in_flight_at_model']:<4}  runs {stack['runs']}, {stack['ms_per_run']} ms/run, worker CPU {stack['worker_cpu_s']} s"
        )
        print(
            f"{'rerun':<10} {rerun['model_calls']:>7} {'-':>9} {rerun['wall_s']:>8.2f} {'-':>20}  runs {rerun['runs']}, {rerun['ms_per_run']} ms/run, worker CPU {rerun['worker_cpu_s']} s"
        )
        print(
            (
                f"ratio stack/direct {ratio:.3f} (goal >= {RATIO_GOAL}: {'met' if ratio >= RATIO_GOAL else 'MISSED'}); "
                if ratio is not None
                else "no direct phase; "
            )
            + f"re-run calls {rerun['model_calls']} ({'zero: met' if rerun['model_calls'] == 0 else 'MISSED'}); "
            f"speed-up {speedup:.1f}x (goal >= {SPEEDUP_GOAL:.0f}x: {'met' if speedup >= SPEEDUP_GOAL else 'MISSED'})"
        )
        print(f"wrote {out_path}" + (f"; logs in {tmp}" if args.keep or args.py_spy else ""))
        return 0
    finally:
        _kill_children()
        for server in (redis, postgres):
            if server is not None:
                server.stop()
        if not (args.keep or args.py_spy):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
