"""Plain data: how a run ended (the judges' scores, the seat-weighted total, every goal's result).

Below goals.py and scenario.py, which both use it: the engine's modules depend downward only."""

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Outcome:
    scores: Mapping[str, int]  # group code -> support 0..9
    seats: Mapping[str, float]
    weighted_total: float  # u = sum of seat share x score
    goals: Mapping[str, bool | float]  # every goal's pass (voting goals) or score (welfare goals)
    goal: str  # the scenario's own goal
    veto_group: str | None = None
    fallbacks: tuple[str, ...] = field(default=())  # groups whose score is the judge's fallback

    @property
    def result(self) -> bool | float:
        return self.goals[self.goal]

    def as_dict(self) -> dict:
        return {
            "scores": dict(self.scores),
            "seats": dict(self.seats),
            "weighted_total": self.weighted_total,
            "goals": dict(self.goals),
            "goal": self.goal,
            "veto_group": self.veto_group,
            "fallbacks": list(self.fallbacks),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "Outcome":
        return cls(
            scores=dict(data["scores"]),
            seats=dict(data["seats"]),
            weighted_total=data["weighted_total"],
            goals=dict(data["goals"]),
            goal=data["goal"],
            veto_group=data.get("veto_group"),
            fallbacks=tuple(data.get("fallbacks", ())),
        )
