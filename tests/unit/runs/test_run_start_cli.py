"""`manage.py run_start`: the command line's way to start one run, through the same validator
(scenarios.services.scenario_config_build) as the builder and the API."""

import json

import pytest
from django.core.management import CommandError, call_command

from deliberation.runs.models import Run
from deliberation.scenarios.models import SavedScenario
from tests.factories import make_record, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario_file(tmp_path):
    record = None

    def write(**fields):
        nonlocal record
        record = record or make_record()
        data = {
            "record": record.pk,
            "groups": ["EPP", "SD", "ALDE"],
            "seat_structure": "equal",
            "goal": "simple_majority",
            "strategy": "mediator",
            "strategy_params": {"candidates": 2},
            "model": "scripted:default",
            "judge": "scripted",
            "seed": 3,
            **fields,
        }
        path = tmp_path / "scenario.json"
        path.write_text(json.dumps(data))
        return path

    return write


def test_a_valid_scenario_starts_one_run_with_the_declared_parameters(scenario_file, capsys):
    make_user("ada")
    call_command("run_start", "--scenario", str(scenario_file(name="two candidates")), "--owner", "ada")
    run = Run.objects.get()
    assert (run.owner.username, run.strategy, run.seed, run.params["candidates"]) == ("ada", "mediator", 3, 2)
    assert run.params["rounds"] >= 1  # the declaration's default filled in, as the builder does
    assert run.scenario == SavedScenario.objects.get(name="two candidates")
    assert f"run {run.pk} started: /runs/{run.pk}/" in capsys.readouterr().out


def test_check_validates_and_starts_nothing(scenario_file, capsys):
    make_user("ada")
    call_command("run_start", "--scenario", str(scenario_file()), "--owner", "ada", "--check")
    assert not Run.objects.exists()
    assert json.loads(capsys.readouterr().out)["params"]["candidates"] == 2


def test_the_validators_messages_name_the_field_and_nothing_is_written(scenario_file):
    make_user("ada")
    with pytest.raises(CommandError, match=r"candidates: .*not 99"):
        call_command(
            "run_start", "--scenario", str(scenario_file(strategy_params={"candidates": 99})), "--owner", "ada"
        )
    with pytest.raises(CommandError, match="goal"):
        call_command("run_start", "--scenario", str(scenario_file(goal="unanimity")), "--owner", "ada")
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("run_start", "--scenario", str(scenario_file()), "--owner", "nobody")
    assert not Run.objects.exists()


def test_a_file_that_is_not_a_json_object_is_refused(tmp_path):
    make_user("ada")
    path = tmp_path / "scenario.json"
    path.write_text("[1, 2]")
    with pytest.raises(CommandError, match="a JSON object is expected"):
        call_command("run_start", "--scenario", str(path), "--owner", "ada")
    path.write_text("{not json")
    with pytest.raises(CommandError, match="--scenario: Expecting"):
        call_command("run_start", "--scenario", str(path), "--owner", "ada")
