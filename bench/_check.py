"""`make bench-check`: a short run of the fan-out bench (500 viewers, memory and Redis layers, events
0.2 s apart) and of the experiment throughput bench (C=32, a 200 ms stand-in model, two seeds: 370
runs), each figure printed beside its goal and the figure recorded in bench/results. Run it before
resolving an issue that touches deliberation/live, deliberation/runs or worker/, and paste what it
prints. Timings never go into the tests; this writes its own results under /tmp, not bench/results.

    .venv/bin/python bench/_check.py                 # both benches (a few minutes)
    .venv/bin/python bench/_check.py --only fanout   # or: --only throughput
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
PY = sys.executable
# The recorded figures these are compared with (bench/README.md says how they were measured).
FANOUT_RECORDED_LABEL = "after-p0.2"
THROUGHPUT_RECORDED_KEY = "C=32|issue15-percall-after-200ms-w1-a"


def _fanout(out: Path) -> list[dict]:
    subprocess.run(
        [
            PY,
            str(BENCH / "bench_fanout.py"),
            "--layer",
            "memory",
            "redis",
            "--viewers",
            "500",
            "--pace",
            "0.2",
            "--label",
            "check",
            "--out",
            str(out),
        ],
        check=True,
    )
    fresh = [r for r in json.loads(out.read_text())["results"] if r.get("label") == "check"]
    recorded = {}
    recorded_file = RESULTS / "fanout.json"
    if recorded_file.exists():
        for r in json.loads(recorded_file.read_text())["results"]:
            if r.get("label") == FANOUT_RECORDED_LABEL and r.get("pace_s", 0.2) == 0.2:
                recorded[(r["layer"], r["viewers"])] = r
    rows = []
    for r in fresh:
        old = recorded.get((r["layer"], r["viewers"]))
        name = f"fan-out {r['layer']}, {r['viewers']} viewers"
        rows.append(
            {
                "figure": f"{name}: p99 ms",
                "value": r["latency_ms"]["p99"],
                "goal": "<= 50",
                "met": r["latency_ms"]["p99"] <= 50,
                "recorded": old and old["latency_ms"]["p99"],
            }
        )
        rows.append(
            {
                "figure": f"{name}: lost + duplicated + out of order",
                "value": r["lost"] + r["duplicated"] + r["out_of_order"],
                "goal": "0",
                "met": r["nothing_lost"] and not r["duplicated"] and not r["out_of_order"],
                "recorded": old and old["lost"] + old["duplicated"] + old["out_of_order"],
            }
        )
        rows.append(
            {
                "figure": f"{name}: server CPU us per delivery",
                "value": r["server_cpu_us_per_delivery"],
                "goal": "-",
                "met": None,
                "recorded": old and old["server_cpu_us_per_delivery"],
                "load": r["loadavg_1min"],
            }
        )
    return rows


def _throughput(out: Path) -> list[dict]:
    subprocess.run(
        [
            PY,
            str(BENCH / "bench_experiment_throughput.py"),
            "--concurrency",
            "32",
            "--latency-ms",
            "200",
            "--seeds",
            "0",
            "1",
            "--label",
            "check",
            "--out",
            str(out),
            "--timeout",
            "600",
        ],
        check=True,
    )
    r = json.loads(out.read_text())["C=32|check"]
    recorded_file = RESULTS / "experiment_throughput.json"
    old = json.loads(recorded_file.read_text()).get(THROUGHPUT_RECORDED_KEY) if recorded_file.exists() else None
    pick = lambda result, key: None if result is None else result.get(key)  # noqa: E731
    return [
        {
            "figure": "throughput C=32 200 ms: stack / direct",
            "value": r["ratio_stack_to_direct"],
            "goal": ">= 0.90",
            "met": r["ratio_stack_to_direct"] >= 0.90,
            "recorded": pick(old, "ratio_stack_to_direct"),
            "load": r["machine"]["loadavg_1min"],
        },
        {
            "figure": "throughput: worker CPU ms per model call",
            "value": r["worker_cpu_ms_per_call"],
            "goal": "<= 3",
            "met": r["worker_cpu_ms_per_call"] <= 3,
            "recorded": pick(old, "worker_cpu_ms_per_call"),
        },
        {
            "figure": "throughput: worker CPU ms per cached run",
            "value": r["rerun_cpu_ms_per_run"],
            "goal": "<= 5",
            "met": r["rerun_cpu_ms_per_run"] <= 5,
            "recorded": pick(old, "rerun_cpu_ms_per_run"),
        },
        {
            "figure": "throughput: model calls in the cached re-run",
            "value": r["rerun_model_calls"],
            "goal": "0",
            "met": r["rerun_model_calls"] == 0,
            "recorded": pick(old, "rerun_model_calls"),
        },
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["fanout", "throughput"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hemicycle-bench-check-"))
    load_before = os.getloadavg()[0]
    rows = []
    if args.only in (None, "fanout"):
        rows += _fanout(tmp / "fanout.json")
    if args.only in (None, "throughput"):
        rows += _throughput(tmp / "throughput.json")
    print()
    print(f"{'figure':<58}{'now':>10}  {'goal':<9}{'recorded':>10}  verdict")
    for row in rows:
        verdict = "-" if row["met"] is None else ("met" if row["met"] else "MISSED")
        recorded = "-" if row["recorded"] is None else row["recorded"]
        print(f"{row['figure']:<58}{row['value']:>10}  {row['goal']:<9}{recorded:>10}  {verdict}")
    print(
        f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after: on a shared machine a "
        "miss under load is noise until a rerun on a quiet machine confirms it; results in " + str(tmp)
    )
    return 0 if all(row["met"] is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
