"""Request body size limits, enforced in ASGI before Django reads (and spools) the body.

Django's ASGI handler reads the whole body into a spooled temporary file before any view or
middleware runs, so a view's own check comes too late: an anonymous 1 GiB POST was written to
disk in full. This wrapper answers 413 when the declared Content-Length is over the limit, without
reading anything, and stops a body sent without one (chunked) as soon as the bytes received pass
the limit. It wraps the HTTP app in deliberation/asgi.py, so it applies under every server that
serves that application (`make run`, docker compose, the test stack).

Limits: HEMICYCLE_MAX_BODY_BYTES for every request, HEMICYCLE_UPLOAD_MAX_REQUEST_BYTES for a
record upload from a browser that carries a session cookie (the view then checks it is staff).
"""

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_PATH = "/records/upload/"


class BodyTooLarge(Exception):
    pass


def body_limit(scope: Scope) -> int:
    """The most bytes this request's body may have."""
    if scope.get("path") == UPLOAD_PATH and _has_session_cookie(scope):
        return settings.HEMICYCLE_UPLOAD_MAX_REQUEST_BYTES
    return settings.HEMICYCLE_MAX_BODY_BYTES


def _has_session_cookie(scope: Scope) -> bool:
    name = settings.SESSION_COOKIE_NAME.encode()
    return any(key == b"cookie" and name + b"=" in value for key, value in scope.get("headers", ()))


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"error": f"request body too large: at most {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, limit: Callable[[Scope], int] = body_limit) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send, limit)
