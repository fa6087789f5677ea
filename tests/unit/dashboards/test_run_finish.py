"""A finishing run copies what the dashboards aggregate out of its outcome (runs.services.run_finish)."""

import pytest

from deliberation.runs import services
from deliberation.runs.advance import run_advance
from deliberation.runs.models import Run
from deliberation.runs.services import outcome_goal_value, run_create
from tests.factories import make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("goal", ["simple_majority", "rawlsian"])
def test_a_finished_run_stores_its_goal_value_and_largest_share(monkeypatch, goal):
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)
    monkeypatch.setattr(services, "broadcast_events", lambda **kwargs: None)
    run = run_create(owner=make_user(), config=scenario_config(make_record(), goal=goal, strategy="greedy"))
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    expected = run.outcome["goals"][goal]
    assert run.goal_value == float(expected)
    assert run.largest_share == max(run.seats.values())


def test_outcome_goal_value_reads_pass_goals_as_one_or_zero():
    assert outcome_goal_value({"goals": {"simple_majority": True}}, "simple_majority") == 1.0
    assert outcome_goal_value({"goals": {"simple_majority": False}}, "simple_majority") == 0.0
    assert outcome_goal_value({"goals": {"rawlsian": 3.5}}, "rawlsian") == 3.5
    assert outcome_goal_value({"goals": {}}, "veto_power") is None
