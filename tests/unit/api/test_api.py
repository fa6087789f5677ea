import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.test import Client
from openapi_spec_validator import validate

from deliberation.api.models import ApiToken
from deliberation.api.services import api_token_create, token_hash
from deliberation.runs import experiments, services
from deliberation.runs.advance import run_advance
from deliberation.runs.models import Experiment, Run
from deliberation.runs.services import run_create
from tests.factories import make_record, make_user, scenario_config, scenario_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(services, "run_enqueue", calls.append)
    monkeypatch.setattr(experiments, "_enqueue_advance", lambda experiment_id: None)
    return calls


@pytest.fixture
def alice():
    return make_user("alice")


@pytest.fixture
def token(alice):
    return api_token_create(user=alice, name="tests")[1]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def post(client: Client, url: str, body: dict, token: str):
    return client.post(url, data=json.dumps(body), content_type="application/json", **bearer(token))


def test_no_token_and_a_wrong_token_are_refused_and_a_good_token_is_let_in(client, token):
    assert client.get("/api/v1/runs").status_code == 401
    assert client.get("/api/v1/runs", **bearer("not-a-token")).status_code == 401
    assert client.get("/api/v1/runs", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401
    response = client.get("/api/v1/runs", **bearer(token))
    assert response.status_code == 200 and response.json() == []
    assert ApiToken.objects.get().last_used_at is not None


def test_only_a_hash_of_the_token_is_stored(alice):
    row, token = api_token_create(user=alice)
    assert row.key_hash == token_hash(token) and token not in row.key_hash
    assert not ApiToken.objects.filter(key_hash=token).exists()


def test_the_command_prints_a_token_that_authenticates(client, alice, capsys):
    call_command("api_token", "create", "alice")
    token = capsys.readouterr().out.strip()
    assert client.get("/api/v1/record-sets", **bearer(token)).status_code == 200


def test_a_token_of_an_inactive_user_is_refused(client, alice, token):
    alice.is_active = False
    alice.save()
    assert client.get("/api/v1/runs", **bearer(token)).status_code == 401


def test_the_session_reads_but_does_not_write(client, alice, enqueued):
    record = make_record()
    client.force_login(alice)
    assert client.get("/api/v1/runs").status_code == 200
    response = client.post("/api/v1/runs", data=json.dumps(scenario_data(record)), content_type="application/json")
    assert response.status_code == 401 and not Run.objects.exists()


def test_creating_a_run_answers_its_id_and_the_run_is_enqueued(
    client, token, alice, enqueued, django_capture_on_commit_callbacks
):
    record = make_record()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "/api/v1/runs", scenario_data(record), token)
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert run.owner == alice and run.groups == ["EPP", "SD", "ALDE"] and enqueued == [run.pk]
    detail = client.get(f"/api/v1/runs/{run.pk}", **bearer(token)).json()
    assert detail["status"] == "queued" and detail["outcome"] is None and detail["strategy"] == "parliament"


def test_an_invalid_run_answers_errors_per_field(client, token, enqueued):
    record = make_record()
    response = post(client, "/api/v1/runs", scenario_data(record, groups=["EPP"], goal="nope"), token)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "goal" in errors
    response = post(client, "/api/v1/runs", scenario_data(record, goal="veto_power"), token)
    assert response.status_code == 400 and response.json()["errors"] == {
        "veto_group": ["Veto power needs a veto group."]
    }
    response = post(client, "/api/v1/runs", scenario_data(record, seed="not a number"), token)
    assert response.status_code == 400 and "seed" in response.json()["errors"]
    assert not Run.objects.exists()


def test_models_lists_the_registry_models_the_caller_may_use(client, alice, token):
    from deliberation.registry.models import ModelEntry

    ModelEntry.objects.create(name="gpt@staff", model="openai/gpt-4o-mini", access="staff", prompt_price="0.15")
    ModelEntry.objects.filter(name="scripted:fail").update(prompt_price="1.5", completion_price="6")
    response = client.get("/api/v1/models", **bearer(token))
    assert response.status_code == 200
    names = [model["name"] for model in response.json()]
    assert names[0] == "local:smollm2-135m" and "scripted:slow" in names and "gpt@staff" not in names
    fail = next(model for model in response.json() if model["name"] == "scripted:fail")
    assert (fail["prompt_price"], fail["completion_price"]) == (1.5, 6.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model", "scripted:nope", "'scripted:nope' is not a model of this lab"),
        ("model", "gpt@staff", "you may not use 'gpt@staff'"),
        ("judge_model", "local:nope", "'local:nope' is not a model of this lab"),
        ("judge_model", "gpt@staff", "you may not use 'gpt@staff'"),
    ],
)
def test_an_unknown_or_forbidden_model_answers_400_naming_the_field_and_stores_nothing(
    client, token, enqueued, field, value, message
):
    from deliberation.registry.models import ModelEntry
    from deliberation.scenarios.models import SavedScenario

    ModelEntry.objects.create(name="gpt@staff", model="openai/gpt-4o-mini", access="staff")
    record = make_record()
    body = scenario_data(record, judge="llm", **{field: value})
    for url in ("/api/v1/runs", "/api/v1/scenarios"):
        response = post(client, url, {**body, "name": "saved"}, token)
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert list(errors) == [field] and message in errors[field][0]
    experiment = {
        "name": "grid",
        "goals": ["simple_majority"],
        "strategies": ["one-shot"],
        "judges": ["llm"],
        "record_set": "Test set",
        "parties": [2, 4],
    }
    if field == "model":
        response = post(client, "/api/v1/experiments", {**experiment, "models": ["scripted:default", value]}, token)
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert list(errors) == ["models"] and message in errors["models"][0]
    assert not Run.objects.exists() and not SavedScenario.objects.exists() and not Experiment.objects.exists()
    assert enqueued == []


def test_another_users_run_is_not_found_and_its_events_neither(client, token, enqueued):
    bob_run = run_create(owner=make_user("bob"), config=scenario_config(make_record()))
    assert client.get(f"/api/v1/runs/{bob_run.pk}", **bearer(token)).status_code == 404
    assert client.get(f"/api/v1/runs/{bob_run.pk}/events", **bearer(token)).status_code == 404
    assert client.get("/api/v1/runs", **bearer(token)).json() == []


def test_a_finished_runs_detail_has_its_outcome_and_events_after_a_seq(client, alice, token, enqueued, monkeypatch):
    monkeypatch.setattr(services, "broadcast_events", lambda *, run_id, messages: None)
    run = run_create(owner=alice, config=scenario_config(make_record()))
    run_advance(run_id=run.pk)
    detail = client.get(f"/api/v1/runs/{run.pk}", **bearer(token)).json()
    assert detail["status"] == "finished" and set(detail["outcome"]["scores"]) == {"EPP", "SD", "ALDE"}
    events = client.get(f"/api/v1/runs/{run.pk}/events?after=2", **bearer(token)).json()
    assert [event["seq"] for event in events] == list(range(3, run.events.count() + 1))
    assert events[-1]["type"] == "outcome"


def test_records_filter_and_detail(client, token):
    record = make_record(title="Fisheries quota regulation")
    make_record(title="Data protection directive")
    found = client.get("/api/v1/records?q=fisheries", **bearer(token)).json()
    assert [row["id"] for row in found] == [record.pk]
    detail = client.get(f"/api/v1/records/{record.pk}", **bearer(token)).json()
    assert {stance["group"] for stance in detail["stances"]} == {"EPP", "SD", "ALDE", "GREEN_EFA"}
    assert client.get("/api/v1/records/999999", **bearer(token)).status_code == 404
    sets = client.get("/api/v1/record-sets", **bearer(token)).json()
    assert sets[0]["name"] == "Test set" and sets[0]["records"] == 2


def test_scenarios_are_created_through_the_form_and_listed_per_owner(client, token):
    record = make_record()
    response = post(client, "/api/v1/scenarios", scenario_data(record, name="three groups"), token)
    assert response.status_code == 201, response.content
    assert response.json()["groups"] == ["EPP", "SD", "ALDE"]
    assert post(client, "/api/v1/scenarios", scenario_data(record), token).json()["errors"] == {
        "name": ["Name the scenario to save it."]
    }
    assert [row["name"] for row in client.get("/api/v1/scenarios", **bearer(token)).json()] == ["three groups"]


def test_experiments_are_created_started_followed_and_exported_by_their_owner(client, alice, token, enqueued):
    record = make_record()
    scenario = post(client, "/api/v1/scenarios", scenario_data(record, name="s"), token).json()
    body = {
        "name": "grid",
        "goals": ["simple_majority"],
        "strategies": ["one-shot"],
        "models": ["scripted:default"],
        "judges": ["scripted"],
        "seeds": [0, 1],
        "scenario_ids": [scenario["id"]],
    }
    response = post(client, "/api/v1/experiments", body, token)
    assert response.status_code == 201, response.content
    experiment_id = response.json()["id"]
    assert response.json()["estimate"]["runs"] == 2
    assert post(client, "/api/v1/experiments", body, token).json()["errors"]["name"]
    assert post(client, "/api/v1/experiments", {**body, "name": "x", "judges": ["oracle"]}, token).json()["errors"][
        "judges"
    ]

    started = post(client, f"/api/v1/experiments/{experiment_id}/start", {}, token).json()
    assert started["status"] == "running" and len(started["started_runs"]) >= 1
    progress = client.get(f"/api/v1/experiments/{experiment_id}/progress", **bearer(token)).json()
    assert progress["total"] == 2 and progress["status"] == "running"
    results = client.get(f"/api/v1/experiments/{experiment_id}/results", **bearer(token)).json()
    assert {row["run"] for row in results} == set(started["started_runs"])
    export = client.get(f"/api/v1/experiments/{experiment_id}/export.zip?format=csv", **bearer(token))
    assert export.status_code == 200 and export["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(b"".join(export.streaming_content))).namelist()[0] == "experiments.csv"
    unknown = client.get(f"/api/v1/experiments/{experiment_id}/export.zip?format=xlsx", **bearer(token))
    assert unknown.status_code == 400 and "format" in unknown.json()["errors"]
    client.force_login(alice)  # the owner's browser downloads it with the session
    assert client.get(f"/api/v1/experiments/{experiment_id}/export.zip").status_code == 200
    client.logout()

    paused = post(client, f"/api/v1/experiments/{experiment_id}/pause", {}, token)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert post(client, f"/api/v1/experiments/{experiment_id}/pause", {}, token).status_code == 409
    assert post(client, f"/api/v1/experiments/{experiment_id}/cancel", {}, token).json()["status"] == "cancelled"

    bob_token = api_token_create(user=make_user("bob"))[1]
    for url in ("", "/progress", "/results", "/export.zip"):
        assert client.get(f"/api/v1/experiments/{experiment_id}{url}", **bearer(bob_token)).status_code == 404
    for action in ("start", "pause", "cancel"):
        assert post(client, f"/api/v1/experiments/{experiment_id}/{action}", {}, bob_token).status_code == 404
    assert Experiment.objects.get(pk=experiment_id).owner == alice


def test_the_openapi_schema_validates_and_documents_every_resource(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    paths = set(schema["paths"])
    assert {
        "/api/v1/record-sets",
        "/api/v1/records",
        "/api/v1/records/{record_id}",
        "/api/v1/scenarios",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/events",
        "/api/v1/experiments",
        "/api/v1/experiments/{experiment_id}/start",
        "/api/v1/experiments/{experiment_id}/progress",
        "/api/v1/experiments/{experiment_id}/results",
        "/api/v1/experiments/{experiment_id}/export.zip",
        "/api/v1/models",
        "/api/v1/budget",
        "/api/v1/events/schema",
    } <= paths
    assert {"RunOut", "ScenarioIn", "ExperimentIn", "FieldErrorsOut"} <= set(schema["components"]["schemas"])
    assert "BearerToken" in schema["components"]["securitySchemes"]


def test_the_event_schema_is_published_with_every_type(client, token):
    assert client.get("/api/v1/events/schema").status_code == 401
    schema = client.get("/api/v1/events/schema", **bearer(token)).json()["types"]
    assert {"run_started", "speech", "vote", "outcome", "control", "seat_joined"} <= set(schema)
    assert "usage" in schema["speech"]["required"]


def test_an_experiment_of_calibration_cells_is_created_through_the_api(client, token):
    record = make_record()
    body = {
        "name": "judges",
        "goals": ["simple_majority"],
        "strategies": [],
        "models": ["scripted:default"],
        "judges": ["llm", "real-votes"],
        "record_set": record.record_set.name,
        "parties": [2, 4, 6],
    }
    assert post(client, "/api/v1/experiments", body, token).json()["errors"]["strategies"]
    response = post(
        client,
        "/api/v1/experiments",
        {**body, "calibrate": True, "calibration_models": ["scripted:slow"], "calibration_limit": 3},
        token,
    )
    assert response.status_code == 201, response.content
    experiment = response.json()
    assert experiment["estimate"]["runs"] == 0 and experiment["estimate"]["calibrations"] == 2
    assert experiment["spec"]["calibration"]["judge_models"] == ["scripted:slow"]
