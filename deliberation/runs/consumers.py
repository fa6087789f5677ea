"""Websocket `/ws/runs/<id>/?after=<seq>`: replay the log after `seq`, then stream live.

Every message is one stored event as JSON: {"seq", "type", "at", "data"}; when events came faster
than the server's pass over its sockets, several consecutive events come as one JSON array, in
order (live.fanout.FrameBatch). The socket joins the process's RunHub before reading the log, so
an event committed meanwhile is either in the log read or arrives live; frames at or below the
last sequence sent are dropped, and a gap (a frame ahead of the next expected one) is filled from
the log. Nothing is lost or doubled.
"""

import asyncio
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import InstanceSessionWrapper

from deliberation.errors import Forbidden, websocket_close_code
from deliberation.live.fanout import FrameBatch, encode, experiment_group, hub
from deliberation.runs.selectors import experiment_for_owner, experiment_progress, run_events_after, run_for_viewer


def after_seq(scope) -> int:
    """The `?after=<seq>` of a socket's URL: the last event the client already has (0: none)."""
    query = parse_qs(scope.get("query_string", b"").decode())
    try:
        return max(0, int(query.get("after", ["0"])[0]))
    except ValueError:
        return 0


def _frames_after(run_id: int, seq: int) -> list[tuple[int, str]]:
    return [(event.seq, encode(event.as_message())) for event in run_events_after(run_id=run_id, seq=seq)]


class RunConsumer(AsyncWebsocketConsumer):
    # No layer channel per socket: the hub holds one subscription per process and run.
    channel_layer_alias = "__hub_only__"

    async def __call__(self, scope, receive, send) -> None:
        # Event frames go straight to the server's send. Channels' session wrapper only acts on
        # HTTP responses, yet reads the session for every message it passes on: about a tenth of
        # the per-socket time of a frame at 500 viewers (bench/bench_fanout.py).
        wrapper = getattr(send, "__self__", None)
        self.frame_send = wrapper.real_send if isinstance(wrapper, InstanceSessionWrapper) else send
        await super().__call__(scope, receive, send)

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        token = query.get("token", [""])[0]
        run = await database_sync_to_async(run_for_viewer)(user=self.scope.get("user"), run_id=self.run_id, token=token)
        if run is None:
            await self.close(code=websocket_close_code(Forbidden))
            return
        await self.accept()
        await self.stream(after=after_seq(self.scope))

    async def stream(self, *, after: int) -> None:
        """Join the hub, send the log after `after`, then the frames that came meanwhile: from
        here on the socket is live. (The classroom's consumer streams its run's events this way.)"""
        self.last_seq = after
        self.live = False
        self.held: list[tuple[int, str]] = []
        self.catching_up = asyncio.Lock()
        await hub.join(self.run_id, self)
        self.joined = True
        await self._send_from_log()
        self.live = True
        for seq, frame in sorted(self.held):
            await self._send_frame(seq, frame)
        self.held.clear()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await hub.leave(self.run_id, self)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """Viewers only listen; a ping gets a pong so clients can check the line."""
        if text_data == "ping":
            await self.send(text_data='{"type":"pong"}')

    # Called by the hub for each pass over its sockets, on the server's loop.
    def deliver(self, batch: FrameBatch):
        if not self.live:
            self.held.extend(batch.frames)
            return None
        try:
            found = batch.after(self.last_seq)
        except LookupError:  # the frames skip ahead of this socket: the log has what is between
            return self._send_from_log()
        if found is None:
            return None
        self.last_seq, text = found
        return self.frame_send({"type": "websocket.send", "text": text})

    async def _send_frame(self, seq: int, frame: str) -> None:
        if seq > self.last_seq + 1:
            await self._send_from_log()
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        await self.frame_send({"type": "websocket.send", "text": frame})

    async def _send_from_log(self) -> None:
        async with self.catching_up:
            for seq, frame in await database_sync_to_async(_frames_after)(self.run_id, self.last_seq):
                if seq > self.last_seq:
                    self.last_seq = seq
                    await self.frame_send({"type": "websocket.send", "text": frame})


def _progress_for_owner(user, experiment_id: int) -> dict | None:
    experiment = experiment_for_owner(user=user, experiment_id=experiment_id)
    return None if experiment is None else experiment_progress(experiment=experiment)


class ExperimentConsumer(AsyncWebsocketConsumer):
    """Websocket `/ws/experiments/<id>/` for the experiment's owner: its progress now, then a new
    snapshot (the JSON of runs.selectors.experiment_progress) whenever a top-up or control changes it.

    Few people watch an experiment, so each socket has its own layer channel in the experiment's
    group; the frame is still encoded once, by the sender."""

    async def connect(self) -> None:
        self.experiment_id = int(self.scope["url_route"]["kwargs"]["experiment_id"])
        progress = await database_sync_to_async(_progress_for_owner)(self.scope.get("user"), self.experiment_id)
        if progress is None:
            await self.close(code=websocket_close_code(Forbidden))
            return
        hub.loop = asyncio.get_running_loop()  # where the in-memory layer's sends must go
        await self.channel_layer.group_add(experiment_group(self.experiment_id), self.channel_name)
        await self.accept()
        await self.send(text_data=encode(progress))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "experiment_id"):
            await self.channel_layer.group_discard(experiment_group(self.experiment_id), self.channel_name)

    async def experiment_progress(self, message: dict) -> None:
        await self.send(text_data=message["frame"])
