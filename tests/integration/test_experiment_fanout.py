"""An experiment fans out over a real Celery worker (PostgreSQL, Redis) within its model bound.

The worker has four threads, the bound for scripted models is two: the experiment's own top-ups
(run_advance re-triggers experiment_advance_task) must keep at most two runs in flight.
"""

import json
import time

from deliberation.runs.experiments import experiment_create, experiment_start
from deliberation.runs.models import Experiment, Run
from deliberation.runs.selectors import experiment_progress
from deliberation.scenarios.services import scenario_save
from tests.factories import make_record, make_user, scenario_config

BOUND = {"scripted:": 2, "*": 4}


def test_an_experiment_keeps_its_model_bound_across_worker_threads(celery_worker, start_celery_worker, settings):
    # The session's shared worker has the default bounds: a run it played would top up with them.
    celery_worker.stop()
    settings.HEMICYCLE_MODEL_CONCURRENCY = BOUND
    worker = start_celery_worker(
        name="experiments", concurrency=4, env={"HEMICYCLE_MODEL_CONCURRENCY": json.dumps(BOUND)}
    )
    owner = make_user()
    scenarios = [
        scenario_save(owner=owner, name=f"s{n}", config=scenario_config(make_record(title=f"issue {n}")))
        for n in range(3)
    ]
    experiment = experiment_create(
        owner=owner,
        name="fan-out",
        scenario_ids=[s.pk for s in scenarios],
        goals=["simple_majority"],
        strategies=["one-shot", "greedy"],
        models=["scripted:slow"],
        judges=["llm"],
        seeds=[0, 1],
    )
    experiment_start(experiment=experiment, user=owner)

    most_in_flight = 0
    deadline = time.monotonic() + 120
    while Experiment.objects.values_list("status", flat=True).get(pk=experiment.pk) == Experiment.Status.RUNNING:
        in_flight = experiment.runs.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).count()
        most_in_flight = max(most_in_flight, in_flight)
        assert time.monotonic() < deadline, "the experiment did not finish in time"
        time.sleep(0.02)

    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    assert most_in_flight == 2
    cells = list(experiment.runs.values_list("cell", flat=True))
    assert len(cells) == len(set(cells)) == 12
    assert experiment.runs.filter(status=Run.Status.FINISHED).count() == 12
    # The runs overlapped: two were in flight at once for real, not one after the other.
    spans = sorted(experiment.runs.values_list("started_at", "finished_at"))
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))
    progress = experiment_progress(experiment=experiment)
    assert (progress["done"], progress["remaining"]) == (12, 0)
    assert 0 < progress["steps_spent"] <= experiment.estimate["steps"]
    assert "Traceback" not in worker.log_text()  # every top-up and progress push went through
