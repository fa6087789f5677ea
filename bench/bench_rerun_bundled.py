"""A cached re-run on the bundled model: what `make run` users get when they run a grid again.

The embedded default (SQLite in a throwaway folder, the in-process worker of
`experiment run --wait`, the bundled SmolLM2-135M through llama.cpp on CPU) plays a small grid of
the sample tasks twice: `first`, then `again`, a second experiment with the same grid and seeds.
Every completion of `again` must come from the completion cache (zero uncached model steps), and
the speed-up is the first experiment's wall time over the second's (Experiment.started_at to
finished_at, as in bench_experiment_throughput.py). The commands' own wall times (Django start,
model load) are reported beside them.

    .venv/bin/python bench/bench_rerun_bundled.py                       # 2 tasks, 4 strategies, ~4 min
    .venv/bin/python bench/bench_rerun_bundled.py --sample 4 --strategies one-shot random

Writes bench/results/rerun_bundled.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "bench" / "results" / "rerun_bundled.json"
PY = sys.executable
MODEL = "local:smollm2-135m"
RECORD_SET = "Sample EP issues"
SPEEDUP_GOAL = 50.0

TIMES = """
from deliberation.runs.models import Experiment
import json
print(json.dumps({e.name: {"wall_s": (e.finished_at - e.started_at).total_seconds(), "status": e.status,
                           "runs": e.runs.count(), "uncached_steps": sum(e.runs.values_list("uncached_steps", flat=True))}
                  for e in Experiment.objects.all()}))
"""


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [PY, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=2, help="sample tasks (2-party)")
    parser.add_argument("--strategies", nargs="+", default=["one-shot", "parliament", "random", "greedy"])
    parser.add_argument("--rounds", type=int, default=0, help="parliament negotiation rounds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hemicycle-rerun-") as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "DJANGO_DEBUG": "1"}
        env.pop("REDIS_URL", None)  # the embedded default: memory broker, in-process worker
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("import_records", "fixtures/sample_records", "--name", RECORD_SET, env=env)
        manage("shell", "-c", "from django.contrib.auth.models import User; User.objects.create_user('bench')", env=env)
        grid = [
            "--owner",
            "bench",
            "--record-set",
            RECORD_SET,
            "--parties",
            "2",
            "--sample",
            str(args.sample),
            "--goals",
            "simple_majority",
            "--strategies",
            *args.strategies,
            "--rounds",
            str(args.rounds),
            "--models",
            MODEL,
            "--judges",
            "llm",
            "--seeds",
            "0",
        ]
        command_s = {}
        for name in ("first", "again"):
            manage("experiment", "create", "--name", name, *grid, env=env)
            started = time.monotonic()
            manage("experiment", "run", name, "--wait", env=env)
            command_s[name] = round(time.monotonic() - started, 2)
            print(f"{name}: `experiment run --wait` took {command_s[name]} s", flush=True)
        times = json.loads(manage("shell", "-c", TIMES, env=env).strip().splitlines()[-1])

    first, again = times["first"], times["again"]
    speedup = first["wall_s"] / again["wall_s"]
    result = {
        "benchmark": "cached re-run on the bundled model, bench/bench_rerun_bundled.py",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(), "loadavg_1min": os.getloadavg()[0]},
        "params": {
            "model": MODEL,
            "sample": args.sample,
            "strategies": args.strategies,
            "rounds": args.rounds,
            "goals": ["simple_majority"],
            "judge": "llm",
            "seeds": [0],
        },
        "first": {**first, "command_s": command_s["first"]},
        "again": {**again, "command_s": command_s["again"]},
        "speedup": round(speedup, 1),
        "goal": {"speedup": SPEEDUP_GOAL, "met": speedup >= SPEEDUP_GOAL and again["uncached_steps"] == 0},
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"first {first['wall_s']:.1f} s ({first['uncached_steps']} model steps); again {again['wall_s']:.2f} s "
        f"({again['uncached_steps']} model steps): {speedup:.0f}x (goal >= {SPEEDUP_GOAL:.0f}x)"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
