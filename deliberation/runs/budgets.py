"""What each user may spend on models, and what they have spent (reads; runs.services and
runs.experiments enforce it).

A budget counts uncached model steps (engine/costs.py: the unit experiments' caps count) and model
tokens over the last 24 hours, of the runs the user created in that window. A run in flight counts
its estimate (steps) until it settles, as an experiment's cap does, so that no number of runs
started together can overshoot the budget; tokens are counted as spent (no run starts once the
day's tokens are used up). A user's UserBudget overrides the settings' defaults field by field;
with neither, nothing is counted and nothing is refused. A class session's run is the teacher's
like any other: its agents' model calls count, and opening it is checked (classroom.services).

The check and the runs it admits are one transaction under a lock on the owner (budget_lock), so
two starts at once are counted one after the other and never both fit a budget with room for one.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Sum
from django.utils import timezone

from deliberation.engine.classroom import DEFAULT_ROUNDS as CLASSROOM_DEFAULT_ROUNDS
from deliberation.engine.strategies import run_cost
from deliberation.errors import QuotaExceeded
from deliberation.registry.clients import judge_uses_model
from deliberation.registry.models import UserBudget
from deliberation.runs.models import CLASSROOM_STRATEGY, Run, RunEvent
from deliberation.runs.selectors import uncached_steps

WINDOW = timedelta(hours=24)
IN_FLIGHT = (Run.Status.QUEUED, Run.Status.RUNNING)


class BudgetExceeded(QuotaExceeded, ValueError):
    """Starting this would go over the user's daily budget; `reason` says what is left."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"budget: {reason}")  # the field errors: {"budget": [reason]}
        self.reason = reason


@dataclass(frozen=True)
class Budget:
    steps_per_day: int | None
    tokens_per_day: int | None
    experiment_cap: int | None

    @property
    def limited(self) -> bool:
        return self.steps_per_day is not None or self.tokens_per_day is not None


@dataclass(frozen=True)
class Spending:
    budget: Budget
    steps: int  # uncached steps spent in the window, plus the estimate of the runs in flight
    tokens: int  # tokens of uncached model calls in the window

    @property
    def steps_left(self) -> int | None:
        return None if self.budget.steps_per_day is None else max(0, self.budget.steps_per_day - self.steps)

    @property
    def tokens_left(self) -> int | None:
        return None if self.budget.tokens_per_day is None else max(0, self.budget.tokens_per_day - self.tokens)

    def refusal(self, *, steps: int) -> str | None:
        """Why a run of `steps` estimated steps may not start now, or None."""
        if self.tokens_left == 0:
            return f"your {self.budget.tokens_per_day} model tokens of the last 24 hours are spent"
        if self.steps_left is not None and steps > self.steps_left:
            return (
                f"this needs up to {steps} model steps and {self.steps_left} of your "
                f"{self.budget.steps_per_day} a day are left"
            )
        return None


def budget_for(*, user: AbstractBaseUser) -> Budget:
    row = UserBudget.objects.filter(user_id=user.pk).first()

    def pick(field: str, default: int | None) -> int | None:
        value = getattr(row, field) if row is not None else None
        return value if value is not None else default

    return Budget(
        steps_per_day=pick("steps_per_day", settings.HEMICYCLE_DAILY_STEPS),
        tokens_per_day=pick("tokens_per_day", settings.HEMICYCLE_DAILY_TOKENS),
        experiment_cap=pick("experiment_cap", settings.HEMICYCLE_EXPERIMENT_CAP),
    )


def run_steps_estimate(
    *, strategy: str, party_count: int, judge: str, params: dict, uses_model: Callable[[str], bool] = judge_uses_model
) -> int:
    """`uses_model`: registry.clients.judge_uses_model, or the same answers remembered over many runs."""
    if strategy == CLASSROOM_STRATEGY:
        # A class session's agents take at most the turns of the parliament it plays, on the
        # classroom's settings (engine/classroom.py); students' turns call no model.
        strategy, params = "parliament", {"rounds": CLASSROOM_DEFAULT_ROUNDS, **params}
    return run_cost(strategy=strategy, party_count=party_count, judge_uses_model=uses_model(judge), params=params).steps


def spending_for(*, user: AbstractBaseUser, budget: Budget | None = None) -> Spending:
    """The user's spending over the window (nothing is read when no budget limits them)."""
    budget = budget or budget_for(user=user)
    if not budget.limited:
        return Spending(budget=budget, steps=0, tokens=0)
    runs = Run.objects.filter(owner_id=user.pk, created_at__gte=timezone.now() - WINDOW)
    steps = runs.filter(status=Run.Status.FINISHED).aggregate(steps=Sum("uncached_steps"))["steps"] or 0
    tokens = 0
    usages: dict[int, list[dict]] = {}
    for run_id, status, usage in RunEvent.objects.filter(run__in=runs, data__has_key="usage").values_list(
        "run_id", "run__status", "data__usage"
    ):
        if usage and not usage.get("cached"):
            tokens += (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
        if status != Run.Status.FINISHED:
            usages.setdefault(run_id, []).append(usage)
    uses_model = functools.cache(judge_uses_model)  # a calibrated judge's answer is a row: once per judge
    flying = {
        pk: run_steps_estimate(
            strategy=strategy, party_count=len(groups), judge=judge, params=params, uses_model=uses_model
        )
        for pk, strategy, groups, judge, params in runs.filter(status__in=IN_FLIGHT).values_list(
            "pk", "strategy", "groups", "judge", "params"
        )
    }
    for run_id, items in usages.items():
        if run_id not in flying:  # failed, stopped or paused: what it spent
            steps += uncached_steps(items)
    steps += sum(flying.values())
    return Spending(budget=budget, steps=steps, tokens=tokens)


def budget_lock(*, user: AbstractBaseUser) -> None:
    """Hold the user's budget until this transaction ends: whoever checks it next (budget_check,
    an experiment's top-up) waits, then counts the runs this transaction admitted. The user's own
    row is the lock (a UserBudget row may not exist). Inside a transaction only."""
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))


def budget_check(*, user: AbstractBaseUser, steps: int) -> None:
    """BudgetExceeded unless a run of `steps` estimated steps fits the user's budget now. Call it
    in the transaction that creates the run: a limited budget stays locked until that commits."""
    budget = budget_for(user=user)
    if not budget.limited:
        return
    budget_lock(user=user)
    spending = spending_for(user=user, budget=budget)
    reason = spending.refusal(steps=steps)
    if reason:
        raise BudgetExceeded(reason)
