"""The run page tells what recovery did: the run resumed after its worker was lost, and each model
call that answered only after retries (issue 19, section 4)."""

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from deliberation.runs.models import Run
from deliberation.runs.recovery import runs_reclaim_lost
from deliberation.runs.services import run_create
from tests.factories import make_record, make_user, scenario_config

RUN_TIMEOUT_MS = 60_000


def test_the_run_page_shows_the_resume_after_a_lost_worker_and_the_retried_model_calls(
    page: Page, celery_worker
) -> None:
    celery_worker.stop()  # the run's first worker "dies" before it wrote anything
    owner, record = make_user(), make_record()
    run = run_create(
        owner=owner, config=scenario_config(record, model="scripted:flaky"), visibility=Run.Visibility.LINK
    )
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RUNNING, attempts=1, heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    assert runs_reclaim_lost(lost_after_s=30) == [run.pk]
    celery_worker.start()

    page.goto(f"/runs/{run.pk}/?token={run.share_token}")
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("event-control")).to_contain_text("Resuming after a worker was lost (attempt 2)")
    notes = page.get_by_test_id("retry-note")
    expect(notes.first).to_have_text(
        "The model scripted:flaky answered after 2 attempts (TimeoutError: scripted:flaky times out on a first attempt)."
    )
    retries = [
        retry
        for e in Run.objects.get(pk=run.pk).events.all()
        for retry in (e.data.get("usage") or {}).get("retries", ())
    ]
    assert notes.count() == len(retries) > 0  # one line per retried call, under its step
