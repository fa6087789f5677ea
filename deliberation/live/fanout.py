"""Event fan-out: one channel-layer subscription per process and run, pre-encoded frames.

Stock Channels gives every socket its own layer channel and encodes JSON per socket; at 500
viewers that per-socket work dominates. Here an event is encoded once by the writer, crosses the
channel layer once per web process (not once per socket), and the process's RunHub hands the
same frame to each local socket.
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


class Viewer:
    """A local socket as the hub sees it: the last sequence number it has, and a send."""

    last_seq: int

    def deliver(self, seq: int, frame: str) -> Awaitable[None] | None: ...


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
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._viewers: dict[int, set[Viewer]] = {}
        self._readers: dict[int, tuple[str, asyncio.Task]] = {}
        self._lock = asyncio.Lock()

    async def join(self, run_id: int, viewer: Viewer) -> None:
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
                self._readers[run_id] = (channel, asyncio.create_task(self._read(run_id, channel)))

    async def leave(self, run_id: int, viewer: Viewer) -> None:
        async with self._lock:
            viewers = self._viewers.get(run_id)
            if viewers is None:
                return
            viewers.discard(viewer)
            if viewers:
                return
            del self._viewers[run_id]
            channel, reader = self._readers.pop(run_id)
            reader.cancel()
            await get_channel_layer().group_discard(run_group(run_id), channel)

    def viewer_count(self, run_id: int) -> int:
        return len(self._viewers.get(run_id, ()))

    async def _read(self, run_id: int, channel: str) -> None:
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
            seq, frame = message["seq"], message["frame"]
            suspended = [
                task
                for viewer in tuple(self._viewers.get(run_id, ()))
                if (send := viewer.deliver(seq, frame)) is not None and (task := send_eagerly(send)) is not None
            ]
            if suspended:  # as before: the next frame waits until every socket has this one
                await asyncio.gather(*suspended, return_exceptions=True)


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


def broadcast_event(*, run_id: int, message: dict) -> None:
    """Send a stored event to everyone watching the run (viewers that miss one catch up by seq)."""
    group_send(run_group(run_id), {"type": "run.frame", "seq": message["seq"], "frame": encode(message)})


def experiment_group(experiment_id: int) -> str:
    return f"experiment.{experiment_id}"


def broadcast_experiment_progress(*, experiment_id: int, progress: dict) -> None:
    """Send an experiment's progress, encoded once, to its owner's sockets. Each message is a whole
    snapshot, so one that is lost is made good by the next."""
    group_send(experiment_group(experiment_id), {"type": "experiment.progress", "frame": encode(progress)})
