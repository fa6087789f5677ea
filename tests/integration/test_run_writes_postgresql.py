"""A run's hot-path writes on PostgreSQL, where the database takes them as one statement each
(data-modifying WITH queries; SQLite, in the unit tests, takes them one after another): a step's
event with the completion cache rows of the calls it made (runs.services.events_store)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliberation.runs import services
from deliberation.runs.models import CachedCompletion, Run
from deliberation.runs.services import run_create
from tests.factories import completion_row, make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("count", [1, 3])
def test_a_steps_events_and_its_calls_completions_are_one_statement(monkeypatch, count):
    assert connection.vendor == "postgresql"
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)  # no worker: the writes alone
    run = run_create(owner=make_user(), config=scenario_config(make_record()))
    CachedCompletion.objects.create(**completion_row("stored-before", "old"))  # another worker was first
    events = [{"seq": seq, "type": "phase", "data": {"phase": "opening"}} for seq in range(1, count + 1)]
    completions = [completion_row("new-1", "7"), completion_row("new-2", "3"), completion_row("stored-before", "new")]
    with CaptureQueriesContext(connection) as queries:
        status = services.events_store(run=run, events=events, completions=completions)
    assert [query["sql"][:4] for query in queries.captured_queries] == ["WITH"]
    assert status == Run.Status.QUEUED
    assert list(run.events.values_list("seq", flat=True)) == list(range(1, count + 1))
    texts = dict(CachedCompletion.objects.values_list("key", "text"))
    assert texts == {"new-1": "7", "new-2": "3", "stored-before": "old"}
    # Written again (a replay): nothing doubles, the status is read all the same.
    assert services.events_store(run=run, events=events, completions=completions[:1]) == Run.Status.QUEUED
    assert run.events.count() == count and CachedCompletion.objects.count() == 3
