"""A mediator run (the Habermas Machine) in Chromium: built in the builder, played by a real Celery
worker on scripted:demo (a second a call), and watched on the run page: who is at work now, the
candidates, each group's ranking, the Schulze winner with its pairwise matrix, the critiques and
the revised candidates appear."""

import random
import re

import pytest
from playwright.sync_api import Page, expect

from deliberation.records.models import RecordSet
from tests.e2e.test_live_run import RUN_TIMEOUT_MS, sample_records, sign_up  # noqa: F401
from tests.e2e.test_watching_a_run import build_two_group_run, start

pytestmark = pytest.mark.e2e


def test_a_mediator_run_shows_candidates_rankings_and_the_winner(
    page: Page, sample_records: RecordSet, celery_worker
) -> None:
    sign_up(page)
    seed = random.randrange(1, 2**31 - 1)
    build_two_group_run(page, model_button="use-demo-model", seed=seed, strategy="mediator", seats=None)
    run = start(page)
    assert run.strategy == "mediator"

    # While a step runs, the page says who is at work, in the mediator's order.
    now = page.get_by_test_id("now-step")
    expect(now).to_contain_text(re.compile(r"The mediator is drafting candidate #\d of 4"), timeout=RUN_TIMEOUT_MS)
    expect(now).to_contain_text(re.compile(r"(EPP|S&D) ranks the candidates"), timeout=RUN_TIMEOUT_MS)
    expect(now).to_contain_text(re.compile(r"(EPP|S&D) critiques the winner"), timeout=RUN_TIMEOUT_MS)
    expect(now).to_contain_text("The mediator is revising the winner: candidate #", timeout=RUN_TIMEOUT_MS)

    transcript = page.get_by_test_id("transcript")
    # The defaults: 4 candidates a round, 2 rounds; 2 groups rank each round and critique once.
    expect(transcript.get_by_test_id("event-candidate")).to_have_count(8, timeout=RUN_TIMEOUT_MS)
    expect(transcript.get_by_test_id("event-ranking")).to_have_count(4, timeout=RUN_TIMEOUT_MS)
    expect(transcript.get_by_test_id("event-critique")).to_have_count(2, timeout=RUN_TIMEOUT_MS)
    expect(transcript.get_by_test_id("schulze-winner")).to_have_count(2, timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("outcome")).to_be_visible(timeout=RUN_TIMEOUT_MS)

    # Each ranking lists all four candidates; the winner is one of them, as the stored event says.
    for order in transcript.get_by_test_id("ranking-order").all_inner_texts():
        assert sorted(order.split(" > ")) == ["#1", "#2", "#3", "#4"]
    last = run.events.filter(type="schulze").order_by("-seq").first().data
    expect(transcript.get_by_test_id("schulze-winner").last).to_have_text(f"candidate #{last['winner'] + 1}")
    # The pairwise matrix is there, folded: opened, it shows d and p for the four candidates.
    matrix = transcript.get_by_test_id("schulze-matrix").last
    matrix.locator("summary").click()
    expect(matrix.locator("table")).to_have_count(2)
    expect(matrix.locator("table").first.locator("tbody tr")).to_have_count(4)
    # The text put to the vote is the last winner's.
    winner_text = run.events.filter(type="candidate", data__round=2, data__index=last["winner"]).get().data["text"]
    expect(page.locator("#current-draft")).to_have_text(winner_text)
