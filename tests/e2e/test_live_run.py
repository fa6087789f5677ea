"""A live run in Chromium: sign up, build a scenario, watch it stream, reload mid-run, see the outcome.

The run is played by a real Celery worker process with the scripted:slow model (0.05 s a call),
streamed through uvicorn's websocket from the event log in PostgreSQL. The worker is held back
until the run page is watching, so every speech is seen arriving live rather than replayed.
"""

import random
import re
from uuid import uuid4

import pytest
from playwright.sync_api import Page, expect

from deliberation.records.models import PartyGroup, Record, RecordSet
from deliberation.runs.models import Run, RunEvent
from tests.integration import servers

SAMPLE_SET = "Sample EP issues"
RECORD_TITLE = "Posting of workers"
KEEP = ["EPP", "SD", "ECR", "ALDE", "GREEN_EFA"]  # GUE_NGL and ENF are left out
SEATED = ["SD", "GREEN_EFA", "ALDE", "EPP", "ECR"]  # KEEP as the chamber seats them, left to right
VETO = "GREEN_EFA"
PASSWORD = "Hemicycle-e2e-password-7"
RUN_TIMEOUT_MS = 60_000

SPEECH_COUNT_JS = "() => document.querySelectorAll('#transcript [data-testid=speech]').length"
# The number of speech cards while the outcome has not arrived yet; false (keep polling) otherwise.
SPEECHES_BEFORE_OUTCOME_JS = """(seen) => {
  const count = document.querySelectorAll('#transcript [data-testid=speech]').length;
  const outcome = document.querySelector('#transcript [data-type=outcome]');
  return count > seen && !outcome ? count : false;
}"""
SEQS_JS = "() => [...document.querySelectorAll('#transcript [data-seq]')].map((node) => Number(node.dataset.seq))"


@pytest.fixture
def sample_records(manage, ep_groups) -> RecordSet:
    """The sample record set, imported by the real command into the test database (after the
    EP groups, which transactional tests empty with every other table)."""
    manage("import_records", "fixtures/sample_records", "--name", SAMPLE_SET)
    return RecordSet.objects.get(name=SAMPLE_SET)


def sign_up(page: Page) -> str:
    username = f"e2e-{uuid4().hex[:10]}"
    page.goto("/accounts/login/")
    page.get_by_test_id("signup-link").click()
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.get_by_test_id("signup-submit").click()
    # A new account lands on its lab: nothing yet, and the next steps; the first one builds a run.
    expect(page).to_have_url(re.compile(r"/me/$"))
    expect(page.get_by_test_id("next-steps")).to_contain_text("Start here")
    expect(page.get_by_test_id("no-recent-runs")).to_be_visible()
    page.get_by_test_id("next-build").click()
    expect(page).to_have_url(re.compile(r"/scenarios/new/$"))
    return username


def pick_record(page: Page) -> None:
    page.get_by_test_id("filter-set").select_option(SAMPLE_SET)
    page.get_by_test_id("filter-q").fill(RECORD_TITLE)
    item = page.get_by_test_id("record-item").filter(has_text=RECORD_TITLE)
    expect(item).to_have_count(1)
    item.click()
    expect(page.get_by_test_id("record-title")).to_contain_text(RECORD_TITLE)


def build_scenario(page: Page, *, seed: int) -> None:
    pick_record(page)

    # Every group of the record is ticked at first; leave two out.
    for code in ("GUE_NGL", "ENF"):
        page.get_by_test_id(f"group-{code}").uncheck()
    preview = page.get_by_test_id("hemicycle-preview")
    # Seated left to right by political position, not by size (records.models.SEATING_ORDER).
    expect(preview).to_have_attribute("data-groups", re.compile(r"^" + ",".join(f"{c}:\\d+" for c in SEATED) + r"$"))

    # The preview follows the seat structure: with the real seats of the record's term, each
    # group's share is its seats over the participants' seats.
    page.get_by_test_id("seed").fill(str(seed))
    page.get_by_test_id("seat-structure").select_option("real")
    expect(page.get_by_test_id("preview-status")).to_contain_text("Real EP seats")
    record = Record.objects.get(record_set__name=SAMPLE_SET, title__startswith=RECORD_TITLE)
    seats = dict(PartyGroup.objects.filter(term=record.term, code__in=KEEP).values_list("code", "seats_at_start"))
    for code in KEEP:
        share = 100 * seats[code] / sum(seats.values())
        expect(page.get_by_test_id("preview-seats")).to_contain_text(f"{share:.1f}%")
    expect(preview).to_have_attribute(
        "data-groups", re.compile(rf",EPP:{round(100 * seats['EPP'] / sum(seats.values()))},")
    )

    page.get_by_test_id("goal").select_option("veto_power")
    page.get_by_test_id("veto-group").select_option(VETO)
    page.get_by_test_id("strategy").select_option("parliament")
    page.get_by_test_id("parliament-rounds").fill("1")
    page.get_by_role("button", name="scripted:slow").click()
    expect(page.get_by_test_id("model")).to_have_value("scripted:slow")
    page.get_by_test_id("judge").select_option("scripted")


def test_live_run_streams_speeches_survives_a_reload_and_shows_the_outcome(
    page: Page, sample_records: RecordSet, celery_worker
) -> None:
    # Hold the work back until the run page is watching.
    celery_worker.stop()
    username = sign_up(page)
    build_scenario(page, seed=random.randrange(1, 2**31 - 1))

    page.get_by_test_id("start-run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    run = Run.objects.get(pk=run_id)
    assert (run.owner.username, run.strategy, run.model, run.judge) == (
        username,
        "parliament",
        "scripted:slow",
        "scripted",
    )
    assert (run.groups, run.seat_structure, run.goal, run.veto_group, run.params["rounds"]) == (
        KEEP,
        "real",
        "veto_power",
        VETO,
        1,
    )
    expect(page.get_by_test_id("run-status")).to_have_text("queued")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")
    expect(page.locator("#transcript [data-seq]")).to_have_count(0)

    celery_worker.start()

    # Speeches arrive one by one: two different counts are seen before the outcome.
    first = page.wait_for_function(SPEECHES_BEFORE_OUTCOME_JS, arg=0, polling=10, timeout=RUN_TIMEOUT_MS).json_value()
    second = page.wait_for_function(
        SPEECHES_BEFORE_OUTCOME_JS, arg=first, polling=10, timeout=RUN_TIMEOUT_MS
    ).json_value()
    assert 1 <= first < second
    expect(page.get_by_test_id("phases")).to_have_attribute("data-current", re.compile("opening|negotiation"))

    # Reload while the run is still going: the page rebuilds itself from the replay (after=0).
    assert not RunEvent.objects.filter(run_id=run_id, type="outcome").exists(), "the run ended before the reload"
    page.reload()

    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("outcome-headline")).to_have_text(re.compile(r"^(Passed|Failed): Veto power$"))
    expect(page.get_by_test_id("run-status")).to_have_text("finished")

    # The transcript is complete and nothing shows twice: exactly the stored events, in order.
    stored = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "type"))
    seqs = page.evaluate(SEQS_JS)
    assert len(seqs) == len(set(seqs)), f"duplicated events: {seqs}"
    assert seqs == list(range(1, len(seqs) + 1)), f"missing or unordered events: {seqs}"
    assert seqs == [seq for seq, _ in stored]
    assert stored[-1][1] == "outcome"
    speeches = [seq for seq, kind in stored if kind == "speech"]
    assert len(speeches) == len(KEEP) * 2  # opening + one negotiation round
    assert page.evaluate(SPEECH_COUNT_JS) == len(speeches)
    # What the page shows is what the log holds: each speech card's text is its stored event's.
    shown = page.eval_on_selector_all(
        "#transcript [data-testid=speech]",
        "cards => cards.map((c) => [Number(c.dataset.seq), c.querySelector('.prose').textContent])",
    )
    stored_speeches = RunEvent.objects.filter(run_id=run_id, type="speech").order_by("seq").values_list("seq", "data")
    assert shown == [[seq, data["text"]] for seq, data in stored_speeches]

    # The outcome as stored: every goal's result, the chamber coloured by the votes.
    outcome = Run.objects.get(pk=run_id).outcome
    rows = page.get_by_test_id("goal-table").locator("tbody tr")
    expect(rows).to_have_count(len(outcome["goals"]))
    passed = outcome["goals"]["veto_power"]
    expect(page.locator("#goal-table tr[data-goal=veto_power]")).to_contain_text("passes" if passed else "fails")
    expect(page.get_by_test_id("outcome-headline")).to_have_text(f"{'Passed' if passed else 'Failed'}: Veto power")
    expect(page.get_by_test_id("hemicycle")).to_have_attribute("data-coloured", "votes")
    expect(page.locator("#transcript [data-type=vote]")).to_have_count(len(KEEP))
    expect(page.get_by_test_id("usage-calls")).not_to_have_text("0")
    expect(page.get_by_test_id("phases")).to_have_attribute("data-current", "done")


def test_owner_pauses_resumes_and_shares_a_run_by_link(page: Page, sample_records: RecordSet, celery_worker) -> None:
    celery_worker.stop()
    sign_up(page)
    build_scenario(page, seed=random.randrange(1, 2**31 - 1))
    page.get_by_test_id("start-run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")

    # Paused before any worker took it: the worker finds it paused and leaves it.
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("run-status")).to_have_text("paused")
    expect(page.get_by_test_id("state-banner")).to_contain_text("Paused")
    expect(page.get_by_test_id("resume")).to_be_enabled()
    expect(page.get_by_test_id("pause")).to_be_disabled()
    assert Run.objects.get(pk=run_id).status == Run.Status.PAUSED
    celery_worker.start()

    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("run-status")).to_have_text("finished")
    expect(page.get_by_test_id("state-banner")).to_be_hidden()
    stored = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
    assert page.evaluate(SEQS_JS) == stored

    # Shared by link: a visitor who is not signed in replays the same transcript with the token.
    expect(page.get_by_test_id("share-url")).to_be_hidden()
    page.get_by_test_id("run-visibility").select_option("link")
    share = page.get_by_test_id("share-url")
    expect(share).to_be_visible()
    servers.wait_until(
        lambda: Run.objects.get(pk=run_id).visibility == "link", timeout=10, what="the visibility to be saved"
    )
    share_url = share.input_value()
    assert f"/runs/{run_id}/?token=" in share_url

    visitor = page.context.browser.new_context()
    try:
        guest = visitor.new_page()
        guest.goto(share_url)
        expect(guest.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
        assert guest.evaluate(SEQS_JS) == stored
        expect(guest.get_by_test_id("pause")).to_have_count(0)
    finally:
        visitor.close()


def test_the_page_reconnects_after_the_server_restarts_and_misses_nothing(
    page: Page, sample_records: RecordSet, celery_worker, asgi_server
) -> None:
    celery_worker.stop()
    sign_up(page)
    build_scenario(page, seed=random.randrange(1, 2**31 - 1))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.get_by_test_id("start-run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open")

    celery_worker.start()
    page.wait_for_function(SPEECHES_BEFORE_OUTCOME_JS, arg=1, polling=10, timeout=RUN_TIMEOUT_MS)

    # The server goes away mid-run; the worker keeps writing events to the log meanwhile.
    asgi_server.restart()
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)

    stored = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
    assert page.evaluate(SEQS_JS) == stored
    afters = [int(re.search(r"[?&]after=(\d+)", url).group(1)) for url in sockets]
    assert afters[0] == 0 and len(afters) >= 2, sockets
    assert afters[-1] > 0, f"the reconnect asked for everything again: {sockets}"
