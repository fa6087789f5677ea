"""Moral rewards (engine/rewards.py) stored per run and group: written when a run finishes,
recomputed from the stored events by the backfill, the command and the 0009 migration."""

import importlib
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.urls import reverse

from deliberation.runs import services
from deliberation.runs.advance import run_advance
from deliberation.runs.group_scores import group_rewards_backfill
from deliberation.runs.models import Run, RunEvent, RunGroupScore
from deliberation.runs.services import run_create
from tests.factories import make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def played(monkeypatch) -> Run:
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)
    monkeypatch.setattr(services, "broadcast_events", lambda **kwargs: None)
    run = run_create(owner=make_user(), config=scenario_config(make_record(), strategy="greedy"))
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    return run


def _rewards(run: Run) -> dict[str, tuple]:
    return {
        row.group: (row.reward_deontological, row.reward_utilitarian) for row in RunGroupScore.objects.filter(run=run)
    }


def _break_a_promise(run: Run) -> str:
    """EPP's amendment accepted and its vote turned against, as a stored log would show it."""
    vote = RunEvent.objects.get(run=run, type="vote", data__group="EPP")
    vote.data = {**vote.data, "position": "against"}
    vote.save()
    last = RunEvent.objects.filter(run=run).order_by("-seq").first().seq
    RunEvent.objects.create(
        run=run,
        seq=last + 1,
        type="amendment_decision",
        data={
            "group": "EPP",
            "accepted": True,
            "reason": "",
            "draft_before": "a",
            "draft_after": "b",
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
        },
    )
    return "EPP"


def test_a_finished_run_stores_welfare_and_no_endorsement_for_greedy(played):
    rewards = _rewards(played)
    scores = {code: score for code, score in played.outcome["scores"].items() if score is not None}
    welfare = sum(scores.values()) / len(scores)
    assert set(rewards) == set(scores)
    assert all(deon == 0.0 and util == pytest.approx(welfare) for deon, util in rewards.values())


def test_the_backfill_and_the_command_recompute_rewards_from_the_stored_events(played):
    group = _break_a_promise(played)
    assert group_rewards_backfill(batch=1) == len(_rewards(played))
    rewards = _rewards(played)
    assert rewards[group][0] == -1.0
    assert {deon for code, (deon, _) in rewards.items() if code != group} == {0.0}

    RunGroupScore.objects.update(reward_deontological=None, reward_utilitarian=None)
    call_command("rewards_backfill", verbosity=0)
    assert _rewards(played) == rewards


def test_the_migration_backfills_rewards_with_its_historical_models(played):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    group = _break_a_promise(played)
    RunGroupScore.objects.update(reward_deontological=None, reward_utilitarian=None)
    state = MigrationExecutor(connection).loader.project_state(("runs", "0009_group_rewards"))
    migration = importlib.import_module("deliberation.runs.migrations.0009_group_rewards")
    migration.backfill(state.apps, SimpleNamespace(connection=connection))
    assert _rewards(played)[group][0] == -1.0
    assert all(util is not None for _, util in _rewards(played).values())


def test_the_run_page_shows_each_groups_rewards(played, client):
    group = _break_a_promise(played)
    group_rewards_backfill()
    client.force_login(played.owner)
    page = client.get(reverse("run-detail", args=[played.pk])).content.decode()
    panel = page[page.index('data-testid="rewards"') :]
    panel = panel[: panel.index("</section>")]
    assert panel.count("<tr><td>") == len(_rewards(played))
    row = panel[panel.index(f"<tr><td>{group}") :] if f"<tr><td>{group}" in panel else None
    assert row is not None and row.split("</tr>")[0].count(">-1<") == 1


def test_the_api_reads_the_stored_rewards_once_the_run_has_finished(played, client):
    """What the run page asks for when the outcome arrives live (frontend/static/js/rewards.js)."""
    group = _break_a_promise(played)
    group_rewards_backfill()
    client.force_login(played.owner)
    answer = client.get(f"/api/v1/runs/{played.pk}/rewards")
    assert answer.status_code == 200 and answer.json()["run"] == played.pk
    rows = answer.json()["rewards"]
    assert [row["group"] for row in rows] == played.groups  # the scenario's order
    assert {row["group"]: (row["deontological"], row["utilitarian"]) for row in rows} == _rewards(played)
    assert dict((row["group"], row["deontological"]) for row in rows)[group] == -1.0

    # Until the run has finished (its rows are written just after the outcome event): 409.
    Run.objects.filter(pk=played.pk).update(status=Run.Status.RUNNING)
    assert client.get(f"/api/v1/runs/{played.pk}/rewards").status_code == 409
    Run.objects.filter(pk=played.pk).update(status=Run.Status.FINISHED)

    # Someone else's run: 404; its share link opens it, a wrong token does not.
    client.force_login(make_user("mallory"))
    assert client.get(f"/api/v1/runs/{played.pk}/rewards").status_code == 404
    client.logout()
    Run.objects.filter(pk=played.pk).update(visibility=Run.Visibility.LINK)
    assert client.get(f"/api/v1/runs/{played.pk}/rewards?token=wrong").status_code == 401
    shared = client.get(f"/api/v1/runs/{played.pk}/rewards?token={played.share_token}")
    assert shared.status_code == 200 and shared.json()["rewards"] == rows


def test_an_unfinished_run_page_draws_the_rewards_panel_hidden_and_empty(client, monkeypatch):
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)
    run = run_create(owner=make_user(), config=scenario_config(make_record()))
    client.force_login(run.owner)
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert 'id="rewards-panel" data-testid="rewards" aria-labelledby="h-rewards" hidden>' in page
    rows = page[page.index('<tbody id="rewards-rows">') :]
    assert "<tr>" not in rows[: rows.index("</tbody>")]
