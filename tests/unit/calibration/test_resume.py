"""A calibration is played in chunks whose scores are stored as they are made: a task that dies
leaves them, and the next one finishes without scoring them again or repeating a model call."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from deliberation.calibration import services
from deliberation.calibration.models import Calibration, CalibrationScore
from deliberation.calibration.services import (
    calibration_advance,
    calibration_create,
    calibration_run,
    calibrations_heartbeat,
    calibrations_reclaim_lost,
)
from deliberation.records.services import records_import
from deliberation.runs.models import CachedCompletion
from worker import heartbeat
from worker.models import scripted

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "sample_records"
OPTIONS = {"record_set": "Sample EP issues", "judge": "llm", "judge_model": "scripted:default", "resamples": 20}


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no handler catches it."""


@pytest.fixture
def sample_set():
    records_import(paths=[SAMPLE], name="Sample EP issues")


@pytest.fixture
def model_calls(monkeypatch):
    """Every model call that returned (its completion reached the cache), as (seed, prompt); a
    call numbered `calls.die_at` kills the 'worker' instead of returning."""
    original = scripted.ScriptedModelClient.complete

    class Calls(list):
        die_at: int | None = None

    calls = Calls()

    def complete(self, messages, *, params, seed):
        if calls.die_at is not None and len(calls) + 1 == calls.die_at:
            calls.die_at = None
            raise WorkerDied
        completion = original(self, messages, params=params, seed=seed)
        calls.append((seed, messages[-1]["content"]))
        return completion

    monkeypatch.setattr(scripted.ScriptedModelClient, "complete", complete)
    return calls


@pytest.fixture
def enqueued(monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(services, "calibration_enqueue", lambda *, calibration_id, model: sent.append(calibration_id))
    return sent


def silence(calibration: Calibration, *, seconds: float) -> None:
    Calibration.objects.filter(pk=calibration.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_a_calibration_whose_worker_died_mid_chunk_finishes_as_if_uninterrupted_without_repeating_a_call(
    sample_set, model_calls
):
    calibration = calibration_create(**OPTIONS, limit=20, enqueue=False)
    assert calibration.status == Calibration.Status.QUEUED and calibration.total == 20
    model_calls.die_at = services.CHUNK + 3  # in the second chunk, two of its calls made and cached
    with pytest.raises(WorkerDied):
        calibration_advance(calibration_id=calibration.pk)
    calibration.refresh_from_db()
    assert calibration.status == Calibration.Status.RUNNING and calibration.attempts == 1
    first_chunk = set(CalibrationScore.objects.filter(calibration=calibration).values_list("index", flat=True))
    assert first_chunk == set(range(services.CHUNK))
    assert len(model_calls) == services.CHUNK + 2

    calibration_advance(calibration_id=calibration.pk)  # a second task while the first one's worker beats
    calibration.refresh_from_db()
    assert (calibration.status, calibration.attempts, len(model_calls)) == ("running", 1, services.CHUNK + 2)

    silence(calibration, seconds=600)  # the worker is gone: the next task takes it
    calibration_advance(calibration_id=calibration.pk)
    calibration.refresh_from_db()
    assert calibration.status == Calibration.Status.FINISHED and calibration.attempts == 2
    assert len(model_calls) == 20 == len(set(model_calls))  # each pair's one call, none made twice
    assert CachedCompletion.objects.filter(model="scripted:default").count() == 20
    assert not CalibrationScore.objects.filter(calibration=calibration).exists()  # the results hold them

    reference = calibration_run(**OPTIONS, limit=20)  # uninterrupted (and from the cache alone)
    assert len(model_calls) == 20
    assert calibration.results == reference.results
    assert [(p["record"], p["group"], p["predicted"]) for p in calibration.pairs] == [
        (p["record"], p["group"], p["predicted"]) for p in reference.pairs
    ]


def test_stored_scores_are_never_scored_again(sample_set, model_calls, monkeypatch):
    calibration = calibration_create(**OPTIONS, limit=12, enqueue=False)
    model_calls.die_at = services.CHUNK + 1
    with pytest.raises(WorkerDied):
        calibration_advance(calibration_id=calibration.pk)
    scored: list[str] = []
    original = services.item_score

    def counting(*, item, judge, seed):
        scored.append(item.group)
        return original(item=item, judge=judge, seed=seed)

    monkeypatch.setattr(services, "item_score", counting)
    silence(calibration, seconds=600)
    progress: list[int] = []
    calibration_advance(calibration_id=calibration.pk, progress=progress.append)
    assert len(scored) == 12 - services.CHUNK  # only the items without a stored score
    assert progress == [services.CHUNK, 12 - services.CHUNK]  # what was stored, then the rest
    assert Calibration.objects.get(pk=calibration.pk).results["pairs"] == 12


def test_probes_and_the_reason_check_resume_part_by_part(sample_set, model_calls):
    options = {**OPTIONS, "limit": 6, "probes": True, "reason_check": True}
    calibration = calibration_create(**options, enqueue=False)
    assert calibration.total == 6 * 4  # the judge, two probe layouts, the reason check
    model_calls.die_at = 6 + 6 + 3  # during the second probe layout
    with pytest.raises(WorkerDied):
        calibration_advance(calibration_id=calibration.pk)
    silence(calibration, seconds=600)
    calibration_advance(calibration_id=calibration.pk)
    calibration.refresh_from_db()
    assert calibration.status == Calibration.Status.FINISHED
    assert len(model_calls) == len(set(model_calls))
    reference = calibration_run(**options)
    assert calibration.results == reference.results and calibration.errors == reference.errors


def test_a_silent_running_calibration_is_reclaimed_once_and_a_lost_queued_one_sent_again(
    sample_set, enqueued, django_capture_on_commit_callbacks
):
    lost = calibration_create(**OPTIONS, limit=4)
    alive = calibration_create(**OPTIONS, limit=4)
    waiting = calibration_create(**OPTIONS, limit=4)
    assert enqueued == []  # sent once the creation commits (the test's transaction never does)
    Calibration.objects.filter(pk__in=[lost.pk, alive.pk]).update(status=Calibration.Status.RUNNING)
    silence(lost, seconds=45)
    silence(alive, seconds=5)
    with django_capture_on_commit_callbacks(execute=True):
        assert calibrations_reclaim_lost(lost_after_s=30) == [lost.pk]
        assert calibrations_reclaim_lost(lost_after_s=30) == []  # stamped when queued: not twice
    assert enqueued == [lost.pk]
    assert Calibration.objects.get(pk=lost.pk).status == Calibration.Status.QUEUED

    Calibration.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert calibrations_reclaim_lost(lost_after_s=30, queued_after_s=600) == [waiting.pk]
        assert calibrations_reclaim_lost(lost_after_s=30, queued_after_s=600) == []
    assert enqueued == [lost.pk, waiting.pk]


def test_the_heartbeat_stamps_running_calibrations_only_and_a_finished_one_is_left_alone(sample_set, settings):
    running = calibration_create(**OPTIONS, limit=4, enqueue=False)
    finished = calibration_run(**OPTIONS, limit=4)
    Calibration.objects.filter(pk=running.pk).update(status=Calibration.Status.RUNNING)
    silence(running, seconds=600)
    assert calibrations_heartbeat(run_ids=[running.pk, finished.pk]) == 1
    assert Calibration.objects.get(pk=running.pk).heartbeat_at > timezone.now() - timedelta(seconds=60)
    calibration_advance(calibration_id=finished.pk)
    assert Calibration.objects.get(pk=finished.pk).attempts == 1

    settings.HEMICYCLE_RUN_HEARTBEAT_S = 3600  # the thread starts, and sleeps through the test
    with heartbeat.run_heartbeat(run_id=running.pk, stamp=calibrations_heartbeat):
        with heartbeat.run_heartbeat(run_id=running.pk, stamp=heartbeat.runs_held):  # another kind, same id
            assert heartbeat.runs_held(calibrations_heartbeat) == [running.pk]
            assert heartbeat.runs_held() == [running.pk]
        assert heartbeat.runs_held(heartbeat.runs_held) == []
    assert heartbeat.runs_held() == []


def test_a_calibration_gives_up_after_the_attempts_allowed(sample_set, settings):
    calibration = calibration_create(**OPTIONS, limit=4, enqueue=False)
    Calibration.objects.filter(pk=calibration.pk).update(
        status=Calibration.Status.RUNNING, attempts=settings.HEMICYCLE_RUN_MAX_ATTEMPTS
    )
    silence(calibration, seconds=600)
    calibration_advance(calibration_id=calibration.pk)
    calibration.refresh_from_db()
    assert calibration.status == Calibration.Status.FAILED and "gave up after" in calibration.error
