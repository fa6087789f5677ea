"""Model steps per run against each strategy's estimate, and wall time per run (issue 13).

Each strategy plays the sample tasks through `manage.py evaluate` (a fresh process per strategy,
SQLite in a throwaway folder, the completion cache empty at the start): the steps it counts
(every event that carries a model call's usage, the judge's verdicts included) beside the
estimate (`strategies.run_cost`, what budgets and experiment caps use), and the command's wall
time per run. The estimate is exact for every strategy but forecast, for which it is an upper
bound (it stops once the goal is met).

    .venv/bin/python bench/bench_strategy_steps.py                                   # scripted model, every strategy
    .venv/bin/python bench/bench_strategy_steps.py --model local:smollm2-135m --limit 1 \\
        --strategies one-shot mediator forecast advisor advisor-random advisor-none   # the bundled model, ~20 min

Writes bench/results/strategy_steps.json (the scripted run) or strategy_steps_<model>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
PY = sys.executable
RECORD_SET = "Sample EP issues"
STEPS = re.compile(r"(\d+) runs in [\d.]+ s; (\d+) model steps")


def manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [PY, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=7200
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    from deliberation.engine.strategies import STRATEGIES, run_cost

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="scripted:default")
    parser.add_argument("--strategies", nargs="+", default=[name for name in STRATEGIES if name != "real-resolution"])
    parser.add_argument("--parties", type=int, default=2, choices=[2, 4, 6])
    parser.add_argument("--limit", type=int, default=3, help="tasks per strategy")
    args = parser.parse_args()

    rows = {}
    with tempfile.TemporaryDirectory(prefix="hemicycle-steps-") as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "DJANGO_DEBUG": "1"}
        manage("migrate", "--noinput", "-v", "0", env=env)
        manage("import_records", "fixtures/sample_records", "--name", RECORD_SET, env=env)
        for strategy in args.strategies:
            started = time.monotonic()
            out = manage(
                "evaluate",
                "--record-set",
                RECORD_SET,
                "--parties",
                str(args.parties),
                "--goals",
                "simple_majority",
                "--strategy",
                strategy,
                "--model",
                args.model,
                "--judge",
                "llm",
                "--limit",
                str(args.limit),
                "-v",
                "0",
                env=env,
            )
            wall = time.monotonic() - started
            runs, steps = (int(value) for value in STEPS.search(out).groups())
            estimate = run_cost(strategy=strategy, party_count=args.parties, judge_uses_model=True, params={}).steps
            rows[strategy] = {
                "runs": runs,
                "steps_per_run": round(steps / runs, 2),
                "estimate_per_run": estimate,
                "within_estimate": steps <= estimate * runs,
                "exact": steps == estimate * runs,
                "wall_s_per_run": round(wall / runs, 1),
            }
            print(
                f"{strategy:16} {rows[strategy]['steps_per_run']:>6} steps/run (estimate {estimate:>3})  "
                f"{rows[strategy]['wall_s_per_run']:>7} s/run",
                flush=True,
            )

    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "model": args.model,
        "judge": "llm (same model)",
        "parties": args.parties,
        "goal": "simple_majority",
        "note": "wall time includes the command's start and the model's load; steps count cached calls too "
        "(forecast's vote repeats the verification from the cache)",
        "strategies": rows,
    }
    name = (
        "strategy_steps.json"
        if args.model == "scripted:default"
        else f"strategy_steps_{args.model.replace(':', '_')}.json"
    )
    path = REPO_ROOT / "bench" / "results" / name
    if path.exists():  # a run of some strategies keeps the others' rows, each with its own time and load
        earlier = json.loads(path.read_text())
        for row in earlier.get("strategies", {}).values():
            row.setdefault("when", earlier.get("when"))
            row.setdefault("machine", earlier.get("machine"))
        result["strategies"] = {**earlier.get("strategies", {}), **rows}
    for row in rows.values():
        row.update(when=result["when"], machine=result["machine"])
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote bench/results/{name}")


if __name__ == "__main__":
    main()
