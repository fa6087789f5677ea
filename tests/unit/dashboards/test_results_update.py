"""Results update as runs finish, though the dashboards cache what they aggregate: the cache key
is the experiment's finished-run count and last finish (selectors.results_version)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from deliberation.dashboards.selectors import breakdown, group_views, paper_tables, results_version
from deliberation.runs import services
from deliberation.runs.advance import run_advance
from deliberation.runs.group_scores import group_scores_backfill, group_scores_write
from deliberation.runs.models import Run, RunGroupScore
from deliberation.runs.services import run_create
from tests.factories import make_record, make_user, scenario_config


def _one_shot_majority_2p(experiment):
    (table,) = paper_tables(experiment=experiment)
    (row,) = [row for row in table.rows if row.strategy == "one-shot"]
    (goal,) = [goal for goal in row.goals if goal["goal"] == "simple_majority"]
    return goal["cells"][0]


def _epp_points(experiment):
    return {
        (p["strategy"], p["group"], p["share"]): (p["mean"], p["n"])
        for p in group_views(experiment=experiment).by_share
    }


def test_a_second_view_is_one_query_and_a_run_finishing_after_it_shows(made, django_assert_num_queries):
    experiment = made.experiment
    first = _one_shot_majority_2p(experiment)
    assert (first.mean, first.n) == (pytest.approx(2 / 3), 3)
    assert _epp_points(experiment)[("one-shot", "EPP", 0.6)] == (pytest.approx(32 / 5), 5)
    with django_assert_num_queries(2):  # a version each; the aggregates come from the cache
        again = _one_shot_majority_2p(experiment)
        breakdown(experiment=experiment, by="topic")
    assert (again.mean, again.n) == (first.mean, first.n)

    made.run(parties=2, goal="simple_majority", value=True, scores={"EPP": 9, "SD": 1})

    after = _one_shot_majority_2p(experiment)
    assert (after.mean, after.n, after.tasks) == (0.75, 4, 1)
    topic = breakdown(experiment=experiment, by="topic")[("one-shot", "m1", "llm", "simple_majority", "agriculture")]
    assert (topic.mean, topic.n) == (0.8, 5)
    assert _epp_points(experiment)[("one-shot", "EPP", 0.6)] == (pytest.approx(41 / 6), 6)


def test_the_version_moves_with_each_finish_and_not_with_other_runs(made):
    before = results_version(experiment=made.experiment)
    made.run(parties=2, goal="simple_majority", status=Run.Status.FAILED)
    assert results_version(experiment=made.experiment) == before
    run = made.run(parties=2, goal="simple_majority", status=Run.Status.RUNNING)
    assert results_version(experiment=made.experiment) == before
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED, finished_at=timezone.now())
    moved = results_version(experiment=made.experiment)
    assert moved != before
    Run.objects.filter(pk=run.pk).update(finished_at=timezone.now() + dt.timedelta(seconds=1))
    assert results_version(experiment=made.experiment) != moved


def test_the_results_fragment_shows_a_run_that_finished_after_it_was_cached(client, made, owner):
    client.force_login(owner)
    url = reverse("experiment-results", args=[made.experiment.pk])
    assert "3 runs, 1 task" in client.get(url).content.decode()
    assert "3 runs, 1 task" in client.get(url).content.decode()  # from the cache
    made.run(parties=2, goal="simple_majority", value=True, scores={"EPP": 9, "SD": 1})
    page = client.get(url).content.decode()
    assert "4 runs, 1 task" in page and "0.75" in page


def test_group_score_rows_carry_share_real_vote_and_strategy(made):
    run = made.run(parties=4, goal="rawlsian", value=1.0, scores={"EPP": 4, "SD": 1, "ALDE": 7, "GREEN_EFA": None})
    rows = {row.group: row for row in RunGroupScore.objects.filter(run=run)}
    assert set(rows) == {"EPP", "SD", "ALDE"}  # an unscored group has no row
    assert (rows["ALDE"].score, rows["ALDE"].seat_share, rows["ALDE"].real_choice) == (7.0, 0.2, 5)
    assert {row.strategy for row in rows.values()} == {"one-shot"} and rows["EPP"].experiment_id == made.experiment.pk
    group_scores_write(run=run, outcome=run.outcome)  # a retried finish replaces them
    assert RunGroupScore.objects.filter(run=run).count() == 3


def test_backfill_writes_the_rows_of_finished_runs_that_lack_them_once(made):
    RunGroupScore.objects.all().delete()
    written = group_scores_backfill(batch=3)  # several batches
    assert written == 3 * 2 + 4 + 2 * 2 + 2  # 2-, 4-, 2x2- and 2-party finished runs
    assert group_scores_backfill() == 0
    assert _epp_points(made.experiment)[("greedy", "EPP", 0.6)] == (9.0, 1)


@pytest.mark.django_db(transaction=True)
def test_a_run_finished_by_the_service_writes_its_group_scores(monkeypatch):
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)
    monkeypatch.setattr(services, "broadcast_events", lambda **kwargs: None)
    run = run_create(owner=make_user(), config=scenario_config(make_record(), strategy="greedy"))
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    rows = {row.group: row for row in RunGroupScore.objects.filter(run=run)}
    assert {code: row.score for code, row in rows.items()} == {
        code: float(score) for code, score in run.outcome["scores"].items() if score is not None
    }
    assert all(rows[code].seat_share == run.seats[code] for code in rows)
    assert rows["EPP"].real_choice == 8 and rows["SD"].real_choice == 3  # tests/factories.py's real votes


def test_one_cache_entry_per_experiment_holds_the_latest_version(made):
    from django.core.cache import cache

    from deliberation.dashboards.selectors import CACHE_PREFIX

    paper_tables(experiment=made.experiment)
    key = f"{CACHE_PREFIX}:aggregates:{made.experiment.pk}"
    first = cache.get(key)[0]
    made.run(parties=2, goal="simple_majority", value=True, scores={"EPP": 9, "SD": 1})
    paper_tables(experiment=made.experiment)
    assert cache.get(key)[0] == results_version(experiment=made.experiment) != first  # replaced, not added


def test_a_running_experiments_rendered_results_are_not_kept(made):
    from deliberation.dashboards.selectors import results_cache_seconds
    from deliberation.runs.models import Experiment

    assert results_cache_seconds(experiment=made.experiment) == 3600  # a draft: one version until it runs
    made.experiment.status = Experiment.Status.RUNNING
    assert results_cache_seconds(experiment=made.experiment) == 0  # each finish is a new version


def test_the_migration_backfills_with_its_historical_models(made):
    import importlib
    from types import SimpleNamespace

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    RunGroupScore.objects.all().delete()
    state = MigrationExecutor(connection).loader.project_state(("runs", "0007_run_group_score"))
    migration = importlib.import_module("deliberation.runs.migrations.0007_run_group_score")
    migration.backfill(state.apps, SimpleNamespace(connection=connection))
    assert RunGroupScore.objects.count() == 16
    assert _epp_points(made.experiment)[("one-shot", "EPP", 0.6)] == (pytest.approx(32 / 5), 5)
