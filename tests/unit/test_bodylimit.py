"""The request body limit answers 413 before the application reads the body."""

import asyncio

from django.test import override_settings

from deliberation.bodylimit import BodySizeLimit, body_limit


def _serve(app, *, headers: list[tuple[bytes, bytes]], chunks: list[bytes], path: str = "/api/v1/runs"):
    sent: list[dict] = []
    pulled: list[int] = []
    pending = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]

    async def receive():
        pulled.append(1)
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    asyncio.run(BodySizeLimit(app, limit=lambda scope: 100)(scope, receive, send))
    return sent, len(pulled)


class ReadingApp:
    """Reads the whole body first, as Django's ASGI handler does, then answers 200."""

    def __init__(self):
        self.body = b""
        self.called = False

    async def __call__(self, scope, receive, send):
        self.called = True
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body():
    app = ReadingApp()
    sent, pulled = _serve(app, headers=[(b"content-length", b"101")], chunks=[b"x" * 101])
    assert sent[0]["status"] == 413 and b"too large" in sent[1]["body"]
    assert pulled == 0 and not app.called


def test_a_streamed_body_without_a_length_is_stopped_once_it_passes_the_limit():
    app = ReadingApp()
    sent, pulled = _serve(app, headers=[], chunks=[b"x" * 60, b"x" * 60, b"x" * 60, b"x" * 60])
    assert sent[0]["status"] == 413
    assert pulled == 2  # the third chunk is never asked for
    assert len(app.body) <= 100


def test_a_body_within_the_limit_reaches_the_application():
    app = ReadingApp()
    sent, _ = _serve(app, headers=[(b"content-length", b"100")], chunks=[b"x" * 50, b"x" * 50])
    assert sent[0]["status"] == 200 and app.body == b"x" * 100


@override_settings(HEMICYCLE_MAX_BODY_BYTES=10, HEMICYCLE_UPLOAD_MAX_REQUEST_BYTES=1000)
def test_only_a_signed_in_browser_gets_the_upload_limit_on_the_upload_page():
    upload = {"type": "http", "path": "/records/upload/", "headers": []}
    assert body_limit(upload) == 10
    assert body_limit({**upload, "headers": [(b"cookie", b"csrftoken=a; sessionid=b")]}) == 1000
    assert body_limit({**upload, "path": "/api/v1/runs", "headers": [(b"cookie", b"sessionid=b")]}) == 10
