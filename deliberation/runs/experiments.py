"""Experiments (writes): create a grid of runs, start it, pause, resume, cancel it.

Cells. The grid is resolved once, at creation: the benchmark tasks (or saved scenarios) are stored
by id in the spec, so the cells of an experiment never change. A cell's key names its source,
goal, strategy, model, judge and seed ("task:12|simple_majority|one-shot|scripted:default|llm|0");
Run.experiment + Run.cell is unique, so no cell is played twice, however often the experiment is
started, resumed or topped up.

Fan-out. Runs are created lazily: `experiment_advance` (the body of experiment_advance_task) tops
up the runs in flight, per model, to the model's concurrency in the registry (a model without one:
per backend, to the bound in HEMICYCLE_MODEL_CONCURRENCY), and every
run of an experiment that settles (finished, failed, stopped) tops up again at the end of
run_advance, in the worker that played it (no hop through the broker between one run and the
next; if that top-up fails, the task is enqueued instead). The Celery workers do the work; the
bound only decides how many run tasks are on the queues at once. Celery's own rate limits do not
fit: they bound starts per time unit and per worker, not runs in flight per backend across all
workers. The top-up locks the running experiments' rows, so two top-ups never both fill the
same free slot.

Cap. An experiment's `call_cap` bounds its uncached model steps (engine/costs.py says what a step
is; the run events record each step's usage and whether the cache answered it). A run starts only
if the steps already spent by settled runs, plus the estimate of every run in flight, plus its
own estimate fit under the cap; when nothing is in flight and no remaining cell fits, the
experiment ends `capped`. Runs are never cut in the middle, and a cached re-run spends nothing.
The owner's daily budget (runs/budgets.py) bounds the runs started the same way, over all of
their runs; an experiment created without a cap gets the owner's default cap.
"""

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import islice

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, Q
from django.utils import timezone

from deliberation.calibration.services import CalibrationError
from deliberation.engine.goals import GOAL_KEYS
from deliberation.engine.seeding import seed_for
from deliberation.engine.strategies import STRATEGIES, run_cost
from deliberation.engine.strategies.base import model_params_of
from deliberation.errors import Forbidden, Invalid
from deliberation.live.fanout import broadcast_experiment_progress
from deliberation.records.models import BenchmarkTask, RecordSet, RecordSetVersion
from deliberation.records.selectors import (
    benchmark_task_list,
    record_set_get,
    record_version_for_run,
    stances_with_groups,
)
from deliberation.registry.clients import judge_name_check, judges_using_model, strategy_model_check
from deliberation.registry.selectors import ModelRefused, model_bounds, model_check
from deliberation.runs.budgets import budget_for, budget_lock, spending_for
from deliberation.runs.calibration_cells import (
    calibration_cells,
    calibration_grid,
    experiment_calibrations_in_flight,
    experiment_calibrations_start,
)
from deliberation.runs.models import Experiment, Run
from deliberation.runs.selectors import TaskReads, experiment_progress, experiment_steps_by_run
from deliberation.scenarios.models import SavedScenario
from deliberation.scenarios.services import ScenarioConfig
from worker.enqueue import task_enqueue

logger = logging.getLogger(__name__)

IN_FLIGHT = (Run.Status.QUEUED, Run.Status.RUNNING)
SETTLED = (Run.Status.FINISHED, Run.Status.FAILED, Run.Status.STOPPED)
# Cells whose run was interrupted (the experiment was paused or cancelled): started again on resume.
INTERRUPTED = (Run.Status.PAUSED, Run.Status.STOPPED)


class ExperimentError(Invalid, ValueError):
    """The grid or the action is not valid; the message says which field and why."""


@dataclass(frozen=True)
class Cell:
    source: str  # "task:<id>" or "scenario:<id>"
    goal: str
    strategy: str
    model: str
    judge: str
    seed: int

    @property
    def key(self) -> str:
        return "|".join((self.source, self.goal, self.strategy, self.model, self.judge, str(self.seed)))


def experiment_cells(spec: dict) -> list[Cell]:
    """Every cell of the grid, in a fixed order (seeds outermost, so early results span the grid)."""
    kind = spec["source"]["kind"]
    return [
        Cell(f"{kind}:{source_id}", goal, strategy, model, judge, seed)
        for seed in spec["seeds"]
        for source_id in spec["source"]["ids"]
        for goal in spec["goals"]
        for strategy in spec["strategies"]
        for model in spec["models"]
        for judge in spec["judges"]
    ]


def cell_steps(cell: Cell, spec: dict, *, model_judges: frozenset[str]) -> int:
    """The estimated model steps of a cell's run; `model_judges`: judges_using_model(spec's judges),
    read once by the caller for all its cells (a calibrated judge's is a row)."""
    party_count = spec["source"]["party_counts"][cell.source.split(":")[1]]
    return run_cost(
        strategy=cell.strategy,
        party_count=party_count,
        judge_uses_model=cell.judge in model_judges,
        params=spec["params"].get(cell.strategy, {}),
    ).steps


def experiment_estimate(spec: dict) -> dict:
    """Runs, model steps and completion tokens per strategy and in all (engine/costs.py)."""
    per_strategy = {strategy: {"runs": 0, "steps": 0, "completion_tokens": 0} for strategy in spec["strategies"]}
    model_judges = judges_using_model(spec["judges"])
    for cell in experiment_cells(spec):
        party_count = spec["source"]["party_counts"][cell.source.split(":")[1]]
        cost = run_cost(
            strategy=cell.strategy,
            party_count=party_count,
            judge_uses_model=cell.judge in model_judges,
            params=spec["params"].get(cell.strategy, {}),
        )
        row = per_strategy[cell.strategy]
        row["runs"] += 1
        row["steps"] += cost.steps
        row["completion_tokens"] += cost.completion_tokens
    return {
        "runs": sum(row["runs"] for row in per_strategy.values()),
        "steps": sum(row["steps"] for row in per_strategy.values()),
        "completion_tokens": sum(row["completion_tokens"] for row in per_strategy.values()),
        "per_strategy": per_strategy,
    }


def _choices(name: str, values: Sequence, allowed: Sequence[str] | None = None) -> list:
    values = list(dict.fromkeys(values))
    if not values:
        raise ExperimentError(f"{name}: choose at least one")
    if allowed is not None:
        unknown = [value for value in values if value not in allowed]
        if unknown:
            raise ExperimentError(f"{name}: unknown {', '.join(map(str, unknown))}; choose from {', '.join(allowed)}")
    return values


def tasks_sample(tasks: Sequence[BenchmarkTask], *, size: int, seed: int) -> list[BenchmarkTask]:
    """A seeded sample that takes the party counts in turn, so that every requested count is
    played when the sample has room for it (a plain sample of two could draw two 4-party tasks
    and leave the dashboard's 2-party column empty)."""
    rng = random.Random(seed)
    by_count: dict[int, list[BenchmarkTask]] = {}
    for task in tasks:
        by_count.setdefault(task.party_count, []).append(task)
    pools = [rng.sample(group, len(group)) for _, group in sorted(by_count.items())]
    picked: list[BenchmarkTask] = []
    while len(picked) < size and any(pools):
        for pool in pools:
            if pool and len(picked) < size:
                picked.append(pool.pop())
    return sorted(picked, key=lambda task: (task.party_count, task.pk))


def _task_source(
    *,
    record_set: str,
    topic: str | None,
    parties: Sequence[int],
    limit: int | None,
    sample: int | None,
    sample_seed: int,
    tasks_needed: bool = True,
) -> dict:
    try:
        the_set = record_set_get(name=record_set)
    except RecordSet.DoesNotExist as error:  # its message names the known sets
        raise ExperimentError(f"record_set: {error}") from None
    if limit is not None and limit < 1:
        raise ExperimentError("limit: at least one task per party count")
    tasks = benchmark_task_list(record_set=the_set, party_counts=parties, topic=topic, limit=limit)
    if sample is not None:
        if sample < 1:
            raise ExperimentError("sample: at least one task")
        tasks = tasks_sample(tasks, size=sample, seed=sample_seed)
    if not tasks and tasks_needed:
        raise ExperimentError("source: no benchmark task matches the record set, topic and party counts")
    return {
        "kind": "task",
        "record_set": record_set,
        "topic": topic,
        "parties": list(parties),
        "limit": limit,
        "sample": sample,
        "sample_seed": sample_seed,
        "ids": [task.pk for task in tasks],
        "party_counts": {str(task.pk): task.party_count for task in tasks},
    }


def _scenario_source(*, owner: AbstractBaseUser, scenario_ids: Sequence[int], goals: Sequence[str]) -> dict:
    scenarios = {s.pk: s for s in SavedScenario.objects.filter(owner=owner, pk__in=scenario_ids)}
    missing = [str(pk) for pk in scenario_ids if pk not in scenarios]
    if missing:
        raise ExperimentError(f"scenarios: none of yours has id {', '.join(missing)}")
    if "veto_power" in goals:
        without = [scenarios[pk].name for pk in scenario_ids if not scenarios[pk].veto_group]
        if without:
            raise ExperimentError(f"goals: veto power needs a veto group, and {', '.join(without)} names none")
    ids = list(dict.fromkeys(scenario_ids))
    return {"kind": "scenario", "ids": ids, "party_counts": {str(pk): len(scenarios[pk].groups) for pk in ids}}


@transaction.atomic
def experiment_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    goals: Sequence[str],
    strategies: Sequence[str],
    models: Sequence[str],
    judges: Sequence[str],
    seeds: Sequence[int],
    record_set: str | None = None,
    topic: str | None = None,
    parties: Sequence[int] = (2, 4, 6),
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
    scenario_ids: Sequence[int] = (),
    params: dict | None = None,
    call_cap: int | None = None,
    judge_model: str = "",
    allow_raw_models: bool = False,
    calibrate: bool = False,
    calibration_models: Sequence[str] = (),
    calibration_limit: int | None = None,
    calibration_seed: int = 0,
) -> Experiment:
    """Validate the grid, resolve its sources to ids, and store it with its estimate (a draft).
    Models are registry models the owner may use (`allow_raw_models`: the CLI, where staff may
    also name a backend string, checked as the registry's are). `limit`: the first N tasks per
    party count (`sample`: a seeded sample); `judge_model`: the model of the judges that use one
    (default: each cell's drafting model).

    `calibrate`: also calibration cells (runs/calibration_cells.py), every judge x each of
    `calibration_models` (default: the judge model, else the models) against the real votes of the
    record set's records (the topic's), at most `calibration_limit` pairs in `calibration_seed`'s
    order. With `calibrate`, no strategy makes an experiment of calibration cells alone."""
    if not name.strip():
        raise ExperimentError("name: give the experiment a name")
    if Experiment.objects.filter(owner=owner, name=name).exists():
        raise ExperimentError(f"name: you already have an experiment named {name!r}")
    goals = _choices("goals", goals, GOAL_KEYS)
    strategies = _choices("strategies", strategies, list(STRATEGIES)) if strategies or not calibrate else []
    models = _choices("models", [model.strip() for model in models])
    for model in models:
        try:
            model_check(name=model, user=owner, field="models", allow_raw=allow_raw_models)
        except ModelRefused as error:
            raise ExperimentError(str(error)) from None
    judge_model = judge_model.strip()
    if judge_model:
        try:
            model_check(name=judge_model, user=owner, field="judge_model", allow_raw=allow_raw_models)
        except ModelRefused as error:
            raise ExperimentError(str(error)) from None
    for strategy in strategies:
        for model in models:
            try:
                strategy_model_check(strategy=strategy, model=model, allow_raw=allow_raw_models)
            except ModelRefused as error:
                raise ExperimentError(f"models: {error.message}") from None
    judges = _choices("judges", judges)
    for judge in judges:
        try:
            judge_name_check(judge)  # calibrated:<id> of any calibration with a map, not only those the forms list
        except ValueError as error:
            raise ExperimentError(f"judges: {error}") from None
    seeds = _choices("seeds", [int(seed) for seed in seeds])
    if "real-votes" in judges and strategies and set(strategies) != {"real-resolution"}:
        raise ExperimentError(
            "judges: the real-votes judge only scores the adopted resolution (strategy real-resolution)"
        )
    if call_cap is None:
        call_cap = budget_for(user=owner).experiment_cap  # the owner's default cap, if any
    if call_cap is not None and call_cap < 0:
        raise ExperimentError("call_cap: zero or more model steps")
    params = {strategy: dict(values) for strategy, values in (params or {}).items() if strategy in strategies}
    for strategy in strategies:  # a further model a strategy names (advisor_model), checked as the models are
        for param in model_params_of(STRATEGIES[strategy]):
            further = str(params.get(strategy, {}).get(param) or "").strip()
            if further:
                try:
                    model_check(name=further, user=owner, field=param, allow_raw=allow_raw_models)
                except ModelRefused as error:
                    raise ExperimentError(f"params: {strategy} {error}") from None
    if (record_set is None) == (not scenario_ids):
        raise ExperimentError("source: choose either a record set's benchmark tasks or saved scenarios")
    if record_set is not None:
        source = _task_source(
            record_set=record_set,
            topic=topic,
            parties=parties,
            limit=limit,
            sample=sample,
            sample_seed=sample_seed,
            tasks_needed=bool(strategies),  # calibrations alone score records, not tasks
        )
    else:
        source = _scenario_source(owner=owner, scenario_ids=scenario_ids, goals=goals)
    spec = {
        "source": source,
        "goals": goals,
        "strategies": strategies,
        "models": models,
        "judges": judges,
        "seeds": seeds,
        "params": params,
        "judge_model": judge_model,
    }
    if calibrate:
        spec["calibration"] = _calibration_grid(
            owner=owner,
            judges=judges,
            models=calibration_models or ([judge_model] if judge_model else models),
            source=source,
            limit=calibration_limit,
            seed=calibration_seed,
            allow_raw_models=allow_raw_models,
        )
    try:
        estimate = experiment_estimate(spec)
    except ValueError as error:  # a strategy's parameters out of range
        raise ExperimentError(f"params: {error}") from None
    estimate["calibrations"] = len(calibration_cells(spec))
    return Experiment.objects.create(owner=owner, name=name, spec=spec, estimate=estimate, call_cap=call_cap)


def _calibration_grid(
    *,
    owner: AbstractBaseUser,
    judges: list[str],
    models: Sequence[str],
    source: dict,
    limit: int | None,
    seed: int,
    allow_raw_models: bool,
) -> dict:
    if source["kind"] != "task":
        raise ExperimentError("calibrate: calibrations score a record set's records: choose a record set")
    models = _choices("calibration_models", [model.strip() for model in models])
    for model in models:
        try:
            model_check(name=model, user=owner, field="calibration_models", allow_raw=allow_raw_models)
        except ModelRefused as error:
            raise ExperimentError(str(error)) from None
    try:
        return calibration_grid(
            owner=owner,
            judges=judges,
            judge_models=models,
            record_set=source["record_set"],
            topic=source["topic"],
            limit=limit,
            seed=seed,
        )
    except CalibrationError as error:
        raise ExperimentError(f"calibrate: {error}") from None


def model_concurrency_bucket(model: str) -> str:
    """The HEMICYCLE_MODEL_CONCURRENCY key a model string falls under: its longest matching
    prefix, else "*"."""
    prefixes = [prefix for prefix in settings.HEMICYCLE_MODEL_CONCURRENCY if prefix != "*" and model.startswith(prefix)]
    return max(prefixes, key=len) if prefixes else "*"


def _model_bound(bucket: str) -> int:
    limits = settings.HEMICYCLE_MODEL_CONCURRENCY
    return max(1, int(limits.get(bucket, limits.get("*", 1))))


class _Bounds:
    """Runs in flight per bucket against each bucket's bound: a registry model with its own
    concurrency is a bucket of its own; the others share HEMICYCLE_MODEL_CONCURRENCY's buckets."""

    def __init__(self, models, *, reads: TaskReads) -> None:
        names = frozenset(models)
        self.own = reads.get(("model_bounds", names), lambda: model_bounds(names=names))
        self.in_flight: Counter[str] = Counter()

    def bucket(self, model: str) -> str:
        return f"model:{model}" if model in self.own else model_concurrency_bucket(model)

    def full(self, model: str) -> bool:
        bucket = self.bucket(model)
        bound = self.own[model] if model in self.own else _model_bound(bucket)
        return self.in_flight[bucket] >= bound

    def add(self, model: str) -> None:
        self.in_flight[self.bucket(model)] += 1

    def all_full(self, models: Sequence[str]) -> bool:
        return all(self.full(model) for model in models)


TASKS_READ_AHEAD = 64  # benchmark tasks a top-up reads at once (each serves a cell per goal, strategy, ...)
TASKS_KEPT = 2048  # and keeps per experiment, with their records and stances


def _cell_config(
    cell: Cell, spec: dict, *, tasks: dict[int, BenchmarkTask] | None = None
) -> tuple[ScenarioConfig, BenchmarkTask | None]:
    """The cell's scenario and task (`tasks`: the ones read before, by id; a task never changes)."""
    kind, source_id = cell.source.split(":")
    params = spec["params"].get(cell.strategy, {})
    if kind == "task":
        task = (tasks or {}).get(int(source_id))
        if task is None:
            # With what playing its run reads (runs.steps), so that a run the top-up hands to its
            # task is played without reading it again, its record's stances included; and the
            # grid's next tasks with it (the cells take the tasks in the spec's order).
            wanted = [int(source_id)]
            if tasks is not None:
                ids = spec["source"]["ids"]
                at = ids.index(int(source_id))
                wanted += [i for i in ids[at + 1 : at + TASKS_READ_AHEAD] if i not in tasks]
            read = {
                row.pk: row
                for row in BenchmarkTask.objects.select_related("record__record_set__current_version", "topic")
                .prefetch_related(stances_with_groups("record__stances"))
                .filter(pk__in=wanted)
            }
            task = read.get(int(source_id))
            if task is None:
                raise BenchmarkTask.DoesNotExist(f"benchmark task {source_id} of cell {cell.key} is gone")
            if tasks is not None:
                tasks.update(read)
                for stale in list(islice(tasks, max(0, len(tasks) - TASKS_KEPT))):
                    del tasks[stale]  # bounded: the oldest read are the cells passed (seeds come round again)
        config = ScenarioConfig(
            record=task.record,
            groups=tuple(task.groups),
            seat_structure="custom",
            seats=dict(zip(task.groups, task.seat_weights)),
            goal=cell.goal,
            veto_group=task.veto_group,
            strategy=cell.strategy,
            model=cell.model,
            judge=cell.judge,
            judge_model=spec.get("judge_model", ""),
            # As `manage.py evaluate` seeds a task: the two share the completion cache.
            seed=seed_for(cell.seed, task.content_hash),
            params=params,
        )
        return config, task
    scenario = SavedScenario.objects.select_related("record__record_set__current_version").get(pk=int(source_id))
    config = ScenarioConfig(
        record=scenario.record,
        groups=tuple(scenario.groups),
        seat_structure=scenario.seat_structure,
        seats=dict(scenario.seats),
        goal=cell.goal,
        veto_group=scenario.veto_group,
        strategy=cell.strategy,
        model=cell.model,
        judge=cell.judge,
        judge_model=spec.get("judge_model", ""),
        seed=cell.seed,
        params=params,
    )
    return config, None


def _enqueue_run(run_id: int) -> None:
    from deliberation.runs import services

    services.run_enqueue(run_id)  # looked up at call time: tests replace it


def _enqueue_advance(experiment_id: int) -> None:
    task_enqueue("deliberation.runs.tasks.experiment_advance_task", experiment_id=experiment_id, queue="runs")


def experiment_advance(*, experiment_id: int) -> list[int]:
    """Start runs for the cells not yet played, up to the bound per model backend and within the
    cap; finish the experiment when every cell is settled. Returns the runs it started."""
    return _advance(experiment_id=experiment_id, hold_for=None, reads=TaskReads())[0]


@dataclass
class _Seen:
    """What this process's top-ups of one experiment have read: the grid's cells in order, the run
    of each cell that has one, the highest run id read, and the first cell that may lack a run
    (every cell before it has one that was not interrupted)."""

    spec: dict  # the experiment's grid (it never changes after creation)
    cells: list[Cell]
    index: dict[str, int]
    runs: dict[str, tuple[int, str]]  # cell key -> (run id, status as last read)
    last_pk: int = 0
    first_open: int = 0
    # What a new run of a cell needs, read once: its benchmark task (with its record; a task
    # never changes) and the record set version of each record (runs.services.run_create).
    tasks: dict[int, BenchmarkTask] = field(default_factory=dict)
    versions: dict[int, RecordSetVersion | None] = field(default_factory=dict)


# A top-up per settled run used to read every run of its experiment and rebuild the whole grid:
# its cost grew with the experiment (the largest part of a cached run's harness CPU at a few
# hundred runs; quadratic over a 100,000-run experiment). Now it reads only the runs that are new
# (an id above any read) or may still change (in flight, interrupted): top-ups hold the
# experiments' locks and only top-ups create an experiment's runs, so a run is either new or was
# read, and a status read as anything else (settled) does not come back. A run read in flight and
# settled since keeps its old status here, which the top-up treats alike (the cell has its run).
# Keyed by id and creation time (a database that was emptied reuses ids); bounded.
_seen: dict[tuple, _Seen] = {}
_seen_lock = threading.Lock()
SEEN_EXPERIMENTS_KEPT = 8


def _advance(*, experiment_id: int, hold_for: str | None, reads: TaskReads) -> tuple[list[int], Run | int | None]:
    """experiment_advance; hold_for: a queue, and the top-up starts one run (in the slot the
    calling task's run freed), which if for that queue is not enqueued but returned second, for
    the task to play (experiment_run_settled): the Run as created here, or the id of an
    interrupted run queued again. reads: the registry's and budget
    reads of the calling task's earlier runs; it learns the running experiments, as read here."""
    from deliberation.runs.services import run_create, run_queue

    with transaction.atomic():
        # All running experiments share the bounds: take their locks in one order, so that top-ups
        # run one at a time and none fills a slot another has just filled.
        # The top-up holds these locks for every statement it makes: each one counts, so the lock
        # also reads this experiment, and one query reads its runs and every run in flight.
        running = list(
            Experiment.objects.select_for_update(of=("self",))
            .select_related("owner")
            .defer("spec", "estimate")  # the grid never changes: read once per process (_Seen)
            .filter(status=Experiment.Status.RUNNING)
            .order_by("pk")
        )
        reads.running_experiments = [row.pk for row in running]
        experiment = next((row for row in running if row.pk == experiment_id), None)
        if experiment is None:
            return [], None
        flying: list[str] = []  # the model of each run in flight, over all experiments
        # Under a call cap every run's spending counts: read them all, keep nothing.
        key = (experiment.pk, experiment.created_at)
        with _seen_lock:
            seen = _seen.get(key) if experiment.call_cap is None else None
        if seen is None:
            spec = experiment.spec
            cells = experiment_cells(spec)
            seen = _Seen(spec=spec, cells=cells, index={cell.key: i for i, cell in enumerate(cells)}, runs={})
            mine = Q(experiment_id=experiment.pk)
        else:
            spec = seen.spec
            # Each alternative searchable by an index alone (SQLite read all of the experiment's
            # runs for "experiment and (new or open)": a top-up per run made that quadratic).
            mine = Q(experiment_id=experiment.pk, pk__gt=seen.last_pk) | Q(
                experiment_id=experiment.pk, status__in=IN_FLIGHT + INTERRUPTED
            )
        rows = (
            Run.objects.filter(mine | Q(experiment__isnull=False, status__in=IN_FLIGHT))
            .order_by()
            .values_list("experiment_id", "cell", "pk", "status", "model")
        )
        for run_experiment, cell_key, run_id, status, model in rows:
            if run_experiment == experiment.pk:
                seen.runs[cell_key] = (run_id, status)  # tuples, not model instances
                seen.last_pk = max(seen.last_pk, run_id)
                if status in INTERRUPTED:
                    seen.first_open = min(seen.first_open, seen.index.get(cell_key, 0))
            if status in IN_FLIGHT:
                flying.append(model)
        if experiment.call_cap is None:
            with _seen_lock:
                _seen[key] = _seen.pop(key, seen)
                while len(_seen) > SEEN_EXPERIMENTS_KEPT:
                    del _seen[next(iter(_seen))]
        cells, runs = seen.cells, seen.runs
        while (
            seen.first_open < len(cells)
            and (run := runs.get(cells[seen.first_open].key)) is not None
            and run[1] not in INTERRUPTED
        ):
            seen.first_open += 1
        bounds = _Bounds({*flying, *spec["models"]}, reads=reads)
        grid_models = spec["models"]
        for model in flying:
            bounds.add(model)
        budget = reads.get(("budget", experiment.owner_id), lambda: budget_for(user=experiment.owner))
        spending = None
        if budget.limited:  # under the owner's lock, as a run started alone is (budget_lock)
            budget_lock(user=experiment.owner)
            spending = spending_for(user=experiment.owner, budget=budget)
        budgeted = 0  # the estimated steps of the runs this top-up starts (the budget counts them)
        committed = 0
        if experiment.call_cap is not None or spending is not None:
            model_judges = judges_using_model(spec["judges"])
        if experiment.call_cap is not None:
            spent = experiment_steps_by_run(experiment_id=experiment.pk)
            by_key = {cell.key: cell for cell in cells}
            for cell_key, (run_id, status) in runs.items():
                active = status in IN_FLIGHT
                committed += (
                    cell_steps(by_key[cell_key], spec, model_judges=model_judges) if active else spent.get(run_id, 0)
                )
        started: list[int] = []
        requeued: dict[str, tuple[int, str]] = {}  # for `seen`, once this transaction commits
        held = None
        pending = capped = False
        for position in range(seen.first_open, len(cells)):
            cell = cells[position]
            run = runs.get(cell.key)
            if run is not None and run[1] not in INTERRUPTED:
                continue
            pending = True
            if bounds.full(cell.model):
                if bounds.all_full(grid_models):
                    break  # nothing more can start: the rest of the grid waits (was a walk to its end)
                continue
            if experiment.call_cap is not None:
                cost = cell_steps(cell, spec, model_judges=model_judges)
                if committed + cost > experiment.call_cap:
                    capped = True
                    continue
                committed += cost
            if spending is not None:
                cost = cell_steps(cell, spec, model_judges=model_judges)
                if spending.refusal(steps=budgeted + cost):
                    capped = True
                    continue
                budgeted += cost
            hold = held is None and hold_for is not None and run_queue(cell.model) == hold_for
            if run is None:
                config, task = _cell_config(cell, spec, tasks=seen.tasks)
                record = config.record
                if record.pk not in seen.versions:
                    seen.versions[record.pk] = record_version_for_run(record=record)
                created = run_create(
                    owner=experiment.owner,
                    config=config,
                    experiment=experiment,
                    cell=cell.key,
                    task=task,
                    enqueue=not hold,
                    record_version=seen.versions[record.pk],
                    claimed=hold,
                )
                run_id = created.pk
            else:
                run_id = run[0]
                Run.objects.filter(pk=run_id).update(
                    status=Run.Status.QUEUED,
                    attempts=0,
                    finished_at=None,
                    error="",
                    heartbeat_at=timezone.now() if hold else None,  # held by this task, or waiting (runs.recovery)
                )
                requeued[cell.key] = (run_id, Run.Status.QUEUED)
                if not hold:
                    transaction.on_commit(partial(_enqueue_run, run_id))
            if hold:
                held = created if run is None else run_id
            bounds.add(cell.model)
            started.append(run_id)
            if hold_for is not None:
                # A task's top-up takes the slot its run freed, and only that: a slot another run
                # freed is its own task's to take, whose top-up follows that run's end. Filling it
                # here ended that task's chain and sent its next run through the queue (a Celery
                # hop and a read of the run: about a fifth of a cached run's CPU at 32 in flight).
                break
        # The end: nothing left to start (or nothing fits the cap) and nothing in flight, asked
        # again here only when it could be the end (runs may have settled since they were read).
        if (
            (not pending or capped)
            and not started
            and not experiment.runs.filter(status__in=IN_FLIGHT).exists()
            and not experiment_calibrations_in_flight(experiment_id=experiment.pk)  # they top up as they settle
        ):
            experiment.status = Experiment.Status.CAPPED if pending else Experiment.Status.FINISHED
            experiment.finished_at = timezone.now()
            experiment.save(update_fields=["status", "finished_at"])
    runs.update(requeued)  # an interrupted run started again is no longer interrupted
    _announce_progress(experiment)  # read under the lock, and saved here if it changed
    return started, held


def _announce(experiment: Experiment, *, refresh: bool = True) -> None:
    """Push the experiment's progress to its owner's open pages (live/fanout.py)."""
    if refresh:
        experiment.refresh_from_db()
    broadcast_experiment_progress(experiment_id=experiment.pk, progress=experiment_progress(experiment=experiment))


# A top-up (one per settling run) pushes the progress at most this often per experiment and
# worker process: the aggregate behind it grows with the experiment (about 50 ms at 100,000 runs)
# and, for cached runs that settle in milliseconds, was a tenth of a run's harness time. A change
# of status always goes out, and a page that hears nothing for 30 s asks (experiment_live.js).
PROGRESS_INTERVAL_S = 0.5
_progress_sent: dict[int, tuple[float, str]] = {}  # experiment id -> (monotonic time, status)


def _announce_progress(experiment: Experiment) -> None:
    now = time.monotonic()
    last = _progress_sent.get(experiment.pk)
    if last is not None and last[1] == experiment.status and now - last[0] < PROGRESS_INTERVAL_S:
        return
    _progress_sent[experiment.pk] = (now, experiment.status)
    _announce(experiment, refresh=False)


def experiment_run_settled(
    *, run_id: int, play_next_on: str | None = None, reads: TaskReads | None = None, settled_in: int | None = None
) -> Run | int | None:
    """A run stopped stepping (run_advance's last word): if it belongs to an experiment and has
    settled, its slot is free, so every running experiment tops up (they share the bounds), here
    in the worker that played the run; a top-up that fails is left to the task (and the sweep).

    play_next_on: the queue of the task calling (its run finished: runs.advance's chain); the first
    run the top-ups start for that queue is not enqueued but returned, for the task to play.
    Should this worker die while playing it, beat's reclaim queues it again as any run whose worker
    was lost (the task's heartbeat holds each run of its chain); one not taken yet waits for
    runs_requeue_stuck (the sweep). The run comes back as created (a Run) or as the id of an
    interrupted run queued again.
    reads: the calling task's registry and budget reads (runs.selectors.TaskReads). settled_in:
    the run's experiment when the caller knows the run settled (it finished it); the running
    experiments are then those the task's last top-up read under its lock, milliseconds ago (one
    started since tops up by its start, and at the next settled run), and nothing is asked."""
    reads = reads or TaskReads()
    if settled_in is not None and reads.running_experiments is not None:
        running = list(reads.running_experiments)
    else:
        settled = Exists(Run.objects.filter(pk=run_id, experiment__isnull=False, status__in=SETTLED))
        running = (
            Experiment.objects.filter(settled, status=Experiment.Status.RUNNING)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    held = None
    for experiment_id in running:
        if held is None and play_next_on is not None and not transaction.get_connection().in_atomic_block:
            held = _top_up(experiment_id, hold_for=play_next_on, reads=reads)
        else:
            transaction.on_commit(partial(_top_up, experiment_id))
    return held


def _top_up(experiment_id: int, *, hold_for: str | None = None, reads: TaskReads | None = None) -> Run | int | None:
    try:
        if hold_for is None:
            experiment_advance(experiment_id=experiment_id)
            return None
        return _advance(experiment_id=experiment_id, hold_for=hold_for, reads=reads or TaskReads())[1]
    except Exception:  # noqa: BLE001 - the run itself is done; the task tries the top-up again
        logger.exception("experiment %s: top-up after a settled run failed; enqueued instead", experiment_id)
        _enqueue_advance(experiment_id)
        return None


def _require_owner(experiment: Experiment, user: AbstractBaseUser) -> None:
    if experiment.owner_id != user.pk:
        raise Forbidden("only the experiment's owner can control it")


def experiment_start(*, experiment: Experiment, user: AbstractBaseUser) -> list[int]:
    """Start a draft, resume a paused, cancelled or capped experiment, or top up a running one
    (after a crash). Settled runs are kept: only cells without a finished or failed run are played."""
    _require_owner(experiment, user)
    with transaction.atomic():
        updated = (
            Experiment.objects.filter(pk=experiment.pk)
            .exclude(status=Experiment.Status.FINISHED)
            .update(
                status=Experiment.Status.RUNNING, started_at=experiment.started_at or timezone.now(), finished_at=None
            )
        )
        if not updated:
            raise ExperimentError("the experiment has finished: every cell has its run")
        experiment_calibrations_start(experiment=experiment)
    started = experiment_advance(experiment_id=experiment.pk)
    experiment.refresh_from_db()
    return started


def experiment_pause(*, experiment: Experiment, user: AbstractBaseUser) -> None:
    """No new runs start; runs in flight pause at their next step and resume with the experiment."""
    _require_owner(experiment, user)
    with transaction.atomic():
        if not Experiment.objects.filter(pk=experiment.pk, status=Experiment.Status.RUNNING).update(
            status=Experiment.Status.PAUSED
        ):
            raise ExperimentError(f"a {experiment.status} experiment cannot be paused")
        experiment.runs.filter(status__in=IN_FLIGHT).update(status=Run.Status.PAUSED)
        transaction.on_commit(experiments_nudge)  # its slots are free: the others may fill them
    _announce(experiment)


def experiment_resume(*, experiment: Experiment, user: AbstractBaseUser) -> list[int]:
    if experiment.status != Experiment.Status.PAUSED:
        raise ExperimentError(f"a {experiment.status} experiment cannot be resumed")
    return experiment_start(experiment=experiment, user=user)


def experiment_cancel(*, experiment: Experiment, user: AbstractBaseUser) -> None:
    """No new runs start and the runs in flight or paused stop (run_stop writes their event)."""
    from deliberation.runs.services import RunControlError, run_stop

    _require_owner(experiment, user)
    with transaction.atomic():
        if not Experiment.objects.filter(
            pk=experiment.pk, status__in=[Experiment.Status.RUNNING, Experiment.Status.PAUSED, Experiment.Status.DRAFT]
        ).update(status=Experiment.Status.CANCELLED, finished_at=timezone.now()):
            raise ExperimentError(f"a {experiment.status} experiment cannot be cancelled")
    for run in experiment.runs.filter(status__in=[*IN_FLIGHT, Run.Status.PAUSED]):
        try:
            run_stop(run=run, user=user)
        except RunControlError:
            pass  # it settled meanwhile
    # Its slots are free now: the other experiments waiting on the same models fill them at once,
    # not when a worker gets round to the stopped runs' tasks (queued behind others).
    transaction.on_commit(experiments_nudge)
    _announce(experiment)


def experiments_nudge() -> list[int]:
    """Enqueue a top-up of every running experiment: slots were freed (an experiment paused or
    cancelled), and the sweep's and a restart's safety net."""
    ids = list(Experiment.objects.filter(status=Experiment.Status.RUNNING).values_list("pk", flat=True))
    for experiment_id in ids:
        _enqueue_advance(experiment_id)
    return ids
