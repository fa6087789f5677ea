from datetime import timedelta

import pytest
from django.utils import timezone

from deliberation.runs.models import CachedCompletion, Run, RunEvent
from deliberation.runs.services import completions_expire, run_create, run_queue, runs_requeue_stuck
from tests.factories import make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db


def aged_run(owner, record, *, minutes: int, status=Run.Status.RUNNING) -> Run:
    run = run_create(owner=owner, config=scenario_config(record))
    Run.objects.filter(pk=run.pk).update(status=status, created_at=timezone.now() - timedelta(minutes=minutes))
    return run


def test_silent_queued_or_running_runs_are_enqueued_again_and_others_are_not(
    enqueued, django_capture_on_commit_callbacks
):
    owner, record = make_user(), make_record()
    stuck = aged_run(owner, record, minutes=90)
    queued_long_ago = aged_run(owner, record, minutes=90, status=Run.Status.QUEUED)
    recent = aged_run(owner, record, minutes=1)
    finished = aged_run(owner, record, minutes=90, status=Run.Status.FINISHED)
    busy = aged_run(owner, record, minutes=90)
    RunEvent.objects.create(run=busy, seq=1, type="phase", data={"phase": "opening"})  # active just now
    enqueued.clear()

    requeued = runs_requeue_stuck(idle_seconds=30 * 60)

    assert sorted(requeued) == sorted([stuck.pk, queued_long_ago.pk])
    assert sorted(enqueued) == sorted(requeued)
    assert recent.pk not in requeued and finished.pk not in requeued and busy.pk not in requeued


def test_runs_on_an_in_process_model_go_to_the_models_queue(settings):
    settings.HEMICYCLE_LOCAL_MODEL_QUEUE = "models"
    assert run_queue("local:smollm2-135m") == "models"
    assert run_queue("hosted_vllm/Qwen/Qwen2.5-0.5B-Instruct") == "runs"
    assert run_queue("scripted:default") == "runs"


def test_cached_completions_older_than_the_cutoff_are_dropped():
    def completion(key: str, days_old: int) -> None:
        row = CachedCompletion.objects.create(key=key, model="m", messages=[], params={}, seed=1, text="t")
        CachedCompletion.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days_old))

    completion("old", 40)
    completion("new", 2)
    assert completions_expire(older_than_days=30) == 1
    assert list(CachedCompletion.objects.values_list("key", flat=True)) == ["new"]
