"""What a run's task does: play the run, then let its experiment (if any) start its next runs.

Above runs.steps (one run) and runs.experiments (many): the experiment's top-up creates runs
through the services, so neither calls the other back.
"""

from deliberation.runs.experiments import experiment_run_settled
from deliberation.runs.models import Run
from deliberation.runs.selectors import TaskReads
from deliberation.runs.steps import Played, run_play

# A task whose run the cache answered alone plays the next run its experiment starts itself, up to
# this many runs in all: a cached run takes milliseconds, less than the broker hop and the task of
# its own it had (bench/bench_experiment_throughput.py). The first run that calls the model ends
# the chain, so runs that wait on a model still spread over the workers through the queue.
CACHED_RUNS_PER_TASK = 100


def run_advance(*, run_id: int) -> None:
    """Step the run's strategy from its last stored event to the end, a pause or a stop; a run
    of an experiment that has settled lets the experiment start its next runs (and, when the
    cache answered the run alone, plays the next of them here: CACHED_RUNS_PER_TASK). The runs
    of one task share their registry and budget reads (TaskReads), and a run the top-up created
    for this task is played as created, not read again."""
    reads = TaskReads()
    created: Run | None = None
    for count in range(1, CACHED_RUNS_PER_TASK + 1):
        played = Played()
        try:
            played = run_play(run_id=run_id, created=created, reads=reads)
        finally:
            next_run = experiment_run_settled(
                run_id=run_id,
                play_next_on=played.queue if played.cached and count < CACHED_RUNS_PER_TASK else None,
                reads=reads,
                settled_in=played.experiment_id if played.finished else None,
            )
        if next_run is None:
            return
        created = next_run if isinstance(next_run, Run) else None
        run_id = next_run.pk if isinstance(next_run, Run) else next_run
