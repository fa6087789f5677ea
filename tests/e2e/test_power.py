"""Voting power and counterfactuals in Chromium: the builder's power preview beside the seats, and
the run page's "What if" controls re-tallying a finished run (the original outcome kept beside)."""

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from deliberation.engine.power import power_of
from deliberation.engine.rules import tally_rules
from deliberation.records.models import PartyGroup, Record, RecordSet
from deliberation.runs import services
from deliberation.runs.advance import run_advance
from deliberation.runs.models import Run
from deliberation.runs.services import run_create
from tests.e2e.test_live_run import RECORD_TITLE, SAMPLE_SET, sample_records, sign_up  # noqa: F401 - a fixture
from tests.factories import scenario_config

GROUPS = ["EPP", "SD", "ECR", "ALDE"]


def percent(value: float) -> str:
    return f"{100 * float(value):.1f}%"


def test_the_builder_shows_voting_power_beside_the_seats(page: Page, sample_records: RecordSet) -> None:
    sign_up(page)
    page.get_by_test_id("filter-set").select_option(SAMPLE_SET)
    page.get_by_test_id("filter-q").fill(RECORD_TITLE)
    page.get_by_test_id("record-item").filter(has_text=RECORD_TITLE).click()
    expect(page.get_by_test_id("record-title")).to_contain_text(RECORD_TITLE)
    for code in ("GUE_NGL", "ENF", "GREEN_EFA"):
        page.get_by_test_id(f"group-{code}").uncheck()
    page.get_by_test_id("seat-structure").select_option("real")
    page.get_by_test_id("goal").select_option("two_thirds_majority")

    record = Record.objects.get(record_set__name=SAMPLE_SET, title__startswith=RECORD_TITLE)
    counts = dict(PartyGroup.objects.filter(term=record.term, code__in=GROUPS).values_list("code", "seats_at_start"))
    seats = {code: counts[code] / sum(counts.values()) for code in GROUPS}
    expected = power_of(seats, goal="two_thirds_majority")
    for code in GROUPS:
        expect(page.get_by_test_id(f"power-ss-{code}")).to_have_text(percent(expected.shapley_shubik[code]))
        expect(page.get_by_test_id(f"power-bz-{code}")).to_have_text(percent(expected.banzhaf[code]))
    expect(page.get_by_test_id("preview-power")).to_contain_text("at least 20/27 of the seats")

    # A veto makes its holder as strong as any: its Shapley-Shubik index exceeds its seat share.
    page.get_by_test_id("goal").select_option("veto_power")
    expect(page.get_by_test_id("preview-power")).to_contain_text("Choose the veto group")
    page.get_by_test_id("veto-group").select_option("ALDE")
    vetoed = power_of(seats, goal="veto_power", veto_group="ALDE")
    assert vetoed.shapley_shubik["ALDE"] > seats["ALDE"]
    expect(page.get_by_test_id("power-ss-ALDE")).to_have_text(percent(vetoed.shapley_shubik["ALDE"]))
    expect(page.get_by_test_id("preview-power")).to_contain_text("ALDE in the coalition")

    page.get_by_test_id("goal").select_option("rawlsian")
    expect(page.get_by_test_id("preview-power")).to_contain_text("no voting power")
    expect(page.get_by_test_id("power-ss-EPP")).to_have_text("–")


@pytest.fixture
def finished_run(sample_records: RecordSet, monkeypatch) -> Run:  # noqa: F811 - the fixture imported above
    """A run of the sample record played in this process on the scripted model, shared by link."""
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)  # no worker: it is played right here
    record = Record.objects.get(record_set__name=SAMPLE_SET, title__startswith=RECORD_TITLE)
    owner = User.objects.create_user("owner", password="an-owner-password-7")
    run = run_create(owner=owner, config=scenario_config(record), visibility=Run.Visibility.LINK)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    return run


def test_the_run_page_retallies_a_finished_run_under_other_seats_and_rules(page: Page, finished_run: Run) -> None:
    run = finished_run
    scores = {code: int(run.outcome["scores"][code]) for code in run.groups}
    page.goto(f"/runs/{run.pk}/?token={run.share_token}")  # not signed in: the share link reads the re-tally
    panel = page.get_by_test_id("whatif")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-state", "ready")

    def verdict(seats) -> str:
        passed = tally_rules(scores, seats, veto_group=None)["simple_majority"]
        return "passes" if passed else "fails"

    # The run's own seats first: both lines agree with the stored outcome.
    expect(page.get_by_test_id("whatif-original")).to_contain_text(verdict(run.seats))
    expect(page.get_by_test_id("whatif-result")).to_contain_text(verdict(run.seats))

    page.get_by_test_id("whatif-seats").select_option("equal")
    equal = {code: 1 / 3 for code in run.groups}
    expect(page.get_by_test_id("whatif-share")).to_have_text(["33.3%"] * 3)
    expect(page.get_by_test_id("whatif-result")).to_contain_text(verdict(equal))
    expect(page.get_by_test_id("whatif-original")).to_contain_text(verdict(run.seats))

    # Custom weights from the sliders, scaled to 100%.
    page.get_by_test_id("whatif-seats").select_option("custom")
    for code, weight in zip(run.groups, (60, 30, 10)):
        page.get_by_test_id(f"whatif-slider-{code}").fill(str(weight))
    expect(page.get_by_test_id("whatif-share")).to_have_text(["60.0%", "30.0%", "10.0%"])
    custom = dict(zip(run.groups, (0.6, 0.3, 0.1)))
    expect(page.get_by_test_id("whatif-result")).to_contain_text(verdict(custom))

    # Random tenths follow the seed.
    page.get_by_test_id("whatif-seats").select_option("random_tenths")
    page.get_by_test_id("whatif-seed").fill("5")
    page.get_by_test_id("whatif-seed").dispatch_event("change")
    expect(page.get_by_test_id("whatif-share").first).to_have_text(re.compile(r"^\d0\.0%$"))

    # Another rule: the double majority, then Schulze with no competing draft.
    page.get_by_test_id("whatif-seats").select_option("run")
    page.get_by_test_id("whatif-rule").select_option("double_majority")
    passed = tally_rules(scores, run.seats, veto_group=None)["double_majority"]
    expect(page.get_by_test_id("whatif-result")).to_contain_text("passes" if passed else "fails")
    page.get_by_test_id("whatif-rule").select_option("schulze")
    expect(page.get_by_test_id("whatif-ranking")).to_contain_text("this run")
    expect(page.get_by_test_id("whatif-ranking")).to_contain_text("No other strategy's draft")
    expect(page.get_by_test_id("whatif-result")).to_have_text("wins")
    expect(page.get_by_test_id("whatif-error")).to_have_text("")


def test_the_seats_power_and_rules_page_draws_its_figure_and_table(page: Page, sample_records: RecordSet) -> None:
    from deliberation.runs.group_scores import group_scores_write
    from deliberation.runs.models import Experiment

    username = sign_up(page)
    owner = User.objects.get(username=username)
    record = Record.objects.get(record_set__name=SAMPLE_SET, title__startswith=RECORD_TITLE)
    experiment = Experiment.objects.create(owner=owner, name="institutions", spec={}, estimate={})
    seats = {"EPP": 0.6, "SD": 0.4}
    for strategy, scores in (("one-shot", {"EPP": 8, "SD": 2}), ("greedy", {"EPP": 9, "SD": 0})):
        outcome = {"goals": {"simple_majority": True}, "scores": scores, "seats": seats, "weighted_total": 0}
        run = Run.objects.create(
            owner=owner,
            experiment=experiment,
            cell=f"scenario:1|simple_majority|{strategy}|m|j|0",
            record=record,
            groups=list(seats),
            seat_structure="custom",
            seats=seats,
            goal="simple_majority",
            strategy=strategy,
            model="m",
            judge="j",
            status=Run.Status.FINISHED,
            outcome=outcome,
            goal_value=1.0,
            largest_share=0.6,
        )
        group_scores_write(run=run, outcome=outcome)

    page.goto(f"/experiments/{experiment.pk}/")
    page.get_by_test_id("sweep-link").click()
    expect(page).to_have_url(re.compile(rf"/experiments/{experiment.pk}/sweep$"))
    # Plotly drew the figure (three panels), and the table has a row per strategy.
    expect(page.get_by_test_id("power-support-figure").locator(".main-svg").first).to_be_visible()
    expect(page.get_by_test_id("sweep-table").locator("tbody tr")).to_have_count(2)
    # as played, simple majority: both drafts pass (u = 5.6 and 5.4)
    expect(page.locator("tr[data-strategy=greedy] [data-testid=sweep-cell]").first).to_contain_text("100%")
