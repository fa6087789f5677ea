"""Bad input never reaches a 500: every refusal has a declared status and shape."""

import json

import pytest

from deliberation.api.api import api
from deliberation.api.services import api_token_create
from deliberation.runs.models import Experiment
from deliberation.scenarios.models import SavedScenario
from tests.factories import make_record, make_user

pytestmark = pytest.mark.django_db

BEYOND_BIGINT = str(2**63 + 5)


@pytest.fixture
def token():
    return api_token_create(user=make_user("alice"), name="tests")[1]


def _auth(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _post(client, url: str, body: str, token: str):
    return client.post(url, data=body, content_type="application/json", **_auth(token))


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/records?offset={BEYOND_BIGINT}",
        f"/api/v1/runs?offset={BEYOND_BIGINT}",
        "/api/v1/runs?offset=-1",
        "/api/v1/records?limit=0",
        "/api/v1/records?limit=100000",
        f"/api/v1/records/{BEYOND_BIGINT}",
        f"/api/v1/runs/{BEYOND_BIGINT}",
        f"/api/v1/runs/1/events?after={BEYOND_BIGINT}",
        f"/api/v1/experiments/{BEYOND_BIGINT}/progress",
    ],
)
def test_numbers_out_of_range_answer_400_naming_the_parameter(client, token, url):
    response = client.get(url, **_auth(token))
    assert response.status_code == 400
    assert set(response.json()["errors"]) <= {"offset", "limit", "record_id", "run_id", "after", "experiment_id"}


def test_a_nul_in_a_query_answers_400_naming_the_parameter(client, token):
    response = client.get("/api/v1/records?q=fish%00eries", **_auth(token))
    assert response.status_code == 400
    assert "U+0000" in response.json()["errors"]["q"][0]


def test_a_nul_in_a_body_field_answers_400_naming_the_field_and_stores_nothing(client, token):
    record = make_record()
    body = {
        "record": record.pk,
        "groups": ["EPP", "SD"],
        "seat_structure": "equal",
        "goal": "simple_majority",
        "strategy": "one-shot",
        "judge": "scripted",
        "name": "bad\u0000name",
    }
    response = _post(client, "/api/v1/scenarios", json.dumps(body), token)
    assert response.status_code == 400 and "U+0000" in response.json()["errors"]["name"][0]
    grid = {
        "name": "grid\u0007",
        "goals": ["simple_majority"],
        "strategies": ["one-shot"],
        "models": ["scripted:default"],
        "judges": ["scripted"],
        "scenario_ids": [1],
    }
    response = _post(client, "/api/v1/experiments", json.dumps(grid), token)
    assert response.status_code == 400 and "U+0007" in response.json()["errors"]["name"][0]
    nested = {**grid, "name": "grid", "params": {"one-shot": {"note": ["ok", "no\u0000"]}}}
    response = _post(client, "/api/v1/experiments", json.dumps(nested), token)
    assert response.status_code == 400 and "U+0000" in response.json()["errors"]["params"][0]
    assert not SavedScenario.objects.exists() and not Experiment.objects.exists()


def test_a_body_that_is_not_json_answers_400_in_the_declared_shape(client, token):
    response = _post(client, "/api/v1/runs", "{not json", token)
    assert response.status_code == 400
    assert list(response.json()) == ["errors"] and response.json()["errors"]["__all__"]


def test_no_token_answers_401_in_the_declared_shape(client):
    response = client.post("/api/v1/runs", data="{}", content_type="application/json")
    assert response.status_code == 401 and response.json() == {"error": "Unauthorized"}


def test_every_operation_declares_its_error_answers():
    schema = api.get_openapi_schema()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            assert {"400", "401"} <= {str(code) for code in declared}, (method, path)
            if method == "post":
                assert "413" in {str(code) for code in declared}, (method, path)
            if "{" in path:
                assert "404" in {str(code) for code in declared}, (method, path)
