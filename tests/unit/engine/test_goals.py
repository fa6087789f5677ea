"""engine/goals.py: the five goals against hand-computed tallies, thresholds' edges included."""

import math

import pytest

from deliberation.engine.goals import (
    GOAL_KEYS,
    GOALS,
    TWO_THIRDS,
    Tally,
    goal_requirement,
    outcome_from_scores,
    vote_position,
    weighted_support,
)


def evaluate(goal: str, scores: dict[str, int], seats: dict[str, float], veto: str | None = None):
    return GOALS[goal].evaluate(Tally(scores=scores, seats=seats, veto_group=veto))


# --- weighted support ---------------------------------------------------------------------------


def test_weighted_support_is_seat_weighted_sum():
    # 0.5*8 + 0.3*2 + 0.2*5 = 4 + 0.6 + 1 = 5.6
    assert weighted_support({"A": 8, "B": 2, "C": 5}, {"A": 0.5, "B": 0.3, "C": 0.2}) == pytest.approx(5.6)


# --- simple majority ----------------------------------------------------------------------------


def test_simple_majority_passes_at_exactly_five():
    # 0.5*9 + 0.5*1 = 5.0
    assert evaluate("simple_majority", {"A": 9, "B": 1}, {"A": 0.5, "B": 0.5}) is True


def test_simple_majority_passes_for_seventy_thirty_tie_at_five():
    # 0.7*5 + 0.3*5 = 5 in exact arithmetic
    assert evaluate("simple_majority", {"A": 5, "B": 5}, {"A": 0.7, "B": 0.3}) is True


def test_simple_majority_passes_when_float_sum_lands_a_hair_below_five():
    # Exactly 0.1*0 + 0.2*4 + 0.7*6 = 0.8 + 4.2 = 5, but in floats it is 4.999999999999999.
    scores, seats = {"A": 0, "B": 4, "C": 6}, {"A": 0.1, "B": 0.2, "C": 0.7}
    assert weighted_support(scores, seats) < 5.0
    assert evaluate("simple_majority", scores, seats) is True


def test_simple_majority_fails_just_below_five():
    # 0.9*5 + 0.1*4 = 4.5 + 0.4 = 4.9
    assert evaluate("simple_majority", {"A": 5, "B": 4}, {"A": 0.9, "B": 0.1}) is False


# --- two-thirds majority ------------------------------------------------------------------------


def test_two_thirds_passes_at_exactly_twenty_thirds():
    # (6 + 7 + 7) / 3 = 20/3; the float sum lands one ulp below the float 20/3.
    scores, seats = {"A": 6, "B": 7, "C": 7}, {"A": 1 / 3, "B": 1 / 3, "C": 1 / 3}
    assert weighted_support(scores, seats) < TWO_THIRDS
    assert evaluate("two_thirds_majority", scores, seats) is True


def test_two_thirds_fails_just_below_threshold():
    # 0.4*6 + 0.6*7 = 2.4 + 4.2 = 6.6 < 6.667
    assert evaluate("two_thirds_majority", {"A": 6, "B": 7}, {"A": 0.4, "B": 0.6}) is False


def test_two_thirds_passes_at_six_point_seven():
    # 0.3*6 + 0.7*7 = 1.8 + 4.9 = 6.7
    assert evaluate("two_thirds_majority", {"A": 6, "B": 7}, {"A": 0.3, "B": 0.7}) is True


def test_two_thirds_fails_where_simple_majority_passes():
    scores, seats = {"A": 9, "B": 1}, {"A": 0.5, "B": 0.5}
    assert evaluate("simple_majority", scores, seats) is True
    assert evaluate("two_thirds_majority", scores, seats) is False


# --- veto power ---------------------------------------------------------------------------------


def test_veto_fails_when_majority_reached_but_veto_group_gives_five():
    # u = 0.8*9 + 0.2*5 = 8.2 >= 5, but the veto group B is at 5 < 6
    assert evaluate("veto_power", {"A": 9, "B": 5}, {"A": 0.8, "B": 0.2}, veto="B") is False


def test_veto_passes_with_veto_group_at_six_and_majority_exactly_five():
    # u = 0.5*6 + 0.5*4 = 5, veto group A at 6
    assert evaluate("veto_power", {"A": 6, "B": 4}, {"A": 0.5, "B": 0.5}, veto="A") is True


def test_veto_fails_when_veto_group_content_but_no_majority():
    # u = 0.3*9 + 0.7*3 = 2.7 + 2.1 = 4.8 < 5, veto group A at 9
    assert evaluate("veto_power", {"A": 9, "B": 3}, {"A": 0.3, "B": 0.7}, veto="A") is False


def test_veto_without_veto_group_raises():
    with pytest.raises(ValueError, match="veto"):
        evaluate("veto_power", {"A": 9, "B": 9}, {"A": 0.5, "B": 0.5}, veto=None)


# --- welfare goals ------------------------------------------------------------------------------


def test_rawlsian_is_min_score_ignoring_seats():
    # B has 90% of the seats; the minimum is still C's 2
    assert evaluate("rawlsian", {"A": 7, "B": 9, "C": 2}, {"A": 0.05, "B": 0.9, "C": 0.05}) == 2.0


def test_utilitarian_is_unweighted_mean():
    # (7 + 9 + 2) / 3 = 6, whereas the seat-weighted value would be 8.65
    assert evaluate("utilitarian", {"A": 7, "B": 9, "C": 2}, {"A": 0.05, "B": 0.9, "C": 0.05}) == 6.0


def test_utilitarian_keeps_fractions():
    assert evaluate("utilitarian", {"A": 4, "B": 5}, {"A": 0.9, "B": 0.1}) == 4.5


def test_goal_kinds_split_voting_and_welfare_goals():
    assert {key for key in GOAL_KEYS if GOALS[key].kind == "pass"} == {
        "simple_majority",
        "two_thirds_majority",
        "veto_power",
    }
    assert {key for key in GOAL_KEYS if GOALS[key].kind == "score"} == {"rawlsian", "utilitarian"}
    assert GOALS["simple_majority"].threshold == 5
    assert GOALS["two_thirds_majority"].threshold == 20 / 3
    assert GOALS["rawlsian"].threshold is None


def test_veto_requirement_names_the_veto_group():
    assert "SD" in goal_requirement("veto_power", veto_group="SD")
    assert "{veto_group}" not in goal_requirement("veto_power", veto_group="SD")


# --- outcome_from_scores ------------------------------------------------------------------------


def test_outcome_from_scores_answers_every_goal():
    outcome = outcome_from_scores(
        {"A": 6, "B": 4},
        seats={"A": 0.7, "B": 0.3},
        goal="veto_power",
        veto_group="A",
        fallbacks=("B",),
    )
    # u = 4.2 + 1.2 = 5.4
    assert outcome.weighted_total == pytest.approx(5.4)
    assert outcome.goals == {
        "simple_majority": True,
        "two_thirds_majority": False,
        "veto_power": True,
        "rawlsian": 4.0,
        "utilitarian": 5.0,
    }
    assert outcome.result is True
    assert outcome.fallbacks == ("B",)
    assert outcome.scores == {"A": 6, "B": 4}


def test_outcome_from_scores_omits_veto_power_without_veto_group():
    outcome = outcome_from_scores({"A": 3, "B": 8}, seats={"A": 0.5, "B": 0.5}, goal="rawlsian", veto_group=None)
    assert set(outcome.goals) == set(GOAL_KEYS) - {"veto_power"}
    assert outcome.result == 3.0
    assert outcome.goals["utilitarian"] == 5.5
    assert outcome.goals["simple_majority"] is True  # u = 5.5


def test_outcome_weighted_total_is_exact_sum():
    outcome = outcome_from_scores(
        {"A": 0, "B": 4, "C": 6},
        seats={"A": 0.1, "B": 0.2, "C": 0.7},
        goal="simple_majority",
        veto_group=None,
    )
    assert math.isclose(outcome.weighted_total, 5.0, abs_tol=1e-12)
    assert outcome.result is True


# --- vote positions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "position"),
    [
        (0, "against"),
        (1, "against"),
        (2, "against"),
        (3, "against"),
        (4, "abstain"),
        (5, "abstain"),
        (6, "for"),
        (7, "for"),
        (8, "for"),
        (9, "for"),
    ],
)
def test_vote_position_bands(score, position):
    assert vote_position(score) == position
