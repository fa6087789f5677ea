"""The advisor strategies (Bayesian persuasion): the pivotal groups, the three arms, two
model slots, parameters and cost."""

import pytest

from deliberation.engine.events import event_validate
from deliberation.engine.judges import LLMJudge, ScriptedJudge
from deliberation.engine.models import ScriptedModelClient
from deliberation.engine.strategies import (
    STRATEGIES,
    ParamsError,
    RunContext,
    run_cost,
    strategy_params,
)
from deliberation.engine.strategies.advisor import (
    pivotal_groups,
)
from deliberation.engine.strategies.base import (
    model_params_of,
    usage_totals,
)


@pytest.fixture
def scenario(make_scenario):
    return make_scenario(seats={"EPP": 0.5, "SD": 0.3, "GREEN_EFA": 0.2}, goal="simple_majority")


def run(scenario, *, strategy="advisor", params=None, model=None, advisor=None, judge=None, seed=2):
    models = {"advisor_model": advisor} if advisor is not None else {}
    ctx = RunContext(
        model=model or ScriptedModelClient(),
        judge=judge or ScriptedJudge(),
        seed=seed,
        params=params or {},
        models=models,
    )
    return list(STRATEGIES[strategy].run(scenario, ctx))


# --- the state ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seats, goal, veto, expected",
    [
        # In-coalition 7, others 2, needed 5.3: a coalition needs >= 66% of the seats.
        # 50/30/20: {A, B} 80% and {A, C} 70% are minimal, {B, C} 50% fails: all three pivotal.
        ({"A": 0.5, "B": 0.3, "C": 0.2}, "simple_majority", None, ("A", "B", "C")),
        # 70/20/10: {A} alone passes (70%); every other passing coalition holds A: only A.
        ({"A": 0.7, "B": 0.2, "C": 0.1}, "simple_majority", None, ("A",)),
        # 60/30/10: {A, B} 90% and {A, C} 70% minimal: all three again (C can replace B).
        ({"A": 0.6, "B": 0.3, "C": 0.1}, "simple_majority", None, ("A", "B", "C")),
        # Two-thirds needs 6.97: only all three (100%).
        ({"A": 0.7, "B": 0.2, "C": 0.1}, "two_thirds_majority", None, ("A", "B", "C")),
        # Veto C with 70/20/10: {A, C} is minimal ({A} lacks the veto group): A and C.
        ({"A": 0.7, "B": 0.2, "C": 0.1}, "veto_power", "C", ("A", "C")),
        ({"A": 0.7, "B": 0.2, "C": 0.1}, "rawlsian", None, ("A", "B", "C")),
    ],
)
def test_pivotal_groups_by_hand(make_scenario, seats, goal, veto, expected):
    assert pivotal_groups(make_scenario(seats=seats, goal=goal, veto_group=veto)) == expected


# --- the arms -----------------------------------------------------------------------------------


def drafter_ask(model):
    ((messages, _, _),) = model.calls
    return messages[-1]["content"]


def test_no_signal_drafts_from_the_one_shot_prompt_alone(scenario):
    drafter = ScriptedModelClient()
    events = run(scenario, strategy="advisor-none", model=drafter)
    assert [e["type"] for e in events] == ["run_started", "signal", "draft", "vote", "vote", "vote", "tally", "outcome"]
    assert events[1]["data"] == {"arm": "none", "pivotal": ["EPP", "SD", "GREEN_EFA"], "text": "", "fallback": False}
    assert "Advisor brief" not in drafter_ask(drafter)
    for event in events:
        event_validate(event)


def test_the_advisor_model_briefs_the_drafter_model(scenario):
    drafter = ScriptedModelClient(responder=lambda m, p, s: "The European Parliament, as advised.")
    advisor = ScriptedModelClient(responder=lambda m, p, s: "Pivotal: EPP, S&D\nRed lines: no taxes\nOffer: a review")
    events = run(scenario, params={"advisor_model": "scripted:default"}, model=drafter, advisor=advisor)
    signal = events[1]["data"]
    assert signal["arm"] == "advisor" and signal["model"] == "scripted:default" and not signal["fallback"]
    assert signal["text"] == "Pivotal: EPP, S&D\nRed lines: no taxes\nOffer: a review"
    ((advisor_messages, _, _),) = advisor.calls
    assert "Pivotal groups (the goal needs their votes): EPP, SD, GREEN_EFA" in advisor_messages[-1]["content"]
    assert f"Advisor brief:\n'''{signal['text']}'''" in drafter_ask(drafter)
    assert events[2]["data"]["text"] == "The European Parliament, as advised."
    assert usage_totals(events)["calls"] == 2


def test_without_an_advisor_model_the_runs_model_advises(scenario):
    drafter = ScriptedModelClient()
    run(scenario, model=drafter)
    assert len(drafter.calls) == 2  # the brief, then the draft


def test_an_empty_brief_falls_back_to_the_pivotal_groups(scenario):
    events = run(scenario, advisor=ScriptedModelClient(responder=lambda m, p, s: "   "))
    assert events[1]["data"]["fallback"] is True
    assert events[1]["data"]["text"] == "Pivotal: EPP, SD, GREEN_EFA"


def test_a_long_brief_is_cut_to_120_words(scenario):
    events = run(scenario, advisor=ScriptedModelClient(responder=lambda m, p, s: "word " * 300))
    assert len(events[1]["data"]["text"].split()) == 121 and events[1]["data"]["text"].endswith("[...]")


def test_the_random_arm_calls_no_advisor_and_is_seeded(scenario):
    advisor, drafter = ScriptedModelClient(), ScriptedModelClient()
    events = run(scenario, strategy="advisor-random", model=drafter, advisor=advisor)
    assert advisor.calls == [] and len(drafter.calls) == 1
    text = events[1]["data"]["text"]
    assert text.startswith("Pivotal: ") and "\nRed lines: " in text and "\nOffer: " in text
    assert "majority" not in text.lower()  # the prior arm knows nothing of the goal
    assert f"Advisor brief:\n'''{text}'''" in drafter_ask(drafter)
    again = run(scenario, strategy="advisor-random")[1]["data"]["text"]
    others = {run(scenario, strategy="advisor-random", seed=seed)[1]["data"]["text"] for seed in range(6)}
    assert again == text and len(others) > 1


@pytest.mark.parametrize(
    "strategy, params, message",
    [
        ("advisor", {"advisor_model": 3}, "advisor_model: Input should be a valid string"),
        ("advisor", {"brief_tokens": 4}, "brief_tokens: between 32 and 512, not 4"),
        (
            "advisor-random",
            {"advisor_model": "scripted:default"},
            "advisor-random has no such parameter; it takes draft_tokens",
        ),
    ],
)
def test_parameters_are_checked(strategy, params, message):
    with pytest.raises(ParamsError, match=message):
        strategy_params(strategy, params)


@pytest.mark.parametrize("strategy", ["advisor-none", "advisor-random", "advisor"])
def test_the_cost_estimate_is_the_model_calls_made(scenario, strategy):
    drafter, advisor, judge_model = ScriptedModelClient(), ScriptedModelClient(), ScriptedModelClient()
    events = run(scenario, strategy=strategy, model=drafter, advisor=advisor, judge=LLMJudge(judge_model))
    calls = len(drafter.calls) + len(advisor.calls) + len(judge_model.calls)
    assert usage_totals(events)["calls"] == calls
    assert run_cost(strategy=strategy, party_count=3, judge_uses_model=True, params={}).steps == calls


def test_each_arm_is_a_strategy_and_only_the_advisor_arm_names_a_second_model():
    assert [STRATEGIES[name].arm for name in ("advisor-none", "advisor-random", "advisor")] == [
        "none",
        "random",
        "advisor",
    ]
    assert model_params_of(STRATEGIES["advisor"]) == ("advisor_model",)
    assert model_params_of(STRATEGIES["advisor-random"]) == model_params_of(STRATEGIES["mediator"]) == ()
