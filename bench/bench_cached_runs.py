"""A cached re-run played in this process: statements and CPU per cached run, without Celery.

The harness's own cost of a run the completion cache answers alone (issue 15 §2: <= 5 ms of
worker CPU), isolated from the broker, the worker's threads and the machine's other load: one
process plays an experiment's runs through `runs.advance.run_advance`, as a Celery task does, with
the enqueue replaced by a list (a run the top-up hands to its task is played at once, as the
worker's chain does; the others are taken from the list in order).

The database is a throwaway PostgreSQL cluster (tests/integration/servers.py; production's
database) or, with --database sqlite, a temp SQLite file (the embedded default, and what
`manage.py evaluate` and bench_oracle.py use). It is migrated and the sample record set imported
(fixtures/sample_records). Then:
  1. the first experiment: one-shot, the llm judge, `scripted:default` (a deterministic model in
     this process), every sample task at 2/4/6 parties, all goals, --seeds: it fills the cache;
  2. --repeats re-runs: each a new experiment with the same grid, every step from the cache.
Per re-run: the runs, the statements (an execute wrapper counts them, by kind), this process's
CPU (time.process_time) and wall time; the figures are the medians over the re-runs.

    .venv/bin/python bench/bench_cached_runs.py                       # PostgreSQL, seeds 0 1 (370 runs)
    .venv/bin/python bench/bench_cached_runs.py --database sqlite
    .venv/bin/python bench/bench_cached_runs.py --profile /tmp/cached.prof   # cProfile of the last re-run

Prints the figures as JSON and writes them to bench/results/cached_runs.json (--out).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD_SET = "Sample EP issues"


def statement_kind(sql: str) -> str:
    words = sql.split(None, 3)
    head = words[0].upper() if words else ""
    if head == "UPDATE" and len(words) > 1:
        return f"UPDATE {words[1].strip(chr(34))}"
    if head == "INSERT" and len(words) > 2:
        return f"INSERT {words[2].strip(chr(34))}"
    if head == "SELECT":
        table = sql.split(" FROM ", 1)[1].split(None, 1)[0].strip('"') if " FROM " in sql else "?"
        return f"SELECT {table}"
    return head


class Counting:
    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()

    def __call__(self, execute, sql, params, many, context):
        self.kinds[statement_kind(sql)] += 1
        return execute(sql, params, many, context)


def play(experiment, queue: list[int]) -> int:
    """Start the experiment and play every run its top-ups enqueue, as the workers would; returns
    how many run tasks were taken from the queue."""
    from deliberation.runs.advance import run_advance
    from deliberation.runs.experiments import experiment_start

    experiment_start(experiment=experiment, user=experiment.owner)
    tasks = 0
    while queue:
        run_advance(run_id=queue.pop(0))
        tasks += 1
    return tasks


def measure(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from deliberation.engine.goals import GOAL_KEYS
    from deliberation.runs import services
    from deliberation.runs.experiments import experiment_create
    from deliberation.runs.models import Experiment, Run

    call_command("migrate", verbosity=0)
    call_command(
        "import_records",
        str(ROOT / "fixtures" / "sample_records"),
        "--name",
        RECORD_SET,
        verbosity=0,
        stdout=io.StringIO(),
    )
    owner = get_user_model().objects.create(username="bench", is_staff=True)
    queue: list[int] = []
    services.run_enqueue = queue.append  # the worker is this loop (runs.experiments looks it up at call time)

    def experiment(name: str) -> Experiment:
        return experiment_create(
            owner=owner,
            name=name,
            record_set=RECORD_SET,
            goals=list(GOAL_KEYS),
            strategies=[args.strategy],
            models=["scripted:default"],
            judges=[args.judge],
            seeds=args.seeds,
            allow_raw_models=True,
        )

    first = experiment("first")
    started = time.perf_counter()
    play(first, queue)
    first_s = time.perf_counter() - started
    repeats = []
    for index in range(args.repeats):
        again = experiment(f"re-run {index}")
        counting = Counting()
        profiler = None
        if args.profile and index == args.repeats - 1:
            import cProfile

            profiler = cProfile.Profile()
        with connection.execute_wrapper(counting):
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            tasks = play(again, queue)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        runs = Run.objects.filter(experiment=again).count()
        finished = Run.objects.filter(experiment=again, status=Run.Status.FINISHED).count()
        uncached = sum(Run.objects.filter(experiment=again).values_list("uncached_steps", flat=True))
        again.refresh_from_db()
        if again.status != Experiment.Status.FINISHED or finished != runs or uncached:
            raise SystemExit(f"re-run {index}: {again.status}, {finished}/{runs} finished, {uncached} uncached steps")
        statements = sum(counting.kinds.values())
        repeats.append(
            {
                "runs": runs,
                "tasks": tasks,
                "cpu_ms_per_run": round(cpu * 1000 / runs, 2),
                "wall_ms_per_run": round(wall * 1000 / runs, 2),
                "statements_per_run": round(statements / runs, 2),
                "statements_by_kind_per_run": {
                    kind: round(count / runs, 2) for kind, count in counting.kinds.most_common()
                },
            }
        )
    return {
        "database": connection.vendor,
        "strategy": args.strategy,
        "judge": args.judge,
        "seeds": args.seeds,
        "first_run_s": round(first_s, 2),
        "runs": repeats[0]["runs"],
        "cpu_ms_per_cached_run": statistics.median(r["cpu_ms_per_run"] for r in repeats),
        "wall_ms_per_cached_run": statistics.median(r["wall_ms_per_run"] for r in repeats),
        "statements_per_cached_run": statistics.median(r["statements_per_run"] for r in repeats),
        "tasks_per_rerun": [r["tasks"] for r in repeats],
        "repeats": repeats,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--strategy", default="one-shot")
    parser.add_argument("--judge", default="llm")
    parser.add_argument("--repeats", type=int, default=3, help="cached re-runs measured (median)")
    parser.add_argument("--profile", default=None, help="write a cProfile of the last re-run here")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cached_runs.json")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    workdir = tempfile.mkdtemp(prefix="hemicycle-bench-cached-")
    postgres = None
    try:
        if args.database == "postgresql":
            from tests.integration.servers import PostgresServer, free_port

            postgres = PostgresServer(port=free_port())
            postgres.start()
            os.environ["DATABASE_URL"] = postgres.url()
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
        for name in ("REDIS_URL", "HEMICYCLE_MODEL_API_BASE"):
            os.environ.pop(name, None)  # the in-memory channel layer; scripted models only
        os.environ["CELERY_EMBEDDED_WORKER"] = "0"
        os.environ["HEMICYCLE_MODEL_CONCURRENCY"] = json.dumps({"scripted:": 32, "*": 32})
        # As production runs: debug off (no query log), so the secret key must be set.
        os.environ["DJANGO_DEBUG"] = "0"
        os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + "x" * 50)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberation.settings")
        import django

        django.setup()
        result = measure(args)
        from django.db import connections

        connections.close_all()
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
