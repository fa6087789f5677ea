"""An admin uploads EuroCon topics that are not in the sample through the browser, watches the
import finish, browses the new records, and the benchmark runs on the uploaded set.

The zip is built here from fixtures/eurocon_subset, two topics the sample set lacks written for
this project in the EuroCon release's layout (their topic file and their task files for 2, 4 and
6 parties). The check and the import are Celery tasks in a real worker process; the import is
held back until the page watches its progress.
"""

import io
import re
import zipfile
from pathlib import Path

from django.contrib.auth.models import User
from playwright.sync_api import Error as PlaywrightError, Page, Request, expect

from deliberation.records.models import BenchmarkTask, Record, RecordSet, RecordUpload, seating_key
from tests.factories import ORACLE_EVALUATE_OPTIONS

EUROCON = Path(__file__).resolve().parents[2] / "fixtures" / "eurocon_subset"
TOPICS = ["culture & education", "legal affairs"]  # not in fixtures/sample_records
SET_NAME = "EuroCon uploaded"
PASSWORD = "Hemicycle-e2e-password-7"
IMPORT_TIMEOUT_MS = 60_000


def release_zip(topics: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for topic in topics:
            for relative in [f"topic_datas/{topic}.json"] + [f"task_datas/{n}/{topic}.json" for n in (2, 4, 6)]:
                archive.write(EUROCON / relative, f"eurocon/{relative}")
    return buffer.getvalue()


def record_poll(request: Request, polls: list[dict]) -> None:
    if request.url.endswith("/progress"):
        try:
            polls.append(request.response().json())
        except PlaywrightError:  # the page reloaded (the import finished) before the body was read
            pass


def sign_in_as_staff(page: Page) -> User:
    user = User.objects.create_user("curator", password=PASSWORD, is_staff=True)
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.locator("form [type=submit]").click()
    expect(page.get_by_test_id("nav-upload")).to_be_visible()
    return user


def test_admin_uploads_two_topics_watches_the_import_and_benchmarks_them(
    page: Page, ep_groups, celery_worker, manage
) -> None:
    sign_in_as_staff(page)

    page.get_by_test_id("nav-upload").click()
    page.get_by_test_id("upload-record-set").fill(SET_NAME)
    page.get_by_test_id("upload-files").set_input_files(
        files=[{"name": "eurocon-two-topics.zip", "mimeType": "application/zip", "buffer": release_zip(TOPICS)}]
    )
    page.get_by_test_id("upload-submit").click()

    # The check runs in the worker while the page polls it, then the page shows it: counts per
    # topic, term and group, and every problem, before anything is written.
    expect(page.get_by_test_id("upload-status")).to_have_text("checked", timeout=IMPORT_TIMEOUT_MS)
    for topic in TOPICS:
        expect(page.get_by_test_id("check-topics")).to_contain_text(topic)
    expect(page.get_by_test_id("check-terms")).to_contain_text("8th")
    # Groups by term, labelled ("S&D", not "SD") and seated left to right as in the chamber.
    expect(page.get_by_test_id("check-groups")).to_contain_text("8th term")
    codes = page.eval_on_selector_all(
        '[data-testid=check-groups] tr[data-group^="8th "]', "rows => rows.map((r) => r.dataset.group.slice(4))"
    )
    assert "SD" in codes and codes == sorted(codes, key=seating_key), codes
    expect(page.get_by_test_id("check-groups").locator('tr[data-group="8th SD"]')).to_contain_text("S&D")
    expect(page.get_by_test_id("check-problems")).to_contain_text("no stances: record skipped")
    expect(page.get_by_test_id("check-files")).to_contain_text(
        "eurocon-two-topics.zip:eurocon/task_datas/6/legal affairs.json"
    )
    assert not RecordSet.objects.filter(name=SET_NAME).exists()

    celery_worker.stop()  # the import waits until the page watches its progress
    # Importing needs consent to skip the records the check rejected; then it queues.
    page.get_by_test_id("import-submit").click()
    expect(page.get_by_test_id("import-refusal")).to_contain_text("tick the box")
    page.get_by_test_id("skip-problems").check()
    polls: list[dict] = []  # what the progress endpoint answered the page, in order
    page.on("requestfinished", lambda request: record_poll(request, polls))
    page.get_by_test_id("import-submit").click()
    expect(page.get_by_test_id("import-progress")).to_be_visible()
    expect(page.locator("#import-label")).to_have_text("0% · waiting for a worker")  # set by a poll
    assert RecordUpload.objects.get().status == "queued"

    expect(page.locator("#import-label")).to_contain_text("0% · waiting for a worker")  # a poll answered
    celery_worker.start()
    # The page polls until the import finishes, then reloads and shows the report.
    expect(page.get_by_test_id("import-done")).to_be_visible(timeout=IMPORT_TIMEOUT_MS)
    assert polls[0] == {"status": "queued", "progress": 0, "label": "waiting for a worker", "finished": False}
    assert [poll["progress"] for poll in polls] == sorted(poll["progress"] for poll in polls)
    expect(page.get_by_test_id("upload-status")).to_have_text("done")
    expect(page.get_by_test_id("import-report")).to_contain_text(
        f'Import into record set "{SET_NAME}" (new record set, version 1)'
    )
    upload = RecordUpload.objects.get()
    assert upload.status == "done" and upload.version.number == 1
    record_set = RecordSet.objects.get(name=SET_NAME)
    assert set(Record.objects.filter(record_set=record_set).values_list("topics__name", flat=True)) == set(TOPICS)
    assert BenchmarkTask.objects.filter(record_set=record_set).count() == upload.result_report["tasks"] > 0

    # The records appear in the browser: search a title, open the record, build from it.
    record = Record.objects.filter(record_set=record_set, topics__name="legal affairs").order_by("id").first()
    page.get_by_test_id("record-set-link").click()
    expect(page.get_by_test_id("record-set-name")).to_have_text(SET_NAME)
    page.get_by_test_id("filter-q").fill(record.title[:40])
    page.get_by_test_id("filter-submit").click()
    link = page.get_by_test_id("record-link").filter(has_text=record.title[:40])
    expect(link.first).to_be_visible()
    link.first.click()
    expect(page.get_by_test_id("record-title")).to_have_text(record.title)
    stance = record.stances.select_related("group").first()
    expect(page.locator(f"[data-testid=record-stances] [data-group='{stance.group.code}']")).to_contain_text(
        f"{stance.real_choice}/9"
    )
    expect(page.get_by_test_id("build-from-record")).to_have_attribute("href", f"/scenarios/new/?record={record.pk}")
    page.get_by_test_id("build-from-record").click()
    expect(page.get_by_test_id("record-title")).to_contain_text(record.title[:40])

    # The PoliCon benchmark runs on the uploaded set.
    result = manage("evaluate", "--record-set", SET_NAME, *ORACLE_EVALUATE_OPTIONS)
    assert result.returncode == 0, result.stdout + result.stderr
    tasks = BenchmarkTask.objects.filter(record_set=record_set, party_count=2).count()
    assert re.search(rf"^{tasks} runs in ", result.stdout, re.M), result.stdout
