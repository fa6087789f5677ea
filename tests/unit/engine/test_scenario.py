"""engine/scenario.py: what makes a scenario playable, and the seat order of its groups."""

import pytest

from deliberation.engine.goals import outcome_from_scores
from deliberation.engine.outcome import Outcome
from deliberation.engine.scenario import Scenario, ScenarioError


def test_valid_scenario_keeps_its_groups_in_order(make_scenario):
    scenario = make_scenario(seats={"SD": 0.3, "EPP": 0.5, "ECR": 0.2})
    assert scenario.codes == ("SD", "EPP", "ECR")
    assert scenario.group("EPP").code == "EPP"


def test_group_lookup_of_absent_code_raises_key_error(make_scenario):
    with pytest.raises(KeyError):
        make_scenario().group("ID")


@pytest.mark.parametrize("seats", [{"EPP": 0.5, "SD": 0.4}, {"EPP": 0.6, "SD": 0.6}])
def test_seats_not_summing_to_one_are_rejected(seats, make_scenario):
    with pytest.raises(ScenarioError, match="100%"):
        make_scenario(seats=seats)


def test_seats_summing_to_one_within_float_error_are_accepted(make_scenario):
    scenario = make_scenario(seats={"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})
    assert len(scenario.groups) == 3


def test_seats_naming_other_groups_are_rejected(make_scenario):
    with pytest.raises(ScenarioError, match="seats"):
        make_scenario(seats={"EPP": 0.5, "ID": 0.5}, codes=["EPP", "SD"])


def test_seats_missing_a_group_are_rejected(make_scenario):
    with pytest.raises(ScenarioError, match="seats"):
        make_scenario(seats={"EPP": 1.0}, codes=["EPP", "SD"])


def test_zero_seat_share_is_rejected(make_scenario):
    with pytest.raises(ScenarioError, match="positive"):
        make_scenario(seats={"EPP": 1.0, "SD": 0.0})


def test_unknown_goal_is_rejected(make_scenario):
    with pytest.raises(ScenarioError, match="goal"):
        make_scenario(goal="unanimity")


def test_veto_power_without_veto_group_is_rejected(make_scenario):
    with pytest.raises(ScenarioError, match="veto_group"):
        make_scenario(goal="veto_power", veto_group=None)


def test_veto_power_with_non_participating_veto_group_is_rejected(make_scenario):
    with pytest.raises(ScenarioError, match="veto_group"):
        make_scenario(goal="veto_power", veto_group="ID")


def test_veto_group_must_take_part_for_any_goal(make_scenario):
    with pytest.raises(ScenarioError, match="veto_group"):
        make_scenario(goal="simple_majority", veto_group="ID")


def test_veto_power_with_participating_veto_group_is_accepted(make_scenario):
    assert make_scenario(goal="veto_power", veto_group="SD").veto_group == "SD"


def test_duplicate_groups_are_rejected(make_record, make_group):
    with pytest.raises(ScenarioError, match="twice"):
        Scenario(
            record=make_record(),
            groups=(make_group("EPP"), make_group("EPP"), make_group("SD")),
            seats={"EPP": 0.5, "SD": 0.5},
            goal="simple_majority",
        )


@pytest.mark.parametrize("codes", [["EPP"], []])
def test_fewer_than_two_groups_are_rejected(codes, make_record, make_group):
    with pytest.raises(ScenarioError, match="at least two"):
        Scenario(
            record=make_record(),
            groups=tuple(make_group(code) for code in codes),
            seats={code: 1.0 for code in codes},
            goal="simple_majority",
        )


def test_by_seats_orders_largest_first(make_scenario):
    scenario = make_scenario(seats={"SD": 0.3, "EPP": 0.5, "ECR": 0.2})
    assert [g.code for g in scenario.by_seats()] == ["EPP", "SD", "ECR"]


def test_by_seats_keeps_scenario_order_on_ties(make_scenario):
    scenario = make_scenario(seats={"GREEN_EFA": 0.2, "SD": 0.4, "ECR": 0.2, "EPP": 0.2})
    assert [g.code for g in scenario.by_seats()] == ["SD", "GREEN_EFA", "ECR", "EPP"]


def test_outcome_dict_round_trip():
    outcome = outcome_from_scores(
        {"EPP": 7, "SD": 3},
        seats={"EPP": 0.6, "SD": 0.4},
        goal="veto_power",
        veto_group="SD",
        fallbacks=("SD",),
    )
    again = Outcome.from_dict(outcome.as_dict())
    assert again == outcome
    assert again.result is False  # the veto group SD is at 3
