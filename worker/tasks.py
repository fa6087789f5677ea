"""Celery tasks: thin interfaces that load by id and call one service."""

from celery import shared_task


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_advance_task(self, *, run_id: int) -> None:
    from deliberation.runs.services import RunRetry, run_advance

    try:
        run_advance(run_id=run_id)
    except RunRetry as retry:
        # The run service counts attempts and decides when to stop; Celery only waits.
        raise self.retry(countdown=retry.countdown) from None
