"""Voting power: Shapley-Shubik and normalised Banzhaf indices of a weighted voting game.

Seat shares are not power. A coalition of groups wins when its seat share reaches the goal's
quota; a group's power is how often it turns a losing coalition into a winning one.

The goals' own quotas come from the 0..9 scale: if a coalition's members give a text 9 and the
rest 0, u = 9 * (its seat share), so simple majority (u >= 5) needs a share of 5/9 and two-thirds
(u >= 20/3) a share of 20/27; under veto power the veto group must also be in the coalition. The
conventional EP quotas (more than half of the votes cast, two thirds of them) are the other
option. The EU Council's double majority adds a second quota on the number of groups.

Exact arithmetic: shares become integer weights over a common denominator, the quota a Fraction,
and a dynamic programme over (coalition size, coalition weight) counts the swings of each group.
The table holds at most one entry per reachable (size, weight), so eight groups take microseconds.
"""

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from deliberation.engine.goals import GOALS, MAJORITY, TWO_THIRDS

SCALE_MAX = 9
# The EU Council's double majority: 55% of the members holding 65% of the population (seats here).
DOUBLE_MAJORITY_GROUPS = Fraction(55, 100)
DOUBLE_MAJORITY_SEATS = Fraction(65, 100)
RULE_KEYS = ("simple_majority", "two_thirds_majority", "veto_power", "double_majority")
# Seat shares arrive as floats (0.3, or 182/794 from real seat counts); the nearest fraction
# with a denominator up to this bound recovers the exact share.
MAX_DENOMINATOR = 1_000_000


class PowerError(ValueError):
    """A game that cannot be built: the message says which input and why."""


@dataclass(frozen=True)
class Quota:
    share: Fraction  # of all seats
    strict: bool = False  # "more than share" rather than "at least share"
    veto: str | None = None  # a group every winning coalition must contain
    groups_share: Fraction | None = None  # double majority: at least this share of the groups

    def label(self) -> str:
        words = [f"{'more than' if self.strict else 'at least'} {self.share} of the seats"]
        if self.groups_share is not None:
            words.append(f"at least {self.groups_share} of the groups")
        if self.veto:
            words.append(f"{self.veto} in the coalition")
        return ", ".join(words)


@dataclass(frozen=True)
class PowerIndices:
    codes: tuple[str, ...]
    seats: Mapping[str, Fraction]
    quota: Quota
    shapley_shubik: Mapping[str, Fraction]
    banzhaf: Mapping[str, Fraction]  # normalised: sums to 1 (all zero when nobody ever swings)
    swings: Mapping[str, int]  # raw Banzhaf counts

    def as_dict(self) -> dict:
        return {
            "quota": {
                "share": float(self.quota.share),
                "fraction": str(self.quota.share),
                "strict": self.quota.strict,
                "veto": self.quota.veto,
                "groups_share": None if self.quota.groups_share is None else float(self.quota.groups_share),
                "label": self.quota.label(),
            },
            "groups": [
                {
                    "code": code,
                    "seat_share": float(self.seats[code]),
                    "shapley_shubik": float(self.shapley_shubik[code]),
                    "shapley_shubik_fraction": str(self.shapley_shubik[code]),
                    "banzhaf": float(self.banzhaf[code]),
                    "banzhaf_fraction": str(self.banzhaf[code]),
                    "swings": self.swings[code],
                }
                for code in self.codes
            ],
        }


def exact_share(value: float | Fraction | int) -> Fraction:
    if isinstance(value, Fraction):
        return value
    return _exact_float(float(value))


@lru_cache(maxsize=65536)
def _exact_float(value: float) -> Fraction:
    # Seat shares repeat (tenths, a term's real seats): each is worked out once per process.
    return Fraction(value).limit_denominator(MAX_DENOMINATOR)


def parse_fraction(text: str) -> Fraction:
    """'2/3', '0.5', '5/9' -> Fraction; the CLI's and the API's way to name a quota."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise PowerError(f"quota: {text!r} is not a number or a fraction such as 2/3") from None
    return value


def goal_quota(goal: str, *, veto_group: str | None = None, convention: str = "scale") -> Quota:
    """The quota a goal implies: 'scale' reads it off the 0..9 threshold, 'ep' uses the EP's.

    'double_majority' is the Council's rule, the same under either convention.
    """
    if goal == "double_majority":
        return Quota(share=DOUBLE_MAJORITY_SEATS, groups_share=DOUBLE_MAJORITY_GROUPS)
    if goal not in GOALS:
        raise PowerError(f"goal: unknown goal {goal!r}")
    if GOALS[goal].kind != "pass":
        raise PowerError(f"goal: {goal} is a welfare score, not a vote: it has no winning coalitions")
    if goal == "veto_power" and not veto_group:
        raise PowerError("veto: veto power needs a veto group")
    veto = veto_group if goal == "veto_power" else None
    if convention == "scale":
        threshold = Fraction(20, 3) if GOALS[goal].threshold == TWO_THIRDS else Fraction(MAJORITY)
        return Quota(share=threshold / SCALE_MAX, veto=veto)
    if convention == "ep":
        if goal == "two_thirds_majority":
            return Quota(share=Fraction(2, 3), veto=veto)
        return Quota(share=Fraction(1, 2), strict=True, veto=veto)
    raise PowerError(f"convention: {convention!r} is neither 'scale' nor 'ep'")


def integer_weights(seats: Mapping[str, float | Fraction]) -> tuple[dict[str, int], int]:
    """Seat shares as integer weights over their least common denominator, and that total."""
    if not seats:
        raise PowerError("seats: no groups")
    shares = {code: exact_share(share) for code, share in seats.items()}
    if any(share <= 0 for share in shares.values()):
        raise PowerError("seats: every group needs a positive seat share")
    denominator = math.lcm(*(share.denominator for share in shares.values()))
    weights = {code: int(share * denominator) for code, share in shares.items()}
    return weights, sum(weights.values())


def _wins(weight: int, size: int, *, total: int, count: int, quota: Quota) -> bool:
    # weight/total against share, compared in integers
    lhs, rhs = weight * quota.share.denominator, quota.share.numerator * total
    if not (lhs > rhs if quota.strict else lhs >= rhs):
        return False
    return quota.groups_share is None or size * quota.groups_share.denominator >= quota.groups_share.numerator * count


def _coalitions_without(weights: Sequence[int]) -> dict[tuple[int, int], int]:
    """How many coalitions of the given players have each (size, weight): the DP table."""
    table: dict[tuple[int, int], int] = {(0, 0): 1}
    for weight in weights:
        grown = defaultdict(int, table)
        for (size, total), ways in table.items():
            grown[(size + 1, total + weight)] += ways
        table = grown
    return table


def power_indices(seats: Mapping[str, float | Fraction], quota: Quota) -> PowerIndices:
    codes = tuple(seats)
    if quota.veto is not None and quota.veto not in seats:
        raise PowerError(f"veto: {quota.veto} does not take part")
    if not 0 < quota.share <= 1 or (quota.strict and quota.share == 1):
        raise PowerError("quota: the seat quota must lie in (0, 1], and no coalition wins more than all seats")
    if quota.groups_share is not None and not 0 < quota.groups_share <= 1:
        raise PowerError("quota: the groups' quota must lie in (0, 1]")
    weights, total = integer_weights(seats)
    count = len(codes)
    factorial = [math.factorial(k) for k in range(count + 1)]
    shapley: dict[str, Fraction] = {}
    swings: dict[str, int] = {}
    for code in codes:
        others = [other for other in codes if other != code]
        table = _coalitions_without([weights[other] for other in others])
        # With a veto group V: a coalition without V never wins, so only V swings coalitions
        # that lack it, and any other group swings only coalitions that already contain V.
        if quota.veto is not None and quota.veto != code:
            vetoed = [other for other in others if other != quota.veto]
            table = {
                (size + 1, weight + weights[quota.veto]): ways
                for (size, weight), ways in _coalitions_without([weights[o] for o in vetoed]).items()
            }
        pivotal = 0
        ordering_weight = 0
        for (size, weight), ways in table.items():
            before = _wins(weight, size, total=total, count=count, quota=quota) and (
                quota.veto is None or quota.veto != code
            )
            after = _wins(weight + weights[code], size + 1, total=total, count=count, quota=quota)
            if after and not before:
                pivotal += ways
                ordering_weight += ways * factorial[size] * factorial[count - size - 1]
        swings[code] = pivotal
        shapley[code] = Fraction(ordering_weight, factorial[count])
    total_swings = sum(swings.values())
    banzhaf = {code: Fraction(swings[code], total_swings) if total_swings else Fraction(0) for code in codes}
    return PowerIndices(
        codes=codes,
        seats={code: Fraction(weights[code], total) for code in codes},
        quota=quota,
        shapley_shubik=shapley,
        banzhaf=banzhaf,
        swings=swings,
    )


def power_of(
    seats: Mapping[str, float | Fraction],
    *,
    goal: str,
    veto_group: str | None = None,
    quota: str = "scale",
    strict: bool = False,
) -> PowerIndices:
    """The indices for seat shares or seat counts (normalised here) under a goal's quota.

    `quota` is 'scale' (the goal's threshold over 0..9), 'ep' (the EP's conventional quotas) or
    a share of the seats such as '2/3' (`strict`: more than it); the goal keeps its veto group and,
    for the double majority, its quota on the groups. The CLI and the API both come through here.
    """
    shares = {code: exact_share(share) for code, share in seats.items()}
    if len(shares) < 2:
        raise PowerError("seats: give at least two groups")
    if any(share <= 0 for share in shares.values()):
        raise PowerError("seats: every group needs a positive seat share")
    total = sum(shares.values())
    shares = {code: share / total for code, share in shares.items()}
    if quota in ("scale", "ep"):
        rule = goal_quota(goal, veto_group=veto_group, convention=quota)
    else:
        base = goal_quota(goal, veto_group=veto_group)
        rule = Quota(share=parse_fraction(quota), strict=strict, veto=base.veto, groups_share=base.groups_share)
    return power_indices(shares, rule)
