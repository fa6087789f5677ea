"""The PoliCon benchmark from the command line: every task of a record set under every goal.

As in the paper, each (task, goal) pair is its own drafting run; the table reports pass rates for
the three voting goals and mean scores for the Rawlsian and utilitarian goals, per party count.

The runs are an experiment's, played the one way many runs are played (runs/play.py: the
experiment's top-ups start them, the run tasks play them through run_advance; with no broker this
process is the worker). So an evaluation is stored like any experiment: its runs can be opened,
exported and compared on the dashboards, and its cells share the completion cache with
experiments over the same tasks and seeds.
"""

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from deliberation.engine.goals import GOAL_KEYS, GOALS
from deliberation.engine.strategies import strategy_named
from deliberation.engine.strategies.base import usage_totals
from deliberation.errors import Invalid
from deliberation.runs.experiments import ExperimentError, experiment_create
from deliberation.runs.models import Experiment, Run, RunEvent
from deliberation.runs.play import experiment_play

# The owner of the evaluations' experiments: staff, as the operator's shell is, so that a backend
# model string outside the registry is accepted (checked as the registry checks its entries); it
# has no usable password, so nobody signs in as it.
EVALUATE_OWNER = "evaluate"
USAGE_CHUNK = 2000  # events read at a time for the usage totals


class BenchmarkError(Invalid, ValueError):
    """The requested evaluation cannot run (bad combination of options); nothing was run."""


@dataclass
class BenchmarkResult:
    table: dict[str, dict[str, float | int]]  # "2" -> {goal: rate or mean, "tasks": n}
    runs: int
    failures: list[str] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    experiment: str = ""  # the name of the experiment holding the runs

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
        lines.append("(pass rates for the voting goals, mean 0..9 scores for Rawlsian and utilitarian)")
        return "\n".join(lines)


def benchmark_owner() -> AbstractBaseUser:
    user, created = get_user_model().objects.get_or_create(username=EVALUATE_OWNER, defaults={"is_staff": True})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def benchmark_experiment_create(
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
) -> Experiment:
    """The evaluation as an experiment (a draft): the record set's tasks (`limit` per party count)
    times the goals, for one strategy, model, judge and seed."""
    unknown = [goal for goal in goals if goal not in GOALS]
    if unknown:
        raise BenchmarkError(f"unknown goal(s) {', '.join(unknown)}; choose from {', '.join(GOAL_KEYS)} or all")
    try:
        strategy_named(strategy)
    except ValueError as error:
        raise BenchmarkError(str(error)) from None
    if judge == "real-votes" and strategy != "real-resolution":
        raise BenchmarkError("the real-votes judge only scores the adopted resolution: use --strategy real-resolution")
    try:
        return experiment_create(
            owner=benchmark_owner(),
            name=f"evaluate {strategy} on {record_set} at {timezone.now().isoformat(timespec='microseconds')}",
            record_set=record_set,
            topic=topic,
            parties=party_counts,
            limit=limit,
            goals=goals,
            strategies=[strategy],
            models=[model],
            judges=[judge],
            judge_model=judge_model or "",
            seeds=[seed],
            params={strategy: dict(params or {})},
            allow_raw_models=True,
        )
    except ExperimentError as error:
        raise BenchmarkError(str(error)) from None


def benchmark_table(*, experiment: Experiment, seconds: float = 0.0) -> BenchmarkResult:
    """The paper's table from an evaluation's runs: per party count, each goal's pass rate or mean
    score over the finished runs, and the tasks played; failed runs listed with their reason."""
    spec = experiment.spec
    goals = spec["goals"]
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    task_ids: dict[str, set[int]] = defaultdict(set)
    failures: list[str] = []
    rows = experiment.runs.order_by("pk").values_list(
        "task_id", "task__party_count", "goal", "status", "outcome", "error"
    )
    runs = 0
    for task_id, party_count, goal, status, outcome, error in rows:
        runs += 1
        key = str(party_count)
        task_ids[key].add(task_id)
        if status != Run.Status.FINISHED:
            failures.append(f"task {task_id} ({goal}): {error or status}")
            continue
        values[key][goal].append(float(outcome["goals"][goal]))
    table: dict[str, dict[str, float | int]] = {}
    for count in spec["source"]["parties"]:
        key = str(count)
        row: dict[str, float | int] = {}
        for goal in goals:
            samples = values[key][goal]
            row[goal] = round(math.fsum(samples) / len(samples), 4) if samples else None
        row["tasks"] = len(task_ids[key])
        table[key] = row
    usage = _usage(experiment.runs.filter(status=Run.Status.FINISHED))
    return BenchmarkResult(
        table=table, runs=runs, failures=failures, usage=usage, seconds=seconds, experiment=experiment.name
    )


def _usage(runs: QuerySet[Run]) -> dict[str, float]:
    """Tokens, uncached model seconds and model calls (the cache's answers too) over the runs'
    events, read a chunk at a time."""
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0, "calls": 0}
    events = (
        {"data": data}
        for data in RunEvent.objects.filter(run__in=runs, data__has_key="usage")
        .values_list("data", flat=True)
        .iterator(chunk_size=USAGE_CHUNK)
    )
    while chunk := list(islice(events, USAGE_CHUNK)):
        for name, amount in usage_totals(chunk).items():
            totals[name] += amount
    return totals


def benchmark_evaluate(
    *,
    play: Callable[[Experiment], dict] = lambda experiment: experiment_play(experiment=experiment),
    **options: Any,
) -> BenchmarkResult:
    """Create the evaluation's experiment (benchmark_experiment_create's options), play it
    (`play`: runs/play.py's way, or the command's with a progress bar) and read its table."""
    started = time.perf_counter()
    experiment = benchmark_experiment_create(**options)
    play(experiment)
    return benchmark_table(experiment=experiment, seconds=time.perf_counter() - started)
