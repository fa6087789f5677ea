"""Request bodies over the limit are refused by the real server before Django reads them."""

import http.client
from urllib.parse import urlsplit

from django.conf import settings


def _post(url: str, path: str, *, body_bytes: int, chunked: bool) -> tuple[int, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        chunk = b"x" * 2**16
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/octet-stream")
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        else:
            connection.putheader("Content-Length", str(body_bytes))
        connection.endheaders()
        sent = 0
        try:
            while sent < body_bytes:
                piece = chunk[: body_bytes - sent]
                connection.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                connection.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed while we were still sending: that is the point
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_an_anonymous_oversized_upload_is_refused_with_413_before_it_is_read(asgi_server):
    status, body = _post(
        asgi_server.url, "/records/upload/", body_bytes=settings.HEMICYCLE_MAX_BODY_BYTES + 2**20, chunked=False
    )
    assert status == 413 and b"too large" in body


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(asgi_server):
    status, body = _post(
        asgi_server.url, "/api/v1/runs", body_bytes=settings.HEMICYCLE_MAX_BODY_BYTES * 3, chunked=True
    )
    assert status == 413 and b"too large" in body


def test_a_body_within_the_limit_still_reaches_the_application(asgi_server):
    status, _ = _post(asgi_server.url, "/api/v1/runs", body_bytes=1000, chunked=False)
    assert status == 401  # the API's own answer: no token
