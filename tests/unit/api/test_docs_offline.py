import re

import pytest


def test_the_api_docs_page_loads_nothing_from_another_host(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert re.findall(r"https?://", response.content.decode()) == []


def test_every_endpoint_is_named_by_a_sentence_in_the_schema(client):
    from deliberation.api.api import SUMMARIES

    from deliberation.api.api import api

    named = {op.view_func.__name__ for _, router in api._routers for view in router.path_operations.values() for op in view.operations}
    assert named <= set(SUMMARIES), f"a new endpoint needs its sentence in api.SUMMARIES: {named - set(SUMMARIES)}"
    schema = client.get("/api/v1/openapi.json").json()
    summaries = [operation["summary"] for path in schema["paths"].values() for operation in path.values()]
    assert summaries and all(summary in SUMMARIES.values() for summary in summaries), summaries
    assert "Pause an experiment" in summaries and not any(summary.endswith(" View") for summary in summaries)


@pytest.mark.django_db
def test_the_pages_link_the_api_docs(client):
    from django.urls import reverse

    assert f'href="{reverse("api-v1:openapi-view")}"' in client.get(reverse("home")).content.decode()
