"""engine/power.py: indices against hand-computed games, and the DP against brute force."""

import itertools
import math
import random
from fractions import Fraction as F

import pytest

from deliberation.engine.power import (
    PowerError,
    Quota,
    goal_quota,
    integer_weights,
    parse_fraction,
    power_indices,
)


def indices(seats, quota):
    result = power_indices(seats, quota)
    return dict(result.shapley_shubik), dict(result.banzhaf)


def test_issue_example_simple_majority():
    # 5/9 quota: EPP alone (0.5) loses, EPP with either partner wins, SD+RENEW (0.5) loses.
    ss, bz = indices({"EPP": 0.5, "SD": 0.3, "RENEW": 0.2}, goal_quota("simple_majority"))
    assert ss == {"EPP": F(2, 3), "SD": F(1, 6), "RENEW": F(1, 6)}
    assert bz == {"EPP": F(3, 5), "SD": F(1, 5), "RENEW": F(1, 5)}


def test_goal_quotas_come_from_the_scale():
    assert goal_quota("simple_majority").share == F(5, 9)
    assert goal_quota("two_thirds_majority").share == F(20, 27)
    veto = goal_quota("veto_power", veto_group="SD")
    assert (veto.share, veto.veto) == (F(5, 9), "SD")
    assert goal_quota("simple_majority", convention="ep") == Quota(share=F(1, 2), strict=True)
    assert goal_quota("two_thirds_majority", convention="ep") == Quota(share=F(2, 3))


def test_welfare_goals_have_no_game():
    with pytest.raises(PowerError, match="welfare"):
        goal_quota("rawlsian")
    with pytest.raises(PowerError, match="veto group"):
        goal_quota("veto_power")


def test_veto_makes_the_small_group_as_strong_as_the_largest():
    # Winning: {A,C} (0.7) and {A,B,C}; {B,C} = 0.5 < 5/9 and nothing wins without C. B is a dummy.
    ss, bz = indices({"A": 0.5, "B": 0.3, "C": 0.2}, goal_quota("veto_power", veto_group="C"))
    assert ss == {"A": F(1, 2), "B": 0, "C": F(1, 2)}
    assert bz == {"A": F(1, 2), "B": 0, "C": F(1, 2)}


def test_two_thirds_hand_computed():
    # 20/27 = 0.74 needs 0.8 in tenths: ABC, ABD, ABCD win. A and B swing 3 times, C and D once;
    # C is pivotal only right after {A,B} with D last: 2 of 24 orderings, likewise D.
    ss, bz = indices({"A": 0.4, "B": 0.3, "C": 0.2, "D": 0.1}, goal_quota("two_thirds_majority"))
    assert ss == {"A": F(5, 12), "B": F(5, 12), "C": F(1, 12), "D": F(1, 12)}
    assert bz == {"A": F(3, 8), "B": F(3, 8), "C": F(1, 8), "D": F(1, 8)}


def test_same_seats_under_simple_majority_differ():
    # 5/9 needs 0.6: AB, AC, ABD... -> A is stronger than its 40%, D is a dummy? AD=0.5 loses,
    # BCD=0.6 wins, so D swings in BCD: not a dummy.
    ss, _ = indices({"A": 0.4, "B": 0.3, "C": 0.2, "D": 0.1}, goal_quota("simple_majority"))
    assert ss["A"] == F(5, 12) and ss["D"] == F(1, 12) and ss["B"] == ss["C"] == F(1, 4)


def test_strict_ep_majority_on_a_tie():
    # More than half: with 50/50 neither group wins alone; at-least-half would let each win alone.
    strict = power_indices({"A": 0.5, "B": 0.5}, Quota(share=F(1, 2), strict=True))
    assert strict.swings == {"A": 1, "B": 1}
    loose = power_indices({"A": 0.5, "B": 0.5}, Quota(share=F(1, 2)))
    assert loose.swings == {"A": 1, "B": 1}
    assert dict(loose.shapley_shubik) == {"A": F(1, 2), "B": F(1, 2)}
    # 0.6/0.4 at more than 60%: A alone does not pass, at-least does.
    assert power_indices({"A": 0.6, "B": 0.4}, Quota(share=F(3, 5), strict=True)).shapley_shubik["B"] == F(1, 2)
    assert power_indices({"A": 0.6, "B": 0.4}, Quota(share=F(3, 5))).shapley_shubik["B"] == 0


def test_double_majority_quota_counts_groups():
    # 55% of 3 groups = 2 groups: A (0.7) alone has the seats but not the groups.
    result = power_indices({"A": 0.7, "B": 0.2, "C": 0.1}, Quota(share=F(65, 100), groups_share=F(55, 100)))
    assert dict(result.shapley_shubik) == {"A": F(2, 3), "B": F(1, 6), "C": F(1, 6)}


def test_real_seat_floats_become_exact_weights():
    counts = {"EPP": 182, "SD": 154, "RENEW": 108}
    total = sum(counts.values())
    weights, weight_total = integer_weights({c: n / total for c, n in counts.items()})
    assert {c: F(w, weight_total) for c, w in weights.items()} == {c: F(n, total) for c, n in counts.items()}


def test_parse_fraction():
    assert parse_fraction("2/3") == F(2, 3) and parse_fraction("0.5") == F(1, 2)
    with pytest.raises(PowerError):
        parse_fraction("half")


def test_bad_inputs():
    with pytest.raises(PowerError, match="veto"):
        power_indices({"A": 0.5, "B": 0.5}, Quota(share=F(1, 2), veto="C"))
    with pytest.raises(PowerError, match="positive"):
        power_indices({"A": 1.0, "B": 0.0}, Quota(share=F(1, 2)))
    with pytest.raises(PowerError, match="quota"):
        power_indices({"A": 0.5, "B": 0.5}, Quota(share=F(3, 2)))
    with pytest.raises(PowerError, match="quota"):
        power_indices({"A": 0.5, "B": 0.5}, Quota(share=F(1), strict=True))


# --- the DP against brute force -----------------------------------------------------------------


def brute_force(weights: dict[str, int], quota: Quota):
    codes = list(weights)
    total, count = sum(weights.values()), len(codes)

    def wins(members) -> bool:
        weight = sum(weights[c] for c in members)
        share = F(weight, total)
        if not (share > quota.share if quota.strict else share >= quota.share):
            return False
        if quota.groups_share is not None and F(len(members), count) < quota.groups_share:
            return False
        return quota.veto is None or quota.veto in members

    pivots = dict.fromkeys(codes, 0)
    for order in itertools.permutations(codes):
        for k in range(count):
            if wins(order[: k + 1]) and not wins(order[:k]):
                pivots[order[k]] += 1
                break
    swings = dict.fromkeys(codes, 0)
    for size in range(count + 1):
        for coalition in itertools.combinations(codes, size):
            if wins(coalition):
                for member in coalition:
                    if not wins([c for c in coalition if c != member]):
                        swings[member] += 1
    return {c: F(pivots[c], math.factorial(count)) for c in codes}, swings


@pytest.mark.parametrize("seed", range(60))
def test_dp_matches_brute_force_on_random_games(seed):
    rng = random.Random(seed)
    count = rng.randint(2, 6)
    codes = [f"G{i}" for i in range(count)]
    weights = {c: rng.randint(1, 30) for c in codes}
    strict = rng.random() < 0.3
    quota = Quota(
        share=F(rng.randint(1, 19 if strict else 20), 20),
        strict=strict,
        veto=rng.choice([None, None, *codes]),
        groups_share=rng.choice([None, None, F(55, 100), F(1, 2)]),
    )
    total = sum(weights.values())
    result = power_indices({c: F(w, total) for c, w in weights.items()}, quota)
    shapley, swings = brute_force(weights, quota)
    assert dict(result.shapley_shubik) == shapley
    assert dict(result.swings) == swings
    assert sum(result.shapley_shubik.values()) == 1


def test_eight_groups_are_instant():
    seats = {f"G{i}": F(i + 1, 36) for i in range(8)}
    result = power_indices(seats, goal_quota("two_thirds_majority"))
    assert sum(result.shapley_shubik.values()) == 1
    assert sum(result.banzhaf.values()) == 1
