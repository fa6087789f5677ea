"""Time the oracle evaluation (real resolution, real votes) over every EuroCon task.

Imports ../shared/data/eurocon into a fresh SQLite database, then times
`manage.py evaluate --strategy real-resolution --judge real-votes` over 2, 4 and 6 parties and
all five goals, as a whole process (wall and CPU time), --repeats times. Every run is stored (an
experiment of the evaluate account), so the harness's cost per run decides; `--limit N` times the
first N tasks per party count and estimates the whole release from it. Writes
bench/results/oracle.json (--out). Goal: under 60 s for the whole release.

    .venv/bin/python bench/bench_oracle.py                        # every task, 3 times
    .venv/bin/python bench/bench_oracle.py --limit 200 --repeats 2 # 600 tasks x 5 goals
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "eurocon"
RESULTS = REPO / "bench" / "results" / "oracle.json"
GOAL_KEYS = ("simple_majority", "two_thirds_majority", "veto_power", "rawlsian", "utilitarian")
FULL_RUNS = (2067 + 1923 + 1463) * len(GOAL_KEYS)  # every EuroCon task (2, 4, 6 parties) x 5 goals


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="at most N tasks per party count (a subset)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/oracle.sqlite3",
            # As a deployment runs: debug off (no query log), so a secret key of the bench's own.
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-only-" + "x" * 50),
        }
        manage("migrate", "-v0", env=env)
        manage("import_records", str(DATA), "--name", "EuroCon", env=env)
        limit = ["--limit", str(args.limit)] if args.limit else []
        runs, cpus = [], []
        for _ in range(args.repeats):
            started, cpu = time.perf_counter(), _children_cpu()
            result = manage(
                "evaluate",
                "--record-set",
                "EuroCon",
                "--parties",
                "2",
                "4",
                "6",
                "--goals",
                "all",
                "--strategy",
                "real-resolution",
                "--judge",
                "real-votes",
                *limit,
                "--out",
                f"{tmp}/table.json",
                "-v0",
                env=env,
            )
            runs.append(time.perf_counter() - started)
            cpus.append(_children_cpu() - cpu)
        table = json.loads(Path(f"{tmp}/table.json").read_text())
    played = sum(row["tasks"] for row in table.values()) * len(GOAL_KEYS)
    median = statistics.median(runs)
    cpu_per_run = statistics.median(cpus) / played
    report = {
        "what": "manage.py evaluate --strategy real-resolution --judge real-votes, "
        + (f"the first {args.limit} EuroCon tasks per party count" if args.limit else "all EuroCon tasks")
        + ", 5 goals (every run stored, as an experiment of the evaluate account)",
        "limit": args.limit,
        "runs": played,
        "seconds_min": round(min(runs), 2),
        "seconds_median": round(median, 2),
        "seconds_max": round(max(runs), 2),
        "cpu_seconds_median": round(statistics.median(cpus), 2),
        "cpu_ms_per_run": round(cpu_per_run * 1000, 2),
        # The whole release at this subset's cost per run (the harness's cost is per run).
        "full_release_runs": FULL_RUNS,
        "full_release_seconds_estimate": None if not args.limit else round(median / played * FULL_RUNS, 1),
        "goal_seconds": 60,
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "table": table,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(result.stdout)
    print(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
