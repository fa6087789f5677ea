"""A record upload on the real server: the web process stores the files and a Celery worker reads
them, so an archive that inflates to hundreds of MiB leaves the web process's memory flat (its
peak resident size, VmHWM, measured across the upload)."""

import http.client
import io
import secrets
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from django.contrib.auth.models import User
from django.test import Client

from deliberation.records.models import RecordUpload, RecordUploadFile
from tests.integration import servers

MEMBER_MIB = 64


def memory_bytes(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the peak since the last reset_peak) of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


def wide_zip() -> bytes:
    """About 300 KB on the wire, four members of MEMBER_MIB MiB each once inflated."""
    buffer = io.BytesIO()
    block = b" " * 2**20
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(4):
            with archive.open(f"topic_datas/t{index}.json", "w", force_zip64=True) as member:
                member.write(b"[")
                for _ in range(MEMBER_MIB):
                    member.write(block)
                member.write(b"]")
    return buffer.getvalue()


def post_upload(url: str, *, session: str, payload: bytes) -> int:
    token = secrets.token_hex(16)  # a CSRF secret (32 characters), as cookie and form field
    boundary = secrets.token_hex(12)
    fields = {"csrfmiddlewaretoken": token, "record_set": "Wide", "mode": "extend", "note": "", "description": ""}
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="wide.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request(
            "POST",
            "/records/upload/",
            body=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Cookie": f"sessionid={session}; csrftoken={token}",
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_a_small_zip_of_large_members_leaves_the_web_process_flat_and_is_refused_without_its_files(
    asgi_server, celery_worker
):
    browser = Client()
    browser.force_login(User.objects.create_user("curator", password="a-long-test-password", is_staff=True))
    payload = wide_zip()
    reset_peak(asgi_server.pid)
    before = memory_bytes(asgi_server.pid, "VmRSS")

    status = post_upload(asgi_server.url, session=browser.cookies["sessionid"].value, payload=payload)

    assert status == 302
    servers.wait_until(
        lambda: RecordUpload.objects.get().status != RecordUpload.Status.CHECKING,
        timeout=120,
        what="the worker to check the upload",
    )
    grown = memory_bytes(asgi_server.pid, "VmHWM") - before
    upload = RecordUpload.objects.get()
    print(
        f"web process peak RSS grew {grown / 2**20:.1f} MiB for a {len(payload) / 2**10:.0f} KiB zip "
        f"of {4 * MEMBER_MIB} MiB inflated"
    )
    assert grown < MEMBER_MIB * 2**20, f"web peak RSS grew {grown / 2**20:.0f} MiB"
    assert upload.status == RecordUpload.Status.REFUSED and "over the limit" in str(upload.check_report)
    assert not RecordUploadFile.objects.exists()
