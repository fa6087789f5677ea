"""Uploading records in the browser: staff only, a check before anything is written, the import as
a Celery task with progress, and bad input that leaves the database exactly as it was."""

import io
import json
import re
import threading
import zipfile

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from deliberation.records.importing.sources import zip_member_read
from deliberation.records.models import (
    BenchmarkTask,
    GroupAlias,
    Record,
    RecordSet,
    RecordSetVersion,
    RecordUpload,
    Stance,
    Topic,
)
from deliberation.records.services import records_import
from deliberation.records.tasks import record_upload_check_task, record_upload_import_task
from tests.factories import ORACLE_EVALUATE_OPTIONS, migrated_rows_load
from tests.unit.records.builders import stance, task_record, topic_record, write_json

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def tasks_played_here(monkeypatch):
    """The view queues the check and the import for a worker; here the tests play them in this
    process (post_upload, import_upload), on both layers. On the stack the session's worker
    process (once a test has started it) took them too, from a transactional test, and often
    first: it reads the stored files under its own MEDIA_ROOT, not this test's (media), so it
    refused them as unreadable, or failed the import ("could not be read"), before the task here
    ran ("no record set named 'Browser set'" in CI). So they never reach the broker."""
    from deliberation.records import services

    monkeypatch.setattr(services, "_enqueue_check", lambda upload_id: None)
    monkeypatch.setattr(services, "_enqueue_upload", lambda upload_id: None)


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_user("curator", password="a-long-test-password", is_staff=True))
    return client


@pytest.fixture
def member(client):
    client.force_login(User.objects.create_user("member", password="a-long-test-password"))
    return client


def records_state() -> dict[str, object]:
    """Every records table, counted, plus the names of record sets and their current versions."""
    return {
        "record sets": list(RecordSet.objects.values_list("name", "current_version")),
        "versions": RecordSetVersion.objects.count(),
        "version records": RecordSetVersion.records.through.objects.count(),
        "records": Record.objects.count(),
        "record topics": Record.topics.through.objects.count(),
        "stances": Stance.objects.count(),
        "tasks": BenchmarkTask.objects.count(),
        "topics": Topic.objects.count(),
    }


def js(data) -> bytes:
    return json.dumps(data).encode("utf-8")


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def post_upload(client, files: dict[str, bytes], *, record_set: str = "Uploaded", mode: str = "extend", check=True):
    """Upload in the browser, then (check) run the check's Celery task as the worker would."""
    response = client.post(
        reverse("record-upload"),
        {
            "record_set": record_set,
            "mode": mode,
            "note": "",
            "description": "",
            "files": [SimpleUploadedFile(name, data) for name, data in files.items()],
        },
    )
    if check:
        for upload in RecordUpload.objects.filter(status=RecordUpload.Status.CHECKING):
            record_upload_check_task.apply(kwargs={"upload_id": upload.pk}).get()
    return response


def import_upload(client, upload: RecordUpload, *, skip_problems: bool = False):
    """Press Import, then run the Celery task as the worker would (in this process)."""
    data = {"skip_problems": "on"} if skip_problems else {}
    response = client.post(reverse("record-upload-detail", args=[upload.pk]), data)
    upload.refresh_from_db()
    if upload.status == RecordUpload.Status.QUEUED:
        record_upload_import_task.apply(kwargs={"upload_id": upload.pk}).get()
        upload.refresh_from_db()
    return response


GOOD = topic_record(0, title="Good widgets")


# The flow -------------------------------------------------------------------------------------------


def test_check_shows_counts_and_problems_before_anything_is_written(staff):
    bad = topic_record(1, title="Bad", stances=[stance("EPP", 1.5)])
    response = post_upload(staff, {"agriculture.json": js([GOOD, bad])})

    upload = RecordUpload.objects.get()
    assert response.status_code == 302 and response.url == reverse("record-upload-detail", args=[upload.pk])
    assert records_state()["records"] == 0 and RecordSet.objects.count() == 0
    page = staff.get(response.url).text
    assert upload.status == "checked"
    assert upload.check_report["records_by_topic"] == {"agriculture": 1}
    assert upload.check_report["records_by_term"] == {"7th": 1}
    assert upload.check_report["stances_by_group"] == {"7th ALDE": 1, "7th EPP": 1, "7th SD": 1}
    for text in (
        "agriculture",
        "7th EPP",
        "agriculture.json",
        "stances[0].score",
        "Input should be less than or equal to 1",
    ):
        assert text in page


def test_import_runs_as_a_task_and_ends_with_the_command_line_report(staff):
    task = task_record(GOOD, ["EPP", "SD"], [0.4, 0.6], "SD")
    post_upload(
        staff,
        {
            "release.zip": zipped(
                {
                    "eurocon/topic_datas/agriculture.json": js([GOOD]),
                    "eurocon/task_datas/2/agriculture.json": js([task]),
                }
            )
        },
    )
    upload = RecordUpload.objects.get()

    import_upload(staff, upload)

    assert upload.status == "done" and upload.version.number == 1
    assert Record.objects.get().title == "Good widgets" and BenchmarkTask.objects.count() == 1
    text = upload.result_report["text"]
    assert text.startswith('Import into record set "Uploaded" (new record set, version 1)')
    assert "release.zip:eurocon/task_datas/2/agriculture.json" in text
    progress = staff.get(reverse("record-upload-progress", args=[upload.pk])).json()
    assert progress == {"status": "done", "progress": 1.0, "label": "done", "finished": True}
    page = staff.get(reverse("record-upload-detail", args=[upload.pk])).text
    assert "1 new records" in page and "New: 1 records, 3 stances, 1 tasks" in page


def test_progress_reports_the_running_import(staff, monkeypatch):
    post_upload(staff, {"a.json": js([GOOD])})
    upload = RecordUpload.objects.get()
    staff.post(reverse("record-upload-detail", args=[upload.pk]))
    seen = []

    original = cache.set

    def spy(key, value, *args, **kwargs):
        original(key, value, *args, **kwargs)
        seen.append(staff.get(reverse("record-upload-progress", args=[upload.pk])).json())

    monkeypatch.setattr(cache, "set", spy)
    record_upload_import_task.apply(kwargs={"upload_id": upload.pk}).get()

    fractions = [state["progress"] for state in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 5
    assert {"status": "importing", "progress": 0.5, "label": "writing records", "finished": False} in seen


def test_uploading_into_an_existing_set_makes_a_new_version(staff):
    post_upload(staff, {"a.json": js([GOOD])})
    import_upload(staff, RecordUpload.objects.get())
    post_upload(staff, {"b.json": js([topic_record(0, title="More widgets")])})

    import_upload(staff, RecordUpload.objects.latest("id"))

    current = RecordSet.objects.get(name="Uploaded").current_version
    assert current.number == 2 and current.created_by.username == "curator"
    assert sorted(current.records.values_list("title", flat=True)) == ["Good widgets", "More widgets"]


def test_records_with_problems_need_the_admins_consent_then_the_rest_is_imported(staff):
    post_upload(staff, {"a.json": js([GOOD, topic_record(1, title="Empty", stances=[])])})
    upload = RecordUpload.objects.get()
    before = records_state()

    refused = import_upload(staff, upload)

    assert refused.status_code == 400 and "tick the box to import the rest" in refused.text
    assert upload.status == "checked" and records_state() == before
    import_upload(staff, upload, skip_problems=True)
    assert upload.status == "done"
    assert list(Record.objects.values_list("title", flat=True)) == ["Good widgets"]


def test_unknown_group_code_is_reported_and_an_alias_in_the_admin_maps_it(staff):
    record = topic_record(0, term="8th_datas", stances=[stance("EPP", 0.9), stance("EFD", 0.4)])
    post_upload(staff, {"a.json": js([record])})
    page = staff.get(reverse("record-upload-detail", args=[RecordUpload.objects.get().pk])).text
    assert "unknown group code EFD for the 8th term: map it in the admin" in page
    assert reverse("admin:records_groupalias_add") in page

    admin_user = User.objects.create_superuser("root", "root@example.org", "a-long-test-password")
    staff.force_login(admin_user)
    efdd = Stance._meta.get_field("group").related_model.objects.get(code="EFDD", term="8th")
    added = staff.post(reverse("admin:records_groupalias_add"), {"term": "8th", "alias": "efd", "group": efdd.pk})
    assert added.status_code == 302 and GroupAlias.objects.get().alias == "EFD"

    post_upload(staff, {"a.json": js([record])})
    upload = RecordUpload.objects.latest("id")
    assert upload.check_report["problems"] == []
    import_upload(staff, upload)
    assert sorted(Stance.objects.values_list("group__code", flat=True)) == ["EFDD", "EPP"]


def test_admin_alias_must_name_a_group_of_the_same_term(staff):
    admin_user = User.objects.create_superuser("root", "root@example.org", "a-long-test-password")
    staff.force_login(admin_user)
    seventh = Stance._meta.get_field("group").related_model.objects.get(code="EFD", term="7th")

    response = staff.post(reverse("admin:records_groupalias_add"), {"term": "8th", "alias": "X", "group": seventh.pk})

    assert response.status_code == 200 and "is a group of the 7th term, not the 8th" in response.text
    assert not GroupAlias.objects.exists()


# Bad input: refused, nothing written, and why -----------------------------------------------------


def zip_with_info(entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return buffer.getvalue()


def lying_zip_bomb() -> bytes:
    """A zip whose headers say its member is 10 bytes while it inflates to 5 MiB."""
    data = bytearray(zipped({"bomb.json": b"[" + b" " * (5 * 2**20) + b"]"}))
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    return bytes(data)


BAD_INPUTS = {
    "truncated JSON": ({"a.json": js([GOOD]), "cut.json": js([GOOD])[:40]}, "not valid JSON, perhaps truncated"),
    "invalid JSON": ({"a.json": b"[{'title': 'single quotes'}]"}, "not valid JSON"),
    "not UTF-8": ({"a.json": '[{"title": "Caf\xe9"}]'.encode("latin-1")}, "not UTF-8 text (byte 0xe9 at offset 15)"),
    "not a list": ({"a.json": js({"records": [GOOD]})}, "expected a JSON list of records, found dict"),
    "too many zip members": (
        {"many.zip": zipped({f"topic_datas/t{i}.json": js([GOOD]) for i in range(6)})},
        "zip archive has 6 members, more than the limit of 5",
    ),
    "too large when uncompressed (declared)": (
        {"big.zip": zipped({"topic_datas/a.json": js([GOOD]) + b" " * (2 * 2**20)})},
        "zip archive would inflate to 2 MiB, over the limit of 1 MiB",
    ),
    # CPython's zipfile stops at the declared size, so the lie ends in a failed CRC check.
    "zip whose directory lies about sizes": (
        {"bomb.zip": lying_zip_bomb()},
        "cannot be read from the archive: Bad CRC-32 for file 'bomb.json'",
    ),
    "absolute zip path": (
        {"abs.zip": zipped({"/etc/a.json": js([GOOD]), "ok.json": js([GOOD])})},
        "zip member path '/etc/a.json' is absolute or climbs out with '..'",
    ),
    "'..' zip path": (
        {"up.zip": zipped({"topic_datas/../../a.json": js([GOOD])})},
        "zip member path 'topic_datas/../../a.json' is absolute or climbs out with '..'",
    ),
    "wrong types": ({"a.json": js([{**GOOD, "title": 12}])}, "Input should be a valid string"),
    "missing fields": (
        {"a.json": js([{k: v for k, v in GOOD.items() if k != "background"}])},
        "background",
    ),
    "records without stances": ({"a.json": js([topic_record(0, stances=[])])}, "no stances: record skipped"),
    "scores out of range": (
        {"a.json": js([topic_record(0, stances=[stance("EPP", 1.5), stance("SD", -0.2)])])},
        "Input should be less than or equal to 1",
    ),
    "seat weights that do not add up": (
        {"t.json": js([task_record(GOOD, ["EPP", "SD"], [0.5, 0.6], "SD")])},
        "seat weights add up to 1.1, not 1: task skipped",
    ),
    "duplicate ids": (
        {"a.json": js([GOOD, topic_record(0, title="Same id")])},
        "duplicate id in this file (first at item 0): skipped",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_upload_leaves_the_database_as_it_was_and_says_why(staff, settings, case):
    settings.HEMICYCLE_UPLOAD_MAX_ZIP_MEMBERS = 5
    settings.HEMICYCLE_UPLOAD_MAX_UNCOMPRESSED_BYTES = 2**20
    files, reason = BAD_INPUTS[case]
    post_upload(staff, {"old.json": js([topic_record(5, title="Already there")])}, record_set="Existing")
    import_upload(staff, RecordUpload.objects.get())
    before = records_state()

    response = post_upload(staff, files, record_set="Existing")
    upload = RecordUpload.objects.latest("id")
    page = staff.get(response.url).text
    attempt = import_upload(staff, upload)  # pressing Import anyway, without agreeing to skip anything

    assert escape(reason) in page
    assert attempt.status_code == 400
    assert upload.status in {"refused", "checked"}
    assert records_state() == before


def test_file_over_the_size_limit_is_refused_before_anything_is_stored(staff, settings):
    settings.HEMICYCLE_UPLOAD_MAX_BYTES = 1000
    before = records_state()

    response = post_upload(staff, {"small.json": js([GOOD]), "large.json": b"[" + b" " * 2000 + b"]"})

    assert response.status_code == 400
    assert "large.json is 0.0 MiB, over the upload limit of 0.0 MiB: nothing was stored" in response.text
    assert records_state() == before and not RecordUpload.objects.exists()
    assert not (settings.MEDIA_ROOT / "record_uploads").exists()


def test_replace_mode_from_the_browser_makes_a_version_of_exactly_the_upload(staff):
    post_upload(staff, {"a.json": js([GOOD])})
    import_upload(staff, RecordUpload.objects.get())
    post_upload(staff, {"b.json": js([topic_record(0, title="Only this")])}, mode="replace")

    import_upload(staff, RecordUpload.objects.latest("id"))

    current = RecordSet.objects.get().current_version
    assert list(current.records.values_list("title", flat=True)) == ["Only this"]
    diff = staff.get(reverse("record-set-compare", args=[current.record_set_id]))
    assert "1 added, 1 removed, 0 changed" in diff.text


# Permissions -------------------------------------------------------------------------------------


STAFF_URLS = [
    ("record-upload", []),
    ("record-upload-detail", ["upload"]),
    ("record-upload-progress", ["upload"]),
    ("record-set-compare", ["set"]),
]


@pytest.fixture
def an_upload():
    curator = Client()
    curator.force_login(User.objects.create_user("uploader", password="a-long-test-password", is_staff=True))
    post_upload(curator, {"a.json": js([GOOD])})
    upload = RecordUpload.objects.get()
    import_upload(curator, upload)
    return upload


def url_of(name: str, args: list[str], upload: RecordUpload) -> str:
    values = {"upload": upload.pk, "set": RecordSet.objects.get().pk}
    return reverse(name, args=[values[arg] for arg in args])


@pytest.mark.parametrize("name,args", STAFF_URLS)
def test_non_staff_get_403_for_get_and_post(member, an_upload, name, args):
    url = url_of(name, args, an_upload)
    assert member.get(url).status_code == 403
    assert member.post(url, {}).status_code == 403


@pytest.mark.parametrize("name,args", STAFF_URLS)
def test_anonymous_is_sent_to_sign_in(client, an_upload, name, args):
    url = url_of(name, args, an_upload)
    for response in (client.get(url), client.post(url, {})):
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_non_staff_upload_is_refused_before_its_body_is_read(member, monkeypatch):
    def parse(self):  # the multipart parser reads the files; it must never run for a refused user
        raise AssertionError("the upload's body was read")

    monkeypatch.setattr(MultiPartParser, "parse", parse)
    before = records_state()

    response = post_upload(member, {"a.json": js([GOOD])})

    assert response.status_code == 403
    assert records_state() == before and not RecordUpload.objects.exists()


def test_staff_upload_still_needs_the_csrf_token(staff):
    csrf_client = staff.__class__(enforce_csrf_checks=True)
    csrf_client.force_login(User.objects.get(username="curator"))

    response = post_upload(csrf_client, {"a.json": js([GOOD])})

    assert response.status_code == 403 and not RecordUpload.objects.exists()


# Browsing ------------------------------------------------------------------------------------------


def test_signed_in_users_browse_sets_search_titles_and_open_a_record(member, an_upload, tmp_path):
    other = topic_record(1, title="Cod quotas", topic="fisheries")
    records_import(paths=[write_json(tmp_path, "f.json", [other])], name="Uploaded")
    record_set = RecordSet.objects.get()

    home = member.get(reverse("home")).text
    assert reverse("record-set", args=[record_set.pk]) in home
    listing = member.get(reverse("record-set", args=[record_set.pk]), {"q": "cod"}).text
    assert "Cod quotas" in listing and "Good widgets" not in listing
    by_topic = member.get(reverse("record-set", args=[record_set.pk]), {"topic": "agriculture"}).text
    assert "Good widgets" in by_topic and "Cod quotas" not in by_topic
    assert "Good widgets" not in member.get(reverse("record-set", args=[record_set.pk]), {"term": "9th"}).text
    lone = topic_record(2, title="One group only", stances=[stance("EPP", 0.3)])
    records_import(paths=[write_json(tmp_path, "l.json", [lone])], name="Uploaded")
    assert "One group only" in member.get(reverse("record-set", args=[record_set.pk])).text  # browsing shows it

    record = Record.objects.get(title="Good widgets")
    page = member.get(reverse("record", args=[record.pk])).text
    assert record.background in page and record.resolution in page
    assert "EPP weighs the issue." in page and "9/9" in page and "90% of its MEPs for" in page
    assert f'{reverse("scenario-builder")}?record={record.pk}' in page


def test_browsing_needs_sign_in(client, an_upload):
    record = Record.objects.get()
    for url in (reverse("record-set", args=[record.record_set_id]), reverse("record", args=[record.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_uploaded_text_is_escaped_never_markup(staff):
    evil = topic_record(
        0,
        title="<script>alert(1)</script>",
        stances=[stance("EPP", 0.5, "<img src=x onerror=alert(2)>"), stance("SD", 0.5)],
    )
    post_upload(staff, {"<b>x</b>.json": js([evil])})
    upload = RecordUpload.objects.get()
    import_upload(staff, upload)

    pages = [
        staff.get(reverse("record-upload-detail", args=[upload.pk])).text,
        staff.get(reverse("record", args=[Record.objects.get().pk])).text,
    ]
    for page in pages:
        assert "<script>alert(1)" not in page and "<img src=x" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]


def test_inflated_bytes_are_counted_while_reading_not_taken_from_the_directory():
    archive = zipfile.ZipFile(io.BytesIO(zipped({"a.json": b" " * 5000})))
    info = archive.infolist()[0]

    assert zip_member_read(archive, info, budget=4999) is None  # stops once the count passes the budget
    assert zip_member_read(archive, info, budget=5000) == b" " * 5000


@pytest.mark.django_db(transaction=True)  # the evaluation's runs are played once committed
def test_the_benchmark_runs_on_a_set_uploaded_in_the_browser(staff, eager_worker):
    migrated_rows_load()
    other = topic_record(1, title="Other widgets", stances=[stance("EPP", 0.2), stance("SD", 0.8), stance("ALDE", 0.6)])
    tasks = [task_record(GOOD, ["EPP", "SD"], [0.4, 0.6], "SD"), task_record(other, ["EPP", "ALDE"], [0.7, 0.3], "EPP")]
    post_upload(staff, {"t.json": js(tasks)}, record_set="Browser set")
    import_upload(staff, RecordUpload.objects.get())
    out = io.StringIO()

    call_command("evaluate", "--record-set", "Browser set", *ORACLE_EVALUATE_OPTIONS, stdout=out)

    # EPP 0.9 x 0.4 + SD 0.45 x 0.6 -> choices 9 and 4: u = 6.0 passes; EPP 2 x 0.7 + ALDE 6 x 0.3 = 3.2 fails
    assert re.search(r"^Simple majority\s+0\.50\s*$", out.getvalue(), re.M), out.getvalue()
    assert "2 runs in" in out.getvalue()


def test_the_request_only_stores_the_files_and_queues_the_check(staff, monkeypatch, django_capture_on_commit_callbacks):
    from deliberation.records import services

    queued = []
    monkeypatch.setattr(services, "_enqueue_check", queued.append)
    monkeypatch.setattr(services, "records_check", lambda **kwargs: pytest.fail("the web request read the files"))
    with django_capture_on_commit_callbacks(execute=True):
        response = post_upload(staff, {"a.json": js([GOOD])}, check=False)

    upload = RecordUpload.objects.get()
    assert response.status_code == 302 and upload.status == "checking" and upload.check_report is None
    assert queued == [upload.pk]
    progress = staff.get(reverse("record-upload-progress", args=[upload.pk])).json()
    assert progress["status"] == "checking" and progress["finished"] is False
    assert "Checking" in staff.get(reverse("record-upload-detail", args=[upload.pk])).text


def test_a_refused_upload_keeps_its_report_but_not_its_files(staff, settings):
    post_upload(staff, {"cut.json": js([GOOD])[:40]})

    upload = RecordUpload.objects.get()
    assert upload.status == "refused" and "not valid JSON" in str(upload.check_report)
    assert not upload.files.exists()
    stored = settings.MEDIA_ROOT / "record_uploads"
    assert not stored.exists() or not any(path.is_file() for path in stored.rglob("*"))


# Two runs of one task at once (a redelivery, or a worker beside the task applied here) -------------


def held_first_call(monkeypatch, name: str) -> tuple[threading.Event, threading.Event, list[int]]:
    """services.<name> that, on its first call, says so (entered) and waits for release."""
    from deliberation.records import services

    original = getattr(services, name)
    entered, release, calls = threading.Event(), threading.Event(), []

    def held(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            assert release.wait(30), "never released"
        return original(**kwargs)

    monkeypatch.setattr(services, name, held)
    return entered, release, calls


def in_thread(function, **kwargs) -> threading.Thread:
    def run():
        try:
            function(**kwargs)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def needs_row_locks() -> None:
    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("SQLite has no row locks: services._upload_taken takes none there")


@pytest.mark.django_db(transaction=True)  # two connections: each must see the other's commits
def test_a_second_check_while_the_first_runs_leaves_it_to_the_first_and_the_import_still_runs(staff, monkeypatch):
    """Two runs of the check at once: the late one wrote "checked" over the import the admin queued
    in between, so no import ran and no record set was made."""
    needs_row_locks()
    migrated_rows_load()  # the party groups, which a transactional test's flush removed
    from deliberation.records import services

    entered, release, calls = held_first_call(monkeypatch, "records_check")
    post_upload(staff, {"a.json": js([GOOD])}, record_set="Twice checked", check=False)
    upload = RecordUpload.objects.get()
    first = in_thread(services.record_upload_check, upload_id=upload.pk)
    try:
        assert entered.wait(30)

        second = record_upload_check_task.apply(kwargs={"upload_id": upload.pk})
        assert second.successful() and len(calls) == 1  # it left the upload to the first
        upload.refresh_from_db()
        assert upload.status == "checking"
        staff.post(reverse("record-upload-detail", args=[upload.pk]))  # Import: not before the check ends
        upload.refresh_from_db()
        assert upload.status == "checking"
    finally:
        release.set()
        first.join(30)

    upload.refresh_from_db()
    assert upload.status == "checked" and len(calls) == 1
    import_upload(staff, upload)
    assert upload.status == "done"
    assert RecordSet.objects.get().name == "Twice checked" and Record.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_upload_at_once_write_the_set_once_and_end_done(staff, monkeypatch):
    needs_row_locks()
    migrated_rows_load()  # the party groups, which a transactional test's flush removed
    from deliberation.records import services

    post_upload(staff, {"a.json": js([GOOD, topic_record(1, title="More widgets")])}, record_set="Twice imported")
    upload = RecordUpload.objects.get()
    staff.post(reverse("record-upload-detail", args=[upload.pk]))
    upload.refresh_from_db()
    assert upload.status == "queued"
    entered, release, calls = held_first_call(monkeypatch, "records_import")
    first = in_thread(services.record_upload_import, upload_id=upload.pk)
    try:
        assert entered.wait(30)

        second = record_upload_import_task.apply(kwargs={"upload_id": upload.pk})
        assert second.successful() and len(calls) == 1  # it left the upload to the first
        upload.refresh_from_db()
        assert upload.status == "importing" and RecordSet.objects.count() == 0
    finally:
        release.set()
        first.join(30)

    upload.refresh_from_db()
    assert upload.status == "done" and len(calls) == 1
    assert upload.result_report["records_new"] == 2 and upload.version.number == 1
    assert RecordSet.objects.get().current_version.number == RecordSetVersion.objects.count() == 1
    assert Record.objects.count() == 2
    # A redelivery after it finished (a worker that died before its ack) changes nothing.
    record_upload_import_task.apply(kwargs={"upload_id": upload.pk}).get()
    assert len(calls) == 1 and RecordSetVersion.objects.count() == 1
