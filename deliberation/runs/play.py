"""Playing an experiment from the command line and staying with it until it ends.

The one way many runs are played: an experiment's top-ups start them and the run tasks play them
(runs/experiments.py). Here the command starts the experiment and follows its progress; with no
broker configured (the embedded default) this process is the worker, as the web process of
`make run` is, since the memory broker reaches only its own threads.
"""

import time
from collections.abc import Callable

from django.conf import settings

from deliberation.commands import progress_bar
from deliberation.runs.experiments import experiment_start
from deliberation.runs.models import Experiment
from deliberation.runs.selectors import experiment_progress

POLL_S = 0.2


def experiment_play(
    *, experiment: Experiment, progress: Callable[[dict], None] | None = None, poll_s: float = POLL_S
) -> dict:
    """Start or resume the experiment (as its owner) and return its progress once it is no longer
    running (finished, capped, paused or cancelled); `progress` hears each reading on the way."""
    if settings.CELERY_EMBEDDED_WORKER:
        from worker.embedded import embedded_worker_start

        embedded_worker_start()
    experiment_start(experiment=experiment, user=experiment.owner)
    read_at = None
    while True:
        experiment.refresh_from_db(fields=["status"])
        # The progress is an aggregate over every run of the experiment: read at most once a
        # second (each poll of a 27,000-run evaluation read it, a good part of its CPU).
        if experiment.status != Experiment.Status.RUNNING or read_at is None or time.monotonic() - read_at >= 1:
            read_at = time.monotonic()
            reading = experiment_progress(experiment=experiment)
            if progress is not None:
                progress(reading)
            if experiment.status != Experiment.Status.RUNNING:
                return reading
        time.sleep(poll_s)


def experiment_play_followed(experiment: Experiment, *, disable: bool = False) -> dict:
    """experiment_play with a progress bar on the terminal (manage.py experiment run --wait, evaluate)."""
    bar = progress_bar(total=experiment.estimate.get("runs", 0), unit="run", quiet=disable)

    def show(reading: dict) -> None:
        bar.n = reading["done"] + reading["failed"]
        bar.set_postfix(running=reading["running"], failed=reading["failed"], steps=reading["steps_spent"])

    try:
        return experiment_play(experiment=experiment, progress=show)
    finally:
        bar.close()


def progress_line(progress: dict) -> str:
    """An experiment's progress in one line, for the terminal."""
    cap = f" of a cap of {progress['call_cap']}" if progress["call_cap"] is not None else ""
    eta = f", about {progress['eta_s']:.0f} s left" if progress["eta_s"] is not None else ""
    return (
        f"{progress['name']}: {progress['status']}; {progress['done']} done, {progress['failed']} failed, "
        f"{progress['running']} running, {progress['remaining']} remaining of {progress['total']}; "
        f"{progress['steps_spent']} uncached model steps{cap}{eta}"
    )
