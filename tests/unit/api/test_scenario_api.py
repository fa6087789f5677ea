"""The scenario's input model in the API: strategies and their parameters, the estimate, runs
with strategy_params, the OpenAPI types, and /api/runs as an alias of /api/v1/runs."""

import pytest

from deliberation.runs.models import Run
from tests.factories import make_record, scenario_data
from tests.unit.api.test_api import alice, bearer, enqueued, post, token  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def test_strategies_are_listed_with_their_parameters(client, token):
    listed = {s["name"]: s for s in client.get("/api/v1/strategies", **bearer(token)).json()}
    assert {"one-shot", "parliament", "greedy", "random", "real-resolution"} <= set(listed)
    rounds = next(p for p in listed["parliament"]["params"] if p["name"] == "rounds")
    assert (rounds["type"], rounds["default"], rounds["minimum"], rounds["maximum"]) == ("integer", 2, 0, 5)
    assert listed["greedy"]["params"] == [] and listed["greedy"]["needs_model"] is False
    assert [p["name"] for p in listed["advisor"]["params"] if p["names_model"]] == ["advisor_model"]


def test_the_estimate_counts_a_parliaments_steps_for_its_parameters(client, token):
    url = "/api/v1/strategies/parliament/estimate"
    answer = client.get(url, {"groups": 4, "judge": "llm", "param": ["rounds=1"]}, **bearer(token)).json()
    # 4 x 2 speeches, 1 draft, 3 amendments and 3 decisions, 4 verdicts
    assert (answer["steps"], answer["params"]["rounds"], answer["params"]["rapporteur"]) == (
        8 + 1 + 6 + 4,
        1,
        "largest",
    )
    scripted = client.get(
        url, {"groups": 4, "judge": "scripted", "param": ["rounds=1", "rapporteur=mediator"]}, **bearer(token)
    )
    assert scripted.json()["steps"] == 8 + 1 + 8


def test_the_estimate_refuses_bad_parameters_by_name_and_unknown_strategies(client, token):
    url = "/api/v1/strategies/parliament/estimate"
    bad = client.get(url, {"groups": 3, "param": ["rounds=9", "tone=calm"]}, **bearer(token))
    assert bad.status_code == 400
    assert bad.json()["errors"]["rounds"] == ["between 0 and 5, not 9"]
    assert "parliament has no such parameter" in bad.json()["errors"]["tone"][0]
    assert client.get(url, {"groups": 3, "param": ["rounds"]}, **bearer(token)).status_code == 400
    assert client.get("/api/v1/strategies/nope/estimate", {"groups": 3}, **bearer(token)).status_code == 404


def test_a_run_plays_its_strategy_params_with_the_defaults_filled_in(client, token, enqueued):
    body = scenario_data(make_record(), strategy="one-shot", strategy_params={"max_tokens": 200})
    response = post(client, "/api/v1/runs", body, token)
    assert response.status_code == 201, response.content
    assert Run.objects.get(pk=response.json()["id"]).params == {"temperature": 0.0, "max_tokens": 200}


def test_the_old_rounds_field_still_sets_the_parliaments_rounds(client, token, enqueued):
    response = post(client, "/api/v1/runs", scenario_data(make_record(), rounds=0), token)
    assert Run.objects.get(pk=response.json()["id"]).params["rounds"] == 0


def test_bad_strategy_params_answer_a_message_per_parameter(client, token, enqueued):
    body = scenario_data(make_record(), strategy_params={"rounds": 7, "temperature": "hot", "tone": 1})
    response = post(client, "/api/v1/runs", body, token)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["rounds"] == ["between 0 and 5, not 7"]
    assert errors["temperature"] == ["a number, not 'hot'"]
    assert errors["tone"][0].startswith("parliament has no such parameter; it takes rounds, rapporteur")
    assert not Run.objects.exists()


def test_the_openapi_schema_documents_the_scenarios_types_choices_and_bounds(client):
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["ScenarioIn"]
    properties = schema["properties"]
    assert set(schema["required"]) == {"record", "seat_structure", "goal", "strategy", "judge"}
    assert properties["goal"]["enum"] == [
        "simple_majority",
        "two_thirds_majority",
        "veto_power",
        "rawlsian",
        "utilitarian",
    ]
    assert "parliament" in properties["strategy"]["enum"]
    assert properties["seat_structure"]["enum"] == ["random_tenths", "real", "equal", "custom"]
    assert (properties["most_divided"]["anyOf"][0]["minimum"], properties["most_divided"]["anyOf"][0]["maximum"]) == (
        2,
        8,
    )
    assert properties["seed"]["minimum"] == 0 and properties["record"]["type"] == "integer"
    assert properties["visibility"]["enum"] == ["private", "signed_in", "link"]
    assert schema["additionalProperties"] is False


def test_api_runs_answers_as_api_v1_runs(client, alice, token, enqueued):
    client.force_login(alice)
    record = make_record()
    created = client.post("/api/runs", scenario_data(record), content_type="application/json")
    assert created.status_code == 201
    run_id = created.json()["id"]
    v1 = client.get(f"/api/v1/runs/{run_id}", **bearer(token)).json()
    assert client.get(f"/api/runs/{run_id}").json() == v1
    assert client.get("/api/runs").json() == {"runs": client.get("/api/v1/runs", **bearer(token)).json()}
    refused = client.post(
        "/api/runs",
        scenario_data(record, strategy_params={"rounds": 9}),
        content_type="application/json",
    )
    assert refused.status_code == 400 and refused.json() == {"errors": {"rounds": ["between 0 and 5, not 9"]}}


def test_the_consensus_strategies_are_offered_with_their_parameters_and_estimates(client, token):
    listed = {s["name"]: s for s in client.get("/api/v1/strategies", **bearer(token)).json()}
    assert {"mediator", "forecast", "advisor", "advisor-random", "advisor-none"} <= set(listed)
    assert [p["name"] for p in listed["mediator"]["params"]][:4] == ["candidates", "rounds", "ranking", "weighting"]
    assert [p["name"] for p in listed["advisor-none"]["params"]] == ["draft_tokens"]
    url = "/api/v1/strategies/mediator/estimate"
    # 3 groups, K 3, R 2: 6 candidates + 6 rankings + 3 critiques, then 3 verdicts
    assert (
        client.get(url, {"groups": 3, "judge": "llm", "param": ["candidates=3"]}, **bearer(token)).json()["steps"] == 18
    )


def test_a_mediator_run_from_the_api_stores_its_parameters(client, token, enqueued):
    body = scenario_data(make_record(), strategy="mediator", strategy_params={"candidates": 3, "weighting": "seats"})
    response = post(client, "/api/v1/runs", body, token)
    assert response.status_code == 201, response.content
    params = Run.objects.get(pk=response.json()["id"]).params
    assert (params["candidates"], params["rounds"], params["weighting"]) == (3, 2, "seats")


def test_an_advisor_model_the_user_may_not_use_is_refused_under_its_name(client, token, enqueued):
    body = scenario_data(make_record(), strategy="advisor", strategy_params={"advisor_model": "nope:gone"})
    response = post(client, "/api/v1/runs", body, token)
    assert response.status_code == 400
    assert "advisor_model" in response.json()["errors"]
    assert not Run.objects.exists()


def test_amulet_and_negotiation_runs_through_the_api_with_their_params_and_estimates(client, token, enqueued):
    record = make_record()
    body = scenario_data(record, strategy="negotiation", strategy_params={"max_turns": 4})
    response = post(client, "/api/v1/runs", body, token)
    assert response.status_code == 201, response.content
    assert Run.objects.get(pk=response.json()["id"]).params == {
        "max_turns": 4,
        "temperature": 0.7,
        "turn_tokens": 300,
        "final_tokens": 400,
    }
    estimate = client.get(
        "/api/v1/strategies/negotiation/estimate",
        {"groups": 3, "judge": "llm", "param": ["max_turns=4"]},
        **bearer(token),
    ).json()
    assert estimate["steps"] == 4 + 1 + 3
    amulet = client.get("/api/v1/strategies/amulet/estimate", {"groups": 3, "judge": "llm"}, **bearer(token)).json()
    assert amulet["steps"] == 1 + 3 and amulet["params"]["top_k"] == 20


def test_amulet_on_a_model_without_token_ids_is_refused_at_creation(client, token, enqueued):
    body = scenario_data(make_record(), strategy="amulet", model="scripted:no-logprobs")
    response = post(client, "/api/v1/runs", body, token)
    assert response.status_code == 400
    assert "amulet decodes token by token" in response.json()["errors"]["model"][0]
    assert not Run.objects.exists()
