"""The one scenario input (ScenarioIn) and its one validator, scenario_config_build."""

import pytest
from django.contrib.auth.models import User

from deliberation.engine.strategies import STRATEGIES
from deliberation.scenarios.schemas import ScenarioIn
from deliberation.scenarios.services import ScenarioInvalid, scenario_config_build
from tests.factories import make_record

pytestmark = pytest.mark.django_db

BASE = {
    "groups": ["EPP", "SD", "ALDE"],
    "seat_structure": "equal",
    "goal": "simple_majority",
    "strategy": "parliament",
    "model": "scripted:default",
    "judge": "scripted",
    "seed": 5,
}


def build(**fields):
    return scenario_config_build(data={**BASE, **fields}, user=User.objects.get_or_create(username="builder")[0])


def refused(**fields) -> dict[str, list[str]]:
    with pytest.raises(ScenarioInvalid) as raised:
        build(**fields)
    return raised.value.errors


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_no_strategy_parameter_is_named_like_a_scenario_field(name):
    # The builder and the API's errors name a parameter by its own name, beside the scenario's
    # (the parliament's rounds and rapporteur were scenario fields once, and still are read there).
    scenario_fields = set(ScenarioIn.model_fields) - {"rounds", "rapporteur"}
    assert not set(STRATEGIES[name].params_model.model_fields) & scenario_fields


def test_a_valid_scenario_resolves_groups_seats_and_parameters_with_defaults():
    config = build(record=make_record().pk, strategy_params={"rounds": "1"})
    assert config.groups == ("EPP", "SD", "ALDE") and config.seats == {"EPP": 1 / 3, "SD": 1 / 3, "ALDE": 1 / 3}
    assert config.params == {
        "rounds": 1,
        "rapporteur": "largest",
        "temperature": 0.7,
        "speech_tokens": 160,
        "draft_tokens": 400,
    }


def test_a_missing_record_and_choices_outside_the_lists_are_named_per_field():
    errors = refused(goal="most_votes", seat_structure="lottery", most_divided=12)
    assert errors["record"] == ["Pick a record first: search the list below and click one."]
    assert errors["goal"][0].startswith("Choose one of: 'simple_majority', 'two_thirds_majority'")
    assert errors["seat_structure"][0].startswith("Choose one of: 'random_tenths'")
    assert errors["most_divided"] == ["At most 8."]


def test_a_record_that_is_gone_models_judges_and_parameters_are_reported_together():
    errors = refused(record=999_999, model="scripted:nope", judge="oracle", strategy_params={"rounds": 6})
    assert errors["record"] == ["That record does not exist (any more): pick another one."]
    assert "'scripted:nope' is not a model of this lab" in errors["model"][0]
    assert errors["judge"][0].startswith("Unknown judge 'oracle'; choose from llm, ")
    assert errors["rounds"] == ["between 0 and 5, not 6"]


def test_a_parameter_of_another_strategy_is_refused_by_name():
    errors = refused(record=make_record().pk, strategy="one-shot", strategy_params={"rounds": 1})
    assert errors == {"rounds": ["one-shot has no such parameter; it takes temperature, max_tokens"]}


def test_the_old_top_level_rounds_counts_for_the_parliament_only():
    record = make_record()
    assert build(record=record.pk, rounds=0, rapporteur="mediator").params["rapporteur"] == "mediator"
    assert build(record=record.pk, rounds=0, strategy_params={"rounds": 3}).params["rounds"] == 3
    assert build(record=record.pk, rounds=4, strategy="greedy").params == {}


def test_unknown_fields_are_refused():
    assert refused(record=make_record().pk, colour="red") == {"colour": ["Not a field of a scenario."]}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"groups": ["EPP"]}, "groups", "Pick at least two different groups."),
        ({"groups": []}, "groups", "Pick at least two groups, or ask for the k most divided."),
        (
            {"seat_structure": "custom", "custom_seats": {"EPP": 50, "SD": 50}},
            "custom_seats",
            "Give a seat share for every participating group.",
        ),
        (
            {"seat_structure": "custom", "custom_seats": {"EPP": 50, "SD": 30, "ALDE": 10}},
            "custom_seats",
            "Custom seat shares add up to 90%, not 100%.",
        ),
        ({"goal": "veto_power"}, "veto_group", "Veto power needs a veto group."),
        (
            {"judge": "real-votes"},
            "judge",
            "The real-votes judge only scores the adopted resolution (strategy real-resolution).",
        ),
        ({"groups": ["EPP", "SD", "ECR"]}, "groups", "no stance of ECR on this record"),
    ],
)
def test_rules_beyond_types_say_what_is_wrong_under_their_field(fields, field, message):
    assert refused(record=make_record().pk, **fields) == {field: [message]}


def test_custom_seats_in_percent_become_shares():
    config = build(record=make_record().pk, seat_structure="custom", custom_seats={"EPP": "50", "SD": 30, "ALDE": 20})
    assert config.seats == {"EPP": 0.5, "SD": 0.3, "ALDE": 0.2}


def test_a_model_a_strategy_parameter_names_is_checked_against_the_registry():
    errors = refused(record=make_record().pk, strategy="advisor", strategy_params={"advisor_model": "scripted:nope"})
    assert (
        list(errors) == ["advisor_model"] and "'scripted:nope' is not a model of this lab" in errors["advisor_model"][0]
    )
    assert (
        build(
            record=make_record(title="Other").pk, strategy="advisor", strategy_params={"advisor_model": "scripted:slow"}
        ).params["advisor_model"]
        == "scripted:slow"
    )
