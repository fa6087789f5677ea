"""A classroom session on the real stack: the Redis channel layer, agent turns on a Celery worker,
concurrent writers on PostgreSQL.

The sockets live in this process (Channels' communicator); the worker process computes the agent's
speech and broadcasts it through Redis. Presence and state frames (the session group) and the
run's events (the process's RunHub) share the process's channels_redis receive loop: neither may
starve the other.
"""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from deliberation.classroom import services
from deliberation.routing import websocket_application
from tests.unit.classroom.conftest import open_session

ORIGIN = (b"origin", b"http://127.0.0.1")


def seat_cookie(student) -> bytes:
    store = SessionStore()
    store[f"classroom.{student.class_session.code}"] = services.seat_token(student=student)
    store.save()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}".encode()


async def frames_until(socket, predicate, timeout=20) -> dict:
    async def read():
        while True:
            message = json.loads(await socket.receive_from(timeout=timeout))
            for frame in message if isinstance(message, list) else [message]:  # events may come together
                if predicate(frame):
                    return frame

    return await asyncio.wait_for(read(), timeout)


def connected_in(group: str, name: str):
    return lambda f: f["type"] == "presence" and any(s["name"] == name and s["connected"] for s in f["seats"][group])


def test_presence_state_and_agent_turns_reach_the_sockets_through_redis(celery_worker):
    assert "redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"].lower()
    session = open_session()  # scripted model; EPP (first in seat order) is an agent
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    bob = services.student_join(class_session=session, name="Bob", group="SD")
    cookies = [seat_cookie(ada), seat_cookie(bob)]

    async def scenario():
        teacher = WebsocketCommunicator(websocket_application, f"/ws/classroom/{session.code}/", headers=[ORIGIN])
        teacher.scope["user"] = session.teacher
        assert (await teacher.connect())[0]
        await frames_until(teacher, lambda f: f["type"] == "presence")
        students = []
        for cookie, name in zip(cookies, ("Ada", "Bob")):
            socket = WebsocketCommunicator(
                websocket_application, f"/ws/classroom/{session.code}/", headers=[ORIGIN, (b"cookie", cookie)]
            )
            assert (await socket.connect())[0]
            students.append(socket)
            await frames_until(teacher, connected_in("SD", name))  # no run event comes meanwhile
        await teacher.send_json_to({"action": "start"})
        speech = await frames_until(teacher, lambda f: f["type"] == "speech")
        state = await frames_until(students[0], lambda f: f["type"] == "state" and f["seq"] >= speech["seq"])
        for socket in (teacher, *students):
            await socket.disconnect()
        return speech, state

    with ThreadPoolExecutor(max_workers=1) as pool:
        speech, state = pool.submit(asyncio.run, scenario()).result()
    assert (speech["data"]["group"], speech["data"]["by"]) == ("EPP", "agent")
    assert state["turn"]["group"] == "SD" and state["turn"]["by"] == "students"


@pytest.mark.django_db(transaction=True)
def test_students_of_every_group_voting_at_once_get_one_sequence_and_one_tally(monkeypatch):
    """Concurrent writers on PostgreSQL: each appends under the Run row's lock, so the numbers
    stay contiguous, no vote is lost, and the tally follows the last vote exactly once."""
    from concurrent.futures import ThreadPoolExecutor as Pool

    from django.db import connection

    from deliberation.classroom.selectors import session_sitting
    from tests.unit.classroom.conftest import act, play_agents, teach

    assert connection.vendor == "postgresql"
    monkeypatch.setattr(services, "queue_agent_turn", lambda **kw: None)
    monkeypatch.setattr(services, "queue_timer", lambda **kw: None)
    session = open_session()
    voters = [services.student_join(class_session=session, name=f"s{g}", group=g) for g in ("EPP", "SD", "ALDE")]
    teach(session, "start")
    while session_sitting(class_session=session).phase != "vote":
        for student in voters:
            sitting = session_sitting(class_session=session)
            turn = sitting.turn
            if turn is not None and turn.group == student.group:
                action = {
                    "speech": ("speak", {"text": "hello"}),
                    "draft": ("draft", {"text": "The EP."}),
                    "amendment": ("amend", {"text": ""}),
                }[turn.kind]
                act(session, student, action[0], **action[1])
        play_agents(session)
        if session_sitting(class_session=session).turn is None:
            teach(session, "advance")

    def vote(student):
        from django.db import connections

        try:
            act(session, student, "vote", score=6)
        finally:
            connections.close_all()

    with Pool(max_workers=3) as pool:
        list(pool.map(vote, voters))
    seqs = list(session.run.events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    types = list(session.run.events.order_by("seq").values_list("type", flat=True))
    assert types.count("vote") == 3 and types.count("tally") == 1 and types[-1] == "outcome"
