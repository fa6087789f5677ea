"""Reads behind the experiment dashboards: the paper's table, its breakdowns, the per-group views.

Every mean, pass rate and count is aggregated by the database. The run's own goal and its largest
seat share are plain columns (Run.goal_value, Run.largest_share, copied from the outcome when the
run finishes), and a finished run's per-group scores are rows (RunGroupScore, written when it
finishes): extracting them from the outcome JSON in every view was too slow for 100,000 runs
(bench/bench_dashboard.py).

The table and the three breakdowns come from one statement (_aggregates_sql): it reads the
experiment's finished runs through one covering index, groups them per task, and groups those
rows four ways; separate queries read the wide run rows four times and sorted them for each
COUNT(DISTINCT task), several times the work on PostgreSQL.

Every confidence interval on the page, the paper table's and the breakdowns', is a percentile
bootstrap over runs. Resampling runs with replacement from a cell is a
multinomial draw over the cell's distinct values, so the database answers only (cell, value,
count) rows and the resampling happens on those counts (numpy, seeded).

Results update as runs finish, and repeated views are cheap: the aggregates are cached (Django's
cache) under a key made of the experiment and what its finished runs are (how many, the last
finish), read by one index-only query (results_version); a run that finishes changes the key.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlencode

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Avg, Count, F, Max, Q, QuerySet, Sum

from deliberation.engine.calibration import pearson_from_sums
from deliberation.engine.goals import GOALS
from deliberation.records.models import BenchmarkTask, Record, Topic
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


def bootstrap_ci(
    values: Sequence[float], counts: Sequence[int], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of a sample given as distinct values and
    how often each occurs.

    Seeded, so a function of its arguments: remembered per process (_bootstrap), since a run that
    finishes changes one cell of the table and the others' draws need not be made again."""
    return _bootstrap(tuple(float(v) for v in values), tuple(int(c) for c in counts), samples, seed)


@lru_cache(maxsize=4096)
def _bootstrap(values: tuple[float, ...], counts: tuple[int, ...], samples: int, seed: int) -> tuple[float, float]:
    counts_array = np.asarray(counts, dtype=np.int64)
    n = int(counts_array.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts_array / n, size=samples)
    means = draws @ np.asarray(values, dtype=float) / n
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------
# The aggregates, made once per version of the experiment's results


CACHE_PREFIX = "hemicycle:dashboards:1"  # bump when what is cached changes shape
CACHE_SECONDS = 24 * 3600
FRAGMENT_SECONDS = 3600
AGGREGATES_WORK_MEM = "32MB"


def results_version(*, experiment: Experiment) -> str:
    """What the dashboard's aggregates depend on: the experiment, how many of its runs have
    finished and when the last one did (an index-only scan of run_experiment_status_finished).
    A finishing run changes it; so does a deleted one. The experiment's creation time keeps a
    reused id (SQLite reuses them after a rollback) from meeting another experiment's entry."""
    done = (
        Run.objects.filter(experiment=experiment, status=Run.Status.FINISHED)
        .order_by()
        .aggregate(n=Count("*"), last=Max("finished_at"))
    )
    created = experiment.created_at.isoformat() if experiment.created_at else ""
    last = done["last"].isoformat() if done["last"] else ""
    return f"{experiment.pk}:{created}:{done['n']}:{last}"


def experiment_results_cached(experiment: Experiment, part: str, build, version: str | None = None):
    """`build()`'s value for this version of the experiment's results (results_version, read
    here unless the caller has it), from the cache when made before (the cache pickles, so every
    caller gets its own copy). One entry per experiment and part, holding its version: a running
    experiment's new versions replace the old instead of piling up until they expire."""
    version = version or results_version(experiment=experiment)
    key = f"{CACHE_PREFIX}:{part}:{experiment.pk}"
    cached = cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    value = build()
    cache.set(key, (version, value), CACHE_SECONDS)
    return value


def results_cache_seconds(*, experiment: Experiment) -> int:
    """How long the page may keep its rendered results (the template caches them under
    results_version, an entry per version): an hour, but not at all while the experiment runs,
    whose every finish is a new version (a page reloads them every few seconds)."""
    return 0 if experiment.status == Experiment.Status.RUNNING else FRAGMENT_SECONDS


def _aggregates_sql() -> str:
    """One statement for the paper's table, its bootstrap's value counts and the three breakdowns.

    `per_task` reads the experiment's finished runs once, through the run_experiment_results
    index alone on PostgreSQL (the run rows are wide: their outcome JSON is inline), and groups
    them per cell keys x task x record x power bin, a third of the rows at 100,000 runs; `cells`
    adds the task's party count and topic and the record's term to those rows only; the four
    groupings after it are small hash aggregates. A task's runs share its record and seat weights
    (runs.experiments builds them so), so `cells` has one row per cell keys x task and
    COUNT(task_id) counts distinct tasks: COUNT(DISTINCT task_id) would sort the rows on their text
    keys, about twice the work. The value counts read the runs of score goals again. Portable SQL:
    PostgreSQL and SQLite (3.35+ for MATERIALIZED) run it as it is."""
    quote = connection.ops.quote_name
    runs, tasks, records = (quote(model._meta.db_table) for model in (Run, BenchmarkTask, Record))
    power = " ".join(
        f"WHEN r.largest_share < {edge!r} THEN {index}"
        for index, (edge, _) in enumerate(POWER_BINS)
        if edge is not None
    )
    score_goals = ", ".join("%s" for _ in SCORE_GOALS)
    keys = "judge, strategy, model, goal"
    finished = "r.experiment_id = %s AND r.status = %s AND r.goal_value IS NOT NULL"
    sums = "CAST(SUM(n) AS BIGINT), SUM(s), SUM(ss), COUNT(task_id)"
    return f"""
WITH per_task AS MATERIALIZED (
    SELECT r.judge, r.strategy, r.model, r.goal, r.task_id, r.record_id,
           CASE {power} ELSE {len(POWER_BINS) - 1} END AS power,
           COUNT(*) AS n, SUM(r.goal_value) AS s, SUM(r.goal_value * r.goal_value) AS ss
    FROM {runs} r WHERE {finished}
    GROUP BY r.judge, r.strategy, r.model, r.goal, r.task_id, r.record_id, power
), cells AS MATERIALIZED (
    SELECT p.judge, p.strategy, p.model, p.goal, p.task_id, p.power, p.n, p.s, p.ss,
           t.party_count AS parties, t.topic_id AS topic, rec.term AS term
    FROM per_task p
    LEFT OUTER JOIN {tasks} t ON p.task_id = t.id
    INNER JOIN {records} rec ON p.record_id = rec.id
)
SELECT 'paper', {keys}, parties, CAST(NULL AS TEXT), CAST(NULL AS DOUBLE PRECISION), {sums}
    FROM cells GROUP BY {keys}, parties
UNION ALL SELECT 'topic', {keys}, topic, NULL, NULL, {sums} FROM cells GROUP BY {keys}, topic
UNION ALL SELECT 'term', {keys}, NULL, term, NULL, {sums} FROM cells GROUP BY {keys}, term
UNION ALL SELECT 'power', {keys}, power, NULL, NULL, {sums} FROM cells GROUP BY {keys}, power
UNION ALL SELECT 'values', r.judge, r.strategy, r.model, r.goal, t.party_count, NULL, r.goal_value, COUNT(*), NULL, NULL, NULL
    FROM {runs} r LEFT OUTER JOIN {tasks} t ON r.task_id = t.id
    WHERE {finished} AND r.goal IN ({score_goals})
    GROUP BY r.judge, r.strategy, r.model, r.goal, t.party_count, r.goal_value
UNION ALL SELECT 'values-topic', r.judge, r.strategy, r.model, r.goal, t.topic_id, NULL, r.goal_value, COUNT(*), NULL, NULL, NULL
    FROM {runs} r LEFT OUTER JOIN {tasks} t ON r.task_id = t.id
    WHERE {finished} AND r.goal IN ({score_goals})
    GROUP BY r.judge, r.strategy, r.model, r.goal, t.topic_id, r.goal_value
UNION ALL SELECT 'values-term', r.judge, r.strategy, r.model, r.goal, NULL, rec.term, r.goal_value, COUNT(*), NULL, NULL, NULL
    FROM {runs} r INNER JOIN {records} rec ON r.record_id = rec.id
    WHERE {finished} AND r.goal IN ({score_goals})
    GROUP BY r.judge, r.strategy, r.model, r.goal, rec.term, r.goal_value
UNION ALL SELECT 'values-power', r.judge, r.strategy, r.model, r.goal, CASE {power} ELSE {len(POWER_BINS) - 1} END,
           NULL, r.goal_value, COUNT(*), NULL, NULL, NULL
    FROM {runs} r
    WHERE {finished} AND r.goal IN ({score_goals})
    GROUP BY r.judge, r.strategy, r.model, r.goal, CASE {power} ELSE {len(POWER_BINS) - 1} END, r.goal_value
"""


def _make_aggregates(experiment: Experiment) -> dict[str, dict[tuple, Cell]]:
    """{"paper": cells keyed (judge, strategy, model, goal, party count), "topic" | "term" |
    "power": cells keyed BREAKDOWN_KEYS}.

    Every cell, the paper's and the breakdowns', gets the same percentile bootstrap (one interval
    method on the page): a pass goal's values are 0 and 1, so its sum (the passes) and count are
    its whole distribution (and cells with the same counts share one draw, bootstrap_ci is
    remembered); a score goal resamples its (value, count) rows, which the statement answers per
    party count, topic, term and power bin."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Room for its hash tables and materialised rows (about 10 MB at 100,000 runs), for
            # this transaction only: at the default 4 MB they spill to disk in batches.
            cursor.execute(f"SET LOCAL work_mem = '{AGGREGATES_WORK_MEM}'")
        finished = [experiment.pk, Run.Status.FINISHED]
        values = [*finished, *SCORE_GOALS]
        cursor.execute(_aggregates_sql(), [*finished, *values, *values, *values, *values])
        rows = cursor.fetchall()
    spreads: dict[tuple, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    for kind, judge, strategy, model, goal, bucket, label, value, n, *_ in rows:
        if kind.startswith("values"):
            # "values" -> the paper's cells; "values-topic" etc. -> that breakdown's, by raw bucket
            part = kind.partition("-")[2] or "paper"
            values, counts = spreads[(part, judge, strategy, model, goal, label if part == "term" else bucket)]
            values.append(value)
            counts.append(n)
    out: dict[str, dict[tuple, Cell]] = {"paper": {}, "topic": {}, "term": {}, "power": {}}
    for kind, judge, strategy, model, goal, bucket, label, _, n, total, _squares, tasks in rows:
        if kind.startswith("values"):
            continue
        mean = total / n
        raw = label if kind == "term" else bucket
        if goal in SCORE_GOALS:
            ci = bootstrap_ci(*spreads[(kind, judge, strategy, model, goal, raw)])
        else:
            passes = round(total)
            ci = bootstrap_ci([0.0, 1.0], [n - passes, passes])
        if kind == "paper":
            out["paper"][(judge, strategy, model, goal, bucket)] = Cell(mean=mean, n=n, tasks=tasks, ci=ci)
            continue
        if kind == "power":
            raw = POWER_BINS[bucket][1]
        out[kind][(strategy, model, judge, goal, raw)] = Cell(mean=mean, n=n, tasks=tasks, ci=ci)
    # The statement groups by the topic's id; the names come here.
    names = dict(Topic.objects.filter(pk__in={key[4] for key in out["topic"]}).values_list("pk", "name"))
    out["topic"] = {(*key[:4], names.get(key[4])): cell for key, cell in out["topic"].items()}
    return out


def _aggregates(experiment: Experiment, version: str | None) -> dict[str, dict[tuple, Cell]]:
    return experiment_results_cached(experiment, "aggregates", lambda: _make_aggregates(experiment), version)


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


def paper_tables(*, experiment: Experiment, version: str | None = None) -> list[Table]:
    """The paper's table per judge: a row block per strategy x model (baselines first), a row per
    goal, a column per party count; pass rates for pass goals, mean scores for score goals.
    `version`: results_version, when the caller has read it."""
    cells = _aggregates(experiment, version)["paper"]
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
                        cell.query = {
                            "strategy": strategy,
                            "model": model,
                            "judge": judge,
                            "goal": goal,
                            "parties": parties,
                        }
                        row_cells.append(cell)
                    if any(cell.n for cell in row_cells):
                        goal_rows.append(
                            {"goal": goal, "label": GOALS[goal].label, "kind": GOALS[goal].kind, "cells": row_cells}
                        )
                rows.append(
                    TableRow(strategy=strategy, model=model, is_baseline=strategy in BASELINES, goals=goal_rows)
                )
        tables.append(Table(judge=judge, party_counts=PARTY_COUNTS, rows=rows))
    return tables


def breakdown(*, experiment: Experiment, by: str, version: str | None = None) -> dict[tuple, Cell]:
    """Mean of the run's own goal per (strategy, model, judge, goal, bucket); `by` is "topic"
    (the task's topic), "term" (the record's parliamentary term) or "power" (the bin of the
    run's largest seat share, POWER_BINS)."""
    if by not in ("topic", "term", "power"):
        raise ValueError(f"unknown breakdown {by!r}")
    return _aggregates(experiment, version)[by]


@dataclass
class GroupViews:
    by_share: list[dict]  # {"strategy", "group", "share", "mean", "n"}
    by_real_vote: list[dict]  # {"strategy", "real", "mean", "n"}
    # The paper's partisan-bias probe, per strategy: does the judged support follow the groups'
    # real votes or their seats? {"strategy", "n", "r_real", "r_share"}. A class default: views
    # cached before the field existed read as empty.
    partisan: tuple = ()


def group_views(*, experiment: Experiment, version: str | None = None) -> GroupViews:
    """The dominant-group views (see _make_group_views), cached as the aggregates are."""
    return experiment_results_cached(experiment, "groups", lambda: _make_group_views(experiment), version)


def _make_group_views(experiment: Experiment) -> GroupViews:
    """The dominant-group views, per strategy: each group's mean judge score (0..9) against its
    seat share, and the groups' mean simulated support against their real vote on the run's
    record (Stance.real_choice, 0..9).

    One GROUP BY over the experiment's RunGroupScore rows (a finished run's groups, written when
    it finishes: runs.group_scores), which carry the run's strategy, so no join; its few
    (strategy, group, share, real vote) rows are summed both ways here."""
    rows = (
        RunGroupScore.objects.filter(experiment=experiment)
        .order_by()
        .values_list("strategy", "group", "seat_share", "real_choice")
        .annotate(total=Sum("score"), n=Count("*"), total_sq=Sum(F("score") * F("score")))
    )
    by_share: dict[tuple, list] = defaultdict(lambda: [0.0, 0])
    by_vote: dict[tuple, list] = defaultdict(lambda: [0.0, 0])
    # per strategy, over the rows with both a share and a real vote: n, sums of score, score²,
    # share, share², real, real², score x share, score x real
    moments: dict[str, list[float]] = defaultdict(lambda: [0.0] * 9)
    for strategy, code, share, vote, total, n, total_sq in rows:
        if share is not None and vote is not None:
            acc = moments[strategy]
            for index, value in enumerate(
                (
                    n,
                    total,
                    total_sq,
                    n * share,
                    n * share * share,
                    n * vote,
                    n * vote * vote,
                    share * total,
                    vote * total,
                )
            ):
                acc[index] += value
        for sums, key in (
            (by_share, None if share is None else (strategy, code, share)),
            (by_vote, None if vote is None else (strategy, vote)),
        ):
            if key is not None:
                sums[key][0] += total
                sums[key][1] += n
    return GroupViews(
        by_share=[
            {"strategy": strategy, "group": code, "share": share, "mean": total / n, "n": n}
            for (strategy, code, share), (total, n) in sorted(by_share.items())
        ],
        by_real_vote=[
            {"strategy": strategy, "real": vote, "mean": total / n, "n": n}
            for (strategy, vote), (total, n) in sorted(by_vote.items())
        ],
        partisan=tuple(
            {
                "strategy": strategy,
                "n": int(n),
                "r_real": pearson_from_sums(n=n, sx=sx, sy=sr, sxx=sxx, syy=srr, sxy=sxr),
                "r_share": pearson_from_sums(n=n, sx=sx, sy=ss, sxx=sxx, syy=sss, sxy=sxs),
            }
            for strategy, (n, sx, sxx, ss, sss, sr, srr, sxs, sxr) in sorted(moments.items())
        ),
    )


def moral_rewards(*, experiment: Experiment, version: str | None = None) -> list[dict]:
    """Per strategy and drafting model, the groups' moral rewards (engine/rewards.py) over the
    experiment's finished runs: mean deontological (-1..+1), broken commitments (groups that voted
    against a text they had endorsed) of all endorsements, mean utilitarian (0..9)."""
    return experiment_results_cached(experiment, "rewards", lambda: _make_moral_rewards(experiment), version)


def _make_moral_rewards(experiment: Experiment) -> list[dict]:
    rows = (
        RunGroupScore.objects.filter(experiment=experiment, reward_utilitarian__isnull=False)
        .order_by()
        .values("strategy", "run__model")
        .annotate(
            n=Count("*"),
            deontological=Avg("reward_deontological"),
            utilitarian=Avg("reward_utilitarian"),
            broken=Count("id", filter=Q(reward_deontological__lt=0)),
            endorsed=Count("id", filter=~Q(reward_deontological=0)),
        )
    )
    return sorted(
        (
            {
                "strategy": row["strategy"],
                "model": row["run__model"],
                "n": row["n"],
                "deontological": row["deontological"],
                "utilitarian": row["utilitarian"],
                "broken": row["broken"],
                "endorsed": row["endorsed"],
            }
            for row in rows
        ),
        key=lambda row: (row["strategy"], row["model"]),
    )


def experiment_runs(
    *,
    experiment: Experiment,
    strategy: str | None = None,
    model: str | None = None,
    judge: str | None = None,
    goal: str | None = None,
    parties: int | None = None,
) -> QuerySet[Run]:
    """The runs behind a table cell (every filter optional)."""
    runs = experiment.runs.select_related("record", "task").order_by("pk")
    filters = {"strategy": strategy, "model": model, "judge": judge, "goal": goal, "task__party_count": parties}
    return runs.filter(**{key: value for key, value in filters.items() if value not in (None, "")})
