"""Classroom selectors: sessions by code and for their teacher, the state and presence frames."""

import pytest
from django.contrib.auth.models import AnonymousUser

from deliberation.classroom import services
from deliberation.classroom.selectors import (
    class_session_by_code,
    class_session_for_teacher,
    presence,
    session_state,
    sessions_for_teacher,
)
from tests.factories import make_user
from tests.unit.classroom.conftest import open_session, teach

pytestmark = pytest.mark.django_db


def test_a_code_is_found_whatever_its_case_and_spacing_and_junk_finds_nothing():
    session = open_session()
    spaced = f" {session.code[:3].lower()} {session.code[3:]} "
    assert class_session_by_code(code=spaced) == session
    assert class_session_by_code(code="000000") is None
    assert class_session_by_code(code="") is None


def test_only_the_teacher_gets_the_session_and_their_list():
    session = open_session()
    other = make_user("other")
    assert class_session_for_teacher(user=session.teacher, code=session.code) == session
    assert class_session_for_teacher(user=other, code=session.code) is None
    assert class_session_for_teacher(user=AnonymousUser(), code=session.code) is None
    assert list(sessions_for_teacher(user=session.teacher)) == [session]
    assert list(sessions_for_teacher(user=other)) == []


def test_the_state_frame_names_the_due_turn_and_who_plays_it():
    session = open_session()
    lobby = session_state(class_session=session)
    assert (lobby["type"], lobby["status"], lobby["phase"], lobby["turn"], lobby["can_advance"]) == (
        "state",
        "lobby",
        None,
        None,
        False,
    )
    services.student_join(class_session=session, name="Ada", group="EPP")
    teach(session, "start")
    state = session_state(class_session=session)
    assert state["status"] == "live" and state["phase"] == "opening" and state["can_advance"]
    assert state["turn"] == {
        "key": "opening:speech:EPP",
        "kind": "speech",
        "group": "EPP",
        "by": "students",
        "about": None,
    }
    assert state["groups"] == ["EPP", "SD", "ALDE"] and state["held"] == ["EPP"] and state["rapporteur"] == "EPP"
    assert state["seq"] == session.run.events.count()


def test_presence_lists_each_seat_in_seat_order_and_the_watchers():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    services.student_join(class_session=session, name="Bob", group=None)
    gone = services.student_join(class_session=session, name="Cy", group="SD")
    teach(session, "remove", student=gone.pk)
    services.student_connected(student=ada)
    teach(session, "mute", student=ada.pk)
    frame = presence(class_session=session)
    assert frame["type"] == "presence" and list(frame["seats"]) == ["EPP", "SD", "ALDE"]
    assert frame["seats"]["SD"] == [{"id": ada.pk, "name": "Ada", "connected": True, "muted": True}]
    assert [w["name"] for w in frame["watchers"]] == ["Bob"]
    assert frame["seats"]["EPP"] == []


def test_a_socket_not_heard_from_lately_does_not_count_as_connected():
    from datetime import timedelta

    from django.utils import timezone

    from deliberation.classroom.models import Student
    from deliberation.classroom.selectors import PRESENCE_STALE_S

    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    services.student_connected(student=ada)
    assert presence(class_session=session)["seats"]["SD"][0]["connected"] is True
    # Its web process died: the count stays, the heartbeat stops.
    Student.objects.filter(pk=ada.pk).update(last_seen=timezone.now() - timedelta(seconds=PRESENCE_STALE_S + 1))
    assert presence(class_session=session)["seats"]["SD"][0]["connected"] is False
