"""Classroom sessions: every write (docs/classroom.md).

The rules are the engine's (engine/classroom.py); here they meet the database. Every action runs
`_write`: in one transaction, lock the session's Run row, read its events, ask the engine for the
new events, append them at the next sequence numbers, and, on commit, broadcast them (event_append),
send the new state to the session's sockets and queue what comes next (an agent's turn, the timer).
Teacher, students and agent tasks all append this way, so their sequence numbers never collide.
"""

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from deliberation.classroom.models import CODE_ALPHABET, CODE_LENGTH, NAME_LIMIT, ClassSession, Student
from deliberation.classroom.selectors import (
    SEAT_SALT,
    presence,
    session_scenario,
    state_frame,
    stored_events,
)
from deliberation.engine import classroom as rules
from deliberation.engine.classroom import NewEvent, Seat, Sitting, SittingRefused, sitting_state
from deliberation.engine.events import Event
from deliberation.engine.models import ModelError
from deliberation.engine.scenario import ScenarioError
from deliberation.errors import Forbidden, Invalid
from deliberation.live.fanout import encode, group_send
from deliberation.records.selectors import record_version_for_run
from deliberation.registry.clients import drafting_client, judge_for
from deliberation.registry.selectors import ModelRefused
from deliberation.runs.budgets import BudgetExceeded, budget_check, run_steps_estimate
from deliberation.runs.models import Run
from deliberation.runs.services import CLASSROOM_STRATEGY, event_append, run_finish, run_queue
from deliberation.scenarios.models import SavedScenario
from worker.enqueue import task_enqueue

logger = logging.getLogger(__name__)

MAX_PHASE_SECONDS = 3600
TEACHER_ACTIONS = (
    "start",
    "pause",
    "resume",
    "advance",
    "skip_turn",
    "reveal_speed",
    "mute",
    "unmute",
    "remove",
    "end",
)
RUN_STATUS = {
    "lobby": Run.Status.QUEUED,
    "live": Run.Status.RUNNING,
    "paused": Run.Status.PAUSED,
    "ended": Run.Status.STOPPED,
}


class ClassroomError(Invalid, ValueError):
    """Opening or joining a session failed; the message is for the person who tried."""


class ClassroomRefused(Forbidden, ValueError):
    """An action of the protocol is not allowed; the message is for the sender."""


def session_group(session_id: int) -> str:
    """The channel-layer group of a session's sockets (state, presence, removals)."""
    return f"classroom.{session_id}"


def _broadcast(session_id: int, frame: dict) -> None:
    group_send(
        session_group(session_id),
        {
            "type": "classroom.frame",
            "frame": encode(frame),
            "kind": frame["type"],
            "order": frame.get("seq", frame.get("at")),
        },
    )


def broadcast_presence(*, class_session: ClassSession) -> None:
    _broadcast(class_session.pk, presence(class_session=class_session))


# --- opening and joining ------------------------------------------------------------------------


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def class_session_open(
    *, teacher: AbstractBaseUser, scenario: SavedScenario, phase_seconds: int | None, words_per_second: float
) -> ClassSession:
    """A session of `scenario` in the lobby: its Run (strategy "classroom", the scenario's fields)
    with the `run_started` event, and a fresh join code. Its agents' model calls are the
    teacher's: ClassroomError when their estimate does not fit the teacher's daily budget."""
    if phase_seconds is not None and not 10 <= phase_seconds <= MAX_PHASE_SECONDS:
        raise ClassroomError(f"seconds per phase: between 10 and {MAX_PHASE_SECONDS}, or none")
    if not 0 <= words_per_second <= rules.MAX_WORDS_PER_SECOND:
        raise ClassroomError(f"reveal speed: between 0 and {rules.MAX_WORDS_PER_SECOND:g} words per second")
    fields = scenario.scenario_fields()
    fields["strategy"] = CLASSROOM_STRATEGY
    if fields["judge"] == "real-votes":  # the oracle scores only the adopted text, not the class's
        fields["judge"] = "llm"
    try:
        rules.classroom_settings(fields["params"])
    except ValueError as error:
        raise ClassroomError(f"the scenario's parameters: {error}") from None
    for _ in range(20):
        code = _new_code()
        try:
            with transaction.atomic():
                try:  # under the teacher's budget lock until the run is committed (runs.budgets)
                    budget_check(
                        user=teacher,
                        steps=run_steps_estimate(
                            strategy=CLASSROOM_STRATEGY,
                            party_count=len(fields["groups"]),
                            judge=fields["judge"],
                            params=dict(fields["params"]),
                        ),
                    )
                except BudgetExceeded as error:
                    raise ClassroomError(str(error)) from None
                run = Run.objects.create(
                    owner=teacher,
                    scenario=scenario,
                    record_set_version=record_version_for_run(record=scenario.record),
                    **fields,
                )
                try:
                    engine_scenario, _ = session_scenario(run=run)
                except ScenarioError as error:
                    raise ClassroomError(f"the scenario cannot be played: {error}") from None
                session = ClassSession.objects.create(
                    teacher=teacher,
                    scenario=scenario,
                    run=run,
                    code=code,
                    phase_seconds=phase_seconds,
                    words_per_second=words_per_second,
                )
                data = rules.opening_data(
                    engine_scenario, phase_seconds=phase_seconds, words_per_second=words_per_second
                )
                event_append(run=run, event={"seq": 1, "type": "run_started", "data": data})
            return session
        except IntegrityError:
            if not ClassSession.objects.filter(code=code).exists():
                raise
    raise ClassroomError("no free join code; try again")


def student_join(*, class_session: ClassSession, name: str, group: str | None) -> Student:
    """A student sits down in `group`'s seat (several may share one), or watches (group None)."""
    name = " ".join(rules.printable(name or "").split())
    if not name:
        raise ClassroomError("Please give a display name.")
    if len(name) > NAME_LIMIT:
        raise ClassroomError(f"A display name has at most {NAME_LIMIT} characters.")
    group = group or None
    if group is not None and group not in class_session.run.groups:
        raise ClassroomError(f"There is no seat {group!r} in this session.")
    created: list[Student] = []

    def join(sitting: Sitting, events: list[Event]) -> list[NewEvent]:
        if sitting.status == "ended":
            raise ClassroomError("This session has ended.")
        taken = class_session.students.filter(removed=False, name__iexact=name).exists()
        if taken:
            raise ClassroomError(f"Someone here is already called {name}; please pick another name.")
        student = Student.objects.create(class_session=class_session, name=name, group=group or "")
        created.append(student)
        return [("seat_joined", {"student": student.pk, "name": name, "group": group})]

    _write(class_session, join)
    return created[0]


def seat_token(*, student: Student) -> str:
    """The signed claim to a seat that the student's browser session keeps (and nothing else)."""
    return signing.dumps({"session": student.class_session_id, "student": student.pk}, salt=SEAT_SALT)


# --- presence -----------------------------------------------------------------------------------


def student_connected(*, student: Student) -> None:
    Student.objects.filter(pk=student.pk).update(connections=F("connections") + 1, last_seen=timezone.now())
    broadcast_presence(class_session=student.class_session)


def student_disconnected(*, student: Student) -> None:
    Student.objects.filter(pk=student.pk).update(
        connections=Greatest(F("connections") - 1, 0), last_seen=timezone.now()
    )
    broadcast_presence(class_session=student.class_session)


def student_seen(*, student: Student) -> None:
    Student.objects.filter(pk=student.pk).update(last_seen=timezone.now())


# --- actions ------------------------------------------------------------------------------------


def classroom_act(
    *,
    class_session: ClassSession,
    teacher: AbstractBaseUser | None = None,
    student: Student | None = None,
    action: str,
    payload: dict,
) -> None:
    """Every action of the protocol, by the session's teacher or one of its students."""
    if (teacher is None) == (student is None):
        raise ValueError("an action comes from a teacher or a student")
    if not isinstance(payload, dict):
        raise ClassroomRefused("the action's data must be an object")
    if teacher is not None:
        if teacher.pk != class_session.teacher_id:
            raise ClassroomRefused("only the session's teacher controls it")
        if action not in TEACHER_ACTIONS:
            raise ClassroomRefused(f"unknown action {action!r}")
        _write(class_session, partial(_teacher_events, class_session, teacher.get_username(), action, payload))
        return
    if action not in rules.STUDENT_ACTIONS:
        raise ClassroomRefused(f"unknown action {action!r}")

    def act(sitting: Sitting, events: list[Event]) -> list[NewEvent]:
        # The seat and its flags come from the database row, never from the message.
        row = Student.objects.filter(pk=student.pk, class_session=class_session).first()
        if row is None:
            raise ClassroomRefused("you are not in this session")
        seat = Seat(row.pk, row.name, row.group or None, muted=row.muted, removed=row.removed)
        return rules.student_act(sitting, seat=seat, action=action, payload=payload)

    _write(class_session, act)


def _teacher_events(
    class_session: ClassSession, by: str, action: str, payload: dict, sitting: Sitting, events: list[Event]
) -> list[NewEvent]:
    now = timezone.now()
    if action == "start":
        ClassSession.objects.filter(pk=class_session.pk).update(started_at=now)
        return rules.start(sitting, by=by, now=now)
    if action == "pause":
        return rules.pause(sitting, by=by, now=now)
    if action == "resume":
        return rules.resume(sitting, by=by, now=now)
    if action == "advance":
        return rules.advance(sitting, by=by, now=now)
    if action == "skip_turn":
        return rules.skip_turn(sitting, by=by)
    if action == "end":
        return rules.end(sitting, by=by)
    if action == "reveal_speed":
        new = rules.reveal_speed(sitting, by=by, words_per_second=payload.get("words_per_second"))
        ClassSession.objects.filter(pk=class_session.pk).update(words_per_second=new[0][1]["words_per_second"])
        return new
    student_id = payload.get("student")
    if isinstance(student_id, bool) or not isinstance(student_id, int):
        raise ClassroomRefused("student: the student's id")
    new = rules.seat_control(sitting, by=by, action=action, student=student_id)
    flags = {"mute": {"muted": True}, "unmute": {"muted": False}, "remove": {"removed": True}}[action]
    Student.objects.filter(pk=student_id, class_session=class_session).update(**flags)
    return new


def classroom_agent_turn(*, session_id: int, turn_key: str) -> None:
    """An agent's turn (the Celery task's body): computed with no lock held, appended only if the
    turn is still the one due and still the agent's; otherwise the text is dropped."""
    class_session = ClassSession.objects.select_related("run__record").get(pk=session_id)
    run = class_session.run
    scenario, settings_ = session_scenario(run=run)
    events = stored_events(run_id=run.pk)
    sitting = sitting_state(scenario, settings_, events)
    turn = sitting.turn
    if not _agent_due(sitting, turn_key):
        return
    try:
        new = rules.agent_turn_event(
            sitting,
            turn,
            events,
            model=None if turn.kind == "vote" else drafting_client(run.model),
            judge=judge_for(run.judge, model=run.judge_model or run.model),
            seed=run.seed,
        )
    except (ModelError, ModelRefused) as error:
        # The agent's turn stays due; the teacher sees why, and can skip it (or pause and resume to retry).
        logger.warning("class session %s: %s failed: %s", class_session.code, turn_key, error)
        new = ("error", {"message": f"{turn.group}: {error}", "attempt": 1, "final": False, "turn": turn_key})

    def append(current: Sitting, events: list[Event]) -> list[NewEvent]:
        return [new] if _agent_due(current, turn_key) else []

    _write(class_session, append)


def _agent_due(sitting: Sitting, turn_key: str) -> bool:
    turn = sitting.turn
    return sitting.status == "live" and turn is not None and turn.key == turn_key and turn.by == rules.AGENT


STALLED_S = 30


def classroom_nudge(*, class_session: ClassSession) -> str | None:
    """Catch up on what a lost task left undone: the embedded worker's memory broker forgets its
    queue when the process restarts. A timer whose deadline has passed fires now; an agent's turn
    due for STALLED_S past the room's reading time is queued again (a second task for a turn is
    harmless: only one appends). Called when the teacher's console connects. Says what it did."""
    run = class_session.run
    scenario, settings_ = session_scenario(run=run)
    events = stored_events(run_id=run.pk)
    sitting = sitting_state(scenario, settings_, events)
    now = timezone.now()
    if sitting.status != "live":
        return None
    if sitting.deadline and datetime.fromisoformat(sitting.deadline) <= now:
        classroom_timer_expired(session_id=class_session.pk, deadline=sitting.deadline)
        return "timer"
    turn = sitting.turn
    if turn is None or turn.by != rules.AGENT:
        return None
    last_at = run.events.order_by("-seq").values_list("at", flat=True).first()
    if last_at is not None and (now - last_at).total_seconds() < sitting.reading_seconds + STALLED_S:
        return None
    queue_agent_turn(session_id=class_session.pk, turn_key=turn.key, model=run.model, countdown=0.0)
    return "agent"


def classroom_timer_expired(*, session_id: int, deadline: str) -> None:
    """The phase timer ran out: advance, if that deadline is still the current phase's."""
    class_session = ClassSession.objects.select_related("run__record").get(pk=session_id)
    _write(class_session, lambda sitting, events: rules.timer_expired(sitting, deadline=deadline, now=timezone.now()))


# --- the one writer -----------------------------------------------------------------------------

Produce = Callable[[Sitting, list[Event]], list[NewEvent]]


def _write(class_session: ClassSession, produce: Produce) -> Sitting:
    """Append what `produce` makes of the current sitting, under the Run row's lock, in one
    transaction; then the tally when the vote is complete, and the mirrors on the session's rows.
    SittingRefused becomes ClassroomRefused."""
    with transaction.atomic():
        run = Run.objects.select_for_update().select_related("record").get(pk=class_session.run_id)
        scenario, settings_ = session_scenario(run=run)
        events = stored_events(run_id=run.pk)
        before = sitting_state(scenario, settings_, events)
        try:
            new = produce(before, events)
        except SittingRefused as refused:
            raise ClassroomRefused(str(refused)) from None
        if not new:
            return before
        after = sitting_state(scenario, settings_, events)

        def append(pairs: list[NewEvent]) -> None:
            for type_, data in pairs:
                event: Event = {"seq": after.last_seq + 1, "type": type_, "data": data}
                event_append(run=run, event=event)
                after.apply(event)
                events.append(event)

        append(new)
        append(rules.closing_events(after))
        if after.outcome is not None and before.outcome is None:
            run_finish(run=run, events=events)
        elif after.status != before.status:
            Run.objects.filter(pk=run.pk).update(
                status=RUN_STATUS[after.status],
                started_at=run.started_at or (timezone.now() if after.status == "live" else None),
                finished_at=timezone.now() if after.status == "ended" else None,
            )
        ClassSession.objects.filter(pk=class_session.pk).update(
            status=after.status,
            deadline=datetime.fromisoformat(after.deadline) if after.deadline else None,
            remaining=after.remaining,
            ended_at=timezone.now() if after.status == "ended" and before.status != "ended" else F("ended_at"),
        )
        transaction.on_commit(partial(_after_commit, class_session.pk, run.model, before, after, new))
    return after


def _after_commit(session_id: int, model: str, before: Sitting, after: Sitting, new: list[NewEvent]) -> None:
    """Tell the sockets, and queue what comes next: the agent's turn, the phase timer."""
    _broadcast(session_id, state_frame(sitting=after))
    seat_changes = [
        data for type_, data in new if type_ == "seat_joined" or data.get("action") in ("muted", "unmuted", "removed")
    ]
    if seat_changes:
        class_session = ClassSession.objects.select_related("run").get(pk=session_id)
        _broadcast(session_id, presence(class_session=class_session))
        for data in seat_changes:
            if data.get("action") == "removed":
                group_send(session_group(session_id), {"type": "classroom.removed", "student": data["student"]})
    turn = after.turn
    if (
        after.status == "live"
        and turn is not None
        and turn.by == rules.AGENT
        and (before.status != "live" or before.turn != turn)
    ):
        queue_agent_turn(session_id=session_id, turn_key=turn.key, model=model, countdown=after.reading_seconds)
    if after.status == "live" and after.deadline and after.deadline != before.deadline:
        queue_timer(session_id=session_id, deadline=after.deadline)


def queue_agent_turn(*, session_id: int, turn_key: str, model: str, countdown: float) -> None:
    """The agent's turn, on the queue of its model's workers, once the room has read the last text."""
    task_enqueue(
        "deliberation.classroom.tasks.classroom_agent_turn_task",
        session_id=session_id,
        turn_key=turn_key,
        queue=run_queue(model),
        countdown=countdown,
    )


def queue_timer(*, session_id: int, deadline: str) -> None:
    task_enqueue(
        "deliberation.classroom.tasks.classroom_timer_task",
        session_id=session_id,
        deadline=deadline,
        eta=datetime.fromisoformat(deadline),
    )
