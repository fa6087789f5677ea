"""The embedded default: a Celery worker thread inside the web process on the memory broker.

kombu's memory transport only reaches consumers in the same process, which is also what lets the
in-memory channel layer reach the browser: task and websocket share one process.
"""

import logging
import threading

from django.conf import settings

from worker.celery import app
from worker.enqueue import task_enqueue

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_thread: threading.Thread | None = None


def embedded_worker_running() -> bool:
    return _thread is not None and _thread.is_alive()


def embedded_worker_start() -> bool:
    """Start the in-process worker once; returns False where settings say workers run elsewhere."""
    if not settings.CELERY_EMBEDDED_WORKER:
        return False
    with _lock:
        global _thread
        if _thread is not None:
            return True
        worker = app.Worker(
            pool="threads",
            concurrency=settings.CELERY_EMBEDDED_CONCURRENCY,
            queues=["runs", "models"],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="INFO",
        )
        app.conf.worker_redirect_stdouts = False
        app.conf.worker_hijack_root_logger = False
        _thread = threading.Thread(target=worker.start, name="celery-embedded", daemon=True)
        _thread.start()
        # The memory broker forgets its queue when the process ends: pick up unfinished runs. This
        # is the only worker of the memory broker: every run left running lost its worker.
        task_enqueue("deliberation.runs.tasks.runs_reclaim_task", lost_after_s=0)
        task_enqueue("deliberation.runs.tasks.runs_sweep_task", idle_seconds=0)
        task_enqueue("deliberation.calibration.tasks.calibrations_reclaim_task", lost_after_s=0, queued_after_s=0)
        logger.info("embedded Celery worker started (%s threads)", settings.CELERY_EMBEDDED_CONCURRENCY)
        return True
