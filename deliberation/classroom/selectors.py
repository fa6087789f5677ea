"""Reads of classroom sessions: by code, for their teacher, the state and presence frames."""

import time
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.db.models import QuerySet
from django.utils import timezone

from deliberation.classroom.models import CODE_ALPHABET, CODE_LENGTH, ClassSession, Student
from deliberation.engine.classroom import Sitting, classroom_settings, sitting_state
from deliberation.engine.events import Event
from deliberation.engine.scenario import Scenario
from deliberation.engine.strategies.parliament import ParliamentSettings
from deliberation.runs.models import Run
from deliberation.scenarios.services import engine_scenario

SEAT_SALT = "classroom.seat"
# A student's open socket refreshes last_seen every PRESENCE_BEAT_S; one not heard from for
# PRESENCE_STALE_S counts as gone (its web process died without closing it).
PRESENCE_BEAT_S = 30
PRESENCE_STALE_S = 3 * PRESENCE_BEAT_S


def seat_session_key(code: str) -> str:
    """Where the join view keeps a student's seat token in the request session (the websocket
    reads it there)."""
    return f"classroom.{code}"


def normalised_code(code: str) -> str:
    return "".join(code.split()).upper()


def class_session_by_code(*, code: str) -> ClassSession | None:
    code = normalised_code(code)
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    return ClassSession.objects.select_related("run", "teacher").filter(code=code).first()


def class_session_for_teacher(*, user: AbstractBaseUser | AnonymousUser, code: str) -> ClassSession | None:
    """The session if `user` is its teacher, else None."""
    if not user.is_authenticated:
        return None
    session = class_session_by_code(code=code)
    return session if session is not None and session.teacher_id == user.pk else None


def sessions_for_teacher(*, user: AbstractBaseUser) -> QuerySet[ClassSession]:
    return ClassSession.objects.filter(teacher=user).select_related("run", "scenario").order_by("-created_at")


def student_for_token(*, class_session: ClassSession, token: str) -> Student | None:
    """The student a seat token names, or None when the token is missing, forged, of another
    session, or the student was removed."""
    if not token:
        return None
    try:
        claim = signing.loads(token, salt=SEAT_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(claim, dict) or claim.get("session") != class_session.pk:
        return None
    return Student.objects.filter(pk=claim.get("student"), class_session=class_session, removed=False).first()


def stored_events(*, run_id: int) -> list[Event]:
    return [
        {"seq": seq, "type": type_, "data": data}
        for seq, type_, data in Run.objects.get(pk=run_id).events.order_by("seq").values_list("seq", "type", "data")
    ]


def session_scenario(*, run: Run) -> tuple[Scenario, ParliamentSettings]:
    """The engine's scenario and the sitting's settings, from the session's run."""
    scenario = engine_scenario(
        record=run.record, groups=run.groups, seats=run.seats, goal=run.goal, veto_group=run.veto_group
    )
    return scenario, classroom_settings(run.params)


def session_sitting(*, class_session: ClassSession) -> Sitting:
    scenario, settings = session_scenario(run=class_session.run)
    return sitting_state(scenario, settings, stored_events(run_id=class_session.run_id))


def state_frame(*, sitting: Sitting) -> dict:
    """The `state` frame of the websocket protocol (docs/classroom.md). `seq` is the last event's:
    a client (or socket) keeps the frame with the highest."""
    turn = sitting.turn
    return {
        "type": "state",
        "seq": sitting.last_seq,
        "status": sitting.status,
        "phase": sitting.phase,
        "round": sitting.round,
        "rounds": sitting.settings.rounds,
        "turn": turn.as_dict() if turn else None,
        "seconds": sitting.seconds,
        "deadline": sitting.deadline,
        "remaining": sitting.remaining,
        "words_per_second": sitting.words_per_second,
        "can_advance": sitting.can_advance,
        "groups": [group.code for group in sitting.speakers],
        "rapporteur": sitting.author,
        "held": sorted(sitting.held),
        "voted": sorted(sitting.votes),
        "vote_closed": sitting.vote_closed,
    }


def session_state(*, class_session: ClassSession) -> dict:
    return state_frame(sitting=session_sitting(class_session=class_session))


def presence(*, class_session: ClassSession) -> dict:
    """The `presence` frame: every seat (in seat order) with its students, and the watchers.
    `connected`: the student has a socket open in some web process now (and it was heard from
    lately). `at` orders frames."""
    seats: dict[str, list[dict]] = {code: [] for code in class_session.run.groups}
    order = sorted(seats, key=lambda code: -class_session.run.seats[code])
    watchers: list[dict] = []
    fresh = timezone.now() - timedelta(seconds=PRESENCE_STALE_S)
    for student in class_session.students.filter(removed=False):
        connected = student.connections > 0 and student.last_seen is not None and student.last_seen >= fresh
        entry = {"id": student.pk, "name": student.name, "connected": connected, "muted": student.muted}
        (seats[student.group] if student.group in seats else watchers).append(entry)
    return {"type": "presence", "at": time.time(), "seats": {code: seats[code] for code in order}, "watchers": watchers}
