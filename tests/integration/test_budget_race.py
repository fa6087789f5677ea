"""Two runs started at once, on PostgreSQL from two connections, never both fit a budget with room
for one (runs/budgets.py: the check and the run are one transaction under the owner's lock)."""

import threading
import time

import pytest
from django.db import connection

from deliberation.registry.models import UserBudget
from deliberation.runs import budgets, services
from deliberation.runs.budgets import BudgetExceeded
from deliberation.runs.models import Run
from deliberation.runs.services import run_create
from tests.factories import make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db(transaction=True)

# A parliament run of 3 groups, 1 round, the scripted judge (tests/unit/runs/test_budgets.py).
PARLIAMENT_STEPS = 11
DEADLINE_S = 60


def other_is_waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_two_starts_at_once_do_not_both_pass_a_budget_with_room_for_one(monkeypatch):
    owner, record = make_user(), make_record()
    UserBudget.objects.create(user=owner, steps_per_day=PARLIAMENT_STEPS)
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)  # no worker: only the starts race
    read = threading.Semaphore(0)
    reads = []
    real_spending_for = budgets.spending_for

    def spending_for_then_wait(**kwargs):
        """Each start reads its spending, then waits until the other has read too (the race) or is
        held at the budget's lock (no race), whichever comes; then writes its run."""
        spending = real_spending_for(**kwargs)
        reads.append(threading.get_ident())
        read.release()
        deadline = time.monotonic() + DEADLINE_S
        while len(reads) < 2 and not other_is_waiting_on_a_lock() and time.monotonic() < deadline:
            time.sleep(0.02)
        return spending

    monkeypatch.setattr(budgets, "spending_for", spending_for_then_wait)
    outcomes: list[object] = []

    def start(seed: int) -> None:
        try:
            outcomes.append(run_create(owner=owner, config=scenario_config(record, user=owner, seed=seed)))
        except BudgetExceeded as refused:
            outcomes.append(refused)
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * DEADLINE_S)
    assert not any(thread.is_alive() for thread in threads)
    assert len(reads) == 2  # both starts read the budget
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["BudgetExceeded", "Run"]
    assert Run.objects.filter(owner=owner).count() == 1
