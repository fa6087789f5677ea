"""Plain data: what a run is about (Scenario); how it ended is engine/outcome.py."""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from deliberation.engine.goals import GOALS

SEAT_SUM_TOLERANCE = 1e-6


class ScenarioError(ValueError):
    """A scenario that cannot be played: the message says which field and why."""


@dataclass(frozen=True)
class RecordView:
    key: str  # stable identity of the record (the database id as text, or a content hash)
    title: str
    background: str
    resolution: str
    topic: str
    term: str  # "7th" | "8th" | "9th" | "10th"


@dataclass(frozen=True)
class Group:
    code: str  # "EPP", "SD", ...
    stance: str
    label: str = ""
    real_score: float | None = None  # share of the group's MEPs that voted for, 0..1
    real_choice: int | None = None  # 0..9 = min(9, floor(10 * real_score))

    @property
    def name(self) -> str:
        """What people and models read: "S&D", not the code "SD"."""
        return self.label or self.code


@dataclass(frozen=True)
class Scenario:
    record: RecordView
    groups: tuple[Group, ...]
    seats: Mapping[str, float]  # group code -> share, sums to 1
    goal: str  # a key of goals.GOALS
    veto_group: str | None = None

    def __post_init__(self) -> None:
        codes = [group.code for group in self.groups]
        if len(codes) < 2:
            raise ScenarioError("groups: a scenario needs at least two groups")
        if len(set(codes)) != len(codes):
            raise ScenarioError("groups: a group appears twice")
        if set(self.seats) != set(codes):
            raise ScenarioError("seats: seat shares must name exactly the participating groups")
        if any(share <= 0 for share in self.seats.values()):
            raise ScenarioError("seats: every group needs a positive seat share")
        if abs(math.fsum(self.seats.values()) - 1.0) > SEAT_SUM_TOLERANCE:
            raise ScenarioError("seats: seat shares must add up to 100%")
        if self.goal not in GOALS:
            raise ScenarioError(f"goal: unknown goal {self.goal!r}")
        if self.goal == "veto_power" and self.veto_group not in codes:
            raise ScenarioError("veto_group: veto power needs one of the participating groups")
        if self.veto_group is not None and self.veto_group not in codes:
            raise ScenarioError("veto_group: the veto group must take part")

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(group.code for group in self.groups)

    def group(self, code: str) -> Group:
        for group in self.groups:
            if group.code == code:
                return group
        raise KeyError(code)

    def name_of(self, code: str | None) -> str:
        return self.group(code).name if code in self.codes else (code or "")

    def by_seats(self) -> tuple[Group, ...]:
        """Groups from the largest to the smallest; ties keep the scenario's order."""
        order = {code: index for index, code in enumerate(self.codes)}
        return tuple(sorted(self.groups, key=lambda g: (-self.seats[g.code], order[g.code])))
