"""The Celery app. Celery is just another interface: tasks load by id and call one service."""

import os
import sys

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberation.settings")

app = Celery("hemicycle")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    ["deliberation.runs", "deliberation.records", "deliberation.classroom", "deliberation.calibration"]
)  # <app>/tasks.py

# Database connections. Celery's Django fixup closes every connection before and after each task,
# so each run task would open a new PostgreSQL connection: a server process forked, authenticated
# and its catalog caches filled again, which costs more than a cached run's own queries. Instead a
# task ends as a Django request does: its thread's connection closes once older than
# DATABASE_CONN_MAX_AGE (0 by default: after every task, as before) or unusable. The fixup closes
# only every 2 x CELERY_DB_REUSE_MAX tasks then, which this setting makes never.
app.conf["CELERY_DB_REUSE_MAX"] = 2**62


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # an eager task runs inside its caller's connection and transaction
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect
def _switch_interval(**kwargs) -> None:
    """A worker's run tasks are threads that mostly wait (on the database, the model, Redis); one
    whose answer has arrived waits for the GIL until the thread running Python code lets it go,
    after sys.getswitchinterval() (5 ms by default) at worst, and a run waits so once per round
    trip. CELERY_WORKER_SWITCH_INTERVAL_MS (1 by default) shortens that wait."""
    sys.setswitchinterval(float(os.environ.get("CELERY_WORKER_SWITCH_INTERVAL_MS", "1")) / 1000)
