"""Reads behind the experiment dashboards: the paper's table and its breakdowns.

Every mean, pass rate and count is aggregated by the database over Run rows. The run's own goal
and its largest seat share are plain columns (Run.goal_value, Run.largest_share, copied from the
outcome when the run finishes): extracting them from the outcome JSON in every query was about
17 µs a run on SQLite, too slow for 100,000 runs (bench/bench_dashboard.py). The per-group views
(group_views) aggregate RunGroupScore rows, a finished run's groups, written when it finishes.

The paper table's confidence intervals are a percentile bootstrap over runs (the breakdowns'
use the normal approximation, see _aggregate). Resampling runs with replacement from
a cell is a multinomial draw over the cell's distinct values, so the database answers only
(cell, value, count) rows and the resampling happens on those counts (numpy, seeded).
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Avg, Case, Count, F, QuerySet, Sum, Value, When

from deliberation.engine.goals import GOALS
from deliberation.records.models import Topic
from deliberation.runs.models import Experiment, Run, RunGroupScore

PARTY_COUNTS = (2, 4, 6)
BASELINES = ("random", "greedy", "real-resolution")
BREAKDOWN_KEYS = ("strategy", "model", "judge", "goal", "bucket")
SCORE_GOALS = tuple(key for key, goal in GOALS.items() if goal.kind == "score")
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0
# Bins of the largest group's seat share. Task seat weights are tenths, so the edges sit between
# tenths: no float rounding can move a share across one.
POWER_BINS = (
    (0.35, "largest ≤ 30%"),
    (0.55, "largest 40–50%"),
    (0.75, "largest 60–70% (a majority alone)"),
    (None, "largest ≥ 80% (dominant)"),
)


def experiments_for_owner(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Experiment]:
    if not user.is_authenticated:
        return Experiment.objects.none()
    return Experiment.objects.filter(owner=user).order_by("-created_at")


def power_bin() -> Case:
    whens = [When(largest_share__lt=edge, then=Value(label)) for edge, label in POWER_BINS if edge is not None]
    return Case(*whens, default=Value(POWER_BINS[-1][1]))


def finished_runs(*, experiment: Experiment) -> QuerySet[Run]:
    return Run.objects.filter(experiment=experiment, status=Run.Status.FINISHED, goal_value__isnull=False).annotate(
        value=F("goal_value")
    )


@dataclass
class Cell:
    """One table cell: the runs of one strategy x model x judge x goal x party count."""

    mean: float | None = None
    n: int = 0
    tasks: int = 0
    ci: tuple[float, float] | None = None
    query: dict = field(default_factory=dict)

    @property
    def querystring(self) -> str:
        return urlencode(self.query)


def bootstrap_ci(values: Sequence[float], counts: Sequence[int], *, samples: int = BOOTSTRAP_SAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of a sample given as distinct values and
    how often each occurs."""
    counts_array = np.asarray(counts, dtype=np.int64)
    n = int(counts_array.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts_array / n, size=samples)
    means = draws @ np.asarray(values, dtype=float) / n
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _value_counts(runs: QuerySet[Run], keys: Sequence[str]) -> dict[tuple, tuple[list[float], list[int]]]:
    rows = runs.order_by().values(*keys, "value").annotate(n=Count("pk"))
    out: dict[tuple, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    for row in rows:
        values, counts = out[tuple(row[key] for key in keys)]
        values.append(row["value"])
        counts.append(row["n"])
    return out


def _aggregate(runs: QuerySet[Run], keys: Sequence[str], *, bootstrap: bool = True) -> dict[tuple, Cell]:
    """Mean, run count and task count per group of `keys` (which include "goal"), aggregated by
    the database, with a 95% interval.

    bootstrap=True (the paper's table): a percentile bootstrap. A pass goal's values are 0 and 1,
    so its sum (the passes) and count are its whole distribution; only score goals need their
    (value, count) rows. bootstrap=False (the breakdowns, hundreds of cells): the normal
    approximation mean ± 1.96·sd/√n from the database's mean and mean square, clipped to the
    goal's range; a bootstrap per cell cost seconds there at 100,000 runs (bench/bench_dashboard.py)."""
    goal_index = keys.index("goal")
    rows = runs.order_by().values(*keys).annotate(
        mean=Avg("value"), total=Sum("value"), mean_square=Avg(F("value") * F("value")), n=Count("pk"),
        tasks=Count("task", distinct=True),
    )
    spreads = _value_counts(runs.filter(goal__in=SCORE_GOALS), keys) if bootstrap else {}
    cells = {}
    for row in rows:
        key = tuple(row[name] for name in keys)
        if not bootstrap:
            ci = normal_ci(row["mean"], row["mean_square"], row["n"], upper=9.0 if key[goal_index] in SCORE_GOALS else 1.0)
        elif key[goal_index] in SCORE_GOALS:
            ci = bootstrap_ci(*spreads[key])
        else:
            passes = round(row["total"])
            ci = bootstrap_ci([0.0, 1.0], [row["n"] - passes, passes])
        cells[key] = Cell(mean=row["mean"], n=row["n"], tasks=row["tasks"], ci=ci)
    return cells


def normal_ci(mean: float, mean_square: float, n: int, *, upper: float) -> tuple[float, float]:
    """mean ± 1.96 times the standard error (sample standard deviation from the mean of squares:
    SQLite's own STDDEV fails on a single value), clipped to [0, upper]."""
    if n < 2:
        return mean, mean
    sd = math.sqrt(max(0.0, mean_square - mean * mean) * n / (n - 1))
    half = 1.96 * sd / math.sqrt(n)
    return max(0.0, mean - half), min(upper, mean + half)


@dataclass
class TableRow:
    strategy: str
    model: str
    is_baseline: bool
    goals: list[dict]  # [{"goal", "label", "kind", "cells": [Cell per party count]}]


@dataclass
class Table:
    judge: str
    party_counts: tuple[int, ...]
    rows: list[TableRow]


def _ordered(values: Iterable[str], first: Sequence[str]) -> list[str]:
    values = set(values)
    return [v for v in first if v in values] + sorted(v for v in values if v not in first)


def paper_tables(*, experiment: Experiment) -> list[Table]:
    """The paper's table per judge: a row block per strategy x model (baselines first), a row per
    goal, a column per party count; pass rates for pass goals, mean scores for score goals."""
    keys = ("judge", "strategy", "model", "goal", "task__party_count")
    cells = _aggregate(finished_runs(experiment=experiment), keys)
    goals_order = [key for key in GOALS if key in {k[3] for k in cells}]
    tables = []
    for judge in _ordered({k[0] for k in cells}, ()):
        pairs = {(k[1], k[2]) for k in cells if k[0] == judge}
        strategies = _ordered({s for s, _ in pairs}, BASELINES)
        rows = []
        for strategy in strategies:
            for model in sorted(m for s, m in pairs if s == strategy):
                goal_rows = []
                for goal in goals_order:
                    row_cells = []
                    for parties in PARTY_COUNTS:
                        cell = cells.get((judge, strategy, model, goal, parties), Cell())
                        cell.query = {"strategy": strategy, "model": model, "judge": judge, "goal": goal, "parties": parties}
                        row_cells.append(cell)
                    if any(cell.n for cell in row_cells):
                        goal_rows.append({"goal": goal, "label": GOALS[goal].label, "kind": GOALS[goal].kind, "cells": row_cells})
                rows.append(TableRow(strategy=strategy, model=model, is_baseline=strategy in BASELINES, goals=goal_rows))
        tables.append(Table(judge=judge, party_counts=PARTY_COUNTS, rows=rows))
    return tables


def breakdown(*, experiment: Experiment, by: str) -> dict[tuple, Cell]:
    """Mean of the run's own goal per (strategy, model, judge, goal, bucket); `by` is "topic"
    (the task's topic), "term" (the record's parliamentary term) or "power" (the bin of the
    run's largest seat share, POWER_BINS)."""
    runs = finished_runs(experiment=experiment)
    if by == "topic":
        # Grouped by the task's topic id (one join less), named afterwards.
        cells = _aggregate(runs.annotate(bucket=F("task__topic")), BREAKDOWN_KEYS, bootstrap=False)
        names = dict(Topic.objects.filter(pk__in={key[4] for key in cells}).values_list("pk", "name"))
        return {(*key[:4], names.get(key[4])): cell for key, cell in cells.items()}
    elif by == "term":
        runs = runs.annotate(bucket=F("record__term"))
    elif by == "power":
        runs = runs.annotate(bucket=power_bin())
    else:
        raise ValueError(f"unknown breakdown {by!r}")
    return _aggregate(runs, BREAKDOWN_KEYS, bootstrap=False)


@dataclass
class GroupViews:
    by_share: list[dict]  # {"strategy", "group", "share", "mean", "n"}
    by_real_vote: list[dict]  # {"strategy", "real", "mean", "n"}


def group_views(*, experiment: Experiment) -> GroupViews:
    """The dominant-group views, per strategy: each group's mean judge score (0..9) against its
    seat share, and the groups' mean simulated support against their real vote on the run's
    record (Stance.real_choice, 0..9).

    Two GROUP BYs over the experiment's RunGroupScore rows (a finished run's groups, written when
    it finishes: runs.group_scores), which carry the run's strategy, so no join."""
    scores = RunGroupScore.objects.filter(experiment=experiment).order_by()
    by_share = (
        scores.filter(seat_share__isnull=False).values_list("strategy", "group", "seat_share")
        .annotate(mean=Avg("score"), n=Count("pk")).order_by("strategy", "group", "seat_share")
    )
    by_vote = (
        scores.filter(real_choice__isnull=False).values_list("strategy", "real_choice")
        .annotate(mean=Avg("score"), n=Count("pk")).order_by("strategy", "real_choice")
    )
    return GroupViews(
        by_share=[
            {"strategy": strategy, "group": code, "share": share, "mean": mean, "n": n}
            for strategy, code, share, mean, n in by_share
        ],
        by_real_vote=[
            {"strategy": strategy, "real": vote, "mean": mean, "n": n} for strategy, vote, mean, n in by_vote
        ],
    )


def experiment_runs(*, experiment: Experiment, strategy: str | None = None, model: str | None = None,
                    judge: str | None = None, goal: str | None = None, parties: int | None = None) -> QuerySet[Run]:
    """The runs behind a table cell (every filter optional)."""
    runs = experiment.runs.select_related("record", "task").order_by("pk")
    filters = {"strategy": strategy, "model": model, "judge": judge, "goal": goal, "task__party_count": parties}
    return runs.filter(**{key: value for key, value in filters.items() if value not in (None, "")})
