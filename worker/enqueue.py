"""The one way services put work on a Celery queue: by the task's name.

A task imports the service it calls; a service that imported its task back would close an import
cycle. So services name the task ("deliberation.runs.tasks.run_advance_task": its module and
function) and this module loads it and sends it, honouring the app's settings (task_always_eager
runs it at once, in tests and eager CLI runs).
"""

import importlib
from datetime import datetime

from django.conf import settings

from worker.celery import app


def model_queue(model: str) -> str:
    """Work on an in-process model goes where that model is loaded (the GPU hosts' queue); work on
    a model server or hosted API only orchestrates, on the CPU queue."""
    return settings.HEMICYCLE_LOCAL_MODEL_QUEUE if model.startswith("local:") else "runs"


def task_enqueue(
    name: str, *, queue: str | None = None, countdown: float | None = None, eta: datetime | None = None, **kwargs
) -> None:
    """Send task `name` with keyword arguments `kwargs` (on `queue`, after `countdown` seconds or at
    `eta` when given)."""
    module = name.rpartition(".")[0]
    importlib.import_module(module)  # registers the task in this process (a web process may not have yet)
    app.tasks[name].apply_async(kwargs=kwargs, queue=queue, countdown=countdown, eta=eta)
