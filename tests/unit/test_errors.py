"""One error vocabulary (deliberation/errors.py) and its mapping on each interface (issue 12 §5)."""

import ast
import json
from pathlib import Path

import pytest
from django.core.management import CommandError

from deliberation.commands import ApplicationCommand
from deliberation.errors import (
    ApplicationError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    error_body,
    websocket_close_code,
    websocket_refusal,
)
from deliberation.registry.selectors import ModelRefused
from deliberation.runs.budgets import BudgetExceeded
from deliberation.runs.counterfactuals import CounterfactualError, NotFinished
from deliberation.runs.experiments import ExperimentError
from deliberation.runs.services import RunControlError
from deliberation.scenarios.services import ScenarioInvalid
from tests.factories import make_record, make_user, scenario_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (Invalid("seed: must be a number"), 400, {"errors": {"seed": ["must be a number"]}}),
        (Invalid("a message without a field"), 400, {"errors": {"__all__": ["a message without a field"]}}),
        (Invalid("too many", field="groups"), 400, {"errors": {"groups": ["too many"]}}),
        (BudgetExceeded("3 steps left today"), 400, {"errors": {"budget": ["3 steps left today"]}}),
        (ModelRefused("model", "not for you"), 400, {"errors": {"model": ["not for you"]}}),
        (
            ScenarioInvalid({"goal": ["unknown"], "seed": ["low"]}),
            400,
            {"errors": {"goal": ["unknown"], "seed": ["low"]}},
        ),
        (CounterfactualError("custom: 'x' is not CODE:VALUE"), 400, {"errors": {"custom": ["'x' is not CODE:VALUE"]}}),
        (NotFinished("run: not finished"), 409, {"error": "run: not finished"}),
        (RunControlError("a finished run cannot be paused"), 409, {"error": "a finished run cannot be paused"}),
        (Forbidden("only the run's owner can control it"), 403, {"error": "only the run's owner can control it"}),
        (NotFound("no such run"), 404, {"error": "no such run"}),
        (Conflict("not now"), 409, {"error": "not now"}),
    ],
)
def test_each_kind_of_error_has_its_status_and_body(error, status, body):
    assert isinstance(error, ApplicationError)
    assert (error.status, error_body(error)) == (status, body)


def test_the_services_errors_keep_their_messages_and_stay_value_errors_where_they_were():
    assert str(BudgetExceeded("3 left")) == "budget: 3 left"
    assert str(ModelRefused("model", "gone")) == "model: gone"
    for kind in (BudgetExceeded, ModelRefused, RunControlError, ExperimentError, CounterfactualError, NotFinished):
        assert issubclass(kind, ValueError)


def test_a_refused_socket_closes_with_4000_plus_the_status():
    assert (websocket_close_code(Forbidden), websocket_close_code(NotFound)) == (4403, 4404)


def test_a_refused_websocket_action_names_its_kind_and_message():
    frame = websocket_refusal(Forbidden("the session has not started"), action="speak")
    assert frame == {
        "type": "refused",
        "action": "speak",
        "code": "forbidden",
        "message": "the session has not started",
    }


def test_an_application_error_ends_a_command_as_a_command_error():
    class Refusing(ApplicationCommand):
        def handle(self, *args, **options):
            raise ExperimentError("models: 'x' is not a model of this lab")

    with pytest.raises(CommandError, match="^models: 'x' is not a model of this lab$"):
        Refusing().execute(verbosity=0, no_color=True, force_color=False, skip_checks=True)


def test_the_experiment_evaluate_and_calibrate_commands_map_errors_in_one_place():
    from deliberation.calibration.management.commands import judge_calibrate
    from deliberation.runs.management.commands import evaluate, experiment

    for module in (judge_calibrate, evaluate, experiment):
        assert issubclass(module.Command, ApplicationCommand)


def test_no_authorisation_uses_the_built_in_permission_error():
    """PermissionError is an OSError (a file's mode), not a user's right: services raise Forbidden."""
    uses = []
    for path in sorted([*(REPO / "deliberation").rglob("*.py"), *(REPO / "worker").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name) and node.id == "PermissionError":
                uses.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert uses == []


@pytest.mark.django_db
def test_a_plain_view_answers_a_forbidden_control_with_403_and_its_message(client, monkeypatch):
    from deliberation.runs import services

    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)
    owner, other = make_user("alice"), make_user("bob")
    run = services.run_create(owner=owner, config=scenario_config(make_record()), visibility="signed_in")
    client.force_login(other)
    response = client.post(f"/runs/{run.pk}/pause", HTTP_X_REQUESTED_WITH="fetch")
    assert response.status_code == 403
    assert json.loads(response.content) == {"error": "only the run's owner can control it"}
