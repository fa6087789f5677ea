"""Reads behind the dashboards' institutional views: does judged support follow seats or voting
power, and how much of a strategy's success is the seats it happened to get?

- power_support: each group's mean judged support against its seat share, its Shapley-Shubik and
  its Banzhaf index in the game of its run's goal (voting goals only), per strategy, in bins.
- rule_sweep: every finished run's stored scores re-tallied under each seat structure (as played,
  equal, real EP seats of the record's term, another PoliCon random draw seeded by the run's seed)
  and each rule (the three voting goals, the Council's double majority; Borda and Schulze over the
  drafts of one experiment cell, as runs.counterfactuals ranks them), as pass (or win) rates per
  strategy. No model call: arithmetic on RunGroupScore rows and the runs' seats.

Both are cached per version of the experiment's results, like the other aggregates.
"""

import random
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from django.db.models import Count, Sum

from deliberation.dashboards.selectors import experiment_results_cached
from deliberation.engine.goals import GOALS
from deliberation.engine.power import goal_quota, power_indices
from deliberation.engine.rules import RULES, rank_drafts, tally_rules
from deliberation.engine.scenario import ScenarioError
from deliberation.engine.seats import seat_shares
from deliberation.engine.seeding import seed_for
from deliberation.records.models import PartyGroup
from deliberation.runs.counterfactuals import cell_without_strategy
from deliberation.runs.models import Experiment, Run, RunGroupScore

VOTING_GOALS = tuple(key for key, goal in GOALS.items() if goal.kind == "pass")
MEASURES = ("seat share", "Shapley-Shubik", "Banzhaf")
BINS = 10  # tenths of 0..1
SWEEP_STRUCTURES = (
    ("run", "as played"),
    ("equal", "equal shares"),
    ("real", "real EP seats"),
    ("random_tenths", "another random draw"),
)
SWEEP_RULES = tuple(key for key, rule in RULES.items() if rule.kind != "score")


@lru_cache(maxsize=4096)
def _indices(seats: tuple[tuple[str, float], ...], goal: str, veto: str | None) -> dict[str, tuple[float, float]]:
    result = power_indices(dict(seats), goal_quota(goal, veto_group=veto))
    return {code: (float(result.shapley_shubik[code]), float(result.banzhaf[code])) for code in result.codes}


def _bin(value: float) -> int:
    return min(BINS - 1, int(value * BINS + 1e-9))


def power_support(*, experiment: Experiment, version: str | None = None) -> list[dict]:
    """[{"strategy", "measure", "x" (the bin's mean), "mean" (support 0..9), "n"}], bins of tenths."""
    return experiment_results_cached(experiment, "power-support", lambda: _make_power_support(experiment), version)


def _make_power_support(experiment: Experiment) -> list[dict]:
    rows = (
        RunGroupScore.objects.filter(experiment=experiment, run__goal__in=VOTING_GOALS)
        .order_by()
        .values_list("strategy", "group", "run__seats", "run__goal", "run__veto_group")
        .annotate(total=Sum("score"), n=Count("*"))
    )
    sums: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])  # x total, score total, n
    for strategy, code, seats, goal, veto, total, n in rows:
        if not seats or code not in seats or (goal == "veto_power" and not veto):
            continue
        key = tuple(sorted((c, float(s)) for c, s in seats.items()))
        shapley, banzhaf = _indices(key, goal, veto or None)[code]
        for measure, x in zip(MEASURES, (float(seats[code]), shapley, banzhaf)):
            cell = sums[(strategy, measure, _bin(x))]
            cell[0] += x * n
            cell[1] += total
            cell[2] += n
    return [
        {"strategy": strategy, "measure": measure, "x": x_total / n, "mean": total / n, "n": int(n)}
        for (strategy, measure, _), (x_total, total, n) in sorted(sums.items())
    ]


@dataclass
class SweepRow:
    strategy: str
    cells: dict[tuple[str, str], tuple[float | None, int]]  # (structure, rule) -> (rate, runs or cells counted)


@dataclass
class Sweep:
    structures: tuple[tuple[str, str], ...]
    rules: list[dict]  # {"key", "label", "kind"}
    rows: list[SweepRow]
    runs: int


def rule_sweep(*, experiment: Experiment, version: str | None = None) -> Sweep:
    return experiment_results_cached(experiment, "rule-sweep", lambda: _make_rule_sweep(experiment), version)


@lru_cache(maxsize=65536)
def _verdicts(scores: tuple[tuple[str, int], ...], seats: tuple[tuple[str, float], ...], veto: str | None) -> dict:
    return tally_rules(dict(scores), dict(seats), veto_group=veto)


def _structures(run: dict, seat_counts: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    codes = run["groups"]
    out = {"run": run["seats"]}
    for structure in ("equal", "real", "random_tenths"):
        try:
            out[structure] = seat_shares(
                structure,
                codes,
                rng=random.Random(seed_for(run["seed"], "seats")),
                seat_counts=seat_counts.get(run["term"], {}),
            )
        except ScenarioError:
            continue  # no real seat count for a group of this term: the run is not counted there
    return out


def _make_rule_sweep(experiment: Experiment) -> Sweep:
    scores: dict[int, dict[str, int]] = defaultdict(dict)
    for run_id, code, score in RunGroupScore.objects.filter(experiment=experiment).values_list(
        "run_id", "group", "score"
    ):
        scores[run_id][code] = int(round(score))
    runs = [
        {
            "id": pk,
            "strategy": strategy,
            "seats": seats,
            "veto": veto or None,
            "seed": seed,
            "cell": cell,
            "term": term,
            "groups": groups,
        }
        for pk, strategy, seats, veto, seed, cell, term, groups in Run.objects.filter(
            experiment=experiment, status=Run.Status.FINISHED
        )
        .order_by("pk")
        .values_list("pk", "strategy", "seats", "veto_group", "seed", "cell", "record__term", "groups")
        if pk in scores and all(code in scores[pk] for code in groups)
    ]
    seat_counts: dict[str, dict[str, int]] = defaultdict(dict)
    for term, code, seats in PartyGroup.objects.values_list("term", "code", "seats_at_start"):
        if seats:
            seat_counts[term][code] = seats

    passes: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])  # (strategy, structure, rule) -> passed, n
    contests: dict[str, list[dict]] = defaultdict(list)
    structures: dict[tuple, dict] = {}  # the runs of one task and seed share their seat structures
    for run in runs:
        key = (tuple(run["groups"]), tuple(run["seats"].items()), run["seed"], run["term"])
        if key not in structures:
            structures[key] = _structures(run, seat_counts)
        run["structures"] = structures[key]
        run_scores = tuple((code, scores[run["id"]][code]) for code in run["groups"])
        for structure, seats in run["structures"].items():
            verdicts = _verdicts(run_scores, tuple(seats.items()), run["veto"])
            for rule in SWEEP_RULES:
                if RULES[rule].kind != "pass" or verdicts.get(rule) is None:
                    continue
                cell = passes[(run["strategy"], structure, rule)]
                cell[0] += bool(verdicts[rule])
                cell[1] += 1
        contests[cell_without_strategy(run["cell"]) if run["cell"] else f"run {run['id']}"].append(run)
    for drafts in contests.values():
        if len({run["strategy"] for run in drafts}) < 2:
            continue  # nothing to rank against
        first = drafts[0]
        ballots = {f"run {run['id']}": {code: scores[run["id"]][code] for code in first["groups"]} for run in drafts}
        for structure, seats in first["structures"].items():
            for rule in ("borda", "schulze"):
                winners = set(rank_drafts(ballots, seats, rule=rule).winners)
                for run in drafts:
                    cell = passes[(run["strategy"], structure, rule)]
                    cell[0] += f"run {run['id']}" in winners
                    cell[1] += 1
    strategies = sorted({run["strategy"] for run in runs})
    rows = [
        SweepRow(
            strategy=strategy,
            cells={
                (structure, rule): ((passes[key][0] / passes[key][1]) if passes[key][1] else None, passes[key][1])
                for structure, _ in SWEEP_STRUCTURES
                for rule in SWEEP_RULES
                for key in [(strategy, structure, rule)]
            },
        )
        for strategy in strategies
    ]
    rules = [{"key": key, "label": RULES[key].label, "kind": RULES[key].kind} for key in SWEEP_RULES]
    return Sweep(structures=SWEEP_STRUCTURES, rules=rules, rows=rows, runs=len(runs))
