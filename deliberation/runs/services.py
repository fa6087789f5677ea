"""Runs: create, pause, resume, stop, finish, fail; and the event log.

The database is the truth: events are written (one statement for each write: an event after a
model call, or the steps the cache answered together), then sent to the run's Channels group on
commit. Playing a run, step by step, is runs.steps'; its task is runs.advance's.
"""

import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import partial

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from deliberation.engine.events import Event, event_validate
from deliberation.engine.strategies.base import usage_totals
from deliberation.errors import Conflict, Forbidden
from deliberation.live.fanout import broadcast_events
from deliberation.records.models import BenchmarkTask, RecordSetVersion
from deliberation.records.selectors import record_version_for_run
from deliberation.runs.budgets import budget_check, run_steps_estimate
from deliberation.runs.completion_store import completions_insert
from deliberation.runs.group_scores import SCORE_CONFLICT, SCORE_UPDATE_FIELDS, group_score_objects
from deliberation.runs.hotpath import insert_all_or_ignore, insert_or_ignore, insert_sql, update_sql, write_together
from deliberation.runs.models import CLASSROOM_STRATEGY, CachedCompletion, Experiment, Run, RunEvent
from deliberation.runs.selectors import uncached_steps
from deliberation.scenarios.models import SavedScenario
from deliberation.scenarios.services import ScenarioConfig
from worker.enqueue import model_queue, task_enqueue

TERMINAL = {Run.Status.FINISHED, Run.Status.FAILED, Run.Status.STOPPED}


class RunRetry(Exception):
    """The attempt failed in a way worth retrying (a model error); the task retries later."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown} s")
        self.countdown = countdown


class RunControlError(Conflict, ValueError):
    """The run is not in a state that allows this action."""


def run_queue(model: str) -> str:
    """The queue of a run on `model` (worker.enqueue.model_queue: calibrations go the same way)."""
    return model_queue(model)


def run_enqueue(run_id: int) -> None:
    """Put the run's task on its model's queue (call it after commit: the worker must see the run)."""
    with _created_models_lock:
        model = _created_models.pop(run_id, None)
    model = model or Run.objects.values_list("model", flat=True).get(pk=run_id)
    task_enqueue("deliberation.runs.tasks.run_advance_task", run_id=run_id, queue=run_queue(model))


# The model of each run this process created and has not enqueued yet: run_create knows it, so the
# enqueue after commit needs no query (bounded: entries whose enqueue never came are dropped).
_created_models: dict[int, str] = {}
_created_models_lock = threading.Lock()
CREATED_MODELS_KEPT = 1000


def run_create(
    *,
    owner: AbstractBaseUser,
    config: ScenarioConfig,
    visibility: str = Run.Visibility.PRIVATE,
    scenario: SavedScenario | None = None,
    experiment: Experiment | None = None,
    cell: str = "",
    task: BenchmarkTask | None = None,
    enqueue: bool = True,
    record_version: RecordSetVersion | None = None,
    claimed: bool = False,
) -> Run:
    """Create the run and enqueue it after commit (enqueue=False: the caller plays it itself, as a
    task that played a run from the cache goes on with the next one its experiment starts);
    BudgetExceeded (before anything is written) when a run outside an experiment does not fit its
    owner's daily budget (an experiment's runs are held to it by the experiment's top-up).
    record_version: the record's set version as the caller read it (an experiment's top-up reads
    each record's once); None: read here. claimed (with enqueue=False): the caller plays it at
    once, so it is created as its first attempt takes it (running, its heartbeat stamped), which
    spares runs.steps' claim its update; a lost worker leaves it to runs.recovery as any run."""
    fields = config.model_fields()
    if claimed:
        now = timezone.now()
        fields.update(status=Run.Status.RUNNING, attempts=1, started_at=now, heartbeat_at=now)
    elif not enqueue:  # queued, held by the caller's worker until it takes it (runs.recovery)
        fields["heartbeat_at"] = timezone.now()
    # An experiment's top-up creates runs in its own transaction. A run alone: the budget check and
    # the run are one transaction (the budget stays locked until the run is committed), in a
    # savepoint so that a refusal leaves a caller's transaction usable.
    with transaction.atomic(savepoint=experiment is None):
        if experiment is None:
            budget_check(
                user=owner,
                steps=run_steps_estimate(
                    strategy=config.strategy,
                    party_count=len(config.groups),
                    judge=config.judge,
                    params=dict(config.params),
                ),
            )
        version = record_version or record_version_for_run(record=fields["record"])
        run = Run.objects.create(
            owner=owner,
            scenario=scenario,
            visibility=visibility,
            record_set_version=version,
            experiment=experiment,
            cell=cell,
            task=task,
            **fields,
        )
        if enqueue:  # the worker must never see an uncommitted run: enqueue the id only, after commit
            with _created_models_lock:
                while len(_created_models) >= CREATED_MODELS_KEPT:
                    del _created_models[next(iter(_created_models))]
                _created_models[run.pk] = run.model
            transaction.on_commit(partial(run_enqueue, run.pk))
    return run


def event_append(*, run: Run, event: Event) -> RunEvent:
    """Store one event (idempotent by sequence number), then broadcast it once committed."""
    return _event_store(run=run, event=event)[0]


def _event_store(*, run: Run, event: Event, completions: Sequence[dict] = ()) -> tuple[RunEvent, str | None]:
    """event_append's body; also returns the run's status as read by the same statement (None
    when the event was stored before: a replay), so that a step costs one round trip.
    EventInvalid (nothing written) when the event does not fit its type (engine/events.py).
    `completions`: new completion cache rows, written by the same statement (events_store)."""
    event_validate(event)
    stored = RunEvent(run=run, seq=event["seq"], type=event["type"], data=event["data"])
    run_table = Run._meta.db_table
    row = insert_or_ignore(
        stored,
        conflict=["run", "seq"],
        returning=f"(SELECT status FROM {run_table} WHERE id = %s)",
        returning_params=[run.pk],
        before=[completions_insert(completions)] if completions else (),
    )
    if row is not None:
        transaction.on_commit(partial(broadcast_events, run_id=run.pk, messages=[stored.as_message()]))
        return stored, row[1]
    stored = RunEvent.objects.get(run=run, seq=event["seq"])
    if stored.type != event["type"]:
        raise IntegrityError(f"run {run.pk} event {event['seq']} is already a {stored.type}")
    return stored, None


def events_store(*, run: Run, events: list[Event], completions: Sequence[dict] = ()) -> str:
    """Store a run's next events in one statement (idempotent by sequence number, as
    event_append), broadcast those it wrote once committed, and return the run's status as the
    same statement read it (runs.steps' writer: a pause or a stop takes effect there).
    `completions`: the completion cache rows of the model calls those events came from
    (engine.models.CallObserver.completion_made), stored by the same statement on PostgreSQL
    (one round trip per model call instead of two), just before it elsewhere."""
    if len(events) == 1:
        status = _event_store(run=run, event=events[0], completions=completions)[1]
        return status if status is not None else _status(run.pk)
    objs = _event_objects(run=run, events=events)
    rows = insert_all_or_ignore(
        objs,
        conflict=["run", "seq"],
        returning=f"seq, (SELECT status FROM {Run._meta.db_table} WHERE id = %s)",
        returning_params=[run.pk],
        before=[completions_insert(completions)] if completions else (),
    )
    _events_written(run=run, objs=objs, written={seq for _, seq, _ in rows})
    return rows[0][2] if rows else _status(run.pk)


def _event_objects(*, run: Run, events: Sequence[Event]) -> list[RunEvent]:
    """The rows of the run's events, each validated first (EventInvalid: nothing is written)."""
    for event in events:
        event_validate(event)
    return [RunEvent(run=run, seq=event["seq"], type=event["type"], data=event["data"]) for event in events]


def _events_written(*, run: Run, objs: Sequence[RunEvent], written: set[int]) -> None:
    """After a write of `objs`: those not `written` were stored before (a replay) and must be the
    same events; the written ones go to the run's viewers once committed, as one layer message (a
    cached re-run: all of them)."""
    for obj in objs:
        if obj.seq in written:
            continue
        stored = RunEvent.objects.get(run=run, seq=obj.seq)
        if stored.type != obj.type:
            raise IntegrityError(f"run {run.pk} event {obj.seq} is already a {stored.type}")
    messages = [obj.as_message() for obj in objs if obj.seq in written]
    if messages:
        transaction.on_commit(partial(broadcast_events, run_id=run.pk, messages=messages))


def event_append_next(*, run: Run, type: str, data: dict) -> RunEvent:
    """Append an event of the services (control, error) after the run's last stored event."""
    last = run.events.order_by("-seq").values_list("seq", flat=True).first() or 0
    return event_append(run=run, event={"seq": last + 1, "type": type, "data": data})


# The reason of the "resumed" control event of a run whose worker was lost (runs.recovery).
WORKER_LOST = "worker_lost"


def run_resumed_after_worker_lost(*, run: Run, attempt: int) -> None:
    """The event the run page shows: "resuming after a worker was lost"."""
    event_append_next(run=run, type="control", data={"action": "resumed", "reason": WORKER_LOST, "attempt": attempt})


def _status(run_id: int) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run_id)


def outcome_goal_value(outcome: dict, goal: str) -> float | None:
    """The run's own goal from its outcome: 1.0 / 0.0 for a pass goal, the score for a score goal."""
    value = (outcome.get("goals") or {}).get(goal)
    return None if value is None else float(value)


def run_finish(
    *, run: Run, events: list[Event], real: Mapping[str, int] | None = None, unwritten: Sequence[Event] = ()
) -> None:
    """The run's outcome and totals, with its per-group rows (`real`: the groups' real votes, as
    the run's scenario holds them; None: read) and `unwritten`, its last events not stored yet:
    one statement on PostgreSQL (a cached run's whole transcript, its scores and its finish), the
    rows before the status elsewhere (runs.group_scores says why)."""
    totals = usage_totals(events)
    outcome = events[-1]["data"]
    objs = _event_objects(run=run, events=unwritten)
    scores = group_score_objects(run=run, outcome=outcome, real=real, events=events)
    finish = {
        "status": Run.Status.FINISHED,
        "goal_value": outcome_goal_value(outcome, run.goal),
        "largest_share": max(run.seats.values()) if run.seats else None,
        "uncached_steps": uncached_steps(event["data"].get("usage") for event in events),
        "outcome": outcome,
        "prompt_tokens": int(totals["prompt_tokens"]),
        "completion_tokens": int(totals["completion_tokens"]),
        "model_seconds": totals["seconds"],
        "finished_at": timezone.now(),
    }
    written = write_together(
        model=Run,
        first=insert_sql(objs, conflict=["run", "seq"]) if objs else None,
        returns="seq",
        then=[insert_sql(scores, conflict=SCORE_CONFLICT, update=SCORE_UPDATE_FIELDS)] if scores else [],
        last=update_sql(Run, pk=run.pk, values=finish),
    )
    _events_written(run=run, objs=objs, written=set(written))


def run_fail(*, run: Run, reason: str) -> None:
    event_append_next(run=run, type="error", data={"message": reason, "attempt": run.attempts, "final": True})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, error=reason, finished_at=timezone.now())


def _require_owner(run: Run, user: AbstractBaseUser) -> None:
    if run.owner_id != user.pk:
        raise Forbidden("only the run's owner can control it")
    if run.strategy == CLASSROOM_STRATEGY:
        raise RunControlError("a classroom run is controlled from its session's teacher console")


def run_pause(*, run: Run, user: AbstractBaseUser) -> None:
    _require_owner(run, user)
    if (
        Run.objects.filter(pk=run.pk, status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).update(
            status=Run.Status.PAUSED
        )
        == 0
    ):
        raise RunControlError(f"a {run.status} run cannot be paused")


def run_resume(*, run: Run, user: AbstractBaseUser) -> None:
    _require_owner(run, user)
    with transaction.atomic():
        resumed = Run.objects.filter(pk=run.pk, status=Run.Status.PAUSED).update(
            status=Run.Status.QUEUED,
            attempts=0,
            heartbeat_at=None,  # queued: no holder yet (runs.recovery)
        )
        if resumed == 0:
            raise RunControlError(f"a {run.status} run cannot be resumed")
        transaction.on_commit(partial(run_enqueue, run.pk))


def run_stop(*, run: Run, user: AbstractBaseUser) -> None:
    _require_owner(run, user)
    with transaction.atomic():
        previous = Run.objects.select_for_update().values_list("status", flat=True).get(pk=run.pk)
        if previous in TERMINAL:
            raise RunControlError(f"a {previous} run cannot be stopped")
        Run.objects.filter(pk=run.pk).update(status=Run.Status.STOPPED, finished_at=timezone.now())
    if previous in {Run.Status.PAUSED, Run.Status.QUEUED}:
        # No task is advancing a paused or queued run (one that starts now sees STOPPED and
        # returns), so the stop is written here.
        event_append_next(run=run, type="control", data={"action": "stopped", "by": user.get_username()})


@transaction.atomic
def run_reseed(*, run: Run, user: AbstractBaseUser, seed: int) -> Run:
    """The same scenario (record, groups, resolved seats, strategy, models) played again with
    another seed: a cached replay's way to new model answers. Outside any experiment."""
    _require_owner(run, user)
    if seed == run.seed:
        raise RunControlError("the new seed must differ from the run's own")
    fields = {**run.scenario_fields(), "seed": seed}
    fields["groups"] = tuple(fields["groups"])
    return run_create(
        owner=user,
        config=ScenarioConfig(**fields),
        visibility=run.visibility,
        scenario=run.scenario,
    )


def runs_requeue_stuck(*, idle_seconds: float) -> list[int]:
    """Enqueue again every queued or running run with no event for `idle_seconds`.

    A second task on a live run is harmless (events are idempotent by sequence number), and the
    run's attempt count still bounds how often a run is tried.
    """
    cutoff = timezone.now() - timedelta(seconds=idle_seconds)
    stuck = (
        Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING])
        .exclude(strategy=CLASSROOM_STRATEGY)  # the teacher and the students move those, not a task
        .annotate(last_activity=Coalesce(Max("events__at"), "created_at"))
        .filter(last_activity__lte=cutoff)
        .values_list("pk", flat=True)
    )
    run_ids = list(stuck)
    for run_id in run_ids:
        run_enqueue(run_id)
    return run_ids


def completions_expire(*, older_than_days: float) -> int:
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = CachedCompletion.objects.filter(created_at__lt=cutoff).delete()
    return deleted
