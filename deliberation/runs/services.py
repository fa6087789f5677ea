"""Runs: start, advance (the Celery task's body), pause, resume, stop; and the event log.

The database is the truth: events are written (one statement for each write: an event after a
model call, or the steps the cache answered together), then sent to the run's Channels group on
commit. Sequence numbers are allocated only by the task that advances the run, so a retried task
finds the events it already wrote and continues after the last one (steps it had not written yet
are played again, from the cache).
"""

import logging
import threading
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from deliberation.engine.events import Event, event_validate
from deliberation.engine.models import ModelError, retry_listener
from deliberation.engine.strategies import RunContext, strategy_named
from deliberation.engine.strategies.base import model_params_of, usage_totals
from deliberation.errors import Conflict, Forbidden, Invalid
from deliberation.live.fanout import broadcast_events
from deliberation.records.models import BenchmarkTask, RecordSet
from deliberation.records.selectors import example_pool, record_version_for_run
from deliberation.registry.selectors import ModelRefused
from deliberation.runs.budgets import budget_check, run_steps_estimate
from deliberation.runs.clients import drafting_client, judge_for, judge_uses_model
from deliberation.runs.group_scores import group_scores_write
from deliberation.runs.hotpath import before_uncached_call, insert_all_or_ignore, insert_or_ignore
from deliberation.runs.models import CLASSROOM_STRATEGY, CachedCompletion, Experiment, Run, RunEvent
from deliberation.runs.selectors import uncached_steps
from deliberation.scenarios.models import SavedScenario
from deliberation.scenarios.services import ScenarioConfig, engine_scenario
from worker.enqueue import task_enqueue

logger = logging.getLogger(__name__)

TERMINAL = {Run.Status.FINISHED, Run.Status.FAILED, Run.Status.STOPPED}


class RunRetry(Exception):
    """The attempt failed in a way worth retrying (a model error); the task retries later."""

    def __init__(self, countdown: float) -> None:
        super().__init__(f"retry in {countdown} s")
        self.countdown = countdown


class RunControlError(Conflict, ValueError):
    """The run is not in a state that allows this action."""


class RunStartError(Invalid, ValueError):
    """A run cannot start: its model, judge or scenario cannot be built. The run fails at once."""


def run_queue(model: str) -> str:
    """Runs on an in-process model go where that model is loaded (the GPU hosts' queue); runs on
    a model server or hosted API only orchestrate, on the CPU queue."""
    return settings.HEMICYCLE_LOCAL_MODEL_QUEUE if model.startswith("local:") else "runs"


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
) -> Run:
    """Create the run and enqueue it after commit (enqueue=False: the caller plays it itself, as a
    task that played a run from the cache goes on with the next one its experiment starts);
    BudgetExceeded (before anything is written) when a run outside an experiment does not fit its
    owner's daily budget (an experiment's runs are held to it by the experiment's top-up)."""
    if experiment is None:
        budget_check(user=owner, steps=run_steps_estimate(
            strategy=config.strategy, party_count=len(config.groups), judge=config.judge, params=dict(config.params)))
    fields = config.model_fields()
    with transaction.atomic(savepoint=False):  # an experiment's top-up creates runs in its own transaction
        version = record_version_for_run(record=fields["record"])
        run = Run.objects.create(
            owner=owner, scenario=scenario, visibility=visibility, record_set_version=version,
            experiment=experiment, cell=cell, task=task, **fields,
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


def _event_store(*, run: Run, event: Event) -> tuple[RunEvent, str | None]:
    """event_append's body; also returns the run's status as read by the same statement (None
    when the event was stored before: a replay), so that a step costs one round trip.
    EventInvalid (nothing written) when the event does not fit its type (engine/events.py)."""
    event_validate(event)
    stored = RunEvent(run=run, seq=event["seq"], type=event["type"], data=event["data"])
    run_table = Run._meta.db_table
    row = insert_or_ignore(
        stored, conflict=["run", "seq"],
        returning=f"(SELECT status FROM {run_table} WHERE id = %s)", returning_params=[run.pk],
    )
    if row is not None:
        transaction.on_commit(partial(broadcast_events, run_id=run.pk, messages=[stored.as_message()]))
        return stored, row[1]
    stored = RunEvent.objects.get(run=run, seq=event["seq"])
    if stored.type != event["type"]:
        raise IntegrityError(f"run {run.pk} event {event['seq']} is already a {stored.type}")
    return stored, None


def _events_store(*, run: Run, events: list[Event]) -> str:
    """Store a run's next events in one statement (idempotent by sequence number, as
    event_append), broadcast those it wrote once committed, and return the run's status as the
    same statement read it."""
    if len(events) == 1:
        status = _event_store(run=run, event=events[0])[1]
        return status if status is not None else _status(run.pk)
    for event in events:
        event_validate(event)
    objs = [RunEvent(run=run, seq=event["seq"], type=event["type"], data=event["data"]) for event in events]
    rows = insert_all_or_ignore(
        objs, conflict=["run", "seq"], returning=f"seq, (SELECT status FROM {Run._meta.db_table} WHERE id = %s)",
        returning_params=[run.pk],
    )
    written = {seq for _, seq, _ in rows}
    for obj in objs:
        if obj.seq in written:
            continue
        stored = RunEvent.objects.get(run=run, seq=obj.seq)  # stored before (a replay): the same event
        if stored.type != obj.type:
            raise IntegrityError(f"run {run.pk} event {obj.seq} is already a {stored.type}")
    # One layer message for the events written together (a cached re-run: all of them).
    messages = [obj.as_message() for obj in objs if obj.seq in written]
    transaction.on_commit(partial(broadcast_events, run_id=run.pk, messages=messages))
    return rows[0][2] if rows else _status(run.pk)


class _Halted(Exception):
    """The run was paused or stopped while it held events (raised from before_uncached_call)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def _stored_events(run: Run) -> list[Event]:
    return [
        {"seq": seq, "type": type_, "data": data}
        for seq, type_, data in run.events.order_by("seq").values_list("seq", "type", "data")
    ]


def event_append_next(*, run: Run, type: str, data: dict) -> RunEvent:
    """Append an event of the services (control, error) after the run's last stored event."""
    last = run.events.order_by("-seq").values_list("seq", flat=True).first() or 0
    return event_append(run=run, event={"seq": last + 1, "type": type, "data": data})


# The reason of the "resumed" control event of a run whose worker was lost (runs.recovery).
WORKER_LOST = "worker_lost"


def run_resumed_after_worker_lost(*, run: Run, attempt: int) -> None:
    """The event the run page shows: "resuming after a worker was lost"."""
    event_append_next(
        run=run, type="control", data={"action": "resumed", "reason": WORKER_LOST, "attempt": attempt}
    )


def _status(run_id: int) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run_id)


def outcome_goal_value(outcome: dict, goal: str) -> float | None:
    """The run's own goal from its outcome: 1.0 / 0.0 for a pass goal, the score for a score goal."""
    value = (outcome.get("goals") or {}).get(goal)
    return None if value is None else float(value)


def run_finish(*, run: Run, events: list[Event]) -> None:
    totals = usage_totals(events)
    outcome = events[-1]["data"]
    group_scores_write(run=run, outcome=outcome)  # the dashboards' per-group rows, before the status (see there)
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.FINISHED,
        goal_value=outcome_goal_value(outcome, run.goal),
        largest_share=max(run.seats.values()) if run.seats else None,
        uncached_steps=uncached_steps(event["data"].get("usage") for event in events),
        outcome=events[-1]["data"],
        prompt_tokens=int(totals["prompt_tokens"]),
        completion_tokens=int(totals["completion_tokens"]),
        model_seconds=totals["seconds"],
        finished_at=timezone.now(),
    )


def run_fail(*, run: Run, reason: str) -> None:
    event_append_next(run=run, type="error", data={"message": reason, "attempt": run.attempts, "final": True})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, error=reason, finished_at=timezone.now())


_example_pools: dict[tuple, tuple] = {}
_example_pools_lock = threading.Lock()
EXAMPLE_POOLS_KEPT = 16


def _example_pool(record_set: RecordSet) -> tuple:
    """The one-shot examples of the set's current version, read once per worker process instead of
    once per run: a version's records never change (they are content-addressed), and an import
    makes a new version, so a new key. created_at tells apart versions whose ids a database reused."""
    version = record_set.current_version
    key = (record_set.pk, record_set.current_version_id, version.created_at if version else None)
    with _example_pools_lock:
        pool = _example_pools.get(key)
    if pool is None:
        pool = tuple(example_pool(record_set=record_set))
        with _example_pools_lock:
            while len(_example_pools) >= EXAMPLE_POOLS_KEPT:
                del _example_pools[next(iter(_example_pools))]
            _example_pools[key] = pool
    return pool


def _run_parts(run: Run, stored: list[Event]):
    """The strategy, the engine's context (its model and judge clients) and scenario of a run.
    A model the registry no longer offers, an unknown backend, a missing key or a scenario the
    engine refuses raises here, before any step, with a message that names the cause."""
    strategy = strategy_named(run.strategy)
    allow_raw = run.owner.is_staff  # the CLI lets staff run backend strings the registry lacks
    model = None
    if strategy.needs_model:
        try:
            model = drafting_client(run.model, allow_raw=allow_raw)
        except Exception as error:
            raise RunStartError(f"drafting model {run.model}: {_cause(error)}") from error
    models = {}
    for param in model_params_of(strategy):  # further models the strategy names (advisor_model)
        name = str(run.params.get(param) or "")
        if name:
            try:
                models[param] = drafting_client(name, allow_raw=allow_raw)
            except Exception as error:
                raise RunStartError(f"{param} {name}: {_cause(error)}") from error
    judge_model = run.judge_model or run.model
    try:
        judge = judge_for(run.judge, model=judge_model, allow_raw=allow_raw)
    except Exception as error:
        what = f"judge model {judge_model}" if judge_uses_model(run.judge) else f"judge {run.judge}"
        raise RunStartError(f"{what}: {_cause(error)}") from error
    context = RunContext(
        model=model,
        judge=judge,
        seed=run.seed,
        params=run.params,
        models=models,
        examples=_example_pool(run.record.record_set) if run.strategy == "one-shot" else (),
        recorded=stored,
    )
    scenario = engine_scenario(
        record=run.record, groups=run.groups, seats=run.seats, goal=run.goal, veto_group=run.veto_group,
        topic=run.task.topic.name if run.task_id else None,
    )
    return strategy, context, scenario


def _cause(error: Exception) -> str:
    message = error.message if isinstance(error, ModelRefused) else str(error)
    return message if isinstance(error, (ModelError, ModelRefused)) else f"{type(error).__name__}: {message}"


def run_play(*, run_id: int) -> str | None:
    """Play the run (run_advance's step, runs.advance); returns its queue when it finished with every model step from the cache."""
    # Every task attempt counts, whatever it finds; the count goes up with the statement that
    # starts the run.
    run = (
        Run.objects.select_related("record__record_set__current_version", "task__topic", "owner")
        .annotate(has_events=Exists(RunEvent.objects.filter(run=OuterRef("pk"))))
        .get(pk=run_id)
    )
    alive_since = timezone.now() - timedelta(seconds=settings.HEMICYCLE_RUN_LOST_S)
    if run.status == Run.Status.RUNNING and run.heartbeat_at is not None and run.heartbeat_at >= alive_since:
        return  # another task advances it and its worker beats (runs.recovery): this one is a duplicate
    run.attempts += 1
    max_attempts = settings.HEMICYCLE_RUN_MAX_ATTEMPTS
    if run.status in TERMINAL or run.status == Run.Status.PAUSED or run.attempts > max_attempts:
        Run.objects.filter(pk=run_id).update(attempts=F("attempts") + 1)
        if run.status not in TERMINAL and run.status != Run.Status.PAUSED:
            run_fail(run=run, reason=f"gave up after {max_attempts} attempts (worker lost or model failing)")
        return
    # Conditional, so that a stop that lands first wins and a stop that lands later sees RUNNING
    # and leaves its event to this task; and so that of two tasks of a run only one takes it (a
    # running run only once its heartbeat is older than HEMICYCLE_RUN_LOST_S: its worker is lost).
    claimable = Q(status=Run.Status.QUEUED) | Q(status=Run.Status.RUNNING) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=alive_since)
    )
    if not Run.objects.filter(claimable, pk=run.pk).update(
        status=Run.Status.RUNNING, started_at=run.started_at or timezone.now(), attempts=F("attempts") + 1,
        heartbeat_at=timezone.now(),  # alive from here on (runs.recovery)
    ):
        Run.objects.filter(pk=run_id).exclude(status=Run.Status.RUNNING).update(attempts=F("attempts") + 1)
        return
    stored = _stored_events(run) if run.has_events else []
    if stored and stored[-1]["type"] == "control" and stored[-1]["data"]["action"] == "paused":
        event_append_next(run=run, type="control", data={"action": "resumed", "by": run.owner.get_username()})
        stored = _stored_events(run)
    elif stored and run.status == Run.Status.RUNNING:  # the task before this one died with its worker
        run_resumed_after_worker_lost(run=run, attempt=run.attempts)
        stored = _stored_events(run)
    stored_seqs = {event["seq"] for event in stored}

    try:
        strategy, context, scenario = _run_parts(run, stored)
    except Exception as error:  # noqa: BLE001 - nothing was played: no retry can mend it
        logger.warning("run %s: cannot start: %s", run.pk, error)
        run_fail(run=run, reason=str(error))
        return
    events = list(stored)
    # Events are written when a step took a model call (after it, so that a viewer sees each step
    # as it happens), before a call the cache cannot answer, and at the end; the steps in between
    # (cache hits, steps without a model) take no time, and are written together: a cached re-run
    # makes one write instead of one per event. Each write reads the run's status: a pause or a
    # stop takes effect there, as the run's next step.
    pending: list[Event] = []
    called = uncached = False

    def write() -> str:
        status = _events_store(run=run, events=pending)
        pending.clear()
        return status

    def before_call() -> None:
        nonlocal called, uncached
        called = uncached = True
        if pending and (status := write()) in (Run.Status.PAUSED, Run.Status.STOPPED):
            raise _Halted(status)

    calls_announced = before_uncached_call.set(before_call)
    retries_heard = retry_listener.set(context.retried)  # into each step's usage
    try:
        for event in strategy.run(scenario, context):
            if event["seq"] in stored_seqs:
                continue
            pending.append(event)
            events.append(event)
            if event["type"] == "outcome":
                write()
                run_finish(run=run, events=events)
                return None if uncached else run_queue(run.model)
            if not called:
                continue
            called = False
            status = write()
            if status in (Run.Status.PAUSED, Run.Status.STOPPED):
                raise _Halted(status)
        if pending:
            write()
    except _Halted as halted:
        action = "paused" if halted.status == Run.Status.PAUSED else "stopped"
        event_append_next(run=run, type="control", data={"action": action, "by": run.owner.get_username()})
        return
    except Exception as error:  # a model that keeps failing, or a bug: both end the run visibly
        if isinstance(error, ModelError):
            message = str(error)
        else:
            logger.exception("run %s: step failed", run.pk)
            message = f"internal error: {type(error).__name__}: {error}"
        if pending:  # the steps before the failure, so that the error follows them
            write()
        final = run.attempts >= max_attempts
        event_append_next(run=run, type="error", data={"message": message, "attempt": run.attempts, "final": final})
        if final:
            Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, error=message, finished_at=timezone.now())
            return
        Run.objects.filter(pk=run.pk).update(status=Run.Status.QUEUED)
        raise RunRetry(countdown=settings.HEMICYCLE_RUN_RETRY_DELAY_S * run.attempts) from error
    finally:
        before_uncached_call.reset(calls_announced)
        retry_listener.reset(retries_heard)


def _require_owner(run: Run, user: AbstractBaseUser) -> None:
    if run.owner_id != user.pk:
        raise Forbidden("only the run's owner can control it")
    if run.strategy == CLASSROOM_STRATEGY:
        raise RunControlError("a classroom run is controlled from its session's teacher console")


def run_pause(*, run: Run, user: AbstractBaseUser) -> None:
    _require_owner(run, user)
    if Run.objects.filter(pk=run.pk, status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).update(status=Run.Status.PAUSED) == 0:
        raise RunControlError(f"a {run.status} run cannot be paused")


def run_resume(*, run: Run, user: AbstractBaseUser) -> None:
    _require_owner(run, user)
    with transaction.atomic():
        if Run.objects.filter(pk=run.pk, status=Run.Status.PAUSED).update(status=Run.Status.QUEUED, attempts=0) == 0:
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
        owner=user, config=ScenarioConfig(**fields), visibility=run.visibility, scenario=run.scenario,
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
