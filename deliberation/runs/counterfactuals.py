"""What a finished run would have given under other seats and other decision rules.

Arithmetic on the judge's stored per-group scores (run.outcome["scores"]): no model call, no
write. The competing drafts that Borda and Schulze rank are the finished runs of the same
experiment cell but another strategy (same scenario source, goal, model, judge and seed), so
every group's scores of every draft come from the same judge on the same scenario.
"""

from collections.abc import Mapping

from django.urls import reverse

from deliberation.engine.goals import GOALS, weighted_support
from deliberation.engine.power import PowerError, goal_quota, power_indices
from deliberation.engine.rules import RULES, RuleError, rank_drafts, tally_rules
from deliberation.engine.scenario import ScenarioError
from deliberation.engine.seats import SEAT_STRUCTURES
from deliberation.errors import Conflict, Invalid
from deliberation.runs.models import Run
from deliberation.scenarios.services import scenario_seats

SEAT_CHOICES: tuple[str, ...] = ("run", *SEAT_STRUCTURES)  # "run": the seats the run played under
CELL_STRATEGY = 2  # the strategy's place in an experiment cell's key (runs.experiments.Cell.key)


class CounterfactualError(Invalid, ValueError):
    """Input the re-tally cannot use: 'field: message'."""


class NotFinished(Conflict, ValueError):
    """The run has no outcome to re-tally yet."""


def cell_without_strategy(cell: str) -> str:
    parts = cell.split("|")
    return "|".join(parts[:CELL_STRATEGY] + parts[CELL_STRATEGY + 1 :]) if len(parts) > CELL_STRATEGY else cell


def run_scores(run: Run) -> dict[str, int]:
    scores = (run.outcome or {}).get("scores") or {}
    if run.status != Run.Status.FINISHED or not scores:
        raise NotFinished("run: only a finished run with an outcome can be re-tallied")
    unscored = [code for code in run.groups if scores.get(code) is None]
    if unscored:
        raise NotFinished(f"run: the judge did not score {', '.join(unscored)}")
    return {code: int(scores[code]) for code in run.groups}


def run_competitors(*, run: Run) -> list[Run]:
    """Finished runs of the same experiment cell, other strategies: the drafts this one competes with."""
    if run.experiment_id is None or not run.cell:
        return []
    key = cell_without_strategy(run.cell)
    candidates = (
        Run.objects.filter(experiment_id=run.experiment_id, status=Run.Status.FINISHED, outcome__isnull=False)
        .exclude(pk=run.pk)
        .only("pk", "cell", "strategy", "groups", "outcome")
        .order_by("pk")
    )
    return [
        other
        for other in candidates.iterator()
        if cell_without_strategy(other.cell) == key
        and set(other.groups) == set(run.groups)
        and all((other.outcome.get("scores") or {}).get(code) is not None for code in run.groups)
    ]


def counterfactual_seats(
    *, run: Run, structure: str, seed: int | None, custom: Mapping[str, float] | None
) -> dict[str, float]:
    if structure not in SEAT_CHOICES:
        raise CounterfactualError(f"seats: choose one of {', '.join(SEAT_CHOICES)}")
    if structure == "run":
        return dict(run.seats)
    percent = None
    if structure == "custom":
        custom = dict(custom or {})
        if set(custom) != set(run.groups):
            raise CounterfactualError("custom: give a weight for every group of the run")
        if any(not isinstance(v, (int, float)) or v <= 0 for v in custom.values()):
            raise CounterfactualError("custom: every weight must be a positive number")
        total = sum(custom.values())
        percent = {code: 100 * value / total for code, value in custom.items()}  # weights, normalised
    try:
        return scenario_seats(
            record=run.record,
            groups=run.groups,
            structure=structure,
            seed=run.seed if seed is None else seed,
            custom_percent=percent,
        )
    except ScenarioError as error:
        raise CounterfactualError(str(error)) from None


def _power(seats: Mapping[str, float], *, rule: str, veto_group: str | None) -> dict | None:
    if RULES[rule].kind != "pass":
        return None
    try:
        indices = power_indices(seats, goal_quota(rule, veto_group=veto_group))
    except PowerError:
        return None
    return {"goal": rule, **indices.as_dict()}


def _verdict(
    scores: Mapping[str, int],
    seats: Mapping[str, float],
    *,
    rule: str,
    veto_group: str | None,
    drafts: Mapping[str, Mapping[str, int]],
    this: str,
) -> dict:
    verdicts = tally_rules(scores, seats, veto_group=veto_group)
    out = {
        "seats": dict(seats),
        "weighted_total": weighted_support(scores, seats),
        "verdicts": verdicts,
        "power": _power(seats, rule=rule, veto_group=veto_group),
        "ranking": None,
    }
    if RULES[rule].kind == "ranked":
        ranked = rank_drafts(drafts, seats, rule=rule)
        out["ranking"] = ranked.as_dict()
        out["result"] = this in ranked.winners
    else:
        out["result"] = verdicts[rule]
    return out


def run_counterfactual(
    *,
    run: Run,
    seats: str = "run",
    seed: int | None = None,
    custom: Mapping[str, float] | None = None,
    rule: str | None = None,
    veto_group: str | None = None,
) -> dict:
    """The run's stored scores re-tallied under `seats` and `rule`, beside its own seats and rule."""
    scores = run_scores(run)
    rule = rule or run.goal
    if rule not in RULES:
        raise CounterfactualError(f"rule: choose one of {', '.join(RULES)}")
    veto_group = (veto_group if veto_group is not None else run.veto_group) or None
    if veto_group is not None and veto_group not in run.groups:
        raise CounterfactualError("veto_group: the veto group must be one of the run's groups")
    if rule == "veto_power" and veto_group is None:
        raise CounterfactualError("veto_group: veto power needs a veto group")
    new_seats = counterfactual_seats(run=run, structure=seats, seed=seed, custom=custom)

    this = f"run {run.pk}"
    drafts = {this: scores}
    competitors = []
    if RULES[rule].kind == "ranked":
        for other in run_competitors(run=run):
            key = f"run {other.pk}"
            drafts[key] = {code: int(other.outcome["scores"][code]) for code in run.groups}
            competitors.append(
                {"key": key, "id": other.pk, "strategy": other.strategy, "url": reverse("run-detail", args=[other.pk])}
            )
    try:
        original = _verdict(scores, run.seats, rule=rule, veto_group=veto_group, drafts=drafts, this=this)
        counterfactual = _verdict(scores, new_seats, rule=rule, veto_group=veto_group, drafts=drafts, this=this)
    except RuleError as error:
        raise CounterfactualError(f"rule: {error}") from None
    return {
        "run": run.pk,
        "scores": scores,
        "rule": {"key": rule, "label": RULES[rule].label, "kind": RULES[rule].kind},
        "seat_structure": seats,
        "seed": seed,
        "veto_group": veto_group,
        "stored": {
            "goal": run.goal,
            "label": GOALS[run.goal].label,
            "result": (run.outcome or {}).get("goals", {}).get(run.goal),
        },
        "original": original,
        "counterfactual": counterfactual,
        "drafts": [
            {"key": this, "id": run.pk, "strategy": run.strategy, "url": reverse("run-detail", args=[run.pk])},
            *competitors,
        ],
    }
