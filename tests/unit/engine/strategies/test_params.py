"""Strategy parameters: every strategy declares them; one validation with clear messages; the
description the builder shows; the estimate of model steps against the calls a run makes."""

import pytest

from deliberation.engine.judges import LLMJudge, ScriptedJudge
from deliberation.engine.models import ScriptedModelClient
from deliberation.engine.strategies import (
    STRATEGIES,
    ParamsError,
    RunContext,
    run_cost,
    strategy_descriptions,
    strategy_params,
)
from deliberation.engine.strategies.params import StrategyParams
from tests.unit.engine.strategies.test_parliament import SCENARIO, Chamber


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_declares_parameters_whose_defaults_validate(name):
    strategy = STRATEGIES[name]
    assert issubclass(strategy.params_model, StrategyParams)
    defaults = strategy_params(name, {})
    described = next(d for d in strategy_descriptions() if d["name"] == name)["params"]
    assert {p["name"]: p["default"] for p in described} == defaults.model_dump()
    assert strategy_params(name, defaults.model_dump()) == defaults


def test_parliament_is_described_with_types_ranges_choices_and_help():
    described = {p["name"]: p for p in next(d for d in strategy_descriptions() if d["name"] == "parliament")["params"]}
    assert described["rounds"] == {
        "name": "rounds",
        "label": "Negotiation rounds",
        "type": "integer",
        "default": 2,
        "minimum": 0,
        "maximum": 5,
        "choices": [],
        "help": described["rounds"]["help"],
        "names_model": False,
    }
    assert described["rounds"]["help"].startswith("Rounds in which every group answers")
    assert described["rapporteur"]["type"] == "choice"
    assert described["rapporteur"]["choices"] == [["largest", "The largest group"], ["mediator", "A neutral mediator"]]
    assert described["temperature"]["type"] == "number"


def test_form_strings_are_read_as_their_declared_types():
    params = strategy_params("parliament", {"rounds": "3", "temperature": "0.5", "rapporteur": "mediator"})
    assert (params.rounds, params.temperature, params.rapporteur) == (3, 0.5, "mediator")


@pytest.mark.parametrize(
    ("raw", "name", "message"),
    [
        ({"rounds": 6}, "rounds", "between 0 and 5, not 6"),
        ({"rounds": -1}, "rounds", "between 0 and 5, not -1"),
        ({"rounds": "two"}, "rounds", "a whole number, not 'two'"),
        ({"rounds": 1.5}, "rounds", "a whole number, not 1.5"),
        ({"temperature": "hot"}, "temperature", "a number, not 'hot'"),
        ({"rapporteur": "speaker"}, "rapporteur", "one of largest, mediator, not 'speaker'"),
        (
            {"round": 1},
            "round",
            "parliament has no such parameter; it takes rounds, rapporteur, temperature, speech_tokens, draft_tokens",
        ),
    ],
)
def test_bad_parameters_name_the_parameter_and_what_is_allowed(raw, name, message):
    with pytest.raises(ParamsError) as raised:
        strategy_params("parliament", raw)
    assert raised.value.errors == {name: [message]}
    assert str(raised.value) == f"{name}: {message}"


def test_every_bad_parameter_is_reported_at_once():
    with pytest.raises(ParamsError) as raised:
        strategy_params("one-shot", {"max_tokens": 1, "temperature": 3, "rounds": 1})
    assert set(raised.value.errors) == {"max_tokens", "temperature", "rounds"}


def test_a_strategy_without_parameters_says_so():
    with pytest.raises(ParamsError, match="greedy takes no parameters"):
        strategy_params("greedy", {"rounds": 1})


def test_parameters_must_be_an_object():
    with pytest.raises(ParamsError, match="strategy_params: give parliament's parameters as an object"):
        strategy_params("parliament", ["rounds", 1])


def test_a_run_refuses_parameters_its_strategy_does_not_declare():
    ctx = RunContext(model=ScriptedModelClient(), judge=ScriptedJudge(), seed=1, params={"rounds": 1})
    with pytest.raises(ParamsError, match="one-shot has no such parameter"):
        list(STRATEGIES["one-shot"].run(SCENARIO, ctx))


def _model_calls(name: str, params: dict, *, llm_judge: bool) -> int:
    model = ScriptedModelClient(responder=Chamber())
    judge = LLMJudge(ScriptedModelClient(responder=lambda messages, p, seed: "7")) if llm_judge else ScriptedJudge()
    list(STRATEGIES[name].run(SCENARIO, RunContext(model=model, judge=judge, seed=3, params=params)))
    return len(model.calls) + (len(judge.client.calls) if llm_judge else 0)


@pytest.mark.parametrize("llm_judge", [False, True])
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("one-shot", {}),
        ("parliament", {"rounds": 0}),
        ("parliament", {"rounds": 2, "rapporteur": "mediator"}),
        ("greedy", {}),
        ("random", {}),
        ("real-resolution", {}),
    ],
)
def test_the_estimate_counts_the_model_calls_a_run_makes(name, params, llm_judge):
    # The chamber rejects every amendment, so no revision comes on top of the estimate.
    estimate = run_cost(strategy=name, party_count=len(SCENARIO.groups), judge_uses_model=llm_judge, params=params)
    assert estimate.steps == _model_calls(name, params, llm_judge=llm_judge)
