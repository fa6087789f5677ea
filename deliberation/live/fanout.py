"""Event fan-out: one channel-layer subscription per process and run, pre-encoded frames.

Stock Channels gives every socket its own layer channel and encodes JSON per socket; at 500
viewers that per-socket work dominates. Here an event is encoded once by the writer, crosses the
channel layer once per web process (not once per socket), and the process's RunHub hands the
same frame to each local socket; what queued while it was busy goes out as one message (FrameBatch).
"""

import asyncio
import atexit
import contextvars
import json
import logging
import threading
from collections.abc import Awaitable, Coroutine
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


def encode(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class FrameBatch:
    """The frames a hub read from the layer since its last pass over its sockets, in order.

    A socket that is up to date gets them as one message: a single event as it is, several as a
    JSON array of events. When events come faster than a pass over every socket takes (thousands
    of viewers, events 20 ms apart), the next pass then carries everything that queued meanwhile in
    one write per socket instead of one per event, so the backlog cannot grow: the work per pass
    is per socket, not per event. The text for a starting point is built once for all sockets."""

    __slots__ = ("frames", "_texts")

    def __init__(self, frames: list[tuple[int, str]]) -> None:
        self.frames = frames
        self._texts: dict[int, tuple[int, str] | None] = {}

    def after(self, last_seq: int) -> tuple[int, str] | None:
        """(the last seq, the message) of the frames after `last_seq`; None when there are none.
        Raises LookupError when they do not follow on from `last_seq` (a gap: fill it from the log)."""
        if last_seq in self._texts:
            found = self._texts[last_seq]
        else:
            fresh = [(seq, frame) for seq, frame in self.frames if seq > last_seq]
            if not fresh:
                found = None
            elif any(seq != last_seq + 1 + index for index, (seq, _) in enumerate(fresh)):
                found = (-1, "")
            elif len(fresh) == 1:
                found = fresh[0]
            else:
                found = (fresh[-1][0], "[" + ",".join(frame for _, frame in fresh) + "]")
            self._texts[last_seq] = found
        if found is not None and found[0] < 0:
            raise LookupError(last_seq)
        return found


class Viewer:
    """A local socket as the hub sees it: the last sequence number it has, and a send."""

    last_seq: int

    def deliver(self, batch: FrameBatch) -> Awaitable[None] | None: ...


def send_eagerly(send: Coroutine[Any, Any, None]) -> asyncio.Task | None:
    """Run a socket's send coroutine right here, up to its first suspension.

    A send to a socket whose transport is writable finishes without ever suspending, so wrapping
    each one in a Task (asyncio.gather did) costs a Task, a loop callback and a gather callback
    per socket and frame for nothing: about a fifth of the hub's per-socket time at 500 viewers
    (bench/bench_fanout.py). Returns None when the send is over (errors included, which ends only
    that send, as gather(return_exceptions=True) did), else a Task that finishes it (Python
    3.12's eager tasks do the same; this runs on 3.11).
    """
    context = contextvars.copy_context()  # each send in its own context, as in its own Task
    try:
        yielded = context.run(send.send, None)
    except StopIteration:
        return None
    except Exception:  # noqa: BLE001 - a closed socket; its viewer catches up by seq if it returns
        logger.debug("send failed", exc_info=True)
        return None
    return asyncio.get_running_loop().create_task(_finish(send, yielded), context=context)


async def _finish(coro, yielded) -> None:
    """Drive a coroutine that suspended outside a Task to its end, as a Task would: wait until the
    future it yielded is done (a bare yield is asyncio.sleep(0)), then resume it, so that the
    coroutine itself sees the future's result or error. Cancelling this task throws the
    cancellation into the coroutine, at the await where it waits."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False  # as a Task does with a yielded future
                await asyncio.wait((yielded,))  # returns once done; never raises the future's error
        except asyncio.CancelledError as cancelled:
            if yielded is not None:
                yielded.cancel()
            try:
                yielded = coro.throw(cancelled)
            except StopIteration:
                return
            continue
        try:
            yielded = coro.send(None)
        except StopIteration:
            return


class RunHub:
    """One layer subscription per run in this process, and its local sockets.

    Two tasks per run: a reader that takes frames off the layer as they come (it never waits for
    sockets, so the layer's per-channel queue does not fill up and drop frames while a pass is
    slow), and a sender that hands everything read so far to every socket as one FrameBatch, then
    waits until each socket has it before the next pass (order and backpressure)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._state_loop: asyncio.AbstractEventLoop | None = None
        self._viewers: dict[int, set[Viewer]] = {}
        self._readers: dict[int, tuple[str, list[asyncio.Task]]] = {}
        self._lock = asyncio.Lock()

    def _on_running_loop(self) -> None:
        """The hub serves the loop of the server it lives in. Met on another loop (the first
        one's is closed: tests run a loop each), it starts empty: its readers died with their
        loop, and an asyncio lock that has had waiters cannot be used on another loop."""
        loop = asyncio.get_running_loop()
        if self._state_loop is not loop:
            self._state_loop = loop
            self._viewers, self._readers, self._lock = {}, {}, asyncio.Lock()

    async def join(self, run_id: int, viewer: Viewer) -> None:
        self._on_running_loop()
        self.loop = asyncio.get_running_loop()
        async with self._lock:
            self._viewers.setdefault(run_id, set()).add(viewer)
            if run_id not in self._readers:
                layer = get_channel_layer()
                # The default prefix: channels_redis gives a process one receive lock, and a
                # receiver holds it while it waits on its own prefix's key, so a channel under
                # another prefix starves the process's other receivers (a classroom socket's
                # state and presence frames then wait for the next run event).
                channel = await layer.new_channel()
                await layer.group_add(run_group(run_id), channel)
                inbox: list[tuple[int, str]] = []
                ready = asyncio.Event()
                self._readers[run_id] = (
                    channel,
                    [
                        asyncio.create_task(self._read(run_id, channel, inbox, ready)),
                        asyncio.create_task(self._send(run_id, inbox, ready)),
                    ],
                )

    async def leave(self, run_id: int, viewer: Viewer) -> None:
        self._on_running_loop()
        async with self._lock:
            viewers = self._viewers.get(run_id)
            if viewers is None:
                return
            viewers.discard(viewer)
            if viewers:
                return
            del self._viewers[run_id]
            channel, tasks = self._readers.pop(run_id)
            for task in tasks:
                task.cancel()
            await get_channel_layer().group_discard(run_group(run_id), channel)

    def viewer_count(self, run_id: int) -> int:
        return len(self._viewers.get(run_id, ()))

    async def _read(self, run_id: int, channel: str, inbox: list, ready: asyncio.Event) -> None:
        layer = get_channel_layer()
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # a layer hiccup must not end the stream; viewers catch up by seq
                logger.exception("run %s: channel layer receive failed", run_id)
                await asyncio.sleep(0.5)
                continue
            # {"frames": [[seq, frame], ...]} (broadcast_events), or one {"seq", "frame"}
            inbox.extend((seq, frame) for seq, frame in message.get("frames") or [(message["seq"], message["frame"])])
            if len(inbox) > MAX_UNSENT_FRAMES:  # sockets stalled: the oldest go, the log has them
                del inbox[: len(inbox) - MAX_UNSENT_FRAMES]
            ready.set()

    async def _send(self, run_id: int, inbox: list, ready: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last_pass = 0.0
        while True:
            await ready.wait()
            # Frames already on their way to the reader join this pass. After a long pass (many
            # sockets) wait half as long again, up to COALESCE_MAX_S: a layer that hands over one
            # message per round trip (channels_redis) needs the time to drain what queued during
            # the pass, else every pass carries one frame and the backlog grows in the layer.
            await asyncio.sleep(min(COALESCE_MAX_S, last_pass / 2) if last_pass > COALESCE_AFTER_S else 0)
            ready.clear()
            started = loop.time()
            batch = FrameBatch(inbox[:])
            inbox.clear()
            suspended = [
                task
                for viewer in tuple(self._viewers.get(run_id, ()))
                if (send := viewer.deliver(batch)) is not None and (task := send_eagerly(send)) is not None
            ]
            if suspended:  # the next pass waits until every socket has this one
                await asyncio.gather(*suspended, return_exceptions=True)
            last_pass = loop.time() - started


# A pass over the sockets longer than this is followed by a wait of half its length (at most
# COALESCE_MAX_S) before the next: a few ms at 2000 viewers, nothing at a few hundred.
COALESCE_AFTER_S = 0.005
COALESCE_MAX_S = 0.025
# Frames read and not yet handed to the sockets, per run; a socket that misses some because its
# pass was stuck this long finds the gap and reads it from the log.
MAX_UNSENT_FRAMES = 10_000

hub = RunHub()

_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_outbox: asyncio.Queue | None = None
_publisher_lock = threading.Lock()
# Sends handed to the publisher and not yet done; a writer waits (up to SEND_TIMEOUT_S) rather
# than let them pile up without bound when the layer is slow.
MAX_PENDING_SENDS = 10_000
SEND_TIMEOUT_S = 10
_pending_sends = threading.BoundedSemaphore(MAX_PENDING_SENDS)


def _publisher() -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
    """A loop of this process's own for layer calls from sync code (workers): connections to the
    layer live on one loop instead of a new loop per event. Its outbox is sent in order, one send
    at a time, so frames leave in the order they were handed over (as when each writer waited for
    its send), while the writer goes on at once: a group_send is a few Redis round trips, and a
    run's worker thread waited for them once per event."""
    global _publisher_loop, _publisher_outbox
    with _publisher_lock:
        if _publisher_loop is None:
            loop = asyncio.new_event_loop()
            outbox: asyncio.Queue = asyncio.Queue()
            threading.Thread(target=loop.run_forever, name="channel-publisher", daemon=True).start()
            asyncio.run_coroutine_threadsafe(_send_in_order(outbox), loop)
            atexit.register(_flush_publisher, SEND_TIMEOUT_S)
            _publisher_loop, _publisher_outbox = loop, outbox
        return _publisher_loop, _publisher_outbox


async def _send_in_order(outbox: asyncio.Queue) -> None:
    while True:
        layer, group, payload, done = await outbox.get()
        try:
            if layer is not None:
                await asyncio.wait_for(layer.group_send(group, payload), SEND_TIMEOUT_S)
        except Exception:
            logger.exception("%s: broadcast failed", group)
        finally:
            if done is not None:
                done.set()
            else:
                _pending_sends.release()


def _flush_publisher(timeout: float) -> bool:
    """Wait until every send handed over so far is done (a command that broadcasts, then exits)."""
    if _publisher_loop is None or _publisher_loop.is_closed():
        return True
    done = threading.Event()
    _publisher_loop.call_soon_threadsafe(_publisher_outbox.put_nowait, (None, "", {}, done))
    return done.wait(timeout)


def publisher_close(layer: Any, *, timeout: float = SEND_TIMEOUT_S) -> bool:
    """Wait for the sends handed over so far, then close `layer`'s connections on the publisher's
    loop: for a layer that is being replaced (the tests give each test layers of its own).
    channels_redis closes a loop's connections when that loop closes, and this loop never does."""
    if not _flush_publisher(timeout):
        return False
    loop_layers = getattr(layer, "_layers", None)  # channels_redis: its connections, per loop
    if not loop_layers or _publisher_loop is None or _publisher_loop.is_closed():
        return True
    connections = loop_layers.pop(_publisher_loop, None)
    if connections is not None:
        asyncio.run_coroutine_threadsafe(connections.flush(), _publisher_loop).result(timeout)
    return True


def group_send(group: str, payload: dict) -> None:
    """group_send from sync code, any thread, without waiting for it; failures are logged (the
    database has the truth, and viewers that miss a frame catch up by seq)."""
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):
        # The in-memory layer lives on the web server's loop: hand the send to that loop.
        if hub.loop is None or hub.loop.is_closed():
            return  # nobody in this process has ever watched: the log has it for later
        asyncio.run_coroutine_threadsafe(layer.group_send(group, payload), hub.loop)
        return
    loop, outbox = _publisher()
    if not _pending_sends.acquire(timeout=SEND_TIMEOUT_S):
        logger.error("%s: broadcast dropped: %d sends still pending", group, MAX_PENDING_SENDS)
        return
    loop.call_soon_threadsafe(outbox.put_nowait, (layer, group, payload, None))


def broadcast_events(*, run_id: int, messages: list[dict]) -> None:
    """Send a run's stored events, written together, to everyone watching it as one layer message
    (a cached re-run writes all its events at once: one group_send instead of one per event).
    Viewers that miss a message catch up by seq."""
    if messages:
        group_send(run_group(run_id), {"type": "run.frame", "frames": [[m["seq"], encode(m)] for m in messages]})


def experiment_group(experiment_id: int) -> str:
    return f"experiment.{experiment_id}"


def broadcast_experiment_progress(*, experiment_id: int, progress: dict) -> None:
    """Send an experiment's progress, encoded once, to its owner's sockets. Each message is a whole
    snapshot, so one that is lost is made good by the next."""
    group_send(experiment_group(experiment_id), {"type": "experiment.progress", "frame": encode(progress)})
