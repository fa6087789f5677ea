"""amulet and negotiation runs in Chromium: built in the builder, played by a real Celery worker on
scripted:slow, watched on the run page: amulet's beta and preference, then the decoded draft;
negotiation's turns with their side, text and reward, then the joint draft and the vote."""

import random

import pytest
from playwright.sync_api import Page, expect

from deliberation.records.models import RecordSet
from deliberation.runs.models import Run
from tests.e2e.test_live_run import RUN_TIMEOUT_MS, sample_records, sign_up  # noqa: F401
from tests.e2e.test_watching_a_run import build_two_group_run, start

pytestmark = pytest.mark.e2e


def start_run(page: Page, strategy: str) -> Run:
    sign_up(page)
    seed = random.randrange(1, 2**31 - 1)
    build_two_group_run(page, model_button="scripted:slow", seed=seed, strategy=strategy, seats=None)
    run = start(page)
    assert run.strategy == strategy
    return run


def test_an_amulet_run_shows_beta_the_preference_and_the_decoded_draft(
    page: Page, sample_records: RecordSet, celery_worker
) -> None:
    run = start_run(page, "amulet")
    transcript = page.get_by_test_id("transcript")
    expect(transcript.get_by_test_id("amulet-beta")).to_have_text("β = 4.649", timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    setup = run.events.get(type="amulet").data
    expect(transcript.get_by_test_id("amulet-preference")).to_have_text(setup["preference"])
    draft = run.events.get(type="draft").data
    assert draft["author"] == "amulet" and draft["decoding"]["calls"] > 0
    expect(page.locator("#current-draft")).to_have_text(draft["text"])


def test_a_negotiation_run_shows_each_turn_with_its_side_text_and_reward(
    page: Page, sample_records: RecordSet, celery_worker
) -> None:
    run = start_run(page, "negotiation")
    transcript = page.get_by_test_id("transcript")
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    turns = [event.data for event in run.events.filter(type="turn").order_by("seq")]
    assert len(turns) == 6  # the default turn limit; scripted agents never accept
    cards = transcript.get_by_test_id("turn")
    expect(cards).to_have_count(6)
    assert [card.get_attribute("data-side") for card in cards.all()] == ["A", "B", "A", "B", "A", "B"]
    expect(cards.first.get_by_test_id("turn-reward")).to_have_text("opening: no reward yet")
    second = turns[1]["reward"]
    expect(cards.nth(1).get_by_test_id("turn-reward")).to_have_text(f"reward {'+' if second > 0 else ''}{second:.2f}")
    expect(cards.nth(1)).to_contain_text(turns[1]["text"])
    expect(page.locator("#current-draft")).to_have_text(run.events.get(type="draft").data["text"])
