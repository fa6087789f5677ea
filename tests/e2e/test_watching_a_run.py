"""Watching a run as a first-time user: the builder's messages beside each field, the demo model
at a watchable pace with "who has the floor", the chamber seated left to right, and a tidy page
after the outcome (tally, no controls, a confirmed Stop, a cached replay that says so)."""

import random
import re

import pytest
from playwright.sync_api import Page, expect

from deliberation.records.models import RecordSet
from deliberation.runs.models import Run
from tests.e2e.test_live_run import RUN_TIMEOUT_MS, pick_record, sample_records, sign_up  # noqa: F401

pytestmark = pytest.mark.e2e

TWO = ["EPP", "SD"]  # a short debate: two openings, one draft, one amendment


def build_two_group_run(
    page: Page,
    *,
    model_button: str,
    seed: int,
    strategy: str = "parliament",
    rounds: int = 0,
    seats: str | None = "real",
) -> None:
    """The builder filled in for a run of EPP and S&D on the sample record, judged by the scripted
    judge; `model_button`: the demo model's button or a registry model's chip; `seats`: the seat
    structure (None: the builder's default); `rounds`: a parliament's."""
    pick_record(page)
    for box in page.locator("#stances-body input[data-testid^=group-]").all():
        code = box.get_attribute("data-testid").removeprefix("group-")
        if code not in TWO:
            box.uncheck()
    page.get_by_test_id("seed").fill(str(seed))
    if seats is not None:
        page.get_by_test_id("seat-structure").select_option(seats)
    page.get_by_test_id("strategy").select_option(strategy)
    if strategy == "parliament":
        page.get_by_test_id("parliament-rounds").fill(str(rounds))
    if model_button == "use-demo-model":
        page.get_by_test_id(model_button).click()
    else:  # the registry's chip for that model
        page.locator(f'[data-testid=model-choice][data-model="{model_button}"]').click()
    page.get_by_test_id("judge").select_option("scripted")


def start(page: Page) -> Run:
    """Start the run the builder holds; the run, once its page has opened."""
    page.get_by_test_id("start-run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    return Run.objects.get(pk=int(re.search(r"/runs/(\d+)/$", page.url).group(1)))


def test_the_builder_shows_each_invalid_field_beside_it(page: Page, sample_records: RecordSet) -> None:
    sign_up(page)
    # No record: the server answers, under the record field (no silent console error).
    page.get_by_test_id("start-run").click()
    expect(page.get_by_test_id("form-has-errors")).to_be_visible()
    expect(page.get_by_test_id("error-record")).to_contain_text("Pick a record first")

    # Too many rounds: the message sits beside the rounds field, not in a browser pop-up.
    pick_record(page)
    page.get_by_test_id("parliament-rounds").fill("6")
    page.get_by_test_id("start-run").click()
    expect(page.get_by_test_id("error-parliament-rounds")).to_contain_text("between 0 and 5, not 6")
    expect(page.get_by_test_id("error-record")).to_be_empty()
    assert Run.objects.count() == 0


def test_the_builder_shows_the_chosen_strategys_parameters_and_its_estimated_steps(
    page: Page, sample_records: RecordSet
) -> None:
    sign_up(page)
    pick_record(page)
    for box in page.locator("#stances-body input[data-testid^=group-]").all():
        if box.get_attribute("data-testid").removeprefix("group-") not in TWO:
            box.uncheck()
    page.get_by_test_id("judge").select_option("scripted")
    page.get_by_test_id("strategy").select_option("parliament")
    estimate = page.get_by_test_id("strategy-estimate")
    # The declared defaults, from the server's description: 2 x (1 + 2) speeches, a draft, an
    # amendment and its decision; the scripted judge calls no model.
    expect(page.get_by_test_id("parliament-rounds")).to_have_value("2")
    expect(page.get_by_test_id("parliament-rapporteur")).to_have_value("largest")
    expect(estimate).to_contain_text("Estimated model steps: 9 for 2 groups")
    page.get_by_test_id("parliament-rounds").fill("0")
    expect(estimate).to_contain_text("Estimated model steps: 5 for 2 groups")
    page.get_by_test_id("parliament-rounds").fill("7")
    expect(estimate).to_contain_text("rounds: between 0 and 5, not 7")

    page.get_by_test_id("strategy").select_option("one-shot")
    expect(page.get_by_test_id("params-parliament")).to_be_hidden()
    expect(page.get_by_test_id("one-shot-max_tokens")).to_be_visible()
    expect(page.get_by_test_id("one-shot-max_tokens")).to_have_value("400")
    expect(estimate).to_contain_text("Estimated model steps: 1 for 2 groups")
    page.get_by_test_id("judge").select_option("llm")
    expect(estimate).to_contain_text("Estimated model steps: 3 for 2 groups")


def test_a_demo_run_says_who_has_the_floor_and_tidies_up_after_the_outcome(
    page: Page, sample_records: RecordSet, celery_worker
) -> None:
    sign_up(page)
    expect(page.get_by_test_id("first-look")).to_contain_text("scripted:demo")
    build_two_group_run(page, model_button="use-demo-model", seed=random.randrange(1, 2**31 - 1))
    expect(page.get_by_test_id("model")).to_have_value("scripted:demo")
    run = start(page)
    assert run.model == "scripted:demo"

    # While a model step runs, the page names who has the floor and counts the seconds.
    now = page.get_by_test_id("now-step")
    expect(now).to_contain_text(re.compile(r"(EPP|S&D) is speaking"), timeout=RUN_TIMEOUT_MS)
    expect(now.get_by_test_id("now-elapsed")).to_have_text(re.compile(r"^\d+ s$"))
    expect(now).to_contain_text(
        re.compile(r"is writing the draft|considers an amendment|decides on"), timeout=RUN_TIMEOUT_MS
    )
    # Seated as the Parliament seats them: S&D to the left of the EPP, whatever their size.
    expect(page.get_by_test_id("hemicycle")).to_have_attribute("data-groups", re.compile(r"^SD:\d+,EPP:\d+$"))

    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(now).to_be_hidden()
    expect(page.get_by_test_id("owner-controls")).to_be_hidden()
    expect(page.locator("#tally-pending")).to_be_hidden()
    expect(page.get_by_test_id("tally-result")).to_have_text(
        re.compile(r"^Seat-weighted support u = [\d.]+ of 9: (Passed|Failed): Simple majority\.$")
    )
    expect(page.get_by_test_id("cache-note")).to_be_hidden()  # a fresh seed: the models were asked


def test_stop_asks_first(page: Page, sample_records: RecordSet, celery_worker) -> None:
    sign_up(page)
    build_two_group_run(page, model_button="use-demo-model", seed=random.randrange(1, 2**31 - 1), rounds=5)
    run = start(page)
    expect(page.get_by_test_id("run-status")).to_have_text("running", timeout=RUN_TIMEOUT_MS)
    # The page's module has drawn an event, so its handlers are on: a click before that would post
    # the plain form (no question asked), as it does without JavaScript.
    expect(page.get_by_test_id("transcript").locator("[data-seq]").first).to_be_visible(timeout=RUN_TIMEOUT_MS)

    asked: list[str] = []

    def answer(accept: bool):
        def handler(dialog) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        return handler

    page.once("dialog", answer(False))
    page.get_by_test_id("stop").click()
    expect(page.get_by_test_id("now-step")).to_be_visible()
    assert asked and "cannot be resumed" in asked[0]
    assert Run.objects.get(pk=run.pk).status != Run.Status.STOPPED

    page.once("dialog", answer(True))
    page.get_by_test_id("stop").click()
    expect(page.get_by_test_id("run-status")).to_have_text("stopped")
    expect(page.get_by_test_id("owner-controls")).to_be_hidden()
    assert len(asked) == 2 and Run.objects.get(pk=run.pk).status == Run.Status.STOPPED


def test_a_cached_replay_says_so_and_offers_a_new_seed(page: Page, sample_records: RecordSet, celery_worker) -> None:
    sign_up(page)
    seed = random.randrange(1, 2**31 - 1)
    build_two_group_run(page, model_button="scripted:default", seed=seed)
    first = start(page)
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("cache-note")).to_be_hidden()

    # The same scenario and seed again: every answer comes from the completion cache.
    page.goto("/scenarios/new/")
    build_two_group_run(page, model_button="scripted:default", seed=seed)
    again = start(page)
    assert again.pk != first.pk and again.seed == first.seed
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    note = page.get_by_test_id("cache-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Replayed from the cache")

    page.get_by_test_id("new-seed").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    fresh = Run.objects.get(pk=int(re.search(r"/runs/(\d+)/$", page.url).group(1)))
    assert fresh.pk not in (first.pk, again.pk) and fresh.seed != seed
    assert (fresh.record_id, fresh.groups, fresh.seats, fresh.model) == (
        again.record_id,
        again.groups,
        again.seats,
        again.model,
    )
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("cache-note")).to_be_hidden()
