"""Every task name that is sent (beat's schedule, the services' task_enqueue calls) is one that a
worker process registers by itself: tasks are sent by name, so a renamed or moved task would
otherwise only show as "Received unregistered task" in a production worker's log."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
ENQUEUED = re.compile(r"task_enqueue\(\s*\"([\w.]+)\"")

# What `celery -A worker.celery worker` registers: the app module's autodiscovery, nothing imported by hand.
WORKER_TASKS = """
import json
import django
django.setup()
from worker.celery import app
app.loader.import_default_modules()
print(json.dumps(sorted(name for name in app.tasks if not name.startswith("celery."))))
"""


def registered_by_a_worker() -> set[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "deliberation.settings"}
    result = subprocess.run(
        [sys.executable, "-c", WORKER_TASKS], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def enqueued_by_name() -> set[str]:
    names = set()
    for folder in ("deliberation", "worker"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            names.update(ENQUEUED.findall(path.read_text()))
    return names


def test_every_task_sent_by_name_is_registered_by_a_worker_process():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    sent = enqueued_by_name()
    assert "deliberation.runs.tasks.run_advance_task" in sent  # the scan finds the services' calls
    assert "deliberation.runs.tasks.runs_reclaim_task" in scheduled
    missing = (scheduled | sent) - registered_by_a_worker()
    assert not missing, f"sent by name but no worker registers them: {sorted(missing)}"
