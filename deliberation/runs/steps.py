"""One run's steps: what a run's task does with it (runs.advance calls run_play), by name.

1. claim (`_run_claim`): count the attempt; a duplicate task, a settled or paused run, or a run
   out of attempts goes no further; else one conditional update takes the run.
2. replay (`_run_replay`): the events an earlier attempt stored, and the control event that says
   why this attempt continues them (resumed after a pause, or after a lost worker).
3. parts (`_run_parts`): the strategy, its context with the run's model clients (which report their
   calls to the run's RunEventWriter: engine.models.CallObserver) and the engine's scenario.
4. steps (`_run_steps`): the strategy's new events go through the RunEventWriter; the outcome
   finishes the run (runs.services.run_finish).
5. the end of an attempt that did not finish: halted (a pause or stop that a write read: the
   control event) or failed (`_run_failed`: the error event, then failed for good or queued for a
   retry, RunRetry).

The database is the truth: sequence numbers are allocated only here, so a retried task finds the
events it already wrote and continues after the last one (steps it had not written yet are played
again, from the cache). Nothing here is reached by the model clients except through the observer
the run hands them.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from deliberation.engine.events import Event
from deliberation.engine.models import ModelError
from deliberation.engine.scenario import Scenario
from deliberation.engine.strategies import RunContext, Strategy, strategy_named
from deliberation.engine.strategies.base import model_params_of
from deliberation.errors import Invalid
from deliberation.records.models import RecordSet
from deliberation.records.selectors import example_pool
from deliberation.registry.clients import drafting_client, judge_for, judge_takes_model
from deliberation.registry.selectors import ModelEndpoint, ModelRefused, model_endpoint
from deliberation.runs.completion_store import completions_keep
from deliberation.runs.models import Run, RunEvent
from deliberation.runs.selectors import TaskReads
from deliberation.runs.services import (
    TERMINAL,
    RunRetry,
    event_append_next,
    events_store,
    run_fail,
    run_finish,
    run_queue,
    run_resumed_after_worker_lost,
)
from deliberation.scenarios.services import engine_scenario

logger = logging.getLogger(__name__)

HALTING = (Run.Status.PAUSED, Run.Status.STOPPED)
# A step that calls the model many times before its event (amulet: a call per token) has its cache
# rows stored every this many calls, so a crash in the middle loses no more of them.
COMPLETIONS_HELD = 64


class RunStartError(Invalid, ValueError):
    """A run cannot start: its model, judge or scenario cannot be built. The run fails at once."""


class RunHalted(Exception):
    """A write of the run's events read it paused or stopped: the attempt ends there."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class RunEventWriter:
    """A run's new events on their way to the log, and the observer of its model calls.

    Events are written when a step took a model call (after it, so that a viewer sees each step as
    it happens), before a call the cache cannot answer, and at the end (with the finish: runs.services.run_finish); the steps in between (cache
    hits, steps without a model) take no time and are written together: a cached re-run makes one
    write instead of one per event. Each write reads the run's status in the same statement, so a
    pause or a stop takes effect there, as the run's next step (RunHalted).
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.pending: list[Event] = []
        self.completions: list[dict] = []  # the cache rows of calls made since the last write
        self.called = False  # a model call since the last write: the event it made is written at once
        self.retries_to: Callable[[dict], None] | None = None  # the run's context (each step's usage)

    def add(self, event: Event) -> None:
        """Hold the event; write what is held when it followed a model call (halting if the run
        was paused or stopped meanwhile). The run's last events go with its finish (_run_steps)."""
        self.pending.append(event)
        if self.called:
            self.called = False
            self.write(halt=True)

    def write(self, *, halt: bool = False) -> None:
        if not self.pending:
            if len(self.completions) >= COMPLETIONS_HELD:
                self.keep_completions()
            return
        completions, self.completions = self.completions, []
        status = events_store(run=self.run, events=self.pending, completions=completions)
        self.pending = []
        if halt and status in HALTING:
            raise RunHalted(status)

    def keep_completions(self) -> None:
        """Store the cache rows held without an event to go with (a step that failed, a run that
        ends): a step's calls are never asked again of the model once it is played."""
        completions, self.completions = self.completions, []
        completions_keep(completions)

    # engine.models.CallObserver: what the run's model clients report.
    def before_uncached_call(self) -> None:
        self.called = True
        self.write(halt=True)

    def completion_made(self, completion: dict) -> None:
        self.completions.append(completion)  # written with the event the step makes (write)

    def retried(self, retry: dict) -> None:
        if self.retries_to is not None:
            self.retries_to(retry)


@dataclass(frozen=True)
class Played:
    """How an attempt ended, for the task (runs.advance)."""

    finished: bool = False  # the run finished in this attempt (the task may play the next run)
    queue: str = ""  # the run's queue
    experiment_id: int | None = None


def run_play(*, run_id: int, created: Run | None = None, reads: TaskReads | None = None) -> Played:
    """Play one attempt of the run: from its last stored event to its outcome, a pause, a stop or a
    failure. `created`: the run as this task's experiment top-up just created it (nothing to read
    again: it has no events and is queued); `reads`: registry reads shared by the task's runs."""
    run = _run_claim(run_id=run_id, created=created)
    if run is None:
        return Played()
    stored = _run_replay(run)
    writer = RunEventWriter(run)
    try:
        strategy, context, scenario = _run_parts(run, stored, writer=writer, reads=reads or TaskReads())
    except Exception as error:  # noqa: BLE001 - nothing was played: no retry can mend it
        logger.warning("run %s: cannot start: %s", run.pk, error)
        run_fail(run=run, reason=str(error))
        return Played()
    writer.retries_to = context.retried
    try:
        finished = _run_steps(
            run=run, strategy=strategy, context=context, scenario=scenario, stored=stored, writer=writer
        )
    except RunHalted as halted:
        action = "paused" if halted.status == Run.Status.PAUSED else "stopped"
        event_append_next(run=run, type="control", data={"action": action, "by": run.owner.get_username()})
        return Played()
    except Exception as error:  # a model that keeps failing, or a bug: both end the run visibly
        _run_failed(run=run, error=error, writer=writer)
        return Played()
    return Played(
        finished=finished,
        queue=run_queue(run.model),
        experiment_id=run.experiment_id,
    )


def _run_claim(*, run_id: int, created: Run | None) -> Run | None:
    """The run for this attempt, now RUNNING with its attempt counted and its heartbeat stamped;
    None when this task is not to play it (counted all the same: every task attempt counts)."""
    if created is not None:
        run = created
        run.has_events = False
        if run.status == Run.Status.RUNNING:
            return run  # created claimed by its top-up for this task (runs.services.run_create)
    else:
        run = (
            Run.objects.select_related("record__record_set__current_version", "task__topic", "owner")
            .annotate(has_events=Exists(RunEvent.objects.filter(run=OuterRef("pk"))))
            .get(pk=run_id)
        )
    alive_since = timezone.now() - timedelta(seconds=settings.HEMICYCLE_RUN_LOST_S)
    if run.status == Run.Status.RUNNING and run.heartbeat_at is not None and run.heartbeat_at >= alive_since:
        return None  # another task advances it and its worker beats (runs.recovery): this one is a duplicate
    run.attempts += 1
    max_attempts = settings.HEMICYCLE_RUN_MAX_ATTEMPTS
    if run.status in TERMINAL or run.status == Run.Status.PAUSED or run.attempts > max_attempts:
        Run.objects.filter(pk=run_id).update(attempts=F("attempts") + 1)
        if run.status not in TERMINAL and run.status != Run.Status.PAUSED:
            run_fail(run=run, reason=f"gave up after {max_attempts} attempts (worker lost or model failing)")
        return None
    # Conditional, so that a stop that lands first wins and a stop that lands later sees RUNNING
    # and leaves its event to this task; and so that of two tasks of a run only one takes it (a
    # running run only once its heartbeat is older than HEMICYCLE_RUN_LOST_S: its worker is lost).
    claimable = Q(status=Run.Status.QUEUED) | Q(status=Run.Status.RUNNING) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=alive_since)
    )
    if not Run.objects.filter(claimable, pk=run.pk).update(
        status=Run.Status.RUNNING,
        started_at=run.started_at or timezone.now(),
        attempts=F("attempts") + 1,
        heartbeat_at=timezone.now(),  # alive from here on (runs.recovery)
    ):
        Run.objects.filter(pk=run_id).exclude(status=Run.Status.RUNNING).update(attempts=F("attempts") + 1)
        return None
    return run


def _stored_events(run: Run) -> list[Event]:
    return [
        {"seq": seq, "type": type_, "data": data}
        for seq, type_, data in run.events.order_by("seq").values_list("seq", "type", "data")
    ]


def _run_replay(run: Run) -> list[Event]:
    """The events earlier attempts stored, after the control event that says why this one goes on
    (the status is as the claim read it: RUNNING means the task before this one died with its worker)."""
    stored = _stored_events(run) if run.has_events else []
    if stored and stored[-1]["type"] == "control" and stored[-1]["data"]["action"] == "paused":
        event_append_next(run=run, type="control", data={"action": "resumed", "by": run.owner.get_username()})
        return _stored_events(run)
    if stored and run.status == Run.Status.RUNNING:
        run_resumed_after_worker_lost(run=run, attempt=run.attempts)
        return _stored_events(run)
    return stored


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


def _run_parts(
    run: Run, stored: list[Event], *, writer: RunEventWriter, reads: TaskReads
) -> tuple[Strategy, RunContext, Scenario]:
    """The strategy, the engine's context (its clients report their calls to `writer`) and scenario
    of a run. A model the registry no longer offers, an unknown backend, a missing key or a scenario
    the engine refuses raises here, before any step, with a message that names the cause."""
    strategy = strategy_named(run.strategy)
    allow_raw = run.owner.is_staff  # the CLI lets staff run backend strings the registry lacks

    def endpoints(*, name: str, allow_raw: bool) -> ModelEndpoint:
        return reads.get(("model_endpoint", name, allow_raw), lambda: model_endpoint(name=name, allow_raw=allow_raw))

    reach = {"allow_raw": allow_raw, "observer": writer, "endpoints": endpoints}
    model = None
    if strategy.needs_model:
        try:
            model = drafting_client(run.model, **reach)
        except Exception as error:
            raise RunStartError(f"drafting model {run.model}: {_cause(error)}") from error
    models = {}
    for param in model_params_of(strategy):  # further models the strategy names (advisor_model)
        name = str(run.params.get(param) or "")
        if name:
            try:
                models[param] = drafting_client(name, **reach)
            except Exception as error:
                raise RunStartError(f"{param} {name}: {_cause(error)}") from error
    judge_model = run.judge_model or run.model
    try:
        judge = judge_for(run.judge, model=judge_model, **reach)
    except Exception as error:
        what = f"judge model {judge_model}" if judge_takes_model(run.judge) else f"judge {run.judge}"
        raise RunStartError(f"{what}: {_cause(error)}") from error
    context = RunContext(
        model=model,
        judge=judge,
        seed=run.seed,
        params=run.params,
        examples=_example_pool(run.record.record_set) if run.strategy == "one-shot" else (),
        recorded=stored,
        models=models,
    )
    scenario = engine_scenario(
        record=run.record,
        groups=run.groups,
        seats=run.seats,
        goal=run.goal,
        veto_group=run.veto_group,
        topic=run.task.topic.name if run.task_id else None,
    )
    return strategy, context, scenario


def _cause(error: Exception) -> str:
    message = error.message if isinstance(error, ModelRefused) else str(error)
    return message if isinstance(error, (ModelError, ModelRefused)) else f"{type(error).__name__}: {message}"


def _run_steps(
    *,
    run: Run,
    strategy: Strategy,
    context: RunContext,
    scenario: Scenario,
    stored: list[Event],
    writer: RunEventWriter,
) -> bool:
    """The strategy's events after the stored ones, through the writer; True when the outcome came
    and the run finished."""
    stored_seqs = {event["seq"] for event in stored}
    events = list(stored)
    for event in strategy.run(scenario, context):
        if event["seq"] in stored_seqs:
            continue
        events.append(event)
        if event["type"] == "outcome":  # written with the finish (one statement on PostgreSQL)
            writer.keep_completions()  # none, unless a call made no event of its own
            unwritten, writer.pending = [*writer.pending, event], []
            real = {group.code: group.real_choice for group in scenario.groups}
            run_finish(run=run, events=events, real=real, unwritten=unwritten)
            return True
        writer.add(event)
    writer.write()
    writer.keep_completions()
    return False


def _run_failed(*, run: Run, error: Exception, writer: RunEventWriter) -> None:
    """An attempt that raised: the error event follows the steps written before it; the last
    attempt fails the run, an earlier one queues it again and asks the task to retry (RunRetry)."""
    if isinstance(error, ModelError):
        message = str(error)
    else:
        logger.exception("run %s: step failed", run.pk, exc_info=error)
        message = f"internal error: {type(error).__name__}: {error}"
    writer.write()
    writer.keep_completions()  # the calls of the step that failed: its retry finds them in the cache
    final = run.attempts >= settings.HEMICYCLE_RUN_MAX_ATTEMPTS
    event_append_next(run=run, type="error", data={"message": message, "attempt": run.attempts, "final": final})
    if final:
        Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED, error=message, finished_at=timezone.now())
        return
    Run.objects.filter(pk=run.pk).update(status=Run.Status.QUEUED, heartbeat_at=None)  # the retry's receiver stamps it
    raise RunRetry(countdown=settings.HEMICYCLE_RUN_RETRY_DELAY_S * run.attempts) from error
