"""engine/rules.py's Schulze matrices and TBRC tie-breaking against hand-computed cases (the
mediator strategy's social choice)."""

import random
from fractions import Fraction

import pytest

from deliberation.engine.rules import Ballot, schulze, schulze_paths, schulze_tie_break


def ranked(order: str, weight=1) -> Ballot:
    """A strict ballot from "ACBED": the first letter is the best."""
    return Ballot(scores={c: len(order) - i for i, c in enumerate(order)}, weight=weight)


# electowiki's / Wikipedia's 45 voters: E > A > C > B > D
ELECTOWIKI = [
    ("ACBED", 5),
    ("ADECB", 5),
    ("BEDAC", 8),
    ("CABED", 3),
    ("CAEBD", 7),
    ("CBADE", 2),
    ("DCEBA", 7),
    ("EBADC", 8),
]
D_EXPECTED = {  # d[X][Y]: voters preferring X to Y, as the published table gives them
    "A": {"B": 20, "C": 26, "D": 30, "E": 22},
    "B": {"A": 25, "C": 16, "D": 33, "E": 18},
    "C": {"A": 19, "B": 29, "D": 17, "E": 24},
    "D": {"A": 15, "B": 12, "C": 28, "E": 14},
    "E": {"A": 23, "B": 27, "C": 21, "D": 31},
}
P_EXPECTED = {
    "A": {"B": 28, "C": 28, "D": 30, "E": 24},
    "B": {"A": 25, "C": 28, "D": 33, "E": 24},
    "C": {"A": 25, "B": 29, "D": 29, "E": 24},
    "D": {"A": 25, "B": 28, "C": 28, "E": 24},
    "E": {"A": 25, "B": 28, "C": 28, "D": 31},
}


def electowiki_ballots() -> list[Ballot]:
    return [ranked(order) for order, count in ELECTOWIKI for _ in range(count)]


def test_the_pairwise_matrix_and_strongest_paths_of_the_45_voter_example():
    d, p = schulze_paths(electowiki_ballots(), list("ABCDE"))
    for a, row in D_EXPECTED.items():
        for b, value in row.items():
            assert d[a][b] == value, (a, b)
            assert p[a][b] == P_EXPECTED[a][b], (a, b)


def test_the_45_voter_example_ranks_e_a_c_b_d_whatever_the_tie_break_seed():
    ballots = electowiki_ballots()
    ranking = schulze(ballots, list("ABCDE")).ranking
    assert ranking == (("E",), ("A",), ("C",), ("B",), ("D",))
    for seed in range(5):
        assert schulze_tie_break(ranking, ballots, random.Random(seed)) == tuple("EACBD")


def test_weighted_ballots_are_the_same_as_replicated_ones():
    weighted = [ranked(order, weight=count) for order, count in ELECTOWIKI]
    assert schulze_paths(weighted, list("ABCDE")) == schulze_paths(electowiki_ballots(), list("ABCDE"))


def test_a_symmetric_cycle_is_one_tier_and_the_first_shuffled_ballot_orders_it():
    # A>B>C, B>C>A, C>A>B: every pair 2:1 around the cycle, all paths 2, a three-way tie.
    ballots = [ranked("ABC"), ranked("BCA"), ranked("CAB")]
    d, p = schulze_paths(ballots, list("ABC"))
    assert d["A"]["B"] == d["B"]["C"] == d["C"]["A"] == 2 and d["B"]["A"] == 1
    assert all(p[a][b] == 2 for a in "ABC" for b in "ABC" if a != b)
    tiers = schulze(ballots, list("ABC")).ranking
    assert tiers == (("A", "B", "C"),)
    orders = set()
    for seed in range(20):
        shuffled = list(ballots)
        random.Random(seed).shuffle(shuffled)  # TBRC draws the ballot order first
        first = tuple(sorted("ABC", key=lambda c: -shuffled[0].scores[c]))
        order = schulze_tie_break(tiers, ballots, random.Random(seed))
        assert order == first
        orders.add(order)
    assert orders == {("A", "B", "C"), ("B", "C", "A"), ("C", "A", "B")}


def test_an_unequal_cycle_is_broken_by_the_strongest_path():
    # 4 A>B>C, 3 B>C>A, 2 C>A>B: A beats B 6:3, B beats C 7:2, C beats A 5:4.
    # p[A][C] = min(6, 7) = 6 > p[C][A] = 5; p[B][A] = min(7, 5) = 5 < 6: A > B > C.
    ballots = [ranked("ABC", 4), ranked("BCA", 3), ranked("CAB", 2)]
    _, p = schulze_paths(ballots, list("ABC"))
    assert (p["A"]["C"], p["C"]["A"], p["B"]["A"]) == (6, 5, 5)
    assert schulze(ballots, list("ABC")).ranking == (("A",), ("B",), ("C",))


def test_a_tie_below_the_winner_is_broken_by_the_ballots_in_seeded_order():
    # A first on both ballots; they disagree on B and C, so whichever ballot TBRC takes first decides.
    ballots = [ranked("ABC"), ranked("ACB")]
    tiers = schulze(ballots, list("ABC")).ranking
    assert tiers == (("A",), ("B", "C"))
    for seed in range(10):
        shuffled = list(ballots)
        random.Random(seed).shuffle(shuffled)
        expected = ("A", "B", "C") if shuffled[0] is ballots[0] else ("A", "C", "B")
        assert schulze_tie_break(tiers, ballots, random.Random(seed)) == expected


def test_ties_the_ballots_cannot_break_fall_to_a_seeded_permutation():
    ballots = [Ballot({"A": 1, "B": 1, "C": 0})]
    tiers = schulze(ballots, list("ABC")).ranking
    assert tiers == (("A", "B"), ("C",))
    orders = {schulze_tie_break(tiers, ballots, random.Random(seed)) for seed in range(20)}
    assert orders == {("A", "B", "C"), ("B", "A", "C")}  # C stays last; A/B by the permutation
    assert schulze_tie_break(tiers, ballots, random.Random(3)) == schulze_tie_break(tiers, ballots, random.Random(3))


@pytest.mark.parametrize("shares", [(Fraction(6, 10), Fraction(4, 10)), (0.6, 0.4)])
def test_seat_weights_make_the_larger_group_win_a_two_ballot_duel(shares):
    ballots = [ranked("XY", shares[0]), ranked("YX", shares[1])]
    d, _ = schulze_paths(ballots, ["X", "Y"])
    assert (d["X"]["Y"], d["Y"]["X"]) == (Fraction(6, 10), Fraction(4, 10))
    assert schulze(ballots, ["X", "Y"]).ranking == (("X",), ("Y",))
