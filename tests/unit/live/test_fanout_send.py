"""The hub's eager sends: a socket's send runs inline until it would wait, and only then becomes a
Task; either way it completes, in order, with the coroutine seeing what a Task would show it."""

import asyncio
import contextvars

import pytest
from channels.layers import get_channel_layer

from deliberation.live.fanout import FrameBatch, RunHub, run_group, send_eagerly

marker = contextvars.ContextVar("marker", default="outside")


def test_a_send_that_never_waits_finishes_inline_without_a_task():
    sent = []

    async def send():
        sent.append("frame")

    async def scenario():
        assert send_eagerly(send()) is None
        assert sent == ["frame"]

    asyncio.run(scenario())


def test_a_send_that_waits_finishes_in_a_task_and_sees_the_result():
    seen = []

    async def scenario():
        ready = asyncio.get_running_loop().create_future()

        async def send():
            seen.append(await ready)

        task = send_eagerly(send())
        assert task is not None and seen == []
        ready.set_result("writable")
        await asyncio.wait_for(task, 1)
        assert seen == ["writable"]

    asyncio.run(scenario())


def test_an_error_of_the_awaited_future_reaches_the_coroutine():
    seen = []

    async def scenario():
        ready = asyncio.get_running_loop().create_future()

        async def send():
            try:
                await ready
            except ConnectionError as error:
                seen.append(str(error))
            await asyncio.sleep(0)  # a bare yield is handled too
            seen.append("after")

        task = send_eagerly(send())
        ready.set_exception(ConnectionError("gone"))
        await asyncio.wait_for(task, 1)
        assert seen == ["gone", "after"]

    asyncio.run(scenario())


def test_a_failing_send_ends_only_itself():
    async def send():
        raise ConnectionError("client went away")

    async def scenario():
        assert send_eagerly(send()) is None

    asyncio.run(scenario())


def test_cancelling_the_task_cancels_the_coroutine_where_it_waits():
    seen = []

    async def scenario():
        never = asyncio.get_running_loop().create_future()

        async def send():
            try:
                await never
            finally:
                seen.append("cleaned up")

        task = send_eagerly(send())
        await asyncio.sleep(0)
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert seen == ["cleaned up"] and never.cancelled()

    asyncio.run(scenario())


def test_context_variables_set_by_a_send_stay_in_that_send():
    async def scenario():
        ready = asyncio.get_running_loop().create_future()

        async def send():
            marker.set("inside")
            await ready
            assert marker.get() == "inside"

        task = send_eagerly(send())
        assert marker.get() == "outside"
        ready.set_result(None)
        await asyncio.wait_for(task, 1)
        assert marker.get() == "outside"

    asyncio.run(scenario())


class FakeViewer:
    """Records frames; `slow` makes every send wait a little (a transport that is not writable)."""

    def __init__(self, slow: bool = False) -> None:
        self.last_seq = 0
        self.slow = slow
        self.frames: list[int] = []
        self.messages: list[str] = []

    def deliver(self, batch):
        found = batch.after(self.last_seq)
        if found is None:
            return None
        first, (self.last_seq, text) = self.last_seq + 1, found

        async def send():
            if self.slow:
                await asyncio.sleep(0.01)
            self.frames.extend(range(first, self.last_seq + 1))
            self.messages.append(text)

        return send()


def test_the_hub_delivers_every_frame_in_order_to_fast_and_slow_viewers():
    async def scenario():
        hub = RunHub()
        viewers = [FakeViewer(), FakeViewer(slow=True), FakeViewer()]
        for viewer in viewers:
            await hub.join(99, viewer)
        layer = get_channel_layer()
        for seq in range(1, 21):
            await layer.group_send(run_group(99), {"type": "run.frame", "seq": seq, "frame": f'{{"seq":{seq}}}'})
        for _ in range(300):
            if all(len(viewer.frames) == 20 for viewer in viewers):
                break
            await asyncio.sleep(0.01)
        for viewer in viewers:
            await hub.leave(99, viewer)
        return [viewer.frames for viewer in viewers]

    assert asyncio.run(scenario()) == [list(range(1, 21))] * 3


def test_a_batch_gives_each_socket_what_follows_its_last_seq_as_one_message():
    batch = FrameBatch([(4, '{"seq":4}'), (5, '{"seq":5}'), (6, '{"seq":6}')])
    assert batch.after(3) == (6, '[{"seq":4},{"seq":5},{"seq":6}]')
    assert batch.after(5) == (6, '{"seq":6}')  # one event goes as it is
    assert batch.after(6) is None
    assert batch.after(3) is batch.after(3)  # built once for every socket at the same point
    with pytest.raises(LookupError):  # 2 and 3 are missing: the socket reads them from the log
        batch.after(1)
    with pytest.raises(LookupError):
        FrameBatch([(4, "a"), (6, "b")]).after(3)


class GatedViewer(FakeViewer):
    """Its first send waits until the test opens the gate: a socket that stalls the hub's pass."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    def deliver(self, batch):
        send = super().deliver(batch)
        if send is None:
            return None

        async def gated():
            await self.gate.wait()
            await send

        return gated()


def test_frames_that_queue_while_the_hub_is_busy_go_out_together_and_in_order():
    async def scenario():
        hub = RunHub()
        viewer = GatedViewer()
        await hub.join(98, viewer)
        layer = get_channel_layer()

        async def send(seq):
            await layer.group_send(run_group(98), {"type": "run.frame", "seq": seq, "frame": f'{{"seq":{seq}}}'})

        await send(1)
        for _ in range(300):  # the hub's pass with frame 1 is under way, stuck on the socket
            if viewer.last_seq == 1:
                break
            await asyncio.sleep(0.01)
        for seq in range(2, 21):  # these queue meanwhile
            await send(seq)
        await asyncio.sleep(0.05)
        viewer.gate.set()
        for _ in range(300):
            if len(viewer.frames) == 20:
                break
            await asyncio.sleep(0.01)
        await hub.leave(98, viewer)
        return viewer

    viewer = asyncio.run(scenario())
    assert viewer.frames == list(range(1, 21))
    assert viewer.messages == ['{"seq":1}', "[" + ",".join(f'{{"seq":{seq}}}' for seq in range(2, 21)) + "]"]


def test_the_hub_serves_a_new_loop_after_its_first_loop_closed_with_viewers_still_joined():
    """A server's hub lives as long as its loop; tests run a loop each, and a socket whose test
    ended without closing it must not leave the next loop a dead reader (or a lock bound to the
    closed loop)."""
    hub = RunHub()

    async def joined_and_abandoned():
        await asyncio.gather(*(hub.join(99, FakeViewer()) for _ in range(3)))  # the lock is waited on

    async def watched_again():
        viewers = [FakeViewer(), FakeViewer()]
        await asyncio.gather(*(hub.join(99, viewer) for viewer in viewers))
        layer = get_channel_layer()
        for seq in range(1, 4):
            await layer.group_send(run_group(99), {"type": "run.frame", "seq": seq, "frame": f'{{"seq":{seq}}}'})
        for _ in range(300):
            if all(len(viewer.frames) == 3 for viewer in viewers):
                break
            await asyncio.sleep(0.01)
        for viewer in viewers:
            await hub.leave(99, viewer)
        return [viewer.frames for viewer in viewers]

    asyncio.run(joined_and_abandoned())
    assert asyncio.run(watched_again()) == [[1, 2, 3]] * 2


def test_events_broadcast_together_reach_the_viewer_in_order():
    async def scenario():
        hub = RunHub()
        viewer = FakeViewer()
        await hub.join(97, viewer)
        frames = [[seq, f'{{"seq":{seq}}}'] for seq in range(1, 6)]
        await get_channel_layer().group_send(run_group(97), {"type": "run.frame", "frames": frames})
        await get_channel_layer().group_send(run_group(97), {"type": "run.frame", "seq": 6, "frame": '{"seq":6}'})
        for _ in range(300):
            if len(viewer.frames) == 6:
                break
            await asyncio.sleep(0.01)
        await hub.leave(97, viewer)
        return viewer

    viewer = asyncio.run(scenario())
    assert viewer.frames == [1, 2, 3, 4, 5, 6]
    assert viewer.messages[0] == "[" + ",".join(f'{{"seq":{seq}}}' for seq in range(1, 6)) + "]"
