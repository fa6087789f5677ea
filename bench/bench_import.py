"""Wall time of importing the whole EuroCon release into a fresh SQLite database. Goal: < 10 s.

Each round imports into a fresh copy of a migrated SQLite database (the migration is not timed),
through records_import, the service that `manage.py import_records` calls: reading, validation,
merging and the one write transaction are all inside the time.

    .venv/bin/python bench/bench_import.py [--data ../shared/data/eurocon] [--rounds 3]

Writes bench/results/import.json and prints it; exits 1 when the median misses the goal.
"""

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "import.json"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "eurocon"
GOAL_S = 10.0

WORK_DIR = Path(tempfile.mkdtemp(prefix="hemicycle-bench-import-"))
DATABASE = WORK_DIR / "bench.sqlite3"
TEMPLATE = WORK_DIR / "migrated.sqlite3"

# The database is chosen before Django loads its settings.
sys.path.insert(0, str(REPO_ROOT))
os.environ["DATABASE_URL"] = f"sqlite:///{DATABASE}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberation.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # a local bench: the settings default to production

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from deliberation.records.services import records_import  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fresh_database() -> None:
    connection.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{DATABASE}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(TEMPLATE, DATABASE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EUROCON_DATA", DEFAULT_DATA)))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"No EuroCon release at {args.data} (pass --data or set EUROCON_DATA).", file=sys.stderr)
        return 2

    try:
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        migrate_s = time.perf_counter() - started
        connection.close()
        shutil.copyfile(DATABASE, TEMPLATE)

        rounds, cpu_rounds, report = [], [], None
        for _ in range(args.rounds):
            fresh_database()
            started, cpu_started = time.perf_counter(), time.process_time()
            report = records_import(paths=[args.data], name="EuroCon")
            rounds.append(round(time.perf_counter() - started, 3))
            cpu_rounds.append(round(time.process_time() - cpu_started, 3))
    finally:
        connection.close()
        shutil.rmtree(WORK_DIR, ignore_errors=True)

    median = statistics.median(rounds)
    result = {
        "benchmark": "import the whole EuroCon release into a fresh SQLite database (records_import)",
        "data": str(args.data),
        "seconds": {"min": min(rounds), "median": median, "max": max(rounds), "rounds": rounds},
        # CPU time of this process: on a busy shared machine wall time also counts waiting for a core.
        "cpu_seconds": {"median": statistics.median(cpu_rounds), "rounds": cpu_rounds},
        "migrate_seconds": round(migrate_s, 3),
        "goal_seconds": GOAL_S,
        "meets_goal": median < GOAL_S,
        "counts": {
            "files": len(report.files),
            "records": report.records,
            "records_skipped": report.records_skipped,
            "stances": report.stances,
            "tasks": report.tasks,
            "tasks_by_party_count": {str(k): n for k, n in sorted(report.tasks_by_party_count.items())},
            "tasks_skipped": report.tasks_skipped,
            "topics": len(report.topics),
            "problems": len(report.problems),
        },
        "machine": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "django": django.get_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
        },
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0 if result["meets_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
