"""`--param NAME=VALUE` on experiment create (evaluate's: test_benchmark.py): checked against the
strategies' declarations (engine/strategies/params.py), as the builder and the API check them."""

import pytest
from django.core.management import CommandError, call_command

from deliberation.runs.models import Experiment
from tests.factories import experiment_options
from tests.unit.runs.test_benchmark import sample_set  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def grid(sample_set, *options):
    call_command(
        "experiment",
        "create",
        "--name",
        "grid",
        "--record-set",
        sample_set,
        *experiment_options(parties=2, sample=1, strategies=["one-shot", "parliament"], seeds=None),
        *options,
    )


def test_experiment_parameters_go_to_every_strategy_that_declares_them(sample_set, capsys):
    grid(sample_set, "--param", "temperature=0.2", "--param", "rapporteur=mediator", "--rounds", "0")
    spec = Experiment.objects.get(name="grid").spec
    assert spec["params"] == {
        "one-shot": {"temperature": 0.2},
        "parliament": {"temperature": 0.2, "rapporteur": "mediator", "rounds": 0},
    }


def test_experiment_refuses_a_parameter_no_strategy_of_the_grid_has(sample_set):
    with pytest.raises(CommandError, match="no strategy of the grid has a parameter named tone"):
        grid(sample_set, "--param", "tone=calm")
    with pytest.raises(CommandError, match="--param rounds: between 0 and 5, not 9"):
        grid(sample_set, "--param", "rounds=9")
