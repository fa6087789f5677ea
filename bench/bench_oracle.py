"""Time the oracle evaluation (real resolution, real votes) over every EuroCon task.

Imports ../shared/data/eurocon into a fresh SQLite database, then times
`manage.py evaluate --strategy real-resolution --judge real-votes` over 2, 4 and 6 parties and
all five goals, as a whole process. Writes bench/results/oracle.json. Goal: under 60 s.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "eurocon"
RESULTS = REPO / "bench" / "results" / "oracle.json"


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/oracle.sqlite3"}
        manage("migrate", "-v0", env=env)
        manage("import_records", str(DATA), "--name", "EuroCon", env=env)
        runs = []
        for _ in range(3):
            started = time.perf_counter()
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
                "--out",
                f"{tmp}/table.json",
                "-v0",
                env=env,
            )
            runs.append(time.perf_counter() - started)
        table = json.loads(Path(f"{tmp}/table.json").read_text())
    runs.sort()
    report = {
        "what": "manage.py evaluate --strategy real-resolution --judge real-votes, all EuroCon tasks, 5 goals",
        "seconds_min": round(runs[0], 2),
        "seconds_median": round(runs[1], 2),
        "seconds_max": round(runs[2], 2),
        "goal_seconds": 60,
        "table": table,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(result.stdout)
    print(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2))


if __name__ == "__main__":
    main()
