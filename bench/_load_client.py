"""A load client for the live benches: many websocket viewers on one asyncio loop, and a signed-in
owner over HTTP. bench_fanout.py and bench_classroom.py drive the server with it.

  * Viewers(url, origin, count, deflate, client): N websockets, each frame stamped with its arrival
    wall time (`seqs` and `times` per viewer); `client="raw"` is a lean RFC 6455 client (about 13 us
    a message, against about 29 for the websockets library, `client="websockets"`), so more of a
    shared machine is left to the server being measured;
  * Owner(base): signs in with the login form and CSRF cookie, then POSTs run controls as the run
    page's buttons do;
  * raise_nofile(): enough file descriptors for thousands of sockets (call it in every process
    that holds them: the bench and, through preexec_fn, its servers);
  * percentile(ordered, q).
"""

from __future__ import annotations

import asyncio
import base64
import http.cookiejar
import json
import os
import resource
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

NOFILE = 20000


def raise_nofile(wanted: int = NOFILE) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Owner:
    """The run's owner in a browser: signs in over HTTP (CSRF cookie, login form), then POSTs
    /runs/<id>/resume as the run page's button does (X-CSRFToken, X-Requested-With)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def _csrf(self) -> str:
        return next(cookie.value for cookie in self.jar if cookie.name == "csrftoken")

    def _post(self, path: str, data: dict, headers: dict) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.base + path, data=urllib.parse.urlencode(data).encode(), headers=headers, method="POST"
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:  # the 302 after sign-in arrives here (no redirects)
            return error.code, error.read()

    def sign_in(self, username: str, password: str) -> None:
        with self.opener.open(self.base + "/accounts/login/", timeout=30) as response:
            response.read()
        status, body = self._post(
            "/accounts/login/", {"username": username, "password": password, "csrfmiddlewaretoken": self._csrf()}, {}
        )
        if status != 302:
            raise RuntimeError(f"sign-in failed: HTTP {status} {body[:300]!r}")

    def control(self, run_id: int, action: str) -> dict:
        status, body = self._post(
            f"/runs/{run_id}/{action}", {}, {"X-CSRFToken": self._csrf(), "X-Requested-With": "XMLHttpRequest"}
        )
        if status != 200:
            raise RuntimeError(f"{action} failed: HTTP {status} {body[:300]!r}")
        return json.loads(body)


class RawViewer(asyncio.Protocol):
    """A lean websocket client (RFC 6455, text frames, permessage-deflate): each frame is stamped
    the moment its bytes reach the process, and costs the shared CPU a few microseconds instead of
    the websockets library's ~25, so more of the machine is left to the server being measured."""

    def __init__(self, viewers: Viewers, index: int, path: str, host: str, deflate: bool) -> None:
        self.viewers, self.index, self.path, self.host, self.deflate = viewers, index, path, host, deflate
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.inflater = None
        self.fragments: list[bytes] = []
        self.fragments_compressed = False
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        extension = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if self.deflate else ""
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {self.viewers.origin}\r\n"
                f"{extension}\r\n"
            ).encode()
        )

    def _end(self, error: str | None = None) -> None:
        if error:
            self.viewers.errors.append(f"viewer {self.index}: {error}")
        for future in (self.opened, self.ended):
            if not future.done():
                future.set_result(error)

    def connection_lost(self, exc) -> None:
        self._end(None if self.viewers.done[self.index] or not self.open else f"connection lost: {exc}")

    def _control(self, opcode: int, payload: bytes) -> None:
        # Client frames are masked; a zero mask leaves the payload as it is.
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.open:
                self._control(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        buffer = self.buffer
        buffer += data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            if not head.startswith("HTTP/1.1 101"):
                self._end(f"handshake refused: {head.splitlines()[0]}")
                self.transport.close()
                return
            if "permessage-deflate" in head.lower():
                self.inflater = zlib.decompressobj(wbits=-15)
            self.open = True
            self.opened.set_result(None)
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if second & 0x80:
                self._end("server sent a masked frame")
                self.transport.abort()
                return
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            opcode = first & 0x0F
            if opcode in (0x1, 0x2, 0x0):
                if opcode != 0x0:
                    self.fragments_compressed = bool(first & 0x40)
                self.fragments.append(payload)
                if not first & 0x80:
                    continue
                message = b"".join(self.fragments)
                self.fragments.clear()
                if self.fragments_compressed:
                    message = self.inflater.decompress(message + b"\x00\x00\xff\xff")
                if self.viewers.record(self.index, message.decode(), arrived):
                    self._end()
            elif opcode == 0x9:  # ping: pong, or the server's keepalive closes the socket
                self._control(0xA, payload)
            elif opcode == 0x8:
                self._end(None if self.viewers.done[self.index] else f"closed by the server: {payload[:2].hex()}")
                self.close()
                return


class Viewers:
    """N websocket viewers; per viewer the seqs in arrival order and their arrival wall times."""

    def __init__(self, url: str, origin: str, count: int, deflate: bool, client: str) -> None:
        self.url, self.origin, self.count, self.deflate, self.client = url, origin, count, deflate, client
        self.seqs: list[list[int]] = [[] for _ in range(count)]
        self.times: list[list[float]] = [[] for _ in range(count)]
        self.done = [False] * count
        self.errors: list[str] = []
        self.sockets: list = [None] * count
        self.connected = 0
        self.outcome_seen = asyncio.Event()
        self.all_done = asyncio.Event()
        self.finished = 0
        self.batched = [0] * count  # messages that carried several events
        self._parsed: dict[str, list[tuple[int, str]]] = {}  # every viewer gets the same frame text

    def record(self, index: int, text: str, arrived: float) -> bool:
        """Store one message's arrivals (one event, or a JSON array of events the server sent
        together); True when it held the outcome (the viewer is done)."""
        parsed = self._parsed.get(text)
        if parsed is None:
            message = json.loads(text)
            events = message if isinstance(message, list) else [message]
            parsed = self._parsed[text] = [(event.get("seq", -1), event.get("type", "")) for event in events]
        done = False
        for seq, type_ in parsed:
            self.seqs[index].append(seq)
            self.times[index].append(arrived)
            if type_ == "outcome":
                done = True
        if len(parsed) > 1:
            self.batched[index] += 1
        if done:
            self.done[index] = True
            self.outcome_seen.set()
        return done

    async def _open_raw(self, index: int, connect_timeout: float):
        parts = urllib.parse.urlsplit(self.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        loop = asyncio.get_running_loop()
        _, viewer = await asyncio.wait_for(
            loop.create_connection(
                lambda: RawViewer(self, index, path, parts.netloc, self.deflate), parts.hostname, parts.port
            ),
            connect_timeout,
        )
        self.sockets[index] = viewer
        if await asyncio.wait_for(viewer.opened, connect_timeout):
            return None  # refused: the error is recorded
        return viewer.ended

    async def _open_websockets(self, index: int, connect_timeout: float):
        from websockets.asyncio.client import connect

        ws = await connect(
            self.url,
            origin=self.origin,
            compression="deflate" if self.deflate else None,
            max_size=None,
            ping_interval=None,
            open_timeout=connect_timeout,
            close_timeout=2,
        )
        self.sockets[index] = ws

        async def read() -> None:
            record, clock = self.record, time.time
            async for text in ws:
                if record(index, text, clock()):
                    break

        return read()

    async def _viewer(self, index: int, gate: asyncio.Semaphore, connect_timeout: float) -> None:
        try:
            async with gate:  # bounds the handshakes in flight, not the open sockets
                opening = self._open_raw if self.client == "raw" else self._open_websockets
                stream = await opening(index, connect_timeout)
            if stream is not None:
                self.connected += 1
                await stream
        except Exception as error:  # noqa: BLE001 - recorded, the report counts what was lost
            self.errors.append(f"viewer {index}: {type(error).__name__}: {error}")
        finally:
            self.finished += 1
            if self.finished == self.count:
                self.all_done.set()

    def start(self, parallel: int, connect_timeout: float) -> list[asyncio.Task]:
        gate = asyncio.Semaphore(parallel)
        return [asyncio.create_task(self._viewer(i, gate, connect_timeout)) for i in range(self.count)]

    async def close(self, timeout: float) -> None:
        sockets = [ws for ws in self.sockets if ws is not None]
        if self.client == "raw":
            for viewer in sockets:
                viewer.close()
            await asyncio.sleep(0.5)
            for viewer in sockets:
                if viewer.transport is not None:
                    viewer.transport.abort()
            return
        try:
            await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True), timeout)
        except TimeoutError:
            pass
        for ws in sockets:
            ws.transport.abort()


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]
