"""Builders for classroom tests: a teacher's session of a saved scenario on the scripted model,
and a way to play the agents' turns here instead of on a worker."""

import pytest

from deliberation.classroom import services
from deliberation.classroom.models import ClassSession
from deliberation.classroom.selectors import session_sitting
from deliberation.scenarios.services import scenario_save
from tests.factories import make_record, make_user, scenario_config

GROUPS = ("EPP", "SD", "ALDE")  # equal seats: seat order EPP, SD, ALDE; EPP is the rapporteur


def open_session(teacher=None, *, phase_seconds=None, words_per_second=0.0, **overrides) -> ClassSession:
    teacher = teacher or make_user("teacher")
    record = make_record(title=f"Regulation taught by {teacher.username}")
    config = scenario_config(record, seat_structure="equal", rounds=0, **overrides)
    scenario = scenario_save(owner=teacher, name="class", config=config)
    return services.class_session_open(
        teacher=teacher, scenario=scenario, phase_seconds=phase_seconds, words_per_second=words_per_second
    )


def play_agents(class_session: ClassSession) -> None:
    """Play every agent turn that is due, as the worker would, until a student's turn or the end."""
    while True:
        turn = session_sitting(class_session=class_session).turn
        if turn is None or turn.by != "agent" or session_sitting(class_session=class_session).status != "live":
            return
        services.classroom_agent_turn(session_id=class_session.pk, turn_key=turn.key)


def teach(class_session: ClassSession, action: str, **payload) -> None:
    services.classroom_act(class_session=class_session, teacher=class_session.teacher, action=action, payload=payload)


def act(class_session: ClassSession, student, action: str, **payload) -> None:
    services.classroom_act(class_session=class_session, student=student, action=action, payload=payload)


@pytest.fixture
def queued(monkeypatch):
    """What the services queue on commit (agent turns, timers), recorded instead of sent."""
    calls = {"agent": [], "timer": []}
    monkeypatch.setattr(services, "queue_agent_turn", lambda **kw: calls["agent"].append(kw))
    monkeypatch.setattr(services, "queue_timer", lambda **kw: calls["timer"].append(kw))
    return calls
