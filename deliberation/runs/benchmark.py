"""The PoliCon benchmark from the command line: every task of a record set under every goal.

As in the paper, each (task, goal) pair is its own drafting run; the table reports pass rates for
the three voting goals and mean scores for the Rawlsian and utilitarian goals, per party count.
"""

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections

from deliberation.engine.goals import GOAL_KEYS, GOALS
from deliberation.engine.models import ModelError
from deliberation.engine.outcome import Outcome
from deliberation.engine.seeding import seed_for
from deliberation.engine.strategies import RunContext, outcome_of, strategy_named
from deliberation.engine.strategies.base import model_params_of, usage_totals
from deliberation.records.models import BenchmarkTask
from deliberation.records.selectors import (
    benchmark_task_list,
    example_pool,
    record_set_get,
    task_scenario,
)
from deliberation.runs.clients import drafting_client, judge_for


class BenchmarkError(ValueError):
    """The requested evaluation cannot run (bad combination of options); nothing was run."""


@dataclass
class BenchmarkResult:
    table: dict[str, dict[str, float | int]]  # "2" -> {goal: rate or mean, "tasks": n}
    runs: int
    failures: list[str] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def render(self) -> str:
        counts = list(self.table)
        width = 22
        lines = ["goal".ljust(width) + "".join(f"{k + ' parties':>14}" for k in counts)]
        for goal in GOAL_KEYS:
            if not any(goal in self.table[k] for k in counts):
                continue
            cells = []
            for k in counts:
                value = self.table[k].get(goal)
                cells.append(f"{'-':>14}" if value is None else f"{value:>14.2f}")
            lines.append(GOALS[goal].label.ljust(width) + "".join(cells))
        lines.append("tasks".ljust(width) + "".join(f"{self.table[k]['tasks']:>14}" for k in counts))
        lines.append(
            "(pass rates for the voting goals, mean 0..9 scores for Rawlsian and utilitarian)"
        )
        return "\n".join(lines)


def benchmark_evaluate(
    *,
    record_set: str,
    party_counts: Sequence[int],
    goals: Sequence[str],
    strategy: str,
    model: str,
    judge: str,
    judge_model: str | None = None,
    topic: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    concurrency: int = 1,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> BenchmarkResult:
    started = time.perf_counter()
    unknown = [goal for goal in goals if goal not in GOALS]
    if unknown:
        raise BenchmarkError(f"unknown goal(s) {', '.join(unknown)}; choose from {', '.join(GOAL_KEYS)} or all")
    try:
        chosen = strategy_named(strategy)
    except ValueError as error:
        raise BenchmarkError(str(error)) from None
    if judge == "real-votes" and strategy != "real-resolution":
        raise BenchmarkError(
            "the real-votes judge only scores the adopted resolution: use --strategy real-resolution"
        )
    the_set = record_set_get(name=record_set)
    # The command checked the names (a registry model, or a raw backend string it validated).
    params = dict(params or {})
    try:
        drafter = drafting_client(model, allow_raw=True) if chosen.needs_model else None
        models = {param: drafting_client(str(params[param]), allow_raw=True)
                  for param in model_params_of(chosen) if params.get(param)}
        the_judge = judge_for(judge, model=judge_model or model, allow_raw=True)
    except (ModelError, ValueError) as error:
        raise BenchmarkError(str(error)) from None
    examples = example_pool(record_set=the_set) if strategy == "one-shot" else []

    tasks = benchmark_task_list(
        record_set=the_set, party_counts=party_counts, topic=topic, limit=limit
    )
    jobs = [(task, goal) for task in tasks for goal in goals]
    if on_total:
        on_total(len(jobs))

    def play(job: tuple[BenchmarkTask, str]) -> tuple[BenchmarkTask, str, Outcome | None, dict, str]:
        task, goal = job
        try:
            scenario = task_scenario(task, goal=goal)
            context = RunContext(
                model=drafter,
                judge=the_judge,
                seed=seed_for(seed, task.content_hash),
                params=params,
                models=models,
                examples=examples,
            )
            events = list(chosen.run(scenario, context))
            return task, goal, outcome_of(events), usage_totals(events), ""
        except (ModelError, ValueError) as error:
            return task, goal, None, {}, f"task {task.pk} ({goal}): {error}"
        finally:
            if concurrency > 1:
                close_old_connections()

    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    task_ids: dict[str, set[int]] = defaultdict(set)
    failures: list[str] = []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0, "calls": 0}

    def collect(result) -> None:
        task, goal, outcome, run_usage, failure = result
        key = str(task.party_count)
        task_ids[key].add(task.pk)
        if failure:
            failures.append(failure)
        else:
            values[key][goal].append(float(outcome.goals[goal]))
            for name, amount in run_usage.items():
                usage[name] += amount
        if progress:
            progress(1)

    if concurrency > 1:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for result in pool.map(play, jobs):
                collect(result)
    else:
        for job in jobs:
            collect(play(job))

    table: dict[str, dict[str, float | int]] = {}
    for count in party_counts:
        key = str(count)
        row: dict[str, float | int] = {}
        for goal in goals:
            samples = values[key][goal]
            row[goal] = round(math.fsum(samples) / len(samples), 4) if samples else None
        row["tasks"] = len(task_ids[key])
        table[key] = row
    return BenchmarkResult(
        table=table,
        runs=len(jobs),
        failures=failures,
        usage=usage,
        seconds=time.perf_counter() - started,
    )
