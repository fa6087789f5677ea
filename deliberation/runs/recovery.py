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

A queued run is held too, by the worker process that received its task and has not started it
(prefetched behind other tasks, or waiting out a retry's countdown): runs.tasks stamps it from the
moment the task arrives (runs_waiting_heartbeat). A queued run with a stamp that stopped was held
by a worker that died, and is queued again the same way. A queued run without a stamp waits in the
broker's queue, and is left alone however long it waits: every change to QUEUED clears the stamp
(or sets it, for a run its creating task plays itself at once), so an old stamp never outlives
the holder it belonged to.
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


def runs_waiting_heartbeat(*, run_ids: list[int]) -> int:
    """Stamp the queued runs whose tasks a worker process received and has not started yet."""
    return Run.objects.filter(pk__in=run_ids, status=Run.Status.QUEUED).update(heartbeat_at=timezone.now())


def _lost(cutoff) -> Q:
    """Running and silent since `cutoff` (or never stamped: started before heartbeats), or queued
    and held by a worker that stopped stamping it."""
    silent = Q(heartbeat_at__lt=cutoff)
    return Q(status=Run.Status.RUNNING) & (silent | Q(heartbeat_at__isnull=True)) | Q(status=Run.Status.QUEUED) & silent


def runs_reclaim_lost(*, lost_after_s: float) -> list[int]:
    """Queue again every run whose holder is lost: running with a heartbeat older than
    `lost_after_s` (or none: started before heartbeats), or queued with such a stamp (its task was
    received by a worker that died before starting it); returns their ids.

    Each is taken back by a conditional update (still lost), so two reclaims at once, or a worker
    that stamps it meanwhile, never make it twice. Queued again without a stamp, it is not
    reclaimed again while it waits for a worker; the worker that receives its task stamps it.
    """
    lost = _lost(timezone.now() - timedelta(seconds=lost_after_s))
    found = (
        Run.objects.filter(lost)
        .exclude(strategy=services.CLASSROOM_STRATEGY)  # the teacher and the students move those, not a task
        .values_list("pk", "status")
    )
    reclaimed = []
    for run_id, status in list(found):
        with transaction.atomic():
            if not Run.objects.filter(lost, pk=run_id).update(status=Run.Status.QUEUED, heartbeat_at=None):
                continue
            run = Run.objects.get(pk=run_id)
            # Its page says why it goes on; a queued run says so only once it had started (a task
            # that a dead worker had prefetched and never began is no resumption).
            if status == Run.Status.RUNNING or run.events.exists():
                run_resumed_after_worker_lost(run=run, attempt=run.attempts + 1)
            transaction.on_commit(lambda run_id=run_id: services.run_enqueue(run_id))
        reclaimed.append(run_id)
    return reclaimed
