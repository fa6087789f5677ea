"""Celery tasks of calibrations: thin, each loads by id and calls one service.

Services enqueue them by name through worker.enqueue.task_enqueue (never by importing this module).
"""

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, reject_on_worker_lost=True)
def calibration_advance_task(*, calibration_id: int) -> None:
    """Play a calibration from its stored scores to the end (calibration.services)."""
    from deliberation.calibration.services import calibration_advance, calibrations_heartbeat
    from worker.heartbeat import run_heartbeat

    with run_heartbeat(run_id=calibration_id, stamp=calibrations_heartbeat):  # beat's reclaim sees it alive
        calibration_advance(calibration_id=calibration_id)


@shared_task
def calibrations_reclaim_task(*, lost_after_s: float | None = None, queued_after_s: float | None = None) -> int:
    """Beat, every few seconds: running calibrations whose worker stopped beating are queued again;
    queued ones nobody took for HEMICYCLE_STUCK_RUN_S are sent again."""
    from deliberation.calibration.services import calibrations_reclaim_lost

    lost = settings.HEMICYCLE_RUN_LOST_S if lost_after_s is None else lost_after_s
    queued = settings.HEMICYCLE_STUCK_RUN_S if queued_after_s is None else queued_after_s
    return len(calibrations_reclaim_lost(lost_after_s=lost, queued_after_s=queued))
