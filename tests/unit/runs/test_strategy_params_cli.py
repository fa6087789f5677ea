"""`--param NAME=VALUE` on evaluate and experiment create: checked against the strategies'
declarations (engine/strategies/params.py), as the builder and the API check them."""

import pytest
from django.core.management import CommandError, call_command

from deliberation.runs.models import Experiment
from tests.unit.runs.test_benchmark import sample_set  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def evaluate(sample_set, *params):
    call_command("evaluate", "--record-set", sample_set, "--parties", "2", "--goals", "simple_majority",
                 "--strategy", "one-shot", "--model", "scripted:default", "--judge", "scripted", "--limit", "1",
                 *params, "-v0")


def test_evaluate_plays_the_given_parameters(sample_set, monkeypatch):
    from deliberation.engine.strategies.one_shot import OneShot

    seen = []
    play = OneShot.run

    def spy(self, scenario, ctx):
        seen.append(dict(ctx.params))
        return play(self, scenario, ctx)

    monkeypatch.setattr(OneShot, "run", spy)
    evaluate(sample_set, "--param", "max_tokens=120", "--param", "temperature=0.5")
    assert seen and all(params == {"temperature": 0.5, "max_tokens": 120} for params in seen)


@pytest.mark.parametrize(("params", "message"), [
    (["max_tokens=5"], "--param: max_tokens: between 16 and 2048, not 5"),
    (["rounds=1"], "--param: rounds: one-shot has no such parameter; it takes temperature, max_tokens"),
    (["max_tokens"], "--param: param: 'max_tokens' is not NAME=VALUE"),
])
def test_evaluate_refuses_bad_parameters_before_playing_anything(sample_set, params, message):
    with pytest.raises(CommandError, match=message):
        evaluate(sample_set, *[item for param in params for item in ("--param", param)])


def grid(sample_set, *options):
    call_command("experiment", "create", "--name", "grid", "--record-set", sample_set, "--parties", "2",
                 "--sample", "1", "--goals", "simple_majority", "--strategies", "one-shot", "parliament",
                 "--models", "scripted:default", "--judges", "scripted", *options)


def test_experiment_parameters_go_to_every_strategy_that_declares_them(sample_set, capsys):
    grid(sample_set, "--param", "temperature=0.2", "--param", "rapporteur=mediator", "--rounds", "0")
    spec = Experiment.objects.get(name="grid").spec
    assert spec["params"] == {"one-shot": {"temperature": 0.2},
                              "parliament": {"temperature": 0.2, "rapporteur": "mediator", "rounds": 0}}


def test_experiment_refuses_a_parameter_no_strategy_of_the_grid_has(sample_set):
    with pytest.raises(CommandError, match="no strategy of the grid has a parameter named tone"):
        grid(sample_set, "--param", "tone=calm")
    with pytest.raises(CommandError, match="--param: rounds: between 0 and 5, not 9"):
        grid(sample_set, "--param", "rounds=9")
