"""Starts at the same moment, on PostgreSQL from two connections, never both fit a budget with room
for one (runs/budgets.py: the check and what it admits are one transaction under the owner's lock):
two runs, or a run and an experiment's top-up."""

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection

from deliberation.registry.models import UserBudget
from deliberation.runs import budgets, experiments, services
from deliberation.runs.budgets import BudgetExceeded, spending_for
from deliberation.runs.experiments import experiment_start
from deliberation.runs.models import Run
from deliberation.runs.services import run_create
from tests.factories import experiment_grid, make_record, make_user, sample_record_set, scenario_config

pytestmark = pytest.mark.django_db(transaction=True)

# A parliament run of 3 groups, 1 round, the scripted judge (tests/unit/runs/test_budgets.py); an
# experiment_grid run (one-shot, the llm judge, 2 groups) takes 3.
PARLIAMENT_STEPS = 11
DEADLINE_S = 60


def other_is_waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def race(monkeypatch, *starts: Callable[[], object]) -> list[object]:
    """Run the two starts in two threads (two connections). Each reads its spending, then waits
    until the other has read too (the race) or is held at the budget's lock (no race), whichever
    comes first; then writes. Returns what each start returned or raised."""
    reads = []
    real_spending_for = budgets.spending_for

    def spending_for_then_wait(**kwargs):
        spending = real_spending_for(**kwargs)
        reads.append(threading.get_ident())
        deadline = time.monotonic() + DEADLINE_S
        while len(reads) < 2 and not other_is_waiting_on_a_lock() and time.monotonic() < deadline:
            time.sleep(0.02)
        return spending

    monkeypatch.setattr(budgets, "spending_for", spending_for_then_wait)
    monkeypatch.setattr(experiments, "spending_for", spending_for_then_wait)
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)  # no worker: only the starts race
    monkeypatch.setattr(experiments, "_enqueue_advance", lambda experiment_id: None)
    outcomes: list[object] = []

    def play(start: Callable[[], object]) -> None:
        try:
            outcomes.append(start())
        except BudgetExceeded as refused:
            outcomes.append(refused)
        finally:
            connection.close()

    threads = [threading.Thread(target=play, args=(start,)) for start in starts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * DEADLINE_S)
    assert not any(thread.is_alive() for thread in threads)
    assert len(reads) == 2  # both starts read the budget
    return outcomes


def test_two_runs_started_at_once_do_not_both_pass_a_budget_with_room_for_one(monkeypatch):
    owner, record = make_user(), make_record()
    UserBudget.objects.create(user=owner, steps_per_day=PARLIAMENT_STEPS)
    outcomes = race(
        monkeypatch,
        *(
            lambda seed=seed: run_create(owner=owner, config=scenario_config(record, user=owner, seed=seed))
            for seed in (1, 2)
        ),
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["BudgetExceeded", "Run"]
    assert Run.objects.filter(owner=owner).count() == 1


def test_a_run_and_an_experiment_started_at_once_stay_within_the_budget_together(monkeypatch):
    sample_record_set()
    owner, record = make_user(), make_record()
    UserBudget.objects.create(user=owner, steps_per_day=PARLIAMENT_STEPS)  # the run alone, or three of the grid's
    experiment = experiment_grid(owner)
    race(
        monkeypatch,
        lambda: run_create(owner=owner, config=scenario_config(record, user=owner)),
        lambda: experiment_start(experiment=experiment, user=owner),
    )
    monkeypatch.undo()
    started = Run.objects.filter(owner=owner)
    assert started.exists()  # one of them started something
    assert spending_for(user=owner).steps <= PARLIAMENT_STEPS  # their estimates, together
