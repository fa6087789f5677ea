"""An experiment's calibration cells: each judge of the grid x each judge model, measured against
the real votes of the experiment's records (deliberation/calibration), beside its runs.

A cell is one Calibration (Calibration.experiment + Calibration.cell is unique), created when the
experiment starts and played by its own Celery task as a run is: a worker that dies leaves the
scores it stored, beat's reclaim queues the cell again and the next task goes on from there, its
model calls answered by the completion cache. Every cell of one experiment scores the same items
(the same record selection and seed). A cell that settles tops the experiment up (its task, by
name), which ends the experiment once no run and no calibration is left in flight. A cell of a
paused or cancelled experiment goes back to the queue at its next chunk and resumes with it.
"""

import time
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from deliberation.calibration.models import Calibration
from deliberation.calibration.services import calibration_create, calibration_enqueue, calibration_new
from deliberation.live.fanout import broadcast_experiment_progress
from deliberation.records.models import RecordSet
from deliberation.registry.clients import judge_takes_model
from deliberation.runs.models import Experiment
from deliberation.runs.selectors import experiment_progress

CELL_PREFIX = "calibration"
IN_FLIGHT = (Calibration.Status.QUEUED, Calibration.Status.RUNNING)


def calibration_cells(spec: dict) -> list[tuple[str, str, str]]:
    """(cell key, judge, judge model) of each calibration cell of an experiment's spec; a judge that
    calls no model, or always its own (calibrated:<id>), has one cell, whatever the models."""
    grid = spec.get("calibration")
    if not grid:
        return []
    return [
        (f"{CELL_PREFIX}|{judge}|{model}", judge, model)
        for judge in grid["judges"]
        for model in (grid["judge_models"] if judge_takes_model(judge) else [""])
    ]


def _cell_options(spec: dict, judge: str, model: str) -> dict:
    grid = spec["calibration"]
    return {
        "record_set": grid["record_set"],
        "judge": judge,
        "judge_model": model or None,
        "topic": grid["topic"],
        "limit": grid["limit"],
        "seed": grid["seed"],
    }


def calibration_grid(
    *,
    owner: AbstractBaseUser,
    judges: Sequence[str],
    judge_models: Sequence[str],
    record_set: str,
    topic: str | None,
    limit: int | None,
    seed: int,
) -> dict:
    """The spec's calibration grid, every cell checked as calibration_create would (CalibrationError
    or RecordSet.DoesNotExist say why not); the judge models are checked by the caller."""
    grid = {
        "judges": list(judges),
        "judge_models": list(judge_models),
        "record_set": record_set,
        "topic": topic,
        "limit": limit,
        "seed": seed,
    }
    spec = {"calibration": grid}
    for _, judge, model in calibration_cells(spec):
        calibration_new(**_cell_options(spec, judge, model), owner=owner)
    return grid


def experiment_calibrations_start(*, experiment) -> list[int]:
    """Create the calibration cells the experiment lacks and send every queued cell's task (after
    commit); a cell already sent that waits on the queue gets a second task, which finds it taken
    and leaves it. Cells that settled are kept. Returns the ids sent."""
    cells = calibration_cells(experiment.spec)
    if not cells:
        return []
    existing = dict(experiment.calibrations.values_list("cell", "pk"))
    sent = []
    with transaction.atomic():
        for key, judge, model in cells:
            if key not in existing:
                try:
                    created = calibration_create(
                        **_cell_options(experiment.spec, judge, model),
                        owner=experiment.owner,
                        experiment_id=experiment.pk,
                        cell=key,
                        enqueue=False,
                        refused_as_failed=True,  # the cell settles, visibly, and the others play
                    )
                except RecordSet.DoesNotExist:
                    continue  # the set was deleted since the experiment was created (and its runs with it)
                existing[key] = created.pk
        queued = experiment.calibrations.filter(status=Calibration.Status.QUEUED).values_list("pk", "judge_model")
        for calibration_id, model in queued:
            transaction.on_commit(lambda c=calibration_id, m=model: calibration_enqueue(calibration_id=c, model=m))
            sent.append(calibration_id)
    return sent


def experiment_calibrations_in_flight(*, experiment_id: int) -> bool:
    return Calibration.objects.filter(experiment_id=experiment_id, status__in=IN_FLIGHT).exists()


# A cell stores a chunk of scores every few milliseconds with a judge that calls no model: such
# news goes out at most this often per experiment and worker process, a change of status always
# (as experiments._announce_progress does for settling runs; the page asks after 30 s of silence).
CELL_PROGRESS_INTERVAL_S = 0.5
_cell_progress_sent: dict[int, float] = {}  # experiment id -> monotonic time


def experiment_calibration_cell_moved(*, experiment_id: int, status_changed: bool) -> None:
    """One of the experiment's calibration cells stored a chunk or changed status (committed):
    push the experiment's progress, its cells included, to its owner's open pages, as a top-up
    does for its runs (calibration.services calls it; runs.apps hands it down)."""
    now = time.monotonic()
    last = _cell_progress_sent.get(experiment_id)
    if not status_changed and last is not None and now - last < CELL_PROGRESS_INTERVAL_S:
        return
    _cell_progress_sent[experiment_id] = now
    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is not None:
        broadcast_experiment_progress(experiment_id=experiment_id, progress=experiment_progress(experiment=experiment))
