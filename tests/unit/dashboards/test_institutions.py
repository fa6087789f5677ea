"""dashboards/institutions.py and the sweep page: judged support against seats and power, and
pass rates re-tallied under other seats and rules, against hand-computed cases."""

import pytest

from deliberation.dashboards import figures
from deliberation.dashboards.institutions import power_support, rule_sweep
from deliberation.records.models import BenchmarkTask, Topic
from deliberation.runs.group_scores import group_scores_write
from deliberation.runs.models import Experiment, Run
from tests.factories import make_record

pytestmark = pytest.mark.django_db

SEATS = {"EPP": 0.6, "SD": 0.4}


@pytest.fixture
def experiment(owner):
    record = make_record()
    task = BenchmarkTask.objects.create(
        record_set=record.record_set,
        record=record,
        topic=Topic.objects.get(name="agriculture"),
        party_count=2,
        groups=list(SEATS),
        seat_weights=list(SEATS.values()),
        veto_group="EPP",
        content_hash="task-sweep",
    )
    experiment = Experiment.objects.create(owner=owner, name="sweep", spec={}, estimate={})
    # The same cell played by two strategies: EPP prefers greedy's draft (9 > 8), SD one-shot's (2 > 0).
    for strategy, scores in (("one-shot", {"EPP": 8, "SD": 2}), ("greedy", {"EPP": 9, "SD": 0})):
        outcome = {"goals": {"simple_majority": True}, "scores": scores, "seats": SEATS, "weighted_total": 0}
        run = Run.objects.create(
            owner=owner,
            experiment=experiment,
            cell=f"task:{task.pk}|simple_majority|{strategy}|m1|llm|0",
            task=task,
            record=record,
            groups=list(SEATS),
            seat_structure="custom",
            seats=SEATS,
            goal="simple_majority",
            veto_group="EPP",
            strategy=strategy,
            model="m1",
            judge="llm",
            seed=0,
            status=Run.Status.FINISHED,
            outcome=outcome,
            goal_value=1.0,
            largest_share=0.6,
        )
        group_scores_write(run=run, outcome=outcome)
    return experiment


def cells(experiment):
    return {row.strategy: row.cells for row in rule_sweep(experiment=experiment).rows}


def test_sweep_recomputes_pass_rates_under_each_seat_structure(experiment):
    sweep = cells(experiment)
    # as played: one-shot u = 4.8 + 0.8 = 5.6, greedy 5.4: both pass; with equal seats greedy has 4.5
    assert sweep["one-shot"][("run", "simple_majority")] == (1.0, 1)
    assert sweep["greedy"][("run", "simple_majority")] == (1.0, 1)
    assert sweep["one-shot"][("equal", "simple_majority")] == (1.0, 1)
    assert sweep["greedy"][("equal", "simple_majority")] == (0.0, 1)
    assert sweep["greedy"][("run", "two_thirds_majority")] == (0.0, 1)
    assert sweep["greedy"][("run", "veto_power")] == (1.0, 1)
    # only EPP is for either draft: 1 of 2 groups is under 55%
    assert sweep["one-shot"][("run", "double_majority")] == (0.0, 1)
    # real 7th-term seats (EPP 265, SD 184): one-shot 5.54, greedy 5.31
    assert sweep["greedy"][("real", "simple_majority")] == (1.0, 1)
    # another random draw of tenths is counted too
    assert sweep["greedy"][("random_tenths", "simple_majority")][1] == 1


def test_sweep_ranks_the_drafts_of_one_cell(experiment):
    sweep = cells(experiment)
    # EPP's 60% makes greedy the Schulze and Borda winner; with equal seats the two tie (ties count as wins)
    assert sweep["greedy"][("run", "schulze")] == (1.0, 1) and sweep["one-shot"][("run", "schulze")] == (0.0, 1)
    assert sweep["greedy"][("run", "borda")] == (1.0, 1)
    assert sweep["one-shot"][("equal", "schulze")] == (1.0, 1) and sweep["greedy"][("equal", "schulze")] == (1.0, 1)


def test_power_support_puts_each_group_at_its_share_and_its_power(experiment):
    points = {
        (p["strategy"], p["measure"], round(p["x"], 2)): (p["mean"], p["n"])
        for p in power_support(experiment=experiment)
    }
    # At 60/40 and a quota of 5/9 EPP wins alone: all the power is EPP's.
    assert points[("one-shot", "seat share", 0.6)] == (8.0, 1)
    assert points[("one-shot", "Shapley-Shubik", 1.0)] == (8.0, 1)
    assert points[("one-shot", "Banzhaf", 0.0)] == (2.0, 1)
    assert points[("greedy", "seat share", 0.4)] == (0.0, 1)
    figure = figures.power_support_figure(power_support(experiment=experiment))
    assert figure["id"] == "power-support" and len(figure["figure"]["data"]) == 6
    assert figures.power_support_figure([]) is None


def test_the_sweep_page_and_the_dashboard_link(client, experiment, owner):
    client.force_login(owner)
    page = client.get(f"/experiments/{experiment.pk}/sweep")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-strategy="greedy"' in html and "Schulze method over competing drafts" in html
    assert "2 finished runs" in html
    assert 'data-figure="power-support"' in html and 'id="power-support"' in html
    dashboard = client.get(f"/experiments/{experiment.pk}/").content.decode()
    assert f"/experiments/{experiment.pk}/sweep" in dashboard


def test_the_sweep_page_is_the_owners(client, experiment):
    from tests.factories import make_user

    client.force_login(make_user("someone-else"))
    assert client.get(f"/experiments/{experiment.pk}/sweep").status_code == 404


def test_the_sweep_through_the_api(client, experiment, owner):
    from deliberation.api.services import api_token_create

    token = api_token_create(user=owner, name="t")[1]
    body = client.get(f"/api/v1/experiments/{experiment.pk}/sweep", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    rows = {(r["strategy"], r["structure"], r["rule"]): (r["rate"], r["n"]) for r in body["rows"]}
    assert body["runs"] == 2 and rows[("greedy", "equal", "simple_majority")] == (0.0, 1)
    assert rows[("greedy", "run", "schulze")] == (1.0, 1)
    assert client.get("/api/v1/experiments/999999/sweep", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 404
