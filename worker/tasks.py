"""Celery tasks: thin interfaces that load by id and call one service."""

from celery import shared_task


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_advance_task(self, *, run_id: int) -> None:
    from deliberation.runs.services import RunRetry, run_advance
    from worker.heartbeat import run_heartbeat

    try:
        with run_heartbeat(run_id=run_id):  # beat's reclaim knows the run has a live worker
            run_advance(run_id=run_id)
    except RunRetry as retry:
        # The run service counts attempts and decides when to stop; Celery only waits.
        raise self.retry(countdown=retry.countdown) from None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def experiment_advance_task(*, experiment_id: int) -> None:
    """Top up an experiment's runs in flight (run_advance enqueues this when one of them settles)."""
    from deliberation.runs.experiments import experiment_advance

    experiment_advance(experiment_id=experiment_id)


@shared_task
def runs_sweep_task(*, idle_seconds: float | None = None) -> int:
    """Beat: runs that are queued or running but silent for too long are enqueued again, and
    every running experiment tops up (in case the top-up after a run's end was lost)."""
    from django.conf import settings

    from deliberation.runs.experiments import experiments_nudge
    from deliberation.runs.services import runs_requeue_stuck

    idle = settings.HEMICYCLE_STUCK_RUN_S if idle_seconds is None else idle_seconds
    requeued = runs_requeue_stuck(idle_seconds=idle)
    experiments_nudge()
    return len(requeued)


@shared_task
def runs_reclaim_task(*, lost_after_s: float | None = None) -> int:
    """Beat, every few seconds: running runs whose worker stopped beating are queued again."""
    from django.conf import settings

    from deliberation.runs.recovery import runs_reclaim_lost

    lost = settings.HEMICYCLE_RUN_LOST_S if lost_after_s is None else lost_after_s
    return len(runs_reclaim_lost(lost_after_s=lost))


@shared_task
def completions_expire_task() -> int:
    """Beat: drop cached completions older than the configured age (never, by default)."""
    from django.conf import settings

    from deliberation.runs.services import completions_expire

    days = settings.HEMICYCLE_CACHE_TTL_DAYS
    return completions_expire(older_than_days=days) if days else 0


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def record_upload_import_task(self, *, upload_id: int) -> None:
    """Import an admin's checked upload (records.services.record_upload_import does it all)."""
    from deliberation.records.services import record_upload_import

    record_upload_import(upload_id=upload_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def record_upload_check_task(self, *, upload_id: int) -> None:
    """Read and validate an admin's stored upload (records.services.record_upload_check)."""
    from deliberation.records.services import record_upload_check

    record_upload_check(upload_id=upload_id)
