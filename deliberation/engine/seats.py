"""Power structures (seat shares) and PoliCon's choice of participating groups."""

import itertools
import math
import random
import statistics
from collections.abc import Mapping, Sequence

from deliberation.engine.scenario import SEAT_SUM_TOLERANCE, ScenarioError

SEAT_STRUCTURES = ("random_tenths", "real", "equal", "custom")


def random_tenths(count: int, rng: random.Random) -> list[float]:
    """PoliCon's seat weights: `count` tenths, each at least 0.1, summing to 1, then shuffled.

    The same draws in the same order as the benchmark's generator (randint per group but the
    last, leaving at least one tenth for each group still to come; shuffle), on the given RNG.
    """
    if not 1 <= count <= 10:
        raise ScenarioError("seats: random tenths need between 1 and 10 groups")
    tenths: list[int] = []
    remaining = 10
    for index in range(count - 1):
        tenth = rng.randint(1, remaining - (count - index - 1))
        tenths.append(tenth)
        remaining -= tenth
    tenths.append(remaining)
    weights = [tenth / 10 for tenth in tenths]
    rng.shuffle(weights)
    return weights


def equal_shares(codes: Sequence[str]) -> dict[str, float]:
    return {code: 1 / len(codes) for code in codes}


def real_shares(codes: Sequence[str], seat_counts: Mapping[str, int]) -> dict[str, float]:
    """Real EP seats of the term, renormalised over the groups that take part."""
    missing = [code for code in codes if not seat_counts.get(code)]
    if missing:
        raise ScenarioError(f"seats: no real seat count for {', '.join(missing)} in this term")
    total = sum(seat_counts[code] for code in codes)
    return {code: seat_counts[code] / total for code in codes}


def custom_shares(shares: Mapping[str, float]) -> dict[str, float]:
    if any(share <= 0 for share in shares.values()):
        raise ScenarioError("seats: every group needs a positive seat share")
    if abs(math.fsum(shares.values()) - 1.0) > SEAT_SUM_TOLERANCE:
        raise ScenarioError(f"seats: custom shares add up to {math.fsum(shares.values()):.1%}, not 100%")
    return dict(shares)


def seat_shares(
    structure: str,
    codes: Sequence[str],
    *,
    rng: random.Random | None = None,
    seat_counts: Mapping[str, int] | None = None,
    custom: Mapping[str, float] | None = None,
) -> dict[str, float]:
    if structure == "random_tenths":
        if rng is None:
            raise ScenarioError("seats: random tenths need a seed")
        return dict(zip(codes, random_tenths(len(codes), rng)))
    if structure == "real":
        return real_shares(codes, seat_counts or {})
    if structure == "equal":
        return equal_shares(codes)
    if structure == "custom":
        if custom is None or set(custom) != set(codes):
            raise ScenarioError("seats: custom shares must name every participating group")
        return custom_shares({code: custom[code] for code in codes})
    raise ScenarioError(f"seats: unknown seat structure {structure!r}")


def select_max_variance(choices: Sequence[tuple[str, int]], k: int, rng: random.Random) -> list[str]:
    """PoliCon's party selection: the k-subset whose real choices (0..9) vary most.

    Sample variance over every k-combination in the given order; ties are broken by one
    rng.choice among the tied combinations, as the benchmark does.
    """
    if k < 2:
        raise ScenarioError("groups: pick at least two groups")
    if k > len(choices):
        raise ScenarioError(f"groups: the record has {len(choices)} groups, not {k}")
    combinations = list(itertools.combinations(choices, k))
    variances = [statistics.variance(choice for _, choice in combo) for combo in combinations]
    best = max(variances)
    tied = [combo for combo, variance in zip(combinations, variances) if variance == best]
    return [code for code, _ in rng.choice(tied)]
