"""Reads behind the experiment dashboards: the paper's table and its breakdowns.

Every mean, pass rate and count is aggregated by the database over Run rows. The run's own goal
and its largest seat share are plain columns (Run.goal_value, Run.largest_share, copied from the
outcome when the run finishes): extracting them from the outcome JSON in every query was about
17 µs a run on SQLite, too slow for 100,000 runs (bench/bench_dashboard.py). Per-group scores
stay in the JSON and are read with KeyTextTransform, which SQLite and PostgreSQL both run.

Confidence intervals are a percentile bootstrap over runs. Resampling runs with replacement from
a cell is a multinomial draw over the cell's distinct values, so the database answers only
(cell, value, count) rows and the resampling happens on those counts (numpy, seeded).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Avg, Case, Count, F, FloatField, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from deliberation.engine.goals import GOALS
from deliberation.records.models import PartyGroup
from deliberation.runs.models import Experiment, Run

PARTY_COUNTS = (2, 4, 6)
BASELINES = ("random", "greedy", "real-resolution")
BOOTSTRAP_SAMPLES = 2000
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


def _aggregate(runs: QuerySet[Run], keys: Sequence[str]) -> dict[tuple, Cell]:
    """Mean, run count and task count per group of `keys` (database), with its bootstrap CI."""
    rows = runs.order_by().values(*keys).annotate(
        mean=Avg("value"), n=Count("pk"), tasks=Count("task", distinct=True)
    )
    spreads = _value_counts(runs, keys)
    cells = {}
    for row in rows:
        key = tuple(row[name] for name in keys)
        values, counts = spreads[key]
        cells[key] = Cell(mean=row["mean"], n=row["n"], tasks=row["tasks"], ci=bootstrap_ci(values, counts))
    return cells


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
        runs = runs.annotate(bucket=F("task__topic__name"))
    elif by == "term":
        runs = runs.annotate(bucket=F("record__term"))
    elif by == "power":
        runs = runs.annotate(bucket=power_bin())
    else:
        raise ValueError(f"unknown breakdown {by!r}")
    return _aggregate(runs, ("strategy", "model", "judge", "goal", "bucket"))


def _group_codes(runs: QuerySet[Run]) -> list[str]:
    terms = runs.order_by().values_list("record__term", flat=True).distinct()
    return sorted(set(PartyGroup.objects.filter(term__in=list(terms)).values_list("code", flat=True)))


def group_score_by_share(*, experiment: Experiment) -> list[dict]:
    """Dominant-group view: per strategy, group and seat share, the group's mean judge score
    (0..9) and how many runs gave it. One query per group code of the experiment's terms."""
    base = Run.objects.filter(experiment=experiment, status=Run.Status.FINISHED)
    scores = KeyTransform("scores", "outcome")
    points = []
    for code in _group_codes(base):
        rows = (
            base.filter(seats__has_key=code, outcome__scores__has_key=code)
            .annotate(share=Cast(KeyTextTransform(code, "seats"), FloatField()),
                      score=Cast(KeyTextTransform(code, scores), FloatField()))
            .order_by().values("strategy", "share").annotate(mean=Avg("score"), n=Count("pk"))
        )
        points.extend({"group": code, **row} for row in rows)
    points.sort(key=lambda p: (p["strategy"], p["group"], p["share"]))
    return points


def support_vs_real_vote(*, experiment: Experiment) -> list[dict]:
    """Per strategy and real vote (Stance.real_choice, 0..9, of the group on the run's record):
    the mean simulated support (judge score) of the groups that voted so, and how many."""
    base = Run.objects.filter(experiment=experiment, status=Run.Status.FINISHED)
    scores = KeyTransform("scores", "outcome")
    totals: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0])
    for code in _group_codes(base):
        rows = (
            base.filter(outcome__scores__has_key=code, record__stances__group__code=code)
            .annotate(score=Cast(KeyTextTransform(code, scores), FloatField()),
                      real=F("record__stances__real_choice"))
            .order_by().values("strategy", "real").annotate(total=Avg("score"), n=Count("pk"))
        )
        for row in rows:
            bucket = totals[(row["strategy"], row["real"])]
            bucket[0] += row["total"] * row["n"]
            bucket[1] += row["n"]
    return [
        {"strategy": strategy, "real": real, "mean": total / n, "n": n}
        for (strategy, real), (total, n) in sorted(totals.items())
    ]


def experiment_runs(*, experiment: Experiment, strategy: str | None = None, model: str | None = None,
                    judge: str | None = None, goal: str | None = None, parties: int | None = None) -> QuerySet[Run]:
    """The runs behind a table cell (every filter optional)."""
    runs = experiment.runs.select_related("record", "task").order_by("pk")
    filters = {"strategy": strategy, "model": model, "judge": judge, "goal": goal, "task__party_count": parties}
    return runs.filter(**{key: value for key, value in filters.items() if value not in (None, "")})
