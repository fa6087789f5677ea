"""CPU cost of validating events at append (engine/events.py event_validate, called by
runs.services.event_append): every strategy in STRATEGIES played on the scripted model and judge,
each of its events validated many times; microseconds per event, by type and per run.

    .venv/bin/python bench/bench_event_validate.py [--repeat 200]

Writes bench/results/event_validate.json. No database, no servers: the figure is the validation
alone, to set beside the worker's CPU per call (bench_experiment_throughput.py, issue 15).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deliberation.engine.events import event_validate  # noqa: E402
from deliberation.engine.judges import RealVotesJudge, ScriptedJudge  # noqa: E402
from deliberation.engine.models import ScriptedModelClient  # noqa: E402
from deliberation.engine.scenario import Group, RecordView, Scenario  # noqa: E402
from deliberation.engine.strategies import STRATEGIES, RunContext  # noqa: E402

SEATS = {"EPP": 0.3, "SD": 0.25, "RENEW": 0.15, "GREENS": 0.12, "ECR": 0.1, "ID": 0.08}


def scenario() -> Scenario:
    record = RecordView(
        key="bench",
        title="Water resilience",
        background="Droughts are spreading.",
        resolution="The European Parliament calls for a water fund.",
        topic="environment",
        term="9th",
    )
    groups = tuple(
        Group(code, f"{code} has a view on water.", real_choice=index % 10) for index, code in enumerate(SEATS)
    )
    return Scenario(record=record, groups=groups, seats=SEATS, goal="simple_majority")


def strategy_events(name: str) -> list[dict]:
    judge = RealVotesJudge() if name == "real-resolution" else ScriptedJudge()
    ctx = RunContext(model=ScriptedModelClient(), judge=judge, seed=7)
    return list(STRATEGIES[name].run(scenario(), ctx))


def per_event_us(events: list[dict], repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            for event in events:
                event_validate(event)
        best = min(best, time.perf_counter() - start)
    return best / repeat / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    runs = {name: strategy_events(name) for name in STRATEGIES}
    by_type: dict[str, list[dict]] = defaultdict(list)
    for events in runs.values():
        for event in events:
            by_type[event["type"]].append(event)
    every = [event for events in runs.values() for event in events]
    result = {
        "python": platform.python_version(),
        "repeat": args.repeat,
        "load_average_1min": round(os.getloadavg()[0], 2),  # a shared machine inflates every figure
        "us_per_event": round(per_event_us(every, args.repeat), 2),
        "by_type_us": {type_: round(per_event_us(events, args.repeat), 2) for type_, events in sorted(by_type.items())},
        "per_run": {
            name: {"events": len(events), "us": round(per_event_us(events, args.repeat) * len(events), 1)}
            for name, events in runs.items()
        },
    }
    result["median_type_us"] = round(statistics.median(result["by_type_us"].values()), 2)
    out = REPO / "bench" / "results" / "event_validate.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
