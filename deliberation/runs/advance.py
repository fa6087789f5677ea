"""What a run's task does: play the run, then let its experiment (if any) start its next runs.

Above runs.steps (one run) and runs.experiments (many): the experiment's top-up creates runs
through the services, so neither calls the other back.
"""

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from deliberation.runs.experiments import experiment_run_settled
from deliberation.runs.models import Run
from deliberation.runs.selectors import TaskReads
from deliberation.runs.steps import Played, run_play

# A task whose run finished plays the next run its experiment starts itself (the top-up creates it
# for this task: no hop through the broker, no read of the run), while it has played fewer than
# RUNS_PER_TASK runs and for less than CHAIN_S seconds. The hop cost a cached run more than its
# own work, and kept a model server waiting about 50 ms per uncached run at 32 runs in flight
# (bench/bench_experiment_throughput.py). A chain ends there, or at a run that did not finish
# (failed, paused, stopped), and its next run goes through the queue: runs spread again over the
# workers (a worker added meanwhile gets its share) and no task lasts long.
RUNS_PER_TASK = 100
CHAIN_S = 10.0


def run_advance(*, run_id: int, held: Callable[[int], AbstractContextManager] = lambda run_id: nullcontext()) -> None:
    """Step the run's strategy from its last stored event to the end, a pause or a stop; a run
    of an experiment that has settled lets the experiment start its next runs (and, when the run
    finished, plays the next of them here: RUNS_PER_TASK, CHAIN_S). The runs of one task share
    their registry and budget reads (TaskReads), and a run the top-up created for this task is
    played as created, not read again. `held(run_id)` is around each run's play: the task's
    heartbeat of the run (runs.recovery), which each run of a chain needs as the first does."""
    reads = TaskReads()
    created: Run | None = None
    began = time.monotonic()
    for count in range(1, RUNS_PER_TASK + 1):
        played = Played()
        try:
            with held(run_id):
                played = run_play(run_id=run_id, created=created, reads=reads)
        finally:
            chaining = played.finished and count < RUNS_PER_TASK and time.monotonic() - began < CHAIN_S
            next_run = experiment_run_settled(
                run_id=run_id,
                play_next_on=played.queue if chaining else None,
                reads=reads,
                settled_in=played.experiment_id if played.finished else None,
            )
        if next_run is None:
            return
        created = next_run if isinstance(next_run, Run) else None
        run_id = next_run.pk if isinstance(next_run, Run) else next_run
