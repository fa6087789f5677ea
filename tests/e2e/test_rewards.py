"""The run page's Moral rewards panel draws itself when a run finishes live, without a reload, with
the values stored for the run (and the What-if panel its re-tally); a later load draws the same
panel from the server."""

import random

import pytest
from playwright.sync_api import Page, Route, expect

from deliberation.records.models import PartyGroup, RecordSet
from deliberation.runs.models import Run, RunGroupScore
from tests.e2e.test_live_run import sample_records, sign_up  # noqa: F401 - sample_records is a fixture
from tests.e2e.test_watching_a_run import build_two_group_run, start

pytestmark = pytest.mark.e2e

ROWS_JS = "() => [...document.querySelectorAll('#rewards-rows tr')].map((tr) => [...tr.cells].map((td) => td.textContent.trim()))"


def stored_rows(run: Run) -> list[list[str]]:
    """The panel's rows as the stored rewards read: label, deontological (-1/0/1), utilitarian (2 decimals)."""
    groups = PartyGroup.objects.filter(term=run.record.term, code__in=run.groups)  # as the page labels them
    labels = dict(groups.values_list("code", "short_label"))
    stored = {row.group: row for row in RunGroupScore.objects.filter(run=run)}
    return [
        [labels.get(code) or code, f"{stored[code].reward_deontological:.0f}", f"{stored[code].reward_utilitarian:.2f}"]
        for code in run.groups
    ]


def test_the_rewards_panel_appears_when_the_run_finishes_live(
    page: Page, sample_records: RecordSet, celery_worker
) -> None:
    celery_worker.stop()  # hold the run back until its page is watching
    sign_up(page)
    build_two_group_run(page, model_button="scripted:default", seed=random.randrange(1, 2**31 - 1))
    run = start(page)
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")
    panel = page.get_by_test_id("rewards")
    expect(panel).to_be_hidden()
    assert page.evaluate(ROWS_JS) == []
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    # The rows are stored just after the outcome event, so the first ask may find the run not yet
    # finished (409): answer the first one so, whatever the timing; the page asks again.
    asked: list[str] = []

    def not_yet_then_through(route: Route) -> None:
        asked.append(route.request.url)
        if len(asked) == 1:
            route.fulfill(status=409, json={"error": "run: its rewards are stored when it has finished"})
        else:
            route.continue_()

    page.route("**/api/v1/runs/*/rewards*", not_yet_then_through)

    celery_worker.start()
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=60_000)
    expect(panel).to_be_visible()
    expect(page.locator("#rewards-rows tr")).to_have_count(len(run.groups))
    assert page.evaluate("() => window.sameDocument") is True
    assert len(asked) >= 2 and all(url.endswith(f"/api/v1/runs/{run.pk}/rewards") for url in asked), asked
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    live = page.evaluate(ROWS_JS)
    assert live == stored_rows(run)
    # The "What if" panel asks the same way once the outcome is in: its re-tally, no error.
    expect(page.get_by_test_id("whatif")).to_have_attribute("data-state", "ready")
    expect(page.locator("#whatif-error")).to_be_empty()

    # A load after the finish: the server draws the same panel.
    page.reload()
    expect(page.get_by_test_id("outcome")).to_be_visible()
    expect(panel).to_be_visible()
    assert page.evaluate("() => window.sameDocument") is None
    assert page.evaluate(ROWS_JS) == live
