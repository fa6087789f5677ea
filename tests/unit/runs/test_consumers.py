"""The run websocket: replay after seq, live stream, reconnects, late joiners, who may watch.

Real Channels consumers on the in-memory layer, with the run advanced in a worker thread exactly
as the embedded Celery worker does it.
"""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from deliberation.routing import websocket_application
from deliberation.runs import services
from deliberation.runs.advance import run_advance
from deliberation.runs.models import Run
from deliberation.runs.services import event_append, run_create
from tests.factories import make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)


def new_run(owner=None, **overrides) -> Run:
    config = scenario_config(make_record(), seat_structure="equal", seed=1, **overrides)
    return run_create(owner=owner or make_user(), config=config)


def communicator(run: Run, user, *, after: int = 0, origin=ORIGIN) -> WebsocketCommunicator:
    headers = [origin] if origin else []
    socket = WebsocketCommunicator(websocket_application, f"/ws/runs/{run.pk}/?after={after}", headers=headers)
    socket.scope["user"] = user
    return socket


async def receive_events(socket) -> list[dict]:
    """The events of the socket's next message: one, or several sent together as a JSON array."""
    message = json.loads(await socket.receive_from(timeout=10))
    return message if isinstance(message, list) else [message]


async def receive_until_outcome(socket, limit: int = 200) -> list[dict]:
    messages = []
    for _ in range(limit):
        messages += await receive_events(socket)
        if messages[-1]["type"] == "outcome":
            break
    return messages


def in_own_loop(scenario):
    """Run an async test scenario on a loop of its own, in its own thread: the session may already
    have a loop running in this thread (Playwright's sync API keeps one for the browser)."""

    def call(*args, **kwargs):
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, scenario(*args, **kwargs)).result()

    return call


def stored_seqs(run: Run) -> list[int]:
    return list(run.events.values_list("seq", flat=True))


def test_replays_only_the_events_after_the_given_seq():
    run = new_run()
    run_advance(run_id=run.pk)

    async def scenario():
        socket = communicator(run, run.owner, after=5)
        connected, _ = await socket.connect()
        assert connected
        messages = await receive_until_outcome(socket)
        await socket.disconnect()
        return messages

    messages = in_own_loop(scenario)()
    assert [m["seq"] for m in messages] == stored_seqs(run)[5:]
    assert all({"seq", "type", "data", "at"} <= set(m) for m in messages)


def test_streams_a_live_run_in_order_with_nothing_lost_or_doubled():
    run = new_run()

    async def scenario():
        socket = communicator(run, run.owner)
        connected, _ = await socket.connect()
        assert connected
        advancing = asyncio.ensure_future(sync_to_async(run_advance, thread_sensitive=False)(run_id=run.pk))
        messages = await receive_until_outcome(socket)
        await advancing
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()
        return messages

    messages = in_own_loop(scenario)()
    assert [m["seq"] for m in messages] == stored_seqs(run)


def test_reconnecting_with_the_last_seq_gives_no_gap_and_no_duplicate():
    run = new_run()

    async def scenario():
        first = communicator(run, run.owner)
        await first.connect()
        advancing = asyncio.ensure_future(sync_to_async(run_advance, thread_sensitive=False)(run_id=run.pk))
        seen = []
        while len(seen) < 4:
            seen += await receive_events(first)
        await first.disconnect()  # the line drops while the run goes on
        await advancing
        second = communicator(run, run.owner, after=seen[-1]["seq"])
        await second.connect()
        seen += await receive_until_outcome(second)
        await second.disconnect()
        return seen

    seen = in_own_loop(scenario)()
    assert [m["seq"] for m in seen] == stored_seqs(run)


def test_a_late_joiner_gets_the_whole_transcript():
    run = new_run()
    run_advance(run_id=run.pk)

    async def scenario():
        socket = communicator(run, run.owner)
        await socket.connect()
        messages = await receive_until_outcome(socket)
        await socket.disconnect()
        return messages

    messages = in_own_loop(scenario)()
    assert [(m["seq"], m["type"]) for m in messages] == list(run.events.values_list("seq", "type"))


def test_a_gap_in_live_frames_is_filled_from_the_log():
    run = new_run()

    async def scenario():
        socket = communicator(run, run.owner)
        await socket.connect()
        # Event 1 is stored without a broadcast (as if its frame were lost), then event 2 is sent.
        await sync_to_async(
            lambda: services.RunEvent.objects.create(run=run, seq=1, type="phase", data={"phase": "opening"})
        )()
        await sync_to_async(event_append)(
            run=run, event={"seq": 2, "type": "phase", "data": {"phase": "negotiation", "round": 1}}
        )
        messages = []
        while len(messages) < 2:
            messages += await receive_events(socket)
        await socket.disconnect()
        return messages

    assert [m["seq"] for m in in_own_loop(scenario)()] == [1, 2]


def test_a_foreign_origin_is_refused():
    run = new_run()

    async def scenario():
        socket = communicator(run, run.owner, origin=(b"origin", b"http://evil.example"))
        return await socket.connect()

    # Closed by the origin check before the consumer sees it (its own refusals close with 4403);
    # a server answers the handshake 403 (tests/integration/test_run_worker_crash.py).
    assert in_own_loop(scenario)() == (False, 1000)


def test_a_private_run_is_refused_to_others_and_shared_runs_are_not():
    run = new_run()
    stranger = make_user("bob")

    async def can_watch(user) -> bool:
        socket = communicator(run, user)
        connected, _ = await socket.connect()
        if connected:
            await socket.disconnect()
        return connected

    assert in_own_loop(can_watch)(stranger) is False
    Run.objects.filter(pk=run.pk).update(visibility=Run.Visibility.SIGNED_IN)
    assert in_own_loop(can_watch)(stranger) is True
