"""The classroom websocket: who may connect and as whom, seat rights on every action, presence
across connects and disconnects, and a refresh that resumes after the last event it had.

Real Channels consumers on the in-memory layer; a student's seat token travels as the browser's
would, in a request session named by the session cookie.
"""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from deliberation.classroom import services
from deliberation.routing import websocket_application
from tests.factories import make_user
from tests.unit.classroom.conftest import open_session, teach

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture(autouse=True)
def agents_inline(monkeypatch):
    """Agent turns run at once in the writer's thread (the scripted model is instant); no timers."""
    monkeypatch.setattr(
        services,
        "queue_agent_turn",
        lambda **kw: services.classroom_agent_turn(session_id=kw["session_id"], turn_key=kw["turn_key"]),
    )
    monkeypatch.setattr(services, "queue_timer", lambda **kw: None)


def in_own_loop(scenario):
    def call(*args, **kwargs):
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, scenario(*args, **kwargs)).result()

    return call


def seat_cookie(student) -> bytes:
    """A request session holding the student's seat token, as the join view leaves it."""
    store = SessionStore()
    store[f"classroom.{student.class_session.code}"] = services.seat_token(student=student)
    store.save()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}".encode()


def socket_for(session, *, user=None, cookie: bytes | None = None, after=0, origin=ORIGIN) -> WebsocketCommunicator:
    headers = [origin] if origin else []
    if cookie:
        headers.append((b"cookie", cookie))
    socket = WebsocketCommunicator(
        websocket_application, f"/ws/classroom/{session.code}/?after={after}", headers=headers
    )
    if user is not None:
        socket.scope["user"] = user
    return socket


async def frames_until(socket, predicate, limit=200) -> list[dict]:
    seen = []
    for _ in range(limit):
        message = json.loads(await socket.receive_from(timeout=10))
        for frame in message if isinstance(message, list) else [message]:  # events may come together
            seen.append(frame)
            if predicate(frame):
                return seen
    raise AssertionError(f"no matching frame in {seen}")


def is_type(kind):
    return lambda frame: frame["type"] == kind


async def connected(socket) -> bool:
    ok, _ = await socket.connect()
    return ok


def test_the_teacher_gets_hello_the_log_then_state_and_presence():
    session = open_session()

    async def scenario():
        socket = socket_for(session, user=session.teacher)
        assert await connected(socket)
        frames = await frames_until(socket, is_type("presence"))
        await socket.disconnect()
        return frames

    frames = in_own_loop(scenario)()
    assert frames[0] == {"type": "hello", "role": "teacher", "student": None}
    assert [f["type"] for f in frames[1:]] == ["run_started", "state", "presence"]
    assert frames[2]["status"] == "lobby"


def test_a_student_connects_with_the_seat_token_of_the_request_session():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")

    async def scenario():
        socket = socket_for(session, cookie=await sync_to_async(seat_cookie)(ada))
        assert await connected(socket)
        hello = json.loads(await socket.receive_from(timeout=5))
        await socket.disconnect()
        return hello

    assert in_own_loop(scenario)() == {
        "type": "hello",
        "role": "student",
        "student": {"id": ada.pk, "name": "Ada", "group": "SD", "muted": False},
    }


@pytest.mark.parametrize("who", ["nobody", "forged token", "another user", "foreign origin", "unknown code"])
def test_anyone_without_a_seat_or_the_session_is_refused(who):
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")

    async def scenario():
        if who == "nobody":
            socket = socket_for(session)
        elif who == "forged token":
            store = SessionStore()
            store[f"classroom.{session.code}"] = services.seat_token(student=ada)[:-3] + "abc"
            await sync_to_async(store.save)()
            socket = socket_for(session, cookie=f"{settings.SESSION_COOKIE_NAME}={store.session_key}".encode())
        elif who == "another user":
            socket = socket_for(session, user=await sync_to_async(make_user)("mallory"))
        elif who == "foreign origin":
            socket = socket_for(session, user=session.teacher, origin=(b"origin", b"http://evil.example"))
        else:
            socket = WebsocketCommunicator(websocket_application, "/ws/classroom/AAAAAA/", headers=[ORIGIN])
            socket.scope["user"] = session.teacher
        return await socket.connect()

    # The origin check closes before the consumer runs; the consumer's own refusals close with 4403.
    assert in_own_loop(scenario)() == (False, 1000 if who == "foreign origin" else 4403)


def test_a_removed_student_is_refused_and_one_connected_is_disconnected():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    bob = services.student_join(class_session=session, name="Bob", group="SD")
    teach(session, "remove", student=bob.pk)

    async def scenario():
        refused = socket_for(session, cookie=await sync_to_async(seat_cookie)(bob))
        assert not await connected(refused)
        socket = socket_for(session, cookie=await sync_to_async(seat_cookie)(ada))
        assert await connected(socket)
        await frames_until(socket, is_type("presence"))
        await sync_to_async(teach)(session, "remove", student=ada.pk)
        closed = await socket.receive_output(timeout=5)
        while closed["type"] != "websocket.close":
            closed = await socket.receive_output(timeout=5)
        return closed

    assert in_own_loop(scenario)()["code"] == 4403


def test_a_student_speaks_only_for_their_own_seat_whatever_the_message_claims():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")

    async def scenario():
        teacher = socket_for(session, user=session.teacher)
        student = socket_for(session, cookie=await sync_to_async(seat_cookie)(ada))
        assert await connected(teacher) and await connected(student)
        await frames_until(student, is_type("presence"))
        await frames_until(teacher, is_type("presence"))
        await student.send_json_to({"action": "speak", "text": "as EPP", "group": "EPP", "student": 999})
        refused = await frames_until(student, is_type("refused"))
        await teacher.send_json_to({"action": "start"})
        # EPP's agent speaks (inline), then it is SD's turn: Ada's.
        await frames_until(student, lambda f: f["type"] == "state" and (f["turn"] or {}).get("group") == "SD")
        await student.send_json_to({"action": "speak", "text": "<script>alert(1)</script> SD speaks", "group": "ALDE"})
        speech = await frames_until(teacher, lambda f: f["type"] == "speech" and f["data"]["group"] == "SD")
        await student.send_json_to({"action": "vote", "score": 5})
        too_early = await frames_until(student, is_type("refused"))
        await teacher.disconnect()
        await student.disconnect()
        return refused[-1], speech[-1], too_early[-1]

    refused, speech, too_early = in_own_loop(scenario)()
    assert refused == {
        "type": "refused",
        "action": "speak",
        "code": "forbidden",
        "message": "the session has not started",
    }
    assert speech["data"]["text"] == "<script>alert(1)</script> SD speaks"  # stored as typed; pages escape it
    assert (speech["data"]["student"], speech["data"]["name"]) == (ada.pk, "Ada")
    assert too_early["message"] == "the vote has not begun"
    speeches = [(d["group"], d["by"]) for d in session.run.events.filter(type="speech").values_list("data", flat=True)]
    assert speeches == [("EPP", "agent"), ("SD", "students"), ("ALDE", "agent")]


def test_a_muted_student_is_refused_and_teacher_actions_from_a_student_are_refused():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="EPP")
    teach(session, "start")
    teach(session, "mute", student=ada.pk)

    async def scenario():
        student = socket_for(session, cookie=await sync_to_async(seat_cookie)(ada))
        assert await connected(student)
        hello = json.loads(await student.receive_from(timeout=5))
        await frames_until(student, is_type("presence"))
        await student.send_json_to({"action": "speak", "text": "let me speak"})
        muted = await frames_until(student, is_type("refused"))
        await student.send_json_to({"action": "advance"})
        not_teacher = await frames_until(student, is_type("refused"))
        await student.send_to(text_data="not json")
        garbage = await frames_until(student, is_type("refused"))
        await student.disconnect()
        return hello, muted[-1], not_teacher[-1], garbage[-1]

    hello, muted, not_teacher, garbage = in_own_loop(scenario)()
    assert hello["student"]["muted"] is True
    assert "muted" in muted["message"]
    assert not_teacher["message"] == "unknown action 'advance'"
    assert garbage["message"] == "send JSON with an action"
    assert not session.run.events.filter(type="speech").exists()


def test_presence_shows_a_student_connected_then_gone_to_the_teacher():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")

    def ada_connected(frame):
        return frame["type"] == "presence" and frame["seats"]["SD"][0]["connected"]

    def ada_gone(frame):
        return frame["type"] == "presence" and not frame["seats"]["SD"][0]["connected"]

    async def scenario():
        teacher = socket_for(session, user=session.teacher)
        assert await connected(teacher)
        first = await frames_until(teacher, is_type("presence"))
        student = socket_for(session, cookie=await sync_to_async(seat_cookie)(ada))
        assert await connected(student)
        await frames_until(teacher, ada_connected)
        await student.send_to(text_data="ping")
        pong = await frames_until(student, is_type("pong"))
        await student.disconnect()
        await frames_until(teacher, ada_gone)
        await teacher.disconnect()
        return first[-1], pong[-1]

    first, pong = in_own_loop(scenario)()
    assert first["seats"]["SD"][0]["connected"] is False
    assert pong == {"type": "pong"}
    ada.refresh_from_db()
    assert ada.connections == 0 and ada.last_seen is not None


def test_a_refresh_resumes_after_the_last_event_it_had_with_nothing_lost_or_doubled():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")

    async def scenario():
        cookie = await sync_to_async(seat_cookie)(ada)
        first = socket_for(session, cookie=cookie)
        assert await connected(first)
        seen = [f for f in await frames_until(first, is_type("presence")) if "seq" in f and "data" in f]
        await first.disconnect()
        await sync_to_async(teach)(session, "start")  # the agent speaks meanwhile
        second = socket_for(session, cookie=cookie, after=seen[-1]["seq"])
        assert await connected(second)
        frames = await frames_until(second, is_type("presence"))
        await second.disconnect()
        return seen + [f for f in frames if "seq" in f and "data" in f]

    seqs = [frame["seq"] for frame in in_own_loop(scenario)()]
    assert seqs == list(session.run.events.order_by("seq").values_list("seq", flat=True))
