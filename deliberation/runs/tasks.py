"""Celery tasks of runs and experiments: thin, each loads by id and calls one service.

Services enqueue them by name through worker.enqueue.task_enqueue (never by importing this module).
"""

from celery import shared_task, signals
from django.conf import settings


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_advance_task(self, *, run_id: int) -> None:
    from deliberation.runs.advance import run_advance
    from deliberation.runs.recovery import runs_heartbeat
    from deliberation.runs.services import RunRetry
    from worker.heartbeat import run_heartbeat

    try:
        # Beat's reclaim knows each run the task plays has a live worker.
        run_advance(run_id=run_id, held=lambda held_id: run_heartbeat(run_id=held_id, stamp=runs_heartbeat))
    except RunRetry as retry:
        # The run service counts attempts and decides when to stop; Celery only waits.
        raise self.retry(countdown=retry.countdown) from None


@signals.task_received.connect
def _hold_received_run(sender=None, request=None, **kwargs) -> None:
    """A run task this worker took from the broker but has not started (prefetched behind others,
    or waiting out a retry's countdown) holds its queued run: should the worker die, the stamps
    stop and beat's reclaim queues the run again (runs.recovery), not the broker 2 hours later."""
    if request is None or request.name != run_advance_task.name or "run_id" not in request.kwargs:
        return
    from deliberation.runs.recovery import runs_waiting_heartbeat
    from worker.heartbeat import heartbeat_hold

    heartbeat_hold(task_id=request.id, run_id=request.kwargs["run_id"], stamp=runs_waiting_heartbeat)


@signals.task_prerun.connect
def _release_started_run(sender=None, task_id=None, **kwargs) -> None:
    """The task started: from here the run's own heartbeat (run_advance_task) holds it."""
    from worker.heartbeat import heartbeat_release

    heartbeat_release(task_id=task_id)


@signals.task_revoked.connect
def _release_revoked_run(sender=None, request=None, **kwargs) -> None:
    from worker.heartbeat import heartbeat_release

    if request is not None:
        heartbeat_release(task_id=request.id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def experiment_advance_task(*, experiment_id: int) -> None:
    """Top up an experiment's runs in flight (run_advance enqueues this when one of them settles)."""
    from deliberation.runs.experiments import experiment_advance

    experiment_advance(experiment_id=experiment_id)


@shared_task
def runs_sweep_task(*, idle_seconds: float | None = None) -> int:
    """Beat: runs that are queued or running but silent for too long are enqueued again, and
    every running experiment tops up (in case the top-up after a run's end was lost)."""
    from deliberation.runs.experiments import experiments_nudge
    from deliberation.runs.services import runs_requeue_stuck

    idle = settings.HEMICYCLE_STUCK_RUN_S if idle_seconds is None else idle_seconds
    requeued = runs_requeue_stuck(idle_seconds=idle)
    experiments_nudge()
    return len(requeued)


@shared_task
def runs_reclaim_task(*, lost_after_s: float | None = None) -> int:
    """Beat, every few seconds: running runs whose worker stopped beating are queued again."""
    from deliberation.runs.recovery import runs_reclaim_lost

    lost = settings.HEMICYCLE_RUN_LOST_S if lost_after_s is None else lost_after_s
    return len(runs_reclaim_lost(lost_after_s=lost))


@shared_task
def completions_expire_task() -> int:
    """Beat: drop cached completions older than the configured age (never, by default)."""
    from deliberation.runs.services import completions_expire

    days = settings.HEMICYCLE_CACHE_TTL_DAYS
    return completions_expire(older_than_days=days) if days else 0
