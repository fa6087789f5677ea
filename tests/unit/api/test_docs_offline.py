import re

import pytest


def test_the_api_docs_page_loads_nothing_from_another_host(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert re.findall(r"https?://", response.content.decode()) == []


def test_every_endpoint_is_named_by_a_sentence_in_the_schema(client):
    from deliberation.api.api import SUMMARIES, api

    named = {
        op.view_func.__name__
        for _, router in api._routers
        for view in router.path_operations.values()
        for op in view.operations
    }
    assert len(named & set(SUMMARIES)) >= 20  # the endpoints of the first releases have their sentence
    schema = client.get("/api/v1/openapi.json").json()
    summaries = [operation["summary"] for path in schema["paths"].values() for operation in path.values()]
    assert "Pause an experiment" in summaries and "Start a run" in summaries
    # None reads as a view function's title ("Experiment Pause View"): sentences, lower case after the first word.
    for summary in summaries:
        words = summary.split()
        assert not summary.endswith(" View") and not (len(words) > 1 and all(w[:1].isupper() for w in words)), summary


def test_an_endpoint_without_a_sentence_gets_one_from_its_docstring_or_its_name():
    from deliberation.api.api import _summary

    def experiment_frobnicate_view(request):
        """Frobnicate an experiment. More words."""

    def run_twiddle_view(request):
        pass

    assert _summary(experiment_frobnicate_view) == "Frobnicate an experiment"
    assert _summary(run_twiddle_view) == "Run twiddle"


@pytest.mark.django_db
def test_the_pages_link_the_api_docs(client):
    from django.urls import reverse

    assert f'href="{reverse("api-v1:openapi-view")}"' in client.get(reverse("home")).content.decode()
