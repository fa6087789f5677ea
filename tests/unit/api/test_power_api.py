"""/api/v1/power and /api/v1/runs/{id}/counterfactual: answers, errors, and who may read them."""

import pytest
from django.test import Client

from deliberation.api.services import api_token_create
from deliberation.runs.models import Run
from deliberation.runs.services import run_create
from tests.factories import make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return make_user("alice")


@pytest.fixture
def auth(alice):
    return {"HTTP_AUTHORIZATION": f"Bearer {api_token_create(user=alice, name='tests')[1]}"}


def finished(owner, record=None, **fields) -> Run:
    run = run_create(owner=owner, config=scenario_config(record or make_record()))
    seats = {"EPP": 0.5, "SD": 0.3, "ALDE": 0.2}
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.FINISHED,
        seats=seats,
        outcome={
            "scores": {"EPP": 9, "SD": 2, "ALDE": 3},
            "seats": seats,
            "goal": "simple_majority",
            "goals": {"simple_majority": True},
            "weighted_total": 5.7,
        },
        **fields,
    )
    return Run.objects.get(pk=run.pk)


def test_power_answers_the_issue_example(client: Client, auth):
    response = client.get("/api/v1/power?seats=EPP:0.5&seats=SD:0.3&seats=RENEW:0.2&goal=simple_majority", **auth)
    assert response.status_code == 200
    groups = {g["code"]: (g["shapley_shubik_fraction"], g["banzhaf_fraction"]) for g in response.json()["groups"]}
    assert groups == {"EPP": ("2/3", "3/5"), "SD": ("1/6", "1/5"), "RENEW": ("1/6", "1/5")}


def test_power_refuses_bad_input_per_field(client: Client, auth):
    assert client.get("/api/v1/power?seats=EPP:0.5&seats=SD:x", **auth).json() == {
        "errors": {"seats": ["'x' is not a number"]}
    }
    assert "goal" in client.get("/api/v1/power?seats=A:1&seats=B:1&goal=rawlsian", **auth).json()["errors"]
    veto = client.get("/api/v1/power?seats=A:1&seats=B:1&goal=veto_power", **auth)
    assert veto.status_code == 400 and "veto" in veto.json()["errors"]
    assert client.get("/api/v1/power?seats=A:1&seats=B:1").status_code == 401


def test_counterfactual_of_a_finished_run(client: Client, alice, auth):
    run = finished(alice)
    response = client.get(f"/api/v1/runs/{run.pk}/counterfactual?seats=equal&rule=simple_majority", **auth)
    assert response.status_code == 200
    body = response.json()
    assert body["original"]["result"] is True and body["counterfactual"]["result"] is False
    custom = client.get(
        f"/api/v1/runs/{run.pk}/counterfactual?seats=custom&custom=EPP:1&custom=SD:1&custom=ALDE:2", **auth
    )
    assert custom.json()["counterfactual"]["weighted_total"] == pytest.approx(4.25)


def test_counterfactual_errors(client: Client, alice, auth):
    run = finished(alice)
    bad = client.get(f"/api/v1/runs/{run.pk}/counterfactual?seats=custom&custom=EPP:1", **auth)
    assert bad.status_code == 400 and "custom" in bad.json()["errors"]
    assert client.get(f"/api/v1/runs/{run.pk}/counterfactual?rule=nope", **auth).json()["errors"]["rule"]
    queued = run_create(owner=alice, config=scenario_config(run.record))
    assert client.get(f"/api/v1/runs/{queued.pk}/counterfactual", **auth).status_code == 409
    bobs = finished(make_user("bob"), record=run.record)
    assert client.get(f"/api/v1/runs/{bobs.pk}/counterfactual", **auth).status_code == 404


def test_a_share_link_reads_the_counterfactual_without_signing_in(client: Client, alice):
    run = finished(alice, visibility=Run.Visibility.LINK)
    assert client.get(f"/api/v1/runs/{run.pk}/counterfactual").status_code == 401
    assert client.get(f"/api/v1/runs/{run.pk}/counterfactual?token=wrong").status_code == 401  # a wrong token: 401
    assert client.get(f"/api/v1/runs/{run.pk}/counterfactual?token={run.share_token}").status_code == 200
    # the token opens this run's re-tally only, not the rest of the API
    assert client.get(f"/api/v1/runs?token={run.share_token}").status_code == 401


def test_the_schema_documents_the_new_operations(client: Client):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/runs/{run_id}/counterfactual"]["get"]
    assert {"200", "400", "404", "409"} <= set(operation["responses"])
    assert {"200", "400"} <= set(schema["paths"]["/api/v1/power"]["get"]["responses"])


def test_power_takes_the_ep_convention_and_a_numeric_quota(client: Client, auth):
    ep = client.get("/api/v1/power?seats=A:1&seats=B:1&quota=ep", **auth).json()
    assert ep["quota"]["strict"] is True and ep["quota"]["fraction"] == "1/2"
    numeric = client.get("/api/v1/power?seats=A:0.5&seats=B:0.3&seats=C:0.2&quota=3/10&strict=true", **auth).json()
    assert [g["shapley_shubik_fraction"] for g in numeric["groups"]] == ["2/3", "1/6", "1/6"]
