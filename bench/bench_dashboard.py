"""The experiment dashboard over 100,000 finished runs: does the page answer in under 1 s?

The database is a throwaway PostgreSQL cluster (tests/integration/servers.py; production's
database) or, with --database sqlite, a temp SQLite file (embedded mode). It is migrated (the EP
groups come with the migrations), then filled with bulk_create: one record set, 19 topics,
--records records spread over the three terms (a stance per group of the term, seeded real votes),
a 2-, 4- and 6-party benchmark task per record (seeded tenths), and one experiment of --runs
finished runs over those tasks x 5 goals x strategies (random, greedy, one-shot, parliament) x 2
models, judge llm, with seeded outcomes; then the runs' per-group score rows are written by the
backfill that the migration adding them runs (timed), and PostgreSQL is vacuumed and analysed.

Measured, each --repeats times (median), in wall time and in CPU time (this process plus the
database server's processes: the machine is shared, and CPU time is what the work itself costs):
  * every selector with nothing cached (the aggregates statement alone, each selector, the
    selectors as the page calls them), the cache key's query, the progress the page shows;
  * GET /experiments/<id>/ as its owner: with nothing cached (request), again (request_cached:
    the aggregates and the rendered results come from the cache), and after one more run has
    finished (request_after_a_finish: the key moved, everything is made again but the bootstrap
    draws of the cells that did not change).

    .venv/bin/python bench/bench_dashboard.py                      # PostgreSQL, 100,000 runs
    .venv/bin/python bench/bench_dashboard.py --database sqlite
    .venv/bin/python bench/bench_dashboard.py --runs 20000 --label small

Writes bench/results/dashboard.json (merged, keyed by --label, default the database) and prints a
table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _processes import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "dashboard.json"
GOAL_S = 1.0
STRATEGIES = ("random", "greedy", "one-shot", "parliament")
MODELS = ("scripted:a", "scripted:b")
GOALS = ("simple_majority", "two_thirds_majority", "veto_power", "rawlsian", "utilitarian")


def tenths(rng: random.Random, k: int) -> list[float]:
    cuts = sorted(rng.sample(range(1, 10), k - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, 10])]
    return [p / 10 for p in parts]


def populate(*, runs: int, records: int, seed: int) -> int:
    from django.contrib.auth.models import User

    from deliberation.engine.goals import GOALS as GOAL_DEFS
    from deliberation.records.models import BenchmarkTask, PartyGroup, Record, RecordSet, Stance, Topic
    from deliberation.runs.models import Experiment, Run

    rng = random.Random(seed)
    owner = User.objects.create_user("bench", password="a-long-bench-password")
    record_set = RecordSet.objects.create(name="bench")
    topics = Topic.objects.bulk_create([Topic(name=f"topic {i:02d}") for i in range(19)])
    groups_by_term: dict[str, list] = {}
    for group in PartyGroup.objects.all():
        groups_by_term.setdefault(group.term, []).append(group)
    terms = sorted(groups_by_term)
    made = Record.objects.bulk_create(
        [
            Record(
                record_set=record_set,
                content_hash=f"r{i}",
                title=f"Record {i}",
                background="b",
                resolution="The European Parliament ...",
                term=terms[i % len(terms)],
            )
            for i in range(records)
        ]
    )
    stances, tasks = [], []
    votes: dict[int, dict[str, int]] = {}
    for record in made:
        groups = groups_by_term[record.term]
        votes[record.pk] = {}
        for group in groups:
            score = rng.random()
            votes[record.pk][group.code] = min(9, int(score * 10))
            stances.append(
                Stance(record=record, group=group, text="s", real_score=score, real_choice=min(9, int(score * 10)))
            )
        for k in (2, 4, 6):
            chosen = rng.sample([g.code for g in groups], min(k, len(groups)))
            tasks.append(
                BenchmarkTask(
                    record_set=record_set,
                    record=record,
                    topic=topics[record.pk % len(topics)],
                    party_count=len(chosen),
                    groups=chosen,
                    seat_weights=tenths(rng, len(chosen)),
                    veto_group=chosen[0],
                    content_hash=f"t{record.pk}-{k}",
                )
            )
    Stance.objects.bulk_create(stances, batch_size=5000)
    tasks = BenchmarkTask.objects.bulk_create(tasks, batch_size=5000)
    experiment = Experiment.objects.create(
        owner=owner, name="bench", spec={}, estimate={"runs": runs}, status=Experiment.Status.FINISHED
    )
    now = dt.datetime.now(dt.UTC)
    batch = []
    for i in range(runs):
        task = tasks[i % len(tasks)]
        goal = GOALS[(i // len(tasks)) % len(GOALS)]
        strategy = STRATEGIES[(i // (len(tasks) * len(GOALS))) % len(STRATEGIES)]
        model = MODELS[i % len(MODELS)]
        seats = dict(zip(task.groups, task.seat_weights))
        real = votes[task.record_id]
        scores = {code: max(0, min(9, real[code] + rng.randint(-2, 3))) for code in task.groups}
        total = sum(seats[c] * scores[c] for c in task.groups)
        if GOAL_DEFS[goal].kind == "pass":
            value = total >= (20 / 3 if goal == "two_thirds_majority" else 5)
        else:
            value = min(scores.values()) if goal == "rawlsian" else sum(scores.values()) / len(scores)
        batch.append(
            Run(
                owner=owner,
                experiment=experiment,
                cell=f"c{i}",
                task=task,
                record_id=task.record_id,
                groups=task.groups,
                seat_structure="custom",
                seats=seats,
                goal=goal,
                veto_group=task.veto_group,
                strategy=strategy,
                model=model,
                judge="llm",
                status=Run.Status.FINISHED,
                outcome={
                    "scores": scores,
                    "seats": seats,
                    "weighted_total": total,
                    "goals": {goal: value},
                    "goal": goal,
                },
                goal_value=float(value),
                largest_share=max(seats.values()),
                started_at=now,
                finished_at=now,
            )
        )
        if len(batch) == 5000:
            Run.objects.bulk_create(batch)
            batch = []
    Run.objects.bulk_create(batch)
    return experiment.pk


def backfill() -> int:
    """The finished runs' per-group rows, as the migration that added them writes them (a run
    that finishes writes its own)."""
    from deliberation.runs.group_scores import group_scores_backfill

    return group_scores_backfill()


SERVER_PID: int | None = None  # the throwaway PostgreSQL's postmaster, when there is one


def server_cpu_seconds() -> float:
    """CPU time so far of the database server: the postmaster, its live children (the backend,
    parallel workers) and the children it has reaped (0 for SQLite, which works in this process)."""
    if SERVER_PID is None:
        return 0.0
    total = cpu_seconds(SERVER_PID, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == SERVER_PID:
                    total += cpu_seconds(int(entry.name), children=False)
            except (OSError, ValueError, IndexError):
                continue
    return total


def timed(function, repeats: int) -> tuple[float, object, float]:
    """Median wall seconds, the last result, and median CPU seconds: this process's and the
    database server's (the machine is shared, so wall time carries other sessions' load; CPU time
    says what the work itself costs)."""
    times, cpus, result = [], [], None
    for _ in range(repeats):
        server = server_cpu_seconds()
        own = time.process_time()
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
        own = time.process_time() - own
        cpus.append(own + server_cpu_seconds() - server)
    return statistics.median(times), result, statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="a throwaway PostgreSQL cluster (production's database) or a temp SQLite file",
    )
    parser.add_argument("--label", default=None, help="the results key (default: the database)")
    args = parser.parse_args()
    label = args.label or args.database

    sys.path.insert(0, str(ROOT))
    workdir = tempfile.mkdtemp(prefix="hemicycle-bench-dashboard-")
    postgres = None
    try:
        if args.database == "postgresql":
            from tests.integration.servers import PostgresServer, free_port

            postgres = PostgresServer(port=free_port())
            postgres.start()
            os.environ["DATABASE_URL"] = postgres.url()
            global SERVER_PID
            SERVER_PID = postgres.process.pid
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
        os.environ.pop("REDIS_URL", None)  # the cache is the process's memory (LocMemCache)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberation.settings")
        os.environ.setdefault("DJANGO_DEBUG", "1")  # a local bench: the settings default to production
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        result = measure(args)
        from django.db import connections

        connections.close_all()
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged[label] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    width = max(map(len, [*result["seconds"], *result["request_seconds"]]))
    cpu = result["cpu_seconds"]
    print(f"{'':<{width}}  {'wall':>8}     {'cpu':>8}")
    rows = [*result["seconds"].items(), ("selectors", result["total_seconds"]), *result["request_seconds"].items()]
    for name, value in rows:
        print(f"{name:<{width}}  {value * 1000:8.1f} ms  {cpu[name] * 1000:8.1f} ms")
    total = result["request_seconds"]["request"]
    print(
        f"{args.database}, {args.runs} runs: the dashboard request {total * 1000:.0f} ms "
        f"(goal < {GOAL_S * 1000:.0f} ms: {'met' if total < GOAL_S else 'NOT met'})"
    )


def measure(args) -> dict:
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from deliberation.dashboards import institutions, selectors
    from deliberation.runs.models import Experiment, Run
    from deliberation.runs.selectors import experiment_progress

    start = time.perf_counter()
    experiment_id = populate(runs=args.runs, records=args.records, seed=args.seed)
    populate_s = time.perf_counter() - start
    start = time.perf_counter()
    group_rows = backfill()
    backfill_s = time.perf_counter() - start
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would have by then
    experiment = Experiment.objects.get(pk=experiment_id)

    def forget():
        # Nothing cached, nothing remembered: the first view of the results in a new process.
        cache.clear()
        selectors._bootstrap.cache_clear()
        institutions._indices.cache_clear()
        institutions._verdicts.cache_clear()

    def fresh(function):
        def call():
            forget()
            return function()

        return call

    phases = {
        "aggregates_statement": fresh(lambda: selectors._make_aggregates(experiment)),
        "paper_tables": fresh(lambda: selectors.paper_tables(experiment=experiment)),
        "breakdown_topic": fresh(lambda: selectors.breakdown(experiment=experiment, by="topic")),
        "breakdown_term": fresh(lambda: selectors.breakdown(experiment=experiment, by="term")),
        "breakdown_power": fresh(lambda: selectors.breakdown(experiment=experiment, by="power")),
        "group_views": fresh(lambda: selectors.group_views(experiment=experiment)),
        # the seats-power-rules page's reads (not the dashboard's)
        "power_support": fresh(lambda: institutions.power_support(experiment=experiment)),
        "rule_sweep": fresh(lambda: institutions.rule_sweep(experiment=experiment)),
        "results_version": lambda: selectors.results_version(experiment=experiment),
        "progress": lambda: experiment_progress(experiment=experiment),
    }
    seconds, cpu = {}, {}
    for name, function in phases.items():
        seconds[name], _, cpu[name] = timed(function, args.repeats)

    def page_selectors():
        # The selectors as the page calls them, nothing cached: the statement once, the others
        # from the cache it fills.
        forget()
        for by in ("power", "topic", "term"):
            selectors.breakdown(experiment=experiment, by=by)
        selectors.paper_tables(experiment=experiment)
        selectors.group_views(experiment=experiment)

    total, _, total_cpu = timed(page_selectors, args.repeats)

    # The whole page, as a browser asks for it: first with nothing cached (every aggregate made
    # afresh, the figures and the template rendered), then again (the assembled dashboard cached).
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    url = f"/experiments/{experiment_id}/"

    def first_view():
        forget()
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        return response

    def again():
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        return response

    last = Run.objects.filter(experiment_id=experiment_id).order_by("-pk").values_list("pk", flat=True)[0]

    def after_a_finish():
        # A view of a running experiment: one more run has finished since the last view (its
        # finish moves the cache key), the other cells' bootstrap draws are remembered.
        Run.objects.filter(pk=last).update(finished_at=timezone.now())
        return again()

    request_s, response, request_cpu = timed(first_view, args.repeats)
    cached_s, _, cached_cpu = timed(again, args.repeats)
    after_s, _, after_cpu = timed(after_a_finish, args.repeats)
    return {
        "benchmark": "dashboard selectors and request",
        "runs": args.runs,
        "records": args.records,
        "database": "postgresql (throwaway cluster)" if connection.vendor == "postgresql" else "sqlite (temp file)",
        "seconds": {name: round(value, 4) for name, value in seconds.items()},
        "total_seconds": round(total, 4),
        "request_seconds": {
            "request": round(request_s, 4),
            "request_cached": round(cached_s, 4),
            "request_after_a_finish": round(after_s, 4),
        },
        "cpu_seconds": {
            **{name: round(value, 3) for name, value in cpu.items()},
            "selectors": round(total_cpu, 3),
            "request": round(request_cpu, 3),
            "request_cached": round(cached_cpu, 3),
            "request_after_a_finish": round(after_cpu, 3),
        },
        "response_bytes": len(response.content),
        "goal_seconds": GOAL_S,
        "meets_goal": request_s < GOAL_S,
        "populate_seconds": round(populate_s, 1),
        "group_score_rows": group_rows,
        "backfill_seconds": round(backfill_s, 1),
        "repeats": args.repeats,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    main()
