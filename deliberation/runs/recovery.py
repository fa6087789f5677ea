"""Runs whose worker was lost: heartbeats while a task advances a run, and the reclaim that
enqueues a run again once its heartbeat stops (issue 19, section 4).

The task that advances a run stamps `heartbeat_at` when it takes the run (runs.services) and its
worker process stamps it again every HEMICYCLE_RUN_HEARTBEAT_S while the task lasts
(worker/heartbeat.py), from a thread of its own, so a long model call does not stop it. Beat runs
`runs_reclaim_lost` every HEMICYCLE_RUN_RECLAIM_S: a running run not stamped for
HEMICYCLE_RUN_LOST_S lost its worker (killed, out of memory, host gone). It is queued again with
a "resumed" control event (reason "worker_lost") that the run page shows, and continues from its
last stored event. Without this a killed worker's runs waited for the visibility timeout (2 h)
or the stuck-run sweep (30 min).
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deliberation.runs import services
from deliberation.runs.models import Run
from deliberation.runs.services import run_resumed_after_worker_lost


def runs_heartbeat(*, run_ids: list[int]) -> int:
    """Stamp the runs a worker process is advancing (one statement for all of them)."""
    return Run.objects.filter(pk__in=run_ids, status=Run.Status.RUNNING).update(heartbeat_at=timezone.now())


def runs_reclaim_lost(*, lost_after_s: float) -> list[int]:
    """Queue again every running run whose heartbeat is older than `lost_after_s` (or that has
    none: started before heartbeats); returns their ids.

    Each is taken back by a conditional update (RUNNING and still silent), so two reclaims at
    once, or a worker that stamps it meanwhile, never make it twice. Queued, it is not reclaimed
    again while it waits for a worker; the task that takes it stamps it at once.
    """
    cutoff = timezone.now() - timedelta(seconds=lost_after_s)
    silent_since = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    silent = (
        Run.objects.filter(silent_since, status=Run.Status.RUNNING)
        .exclude(strategy=services.CLASSROOM_STRATEGY)  # the teacher and the students move those, not a task
        .values_list("pk", flat=True)
    )
    reclaimed = []
    for run_id in list(silent):
        with transaction.atomic():
            if not Run.objects.filter(silent_since, pk=run_id, status=Run.Status.RUNNING).update(
                status=Run.Status.QUEUED
            ):
                continue
            run = Run.objects.get(pk=run_id)
            run_resumed_after_worker_lost(run=run, attempt=run.attempts + 1)
            transaction.on_commit(lambda run_id=run_id: services.run_enqueue(run_id))
        reclaimed.append(run_id)
    return reclaimed
