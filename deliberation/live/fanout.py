"""Event fan-out: one channel-layer subscription per process and run, pre-encoded frames.

Stock Channels gives every socket its own layer channel and encodes JSON per socket; at 500
viewers that per-socket work dominates. Here an event is encoded once by the writer, crosses the
channel layer once per web process (not once per socket), and the process's RunHub hands the
same frame to each local socket.
"""

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable

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
                channel = await layer.new_channel(prefix="hub.")
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
            sends = [
                send
                for viewer in tuple(self._viewers.get(run_id, ()))
                if (send := viewer.deliver(seq, frame)) is not None
            ]
            if sends:
                await asyncio.gather(*sends, return_exceptions=True)


hub = RunHub()

_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_lock = threading.Lock()


def _publisher() -> asyncio.AbstractEventLoop:
    """A loop of this process's own for layer calls from sync code (workers): connections to the
    layer live on one loop instead of a new loop per event."""
    global _publisher_loop
    with _publisher_lock:
        if _publisher_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-publisher", daemon=True).start()
            _publisher_loop = loop
        return _publisher_loop


def broadcast_event(*, run_id: int, message: dict) -> None:
    """Send a stored event to everyone watching the run. Call from sync code, any thread."""
    layer = get_channel_layer()
    if layer is None:
        return
    payload = {"type": "run.frame", "seq": message["seq"], "frame": encode(message)}
    if isinstance(layer, InMemoryChannelLayer):
        # The in-memory layer lives on the web server's loop: hand the send to that loop.
        if hub.loop is None or hub.loop.is_closed():
            return  # nobody in this process has ever watched: the log has it for later
        asyncio.run_coroutine_threadsafe(layer.group_send(run_group(run_id), payload), hub.loop)
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(run_group(run_id), payload), _publisher())
    try:
        future.result(timeout=10)
    except Exception:  # the event is stored; viewers that missed it catch up by sequence
        logger.exception("run %s: broadcast of event %s failed", run_id, message["seq"])
