"""engine/rules.py: Schulze, Borda and the double majority against hand-computed cases."""

from fractions import Fraction as F

import pytest

from deliberation.engine.rules import Ballot, RuleError, borda, double_majority, rank_drafts, schulze, tally_rules


def ranked(order: str, weight=1) -> Ballot:
    """'ACBED' -> scores A=5, C=4, ...: the first letter is preferred most."""
    return Ballot(scores={c: len(order) - i for i, c in enumerate(order)}, weight=weight)


def test_schulze_wikipedia_example():
    # The 45-voter example of Schulze's paper (and Wikipedia): E > A > C > B > D.
    ballots = [
        ranked("ACBED", 5),
        ranked("ADECB", 5),
        ranked("BEDAC", 8),
        ranked("CABED", 3),
        ranked("CAEBD", 7),
        ranked("CBADE", 2),
        ranked("DCEBA", 7),
        ranked("EBADC", 8),
    ]
    result = schulze(ballots, list("ABCDE"))
    assert result.winners == ("E",)
    assert result.ranking == (("E",), ("A",), ("C",), ("B",), ("D",))


def test_schulze_breaks_a_condorcet_cycle_by_the_strongest_path():
    # A>B by 5:2, B>C by 5:2, C>A by 4:3: a cycle; the weakest defeat (C over A) is overruled.
    ballots = [ranked("ABC", 3), ranked("BCA", 2), ranked("CAB", 2)]
    result = schulze(ballots, list("ABC"))
    assert result.ranking == (("A",), ("B",), ("C",))


def test_schulze_symmetric_cycle_is_a_three_way_tie():
    ballots = [ranked("ABC"), ranked("BCA"), ranked("CAB")]
    result = schulze(ballots, list("ABC"))
    assert result.winners == ("A", "B", "C")
    assert result.ranking == (("A", "B", "C"),)


def test_schulze_with_tied_scores_on_ballots():
    # v1 ties A and B; v2 ties A and C. A beats B (1:0) and C (1:0); B and C are level 1:1.
    ballots = [Ballot({"A": 9, "B": 9, "C": 0}), Ballot({"A": 5, "B": 3, "C": 5})]
    assert schulze(ballots, list("ABC")).ranking == (("A",), ("B", "C"))


def test_schulze_seat_weights_are_exact():
    # 0.1 + 0.2 against 0.3 is a tie in exact arithmetic, not in floats.
    ballots = [Ballot({"X": 1, "Y": 0}, 0.1), Ballot({"X": 1, "Y": 0}, 0.2), Ballot({"X": 0, "Y": 1}, 0.3)]
    assert 0.1 + 0.2 != 0.3
    assert schulze(ballots, ["X", "Y"]).winners == ("X", "Y")


def test_borda_with_ties_gives_half_points():
    ballots = [Ballot({"A": 9, "B": 9, "C": 0}), Ballot({"A": 5, "B": 3, "C": 5})]
    result = borda(ballots, list("ABC"))
    assert dict(result.points) == {"A": 3, "B": F(3, 2), "C": F(3, 2)}
    assert result.ranking == (("A",), ("B", "C"))


def test_borda_weighted_by_seats():
    # A big group's 2-0 margin against two small groups: 0.6*2 = 1.2 for X; Y gets 0.6*1 + 0.4*2 = 1.4.
    ballots = [ranked("XYZ", 0.6), ranked("YZX", 0.2), ranked("YZX", 0.2)]
    result = borda(ballots, list("XYZ"))
    assert result.points["X"] == F(6, 5) and result.points["Y"] == F(7, 5)
    assert result.winners == ("Y",)


def test_rules_reject_incomplete_ballots():
    with pytest.raises(RuleError, match="does not score"):
        schulze([Ballot({"A": 1})], ["A", "B"])
    with pytest.raises(RuleError, match="no ballots"):
        borda([], ["A"])


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"A": 7, "B": 6, "C": 2, "D": 8}, True),  # 3 of 4 groups, 0.8 of the seats
        ({"A": 9, "B": 9, "C": 0, "D": 0}, False),  # 0.7 of the seats but 2 of 4 groups < 55%
        ({"A": 2, "B": 7, "C": 7, "D": 7}, False),  # 3 of 4 groups but 0.6 < 65% of the seats
        ({"A": 5, "B": 9, "C": 9, "D": 9}, False),  # A at 5 abstains: it is not "for"
    ],
)
def test_double_majority(scores, expected):
    assert double_majority(scores, {"A": 0.4, "B": 0.3, "C": 0.2, "D": 0.1}) is expected


def test_double_majority_at_exactly_sixty_five_percent():
    assert 0.35 + 0.3 < 0.65
    assert double_majority({"A": 6, "B": 6, "C": 0}, {"A": 0.35, "B": 0.3, "C": 0.35}) is True
    assert double_majority({"A": 6, "B": 6, "C": 0}, {"A": 0.34, "B": 0.3, "C": 0.36}) is False


def test_tally_rules_gives_every_single_text_verdict():
    verdicts = tally_rules({"A": 9, "B": 9, "C": 0, "D": 0}, {"A": 0.4, "B": 0.3, "C": 0.2, "D": 0.1}, veto_group="C")
    # u = 6.3: simple majority passes, two-thirds (6.67) fails, C at 0 vetoes; 2 of 4 groups fail the double majority
    assert verdicts["simple_majority"] is True and verdicts["two_thirds_majority"] is False
    assert verdicts["veto_power"] is False and verdicts["double_majority"] is False
    assert verdicts["rawlsian"] == 0 and verdicts["utilitarian"] == 4.5
    assert tally_rules({"A": 5, "B": 5}, {"A": 0.5, "B": 0.5}, veto_group=None)["veto_power"] is None


def test_rank_drafts_weighs_groups_by_seats():
    drafts = {"X": {"A": 9, "B": 0}, "Y": {"A": 0, "B": 9}}
    assert rank_drafts(drafts, {"A": 0.6, "B": 0.4}, rule="schulze").winners == ("X",)
    assert rank_drafts(drafts, {"A": 0.4, "B": 0.6}, rule="borda").winners == ("Y",)
    assert rank_drafts(drafts, {"A": 0.5, "B": 0.5}, rule="schulze").winners == ("X", "Y")
    with pytest.raises(RuleError):
        rank_drafts(drafts, {"A": 0.5, "B": 0.5}, rule="simple_majority")
