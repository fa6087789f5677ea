"""Reads of runs and their event log."""

from collections.abc import Callable, Hashable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Avg, Count, DurationField, F, Q, QuerySet, Sum
from django.urls import reverse

from deliberation.calibration.models import Calibration
from deliberation.calibration.selectors import experiment_calibration_cells
from deliberation.engine.classroom import classroom_settings
from deliberation.engine.goals import GOALS
from deliberation.engine.strategies.parliament import ParliamentSettings
from deliberation.records.models import PartyGroup
from deliberation.runs.models import CLASSROOM_STRATEGY, Experiment, Run, RunEvent, RunGroupScore


def run_page_data(run: Run) -> dict:
    """What a page that renders a run's events needs (transcript.js): the run, its goal, its groups."""
    groups = {g.code: g for g in PartyGroup.objects.filter(term=run.record.term, code__in=run.groups)}
    summary = run_summary(run)
    # The rounds the debate plays, its strategy's default filled in (a session's default is the
    # classroom's, not the parliament's): the page's heading and phases show this number.
    if run.strategy == CLASSROOM_STRATEGY:
        summary["params"] = {**run.params, "rounds": classroom_settings(run.params).rounds}
    elif run.strategy == "parliament":
        summary["params"] = {**run.params, "rounds": ParliamentSettings.from_params(run.params).rounds}
    return {
        "run": summary,
        "goal": {
            "key": run.goal,
            "label": GOALS[run.goal].label,
            "kind": GOALS[run.goal].kind,
            "threshold": GOALS[run.goal].threshold,
        },
        "groups": [
            {
                "code": code,
                "label": groups[code].label if code in groups else code,
                "short_label": (groups[code].short_label or code) if code in groups else code,
                "colour": groups[code].colour if code in groups else "#888888",
                "seats": run.seats[code],
            }
            for code in run.groups
        ],
    }


def run_group_rewards(*, run: Run) -> list[dict]:
    """The run's moral rewards per group (engine/rewards.py), in the scenario's order; empty until
    the run finished (they are stored with its per-group scores)."""
    stored = {
        row["group"]: row
        for row in RunGroupScore.objects.filter(run=run).values("group", "reward_deontological", "reward_utilitarian")
    }
    return [
        {
            "group": code,
            "deontological": stored[code]["reward_deontological"],
            "utilitarian": stored[code]["reward_utilitarian"],
        }
        for code in run.groups
        if code in stored
    ]


def run_summary(run: Run) -> dict:
    """A run as every reader gets it: the API (RunOut, /api/v1/runs and its /api/runs aliases)
    and the run page's data."""
    return {
        "id": run.pk,
        "status": run.status,
        "record": run.record_id,
        "experiment": run.experiment_id,
        "cell": run.cell,
        "strategy": run.strategy,
        "model": run.model,
        "judge": run.judge,
        "goal": run.goal,
        "groups": run.groups,
        "seats": run.seats,
        "veto_group": run.veto_group or None,
        "seed": run.seed,
        "params": run.params,
        "outcome": run.outcome,
        "error": run.error,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "model_seconds": run.model_seconds,
        "wall_seconds": run.wall_seconds,
        "created_at": run.created_at,
        "url": reverse("run-detail", args=[run.pk]),
    }


class TaskReads:
    """Reads that the runs one task plays in a row share, made once per task: a task plays a chain
    of runs (runs.advance), and each of them read the same registry entries, bounds and owner's
    budget again. A chain lasts at most runs.advance.CHAIN_S (10 s), and the next task reads
    afresh, so a change to the registry or to a budget reaches the runs of the next task. A read
    that raises is not remembered."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        # The running experiments' ids as the task's last top-up read them under its lock
        # (runs.experiments.experiment_run_settled).
        self.running_experiments: list[int] | None = None

    def get(self, key: Hashable, read: Callable[[], Any]) -> Any:
        if key not in self._values:
            self._values[key] = read()
        return self._values[key]


def run_events_after(*, run_id: int, seq: int) -> QuerySet[RunEvent]:
    return RunEvent.objects.filter(run_id=run_id, seq__gt=seq).order_by("seq")


def run_for_viewer(*, user: AbstractBaseUser | AnonymousUser, run_id: int, token: str = "") -> Run | None:
    """The run if this user may watch it (owner; anyone signed in; anyone with the link), else None."""
    run = Run.objects.filter(pk=run_id).select_related("owner", "record").first()
    if run is None:
        return None
    if user.is_authenticated and run.owner_id == user.pk:
        return run
    if run.visibility == Run.Visibility.SIGNED_IN and user.is_authenticated:
        return run
    if run.visibility == Run.Visibility.LINK and token and token == run.share_token:
        return run
    return None


def run_list_for_owner(*, owner: AbstractBaseUser) -> QuerySet[Run]:
    return Run.objects.filter(owner=owner).select_related("record").order_by("-created_at")


def runs_of_owner(
    *, owner: AbstractBaseUser, status: str = "", strategy: str = "", experiment: str = ""
) -> QuerySet[Run]:
    """The owner's runs, newest first, filtered: `experiment` "" keeps single runs (those of no
    experiment: an experiment's hundreds of runs would bury them), "all" every run, an id that
    experiment's runs."""
    runs = run_list_for_owner(owner=owner).select_related("experiment")
    if status:
        runs = runs.filter(status=status)
    if strategy:
        runs = runs.filter(strategy=strategy)
    if experiment == "all":
        return runs
    if experiment.isdigit():
        return runs.filter(experiment_id=int(experiment))
    return runs.filter(experiment__isnull=True)


def run_transcript(*, run: Run) -> list[tuple[int, str, dict]]:
    """What was said and decided, without the cost of saying it (usage differs on a cached re-run)."""
    return [
        (seq, type_, {key: value for key, value in data.items() if key != "usage"})
        for seq, type_, data in run.events.order_by("seq").values_list("seq", "type", "data")
    ]


def uncached_steps(usages) -> int:
    """Model steps the cache did not answer, from the `usage` of a run's events (see
    engine/costs.py for what a step is; the oracle judge and the baselines record no tokens)."""
    return sum(
        1
        for usage in usages
        if usage and not usage.get("cached") and (usage.get("prompt_tokens") or usage.get("completion_tokens"))
    )


def experiment_steps_by_run(*, experiment_id: int) -> dict[int, int]:
    """Uncached model steps each run of the experiment has spent so far (what its cap counts):
    stored on a finished run, counted from the events of the others."""
    steps = dict(
        Run.objects.filter(experiment_id=experiment_id, status=Run.Status.FINISHED)
        .order_by()
        .values_list("pk", "uncached_steps")
    )
    steps.update(_unfinished_steps(experiment_id=experiment_id))
    return steps


def _unfinished_steps(*, experiment_id: int) -> dict[int, int]:
    """Uncached model steps of the experiment's runs that have not finished, from their events."""
    usages: dict[int, list[dict]] = {}
    rows = RunEvent.objects.filter(
        run__in=Run.objects.filter(experiment_id=experiment_id).exclude(status=Run.Status.FINISHED),
        data__has_key="usage",
    ).values_list("run_id", "data__usage")
    for run_id, usage in rows:
        usages.setdefault(run_id, []).append(usage)
    return {run_id: uncached_steps(items) for run_id, items in usages.items()}


CALIBRATION_SETTLED = (Calibration.Status.FINISHED, Calibration.Status.FAILED)


def experiment_get(*, name: str, owner: AbstractBaseUser | None = None) -> Experiment:
    """The experiment of this name (of this owner, when given); DoesNotExist or
    MultipleObjectsReturned say which names there are."""
    experiments = Experiment.objects.filter(name=name)
    if owner is not None:
        experiments = experiments.filter(owner=owner)
    return experiments.select_related("owner").get()


def experiments_for_owner(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Experiment]:
    if not user.is_authenticated:
        return Experiment.objects.none()
    return Experiment.objects.filter(owner=user).order_by("-created_at")


def experiment_for_owner(*, user: AbstractBaseUser | AnonymousUser, experiment_id: int) -> Experiment | None:
    if not user.is_authenticated:
        return None
    return Experiment.objects.filter(pk=experiment_id, owner=user).first()


def experiment_progress(*, experiment: Experiment) -> dict:
    """Runs done, failed, in flight and remaining, model steps spent, and an ETA: the mean wall
    time of the finished runs, times the runs still to play, over the runs in flight (at least 1);
    the calibration cells with their counts, and the bar that counts runs and cells together."""
    # One aggregate (each run that settles pushes this to the page): counts, mean wall time, and
    # the steps that finished runs stored; the runs not finished count theirs from their events.
    finished = Q(status=Run.Status.FINISHED)
    row = experiment.runs.order_by().aggregate(
        done=Count("pk", filter=finished),
        failed=Count("pk", filter=Q(status=Run.Status.FAILED)),
        running=Count("pk", filter=Q(status__in=[Run.Status.QUEUED, Run.Status.RUNNING])),
        mean=Avg(
            F("finished_at") - F("started_at"),
            output_field=DurationField(),
            filter=finished & Q(started_at__isnull=False),
        ),
        finished_steps=Sum("uncached_steps", filter=finished),
    )
    total = experiment.estimate.get("runs", 0)
    done, failed, running, mean = row["done"], row["failed"], row["running"], row["mean"]
    remaining = total - done - failed - running
    calibrations, cells_played = _calibrations_progress(experiment)
    eta = None
    if mean is not None and experiment.status == Experiment.Status.RUNNING:
        eta = round(mean.total_seconds() * (remaining + running) / max(1, running), 1)
    return {
        "experiment": experiment.pk,
        "name": experiment.name,
        "status": experiment.status,
        "total": total,
        "done": done,
        "failed": failed,
        "running": running,
        "remaining": remaining,
        "steps_spent": (row["finished_steps"] or 0) + sum(_unfinished_steps(experiment_id=experiment.pk).values()),
        "steps_estimate": experiment.estimate.get("steps", 0),
        "call_cap": experiment.call_cap,
        "eta_s": eta,
        "calibrations": calibrations,
        "bar": {"max": total + calibrations["total"], "value": round(done + failed + cells_played, 3)},
    }


def _calibrations_progress(experiment: Experiment) -> tuple[dict, float]:
    """The experiment's calibration cells (calibration.selectors.experiment_calibration_cells) with
    their counts, and how much of them is played in the bar's unit; an experiment without a
    calibration grid asks nothing (the runs' hot path reads this progress too)."""
    if not (experiment.spec or {}).get("calibration"):
        return {"total": 0, "settled": 0, "scored": 0, "scores": 0, "cells": []}, 0
    cells = experiment_calibration_cells(experiment_id=experiment.pk)
    settled = sum(cell["status"] in CALIBRATION_SETTLED for cell in cells)
    # The bar weighs each calibration cell as one run (a cell's pairs and a run's model steps are
    # not the same work, so neither is counted in the other's unit) and fills a cell's share as its
    # chunks of scores are stored, so a long calibration moves the bar as it goes.
    played = settled + sum(
        cell["scored"] / cell["total"] for cell in cells if cell["status"] not in CALIBRATION_SETTLED and cell["total"]
    )
    counts = {
        # Cells are created when the experiment starts: until then the estimate counts them.
        "total": max(len(cells), experiment.estimate.get("calibrations", 0)),
        "settled": settled,
        "scored": sum(cell["scored"] for cell in cells),
        "scores": sum(cell["total"] for cell in cells),
        "cells": cells,
    }
    return counts, played


def experiment_results(*, experiment: Experiment) -> list[dict]:
    """One row per run: its cell, status, and outcome (scores, weighted total, every goal)."""
    rows = []
    for run in experiment.runs.order_by("pk"):
        outcome = run.outcome or {}
        rows.append(
            {
                "cell": run.cell,
                "run": run.pk,
                "status": run.status,
                "record": run.record_id,
                "task": run.task_id,
                "groups": run.groups,
                "goal": run.goal,
                "strategy": run.strategy,
                "model": run.model,
                "judge": run.judge,
                "seed": run.seed,
                "scores": outcome.get("scores"),
                "weighted_total": outcome.get("weighted_total"),
                "goals": outcome.get("goals"),
                "error": run.error,
            }
        )
    return rows
