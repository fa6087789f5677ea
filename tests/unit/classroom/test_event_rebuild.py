"""Zulip-style check of a classroom session's log: after every action, the state rebuilt from the
stored events (engine/run_state.py for the run, engine/classroom.py's sitting for the session)
equals what the services recorded on the Run and ClassSession rows."""

import pytest

from deliberation.classroom import services
from deliberation.classroom.models import ClassSession
from deliberation.classroom.selectors import session_scenario, session_sitting
from deliberation.engine.classroom import sitting_state
from deliberation.engine.run_state import run_state
from tests.unit.classroom.conftest import act, open_session, play_agents, teach

pytestmark = pytest.mark.django_db


def assert_rows_agree_with_the_log(session: ClassSession) -> None:
    session = ClassSession.objects.select_related("run__record").get(pk=session.pk)
    run = session.run
    events = [
        {"seq": seq, "type": type_, "data": data}
        for seq, type_, data in run.events.order_by("seq").values_list("seq", "type", "data")
    ]
    state = run_state(events)
    scenario, settings = session_scenario(run=run)
    sitting = sitting_state(scenario, settings, events)
    assert (state.status, state.outcome, state.error or "") == (run.status, run.outcome, run.error)
    assert sitting.status == session.status
    assert sitting.deadline == (session.deadline.isoformat() if session.deadline else None)
    assert sitting.remaining == session.remaining
    if state.outcome is not None:
        assert state.votes == state.tally["scores"] == state.outcome["scores"]
        assert run.prompt_tokens == state.usage["prompt_tokens"]


def test_a_session_played_to_the_end_rebuilds_from_its_events_after_every_action(queued):
    session = open_session(phase_seconds=120)
    assert_rows_agree_with_the_log(session)
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    steps = [
        lambda: teach(session, "start"),
        lambda: play_agents(session),
        lambda: teach(session, "pause"),
        lambda: teach(session, "resume"),
        lambda: act(session, ada, "speak", text="SD opens."),
        lambda: play_agents(session),
        lambda: teach(session, "advance"),  # to drafting
        lambda: play_agents(session),
        lambda: teach(session, "advance"),  # to amendments
        lambda: play_agents(session),
        lambda: act(session, ada, "amend", text="Add a fund for poorer regions."),
        lambda: play_agents(session),
        lambda: teach(session, "advance"),  # to the vote
        lambda: play_agents(session),
        lambda: act(session, ada, "vote", score=8),
    ]
    for step in steps:
        step()
        assert_rows_agree_with_the_log(session)
    assert ClassSession.objects.get(pk=session.pk).run.status == "finished"


def test_a_session_ended_early_rebuilds_from_its_events(queued):
    session = open_session()
    teach(session, "start")
    teach(session, "end")
    assert_rows_agree_with_the_log(session)
    assert ClassSession.objects.get(pk=session.pk).status == "ended"


def test_a_failed_agent_turn_leaves_the_session_running_in_the_log_too(queued):
    session = open_session(model="scripted:fail")
    teach(session, "start")
    turn = session_sitting(class_session=session).turn
    services.classroom_agent_turn(session_id=session.pk, turn_key=turn.key)  # fails: the turn stays due
    assert_rows_agree_with_the_log(session)
    assert ClassSession.objects.get(pk=session.pk).run.events.filter(type="error").exists()
