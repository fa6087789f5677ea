"""A small experiment whose aggregates are computed by hand in the tests.

Record (7th term, topic agriculture) with real votes EPP 8, SD 3, ALDE 5, GREEN_EFA 0.
Tasks: a 2-party task (EPP 0.6, SD 0.4) and a 4-party task (EPP 0.4, SD 0.3, ALDE 0.2, GREEN_EFA 0.1).

Finished runs of the experiment, judge "llm", model "m1":
  one-shot simple_majority 2p: pass, fail, pass        -> 2/3, 3 runs, 1 task
  one-shot simple_majority 4p: pass                     -> 1.0
  one-shot rawlsian 2p:        3.0, 5.0                 -> 4.0
  greedy   simple_majority 2p: fail                     -> 0.0 (a baseline)
plus one failed and one running one-shot simple_majority 2p run, which count nowhere.
"""

import pytest
from django.core.cache import cache

from deliberation.records.models import BenchmarkTask, Topic
from deliberation.runs.group_scores import group_scores_write
from deliberation.runs.models import Experiment, Run
from deliberation.runs.services import outcome_goal_value
from tests.factories import make_record, make_user

TASK2 = (("EPP", 0.6), ("SD", 0.4))
TASK4 = (("EPP", 0.4), ("SD", 0.3), ("ALDE", 0.2), ("GREEN_EFA", 0.1))


def make_task(record, groups, index):
    return BenchmarkTask.objects.create(
        record_set=record.record_set,
        record=record,
        topic=Topic.objects.get(name="agriculture"),
        party_count=len(groups),
        groups=[c for c, _ in groups],
        seat_weights=[s for _, s in groups],
        veto_group=groups[0][0],
        content_hash=f"task-{index}",
    )


class Maker:
    def __init__(self, experiment, record, tasks):
        self.experiment, self.record, self.tasks, self.count = experiment, record, tasks, 0

    def run(
        self,
        *,
        parties,
        goal,
        strategy="one-shot",
        value=None,
        scores=None,
        status=Run.Status.FINISHED,
        model="m1",
        judge="llm",
    ):
        task = self.tasks[parties]
        seats = dict(zip(task.groups, task.seat_weights))
        outcome = None
        if status == Run.Status.FINISHED:
            outcome = {
                "goals": {goal: value},
                "scores": scores or {code: 5 for code in task.groups},
                "seats": seats,
                "weighted_total": 5.0,
            }
        self.count += 1
        run = Run.objects.create(
            owner=self.experiment.owner,
            experiment=self.experiment,
            cell=f"c{self.count}",
            task=task,
            record=self.record,
            groups=list(task.groups),
            seat_structure="custom",
            seats=seats,
            goal=goal,
            veto_group=task.veto_group,
            strategy=strategy,
            model=model,
            judge=judge,
            status=status,
            outcome=outcome,
            goal_value=outcome and outcome_goal_value(outcome, goal),
            largest_share=outcome and max(seats.values()),
        )
        if status == Run.Status.FINISHED:
            group_scores_write(run=run, outcome=outcome)  # as runs.services._run_finish does
        return run


@pytest.fixture(autouse=True)
def empty_cache():
    """The dashboards cache their aggregates (Django's cache, shared by the tests of a process)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner(db):
    return make_user("owner")


@pytest.fixture
def made(owner):
    record = make_record()
    tasks = {2: make_task(record, TASK2, 2), 4: make_task(record, TASK4, 4)}
    experiment = Experiment.objects.create(owner=owner, name="pilot", spec={}, estimate={"runs": 9})
    maker = Maker(experiment, record, tasks)
    maker.run(parties=2, goal="simple_majority", value=True, scores={"EPP": 8, "SD": 2})
    maker.run(parties=2, goal="simple_majority", value=False, scores={"EPP": 6, "SD": 4})
    maker.run(parties=2, goal="simple_majority", value=True, scores={"EPP": 7, "SD": 3})
    maker.run(parties=4, goal="simple_majority", value=True, scores={"EPP": 9, "SD": 1, "ALDE": 5, "GREEN_EFA": 0})
    maker.run(parties=2, goal="rawlsian", value=3.0, scores={"EPP": 6, "SD": 3})
    maker.run(parties=2, goal="rawlsian", value=5.0, scores={"EPP": 5, "SD": 5})
    maker.run(parties=2, goal="simple_majority", strategy="greedy", value=False, scores={"EPP": 9, "SD": 0})
    maker.run(parties=2, goal="simple_majority", status=Run.Status.FAILED)
    maker.run(parties=2, goal="simple_majority", status=Run.Status.RUNNING)
    return maker
