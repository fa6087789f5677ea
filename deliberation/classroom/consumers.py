"""Websocket `/ws/classroom/<code>/?after=<seq>` (docs/classroom.md): a session's teacher and students.

The role is decided here, at connect, from the signed-in user (the teacher) or the signed seat
token in the request session (a student), never from a message. The session's stored events
stream exactly as on `/ws/runs/` (RunConsumer.stream: the process's RunHub, replay after `after`,
then live); the `state`, `presence` and removal frames come through a layer channel of this
socket in the session's group (a session has tens of sockets, not thousands). Every action goes to
services.classroom_act, which alone decides what is allowed.
"""

import asyncio
import json

from channels.db import database_sync_to_async

from deliberation.classroom.models import ClassSession, Student
from deliberation.classroom.selectors import (
    PRESENCE_BEAT_S,
    class_session_by_code,
    presence,
    seat_session_key,
    session_state,
    student_for_token,
)
from deliberation.classroom.services import (
    classroom_act,
    classroom_nudge,
    session_group,
    student_connected,
    student_disconnected,
    student_seen,
)
from deliberation.errors import ApplicationError, Forbidden, Invalid, websocket_close_code, websocket_refusal
from deliberation.live.fanout import encode, hub
from deliberation.runs.consumers import RunConsumer, after_seq

MESSAGE_LIMIT = 16_000  # characters: a 2,000-character text and its JSON, with room to spare


def _role(user, request_session, code: str) -> tuple[ClassSession, str, Student | None] | None:
    class_session = class_session_by_code(code=code)
    if class_session is None:
        return None
    if user is not None and user.is_authenticated and class_session.teacher_id == user.pk:
        return class_session, "teacher", None
    token = request_session.get(seat_session_key(class_session.code), "") if request_session is not None else ""
    student = student_for_token(class_session=class_session, token=token)
    return None if student is None else (class_session, "student", student)


def _act(class_session: ClassSession, role: str, user, student: Student | None, action: str, payload: dict) -> None:
    if role == "teacher":
        classroom_act(class_session=class_session, teacher=user, action=action, payload=payload)
    else:
        classroom_act(class_session=class_session, student=student, action=action, payload=payload)


class ClassroomConsumer(RunConsumer):
    channel_layer_alias = "default"  # a layer channel per socket, for state and presence frames

    async def connect(self) -> None:
        found = await database_sync_to_async(_role)(
            self.scope.get("user"), self.scope.get("session"), self.scope["url_route"]["kwargs"]["code"]
        )
        if found is None:
            await self.close(code=websocket_close_code(Forbidden))
            return
        self.class_session, self.role, self.student = found
        self.run_id = self.class_session.run_id
        self.sent_order: dict[str, float] = {}
        hub.loop = asyncio.get_running_loop()  # where the in-memory layer's sends must go
        self.group = session_group(self.class_session.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        student = self.student
        await self.send(
            text_data=encode(
                {
                    "type": "hello",
                    "role": self.role,
                    "student": None
                    if student is None
                    else {
                        "id": student.pk,
                        "name": student.name,
                        "group": student.group or None,
                        "muted": student.muted,
                    },
                }
            )
        )
        if student is not None:
            await database_sync_to_async(student_connected)(student=student)
            self.counted = True
            self.beat = asyncio.create_task(self._beat())
        await self.stream(after=after_seq(self.scope))
        if self.role == "teacher":
            await database_sync_to_async(classroom_nudge)(class_session=self.class_session)
        for frame in await database_sync_to_async(self._snapshot)():
            await self._send_newest(frame["type"], frame.get("seq", frame.get("at")), encode(frame))

    def _snapshot(self) -> list[dict]:
        return [session_state(class_session=self.class_session), presence(class_session=self.class_session)]

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_BEAT_S)
            await database_sync_to_async(student_seen)(student=self.student)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "beat"):
            self.beat.cancel()
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "counted", False):
            self.counted = False
            await database_sync_to_async(student_disconnected)(student=self.student)
        await super().disconnect(code)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data == "ping":
            await self.send(text_data='{"type":"pong"}')
            if self.student is not None:
                await database_sync_to_async(student_seen)(student=self.student)
            return
        message = None
        if text_data and len(text_data) <= MESSAGE_LIMIT:
            try:
                message = json.loads(text_data)
            except ValueError:
                pass
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            await self._refuse("", Invalid("send JSON with an action"))
            return
        action = message.pop("action")
        try:
            await database_sync_to_async(_act)(
                self.class_session, self.role, self.scope.get("user"), self.student, action, message
            )
        except ApplicationError as refused:  # ClassroomRefused, ...: the sender hears why
            await self._refuse(action, refused)

    async def _refuse(self, action: str, error: ApplicationError) -> None:
        await self.send(text_data=encode(websocket_refusal(error, action=action)))

    async def _send_newest(self, kind: str, order: float | None, frame: str) -> None:
        """State and presence frames are whole snapshots: one older than the last sent is dropped."""
        if order is not None:
            if order < self.sent_order.get(kind, float("-inf")):
                return
            self.sent_order[kind] = order
        await self.frame_send({"type": "websocket.send", "text": frame})  # past the session wrapper, as events go

    # Channel-layer handlers (services._broadcast and the removal notice).
    async def classroom_frame(self, message: dict) -> None:
        await self._send_newest(message["kind"], message.get("order"), message["frame"])

    async def classroom_removed(self, message: dict) -> None:
        if self.student is not None and message["student"] == self.student.pk:
            await self.close(code=websocket_close_code(Forbidden))
