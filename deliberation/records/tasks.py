"""Celery tasks of record uploads: thin, each loads by id and calls one service.

Services enqueue them by name through worker.enqueue.task_enqueue (never by importing this module).
"""

from celery import shared_task


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
