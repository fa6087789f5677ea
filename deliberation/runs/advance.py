"""What a run's task does: play the run, then let its experiment (if any) start its next runs.

Above runs.services (one run) and runs.experiments (many): the experiment's top-up creates runs
through the services, so the services never call the experiments back.
"""

from deliberation.runs.experiments import experiment_run_settled
from deliberation.runs.services import run_play

# A task whose run the cache answered alone plays the next run its experiment starts itself, up to
# this many runs in all: a cached run takes milliseconds, less than the broker hop and the task of
# its own it had (bench/bench_experiment_throughput.py). The first run that calls the model ends
# the chain, so runs that wait on a model still spread over the workers through the queue.
CACHED_RUNS_PER_TASK = 100


def run_advance(*, run_id: int) -> None:
    """Step the run's strategy from its last stored event to the end, a pause or a stop; a run
    of an experiment that has settled lets the experiment start its next runs (and, when the
    cache answered the run alone, plays the next of them here: CACHED_RUNS_PER_TASK)."""
    for played in range(1, CACHED_RUNS_PER_TASK + 1):
        queue = None
        try:
            queue = run_play(run_id=run_id)
        finally:
            next_run = experiment_run_settled(
                run_id=run_id, play_next_on=queue if played < CACHED_RUNS_PER_TASK else None
            )
        if next_run is None:
            return
        run_id = next_run
