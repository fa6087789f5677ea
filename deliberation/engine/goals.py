"""The five political goals of PoliCon, as data plus one pure function each.

u_i is group i's support 0..9, w_i its seat share, u = sum of w_i * u_i.
- simple_majority passes when u >= 5
- two_thirds_majority passes when u >= 20/3
- veto_power passes when u >= 5 and the veto group's u_i >= 6
- rawlsian scores min u_i, utilitarian scores mean u_i (both ignore seat shares)
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from deliberation.engine.outcome import Outcome

# Seat shares in tenths make float sums such as 0.7*5 + 0.3*5 land a hair off 5.0; a tie with
# the threshold is a pass, as in the exact arithmetic of the rules.
THRESHOLD_TOLERANCE = 1e-9
MAJORITY = 5.0
TWO_THIRDS = 20 / 3
VETO_MIN = 6


@dataclass(frozen=True)
class Tally:
    scores: Mapping[str, int]
    seats: Mapping[str, float]
    veto_group: str | None = None

    @property
    def weighted_total(self) -> float:
        return weighted_support(self.scores, self.seats)


def weighted_support(scores: Mapping[str, int], seats: Mapping[str, float]) -> float:
    return math.fsum(seats[code] * score for code, score in scores.items())


def reaches(value: float, threshold: float) -> bool:
    return value >= threshold - THRESHOLD_TOLERANCE


def _simple_majority(tally: Tally) -> bool:
    return reaches(tally.weighted_total, MAJORITY)


def _two_thirds(tally: Tally) -> bool:
    return reaches(tally.weighted_total, TWO_THIRDS)


def _veto_power(tally: Tally) -> bool:
    if tally.veto_group is None:
        raise ValueError("veto_power needs a veto group")
    return _simple_majority(tally) and tally.scores[tally.veto_group] >= VETO_MIN


def _rawlsian(tally: Tally) -> float:
    return float(min(tally.scores.values()))


def _utilitarian(tally: Tally) -> float:
    return math.fsum(tally.scores.values()) / len(tally.scores)


@dataclass(frozen=True)
class Goal:
    key: str
    label: str
    kind: Literal["pass", "score"]
    evaluate: Callable[[Tally], bool | float]
    threshold: float | None  # on u, for the voting goals
    requirement: str  # what a drafter is told to aim for


GOALS: dict[str, Goal] = {
    goal.key: goal
    for goal in (
        Goal(
            "simple_majority",
            "Simple majority",
            "pass",
            _simple_majority,
            MAJORITY,
            "The resolution should be supported by more than 50% of the members of parliament "
            "and reflect each group's stance in proportion to its seats.",
        ),
        Goal(
            "two_thirds_majority",
            "Two-thirds majority",
            "pass",
            _two_thirds,
            TWO_THIRDS,
            "The resolution should be supported by more than two-thirds of the members of "
            "parliament and reflect each group's stance in proportion to its seats.",
        ),
        Goal(
            "veto_power",
            "Veto power",
            "pass",
            _veto_power,
            MAJORITY,
            "{veto_group} holds a veto: the resolution should meet {veto_group}'s stance as far "
            "as possible while being supported by more than 50% of the members, reflecting each "
            "group's stance in proportion to its seats.",
        ),
        Goal(
            "rawlsian",
            "Rawlsian",
            "score",
            _rawlsian,
            None,
            "The resolution should follow the Rawlsian principle: maximise the benefit of the "
            "group whose position is weakest, for the greatest possible fairness.",
        ),
        Goal(
            "utilitarian",
            "Utilitarian",
            "score",
            _utilitarian,
            None,
            "The resolution should follow the utilitarian principle: maximise the sum of all groups' preferences.",
        ),
    )
}
GOAL_KEYS: tuple[str, ...] = tuple(GOALS)


def goal_requirement(goal_key: str, *, veto_group: str | None) -> str:
    return GOALS[goal_key].requirement.format(veto_group=veto_group or "")


def outcome_from_scores(
    scores: Mapping[str, int],
    *,
    seats: Mapping[str, float],
    goal: str,
    veto_group: str | None,
    fallbacks: tuple[str, ...] = (),
) -> Outcome:
    """Every goal at once: the tally is the same, so one vote answers all five questions."""
    tally = Tally(scores=scores, seats=seats, veto_group=veto_group)
    goals = {key: g.evaluate(tally) for key, g in GOALS.items() if key != "veto_power" or veto_group is not None}
    return Outcome(
        scores=dict(scores),
        seats=dict(seats),
        weighted_total=tally.weighted_total,
        goals=goals,
        goal=goal,
        veto_group=veto_group,
        fallbacks=fallbacks,
    )


# How a 0..9 support score shows in the chamber. Bands follow the judge's rubric (0-3: the text
# fails the group; 4-5: partial) with "for" from 6, the level a veto group must reach.
def vote_position(score: int) -> Literal["for", "abstain", "against"]:
    if score >= VETO_MIN:
        return "for"
    if score >= 4:
        return "abstain"
    return "against"


def goal_margin(scores: Mapping[str, float], *, seats: Mapping[str, float], goal: str, veto_group: str | None) -> float:
    """G: how far a text is past its goal. Voting goals: u - 5, u - 20/3, and for veto power
    min(u - 5, u_veto - 6), passing at G >= 0; Rawlsian and utilitarian: their score."""
    tally = Tally(scores=scores, seats=seats, veto_group=veto_group)
    if goal == "veto_power":
        if veto_group is None:
            raise ValueError("veto_power needs a veto group")
        return min(tally.weighted_total - MAJORITY, scores[veto_group] - VETO_MIN)
    definition = GOALS[goal]
    if definition.kind == "pass":
        return tally.weighted_total - definition.threshold
    return float(definition.evaluate(tally))
