"""Calibrating a judge: score every real adopted resolution for every group that has a real vote,
exactly as a run's vote does (engine.strategies.base.verdict_data, the same prompts and seeds,
so the same completion cache), compare with the real choices, and store the result."""

import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from deliberation.calibration.models import Calibration, CalibrationScore
from deliberation.engine.calibration import (
    DEFAULT_RESAMPLES,
    REASON_DISAGREES,
    REPORTED_PAPER_R,
    Pair,
    calibration_metrics,
    isotonic_calibration,
    paired_shift,
    reason_metrics,
)
from deliberation.engine.judges import ExpectedJudge, Judge, JudgeRefused, LLMJudge, PromptVariant, ReasonCheck
from deliberation.engine.models import ModelError
from deliberation.engine.scenario import Scenario
from deliberation.engine.seeding import rng_for, seed_for
from deliberation.engine.strategies.base import judge_seed, verdict_data
from deliberation.errors import Invalid
from deliberation.records.models import Record, RecordSet, Stance
from deliberation.records.selectors import current_records, engine_group, record_set_get, record_view
from deliberation.registry.clients import CALIBRATED_PREFIX, drafting_client, judge_for, judge_model_for
from worker.enqueue import model_queue, task_enqueue
from worker.heartbeat import run_heartbeat

logger = logging.getLogger(__name__)

# The isotonic map needs records on both sides of its split to mean anything.
MIN_RECORDS_FOR_ISOTONIC = 4
# The goal does not matter to a judge; one without a veto group keeps every scenario valid.
CALIBRATION_GOAL = "utilitarian"


# The layouts the bias probes compare with the paper's prompt (research/judges.md §6).
PROBE_VARIANTS = (PromptVariant(stance_first=True), PromptVariant(anonymous=True))
PROMPT_JUDGES = {"llm": LLMJudge, "llm-expected": ExpectedJudge}
REASON_EXAMPLES = 20  # reasons kept for the page where the reason does not support the score


class CalibrationError(Invalid, ValueError):
    """The calibration cannot run as asked (unknown judge, nothing to score); nothing was stored."""


@dataclass(frozen=True)
class CalibrationItem:
    """One (record, group): its scenario holds every group of the record with a stance."""

    scenario: Scenario
    group: str
    record_hash: str  # the run seed of the record derives from it, as a benchmark task's does

    @property
    def real(self) -> int:
        return self.scenario.group(self.group).real_choice


def _record_scenario(record: Record, *, topic: str) -> Scenario | None:
    stances = sorted(record.stances.all(), key=lambda s: s.group.code)
    if len(stances) < 2:  # a scenario needs two groups (Scenario's rule); such records are skipped
        return None
    share = 1 / len(stances)
    return Scenario(
        record=record_view(record, topic=topic),
        groups=tuple(engine_group(stance) for stance in stances),
        seats={stance.group.code: share for stance in stances},
        goal=CALIBRATION_GOAL,
    )


def calibration_items(
    *,
    record_set: RecordSet,
    topic: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    exclude: frozenset[str] = frozenset(),
) -> tuple[list[CalibrationItem], int]:
    """The items of the set's current version (adopted resolution, stance, real vote) and how many
    records were skipped for having fewer than two stances. With `limit`, records are taken in a
    seeded order until `limit` items, so the sample is the same for every judge. `exclude`: record
    keys left out (the records a calibrated judge was fitted on)."""
    from django.db.models import Prefetch

    records = (
        current_records(Record.objects.filter(record_set=record_set))
        .exclude(resolution="")
        .prefetch_related("topics", Prefetch("stances", queryset=Stance.objects.select_related("group")))
        .order_by("id")
    )
    if topic:
        records = records.filter(topics__name=topic)
    records = [record for record in records if str(record.pk) not in exclude]
    if limit is not None:
        rng_for(seed, "calibration-sample").shuffle(records)
    items: list[CalibrationItem] = []
    skipped = 0
    for record in records:
        topics = sorted(t.name for t in record.topics.all())
        scenario = _record_scenario(record, topic=topic or (topics[0] if topics else ""))
        if scenario is None:
            skipped += 1
            continue
        for code in scenario.codes:
            items.append(CalibrationItem(scenario=scenario, group=code, record_hash=record.content_hash))
        if limit is not None and len(items) >= limit:
            break
    return (items[:limit] if limit is not None else items), skipped


def calibrated_train_records(*, judge: str, record_set: RecordSet) -> frozenset[str]:
    """A calibrated judge is measured only on records its map was not fitted on: the train
    records of its calibration, when that calibration is on the same record set."""
    if not judge.startswith(CALIBRATED_PREFIX):
        return frozenset()
    number = judge.removeprefix(CALIBRATED_PREFIX)
    base = Calibration.objects.filter(pk=int(number)).first() if number.isdigit() else None
    if base is None or base.record_set_id != record_set.pk:
        return frozenset()
    return frozenset((base.results.get("isotonic") or {}).get("train_records") or ())


def item_score(*, item: CalibrationItem, judge: Judge, seed: int) -> Pair:
    """The judge's vote on the adopted resolution, as a run on this record with `seed` would cast it."""
    run_seed = seed_for(seed, item.record_hash)
    vote = verdict_data(
        scenario=item.scenario,
        judge=judge,
        seed=judge_seed(run_seed),
        group=item.group,
        text=item.scenario.record.resolution,
    )
    extra = {key: value for key, value in vote.items() if key not in ("group", "score", "position", "fallback")}
    return Pair(
        record=item.scenario.record.key,
        group=item.group,
        real=item.real,
        predicted=float(vote["score"]),
        term=item.scenario.record.term,
        topic=item.scenario.record.topic,
        fallback=vote["fallback"],
        extra=extra,
    )


def calibration_results(pairs: list[Pair], *, seed: int, resamples: int) -> dict:
    results = calibration_metrics(pairs, seed=seed, resamples=resamples)
    results["reported_paper_r"] = REPORTED_PAPER_R
    scored_records = {p.record for p in pairs if not p.fallback}
    results["isotonic"] = (
        isotonic_calibration(pairs, seed=seed, resamples=resamples)
        if len(scored_records) >= MIN_RECORDS_FOR_ISOTONIC
        else None
    )
    return results


# Scores stored per statement: a task that dies loses at most one chunk's scores, and their model
# calls are in the completion cache already, so the next task makes none of them again.
CHUNK = 8
PART_JUDGE = "judge"
PART_REASON = "reason"
CALIBRATION_TASK = "deliberation.calibration.tasks.calibration_advance_task"
EXPERIMENT_TASK = "deliberation.runs.tasks.experiment_advance_task"
# runs.models.Experiment.Status values (this app never imports runs): a calibration cell of an
# experiment paused or cancelled goes back to the queue at its next chunk, and resumes with it.
EXPERIMENT_HOLDS = ("paused", "cancelled")
RETRIED_ERRORS = (ModelError, TimeoutError, ConnectionError, JudgeRefused)

# Who hears that an experiment's calibration cell moved (a chunk of scores stored, a change of
# status): the runs app hands it down when Django starts (runs.apps.RunsConfig.ready), as this app
# never imports runs. Called after commit, with the experiment's id and whether the status changed.
CellListener = Callable[..., None]
_cell_listener: CellListener | None = None


def calibration_cell_listener_set(listener: CellListener | None) -> None:
    global _cell_listener
    _cell_listener = listener


def _cell_moved(experiment_id: int | None, *, status_changed: bool) -> None:
    """Tell the listener once this transaction commits (at once outside one): the page must never
    hear of a chunk or a status that is not stored."""
    if experiment_id is not None and _cell_listener is not None:
        transaction.on_commit(partial(_cell_tell, _cell_listener, experiment_id, status_changed))


def _cell_tell(listener: CellListener, experiment_id: int, status_changed: bool) -> None:
    try:
        listener(experiment_id=experiment_id, status_changed=status_changed)
    except Exception:  # noqa: BLE001 - the news is a view of what is stored: the next one makes it good
        logger.exception("experiment %s: a calibration cell's progress was not sent", experiment_id)


@dataclass(frozen=True)
class _Part:
    """One pass over the items: the judge's, a probe layout's, or the reason check's."""

    key: str
    score: Callable[[CalibrationItem], dict]  # the stored data of one item; raises RETRIED_ERRORS
    error_prefix: str = ""


@dataclass(frozen=True)
class _Plan:
    items: list[CalibrationItem]
    skipped: int
    fitted_on: frozenset[str]
    parts: list[_Part]

    @property
    def total(self) -> int:
        return len(self.items) * len(self.parts)


def _reason_row(*, checker: ReasonCheck, item: CalibrationItem, seed: int) -> dict:
    verdict = checker.check(
        scenario=item.scenario,
        group=item.group,
        text=item.scenario.record.resolution,
        seed=judge_seed(seed_for(seed, item.record_hash)),
    )
    return {
        "record": item.scenario.record.key,
        "group": item.group,
        "real": item.real,
        "score": verdict.score,
        "reason_score": verdict.reason_score,
        "reason": verdict.reason,
    }


def _calibration_plan(calibration: Calibration) -> _Plan:
    """What playing `calibration` means: its items (the same on every attempt: the record set's
    version is fixed, the sample seeded) and its parts; CalibrationError when it cannot be played."""
    params = calibration.params
    judge, model, seed = calibration.judge, calibration.judge_model, params.get("seed", 0)
    owner = calibration.created_by
    allow_raw = owner is None or owner.is_staff
    try:
        # The operator's command: a registry model, or a backend string (as manage.py evaluate takes).
        the_judge = judge_for(judge, model=model, allow_raw=allow_raw)
    except ValueError as error:
        raise CalibrationError(str(error)) from None
    fitted_on = calibrated_train_records(judge=judge, record_set=calibration.record_set)
    items, skipped = calibration_items(
        record_set=calibration.record_set,
        topic=params.get("topic"),
        limit=params.get("limit"),
        seed=seed,
        exclude=fitted_on,
    )
    if not items:
        raise CalibrationError("no adopted resolution with real group votes to score in this selection")
    if params.get("reason_check") and not model:
        raise CalibrationError("the reason check asks the judge model for reasons: choose a judge that calls a model")
    if params.get("probes") and judge not in PROMPT_JUDGES:
        raise CalibrationError(f"the bias probes change the judge's prompt: only {', '.join(PROMPT_JUDGES)} have one")
    parts = [_Part(PART_JUDGE, partial(_pair_data, judge=the_judge, seed=seed))]
    if params.get("probes"):
        for variant in PROBE_VARIANTS:
            probe_judge = PROMPT_JUDGES[judge](drafting_client(model, allow_raw=allow_raw), variant=variant)
            parts.append(
                _Part(variant.key, partial(_pair_data, judge=probe_judge, seed=seed), f"{variant.key} probe: ")
            )
    if params.get("reason_check"):
        checker = ReasonCheck(drafting_client(model, allow_raw=allow_raw))
        parts.append(_Part(PART_REASON, partial(_reason_row, checker=checker, seed=seed), "reason check, "))
    return _Plan(items=items, skipped=skipped, fitted_on=fitted_on, parts=parts)


def _pair_data(*, judge: Judge, seed: int, item: CalibrationItem) -> dict:
    return item_score(item=item, judge=judge, seed=seed).as_dict()


def calibration_new(
    *,
    record_set: str,
    judge: str,
    judge_model: str | None = None,
    topic: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    resamples: int = DEFAULT_RESAMPLES,
    concurrency: int = 1,
    probes: bool = False,
    reason_check: bool = False,
    owner=None,
    experiment_id: int | None = None,
    cell: str = "",
    check: bool = True,
) -> Calibration:
    """A calibration checked and ready to store, queued, with the number of scores it will make
    (RecordSet.DoesNotExist for an unknown set, CalibrationError for the rest); nothing stored.
    Without `check`, only the record set is looked up (and `total` is 0).

    `probes`: also score every item under each of PROBE_VARIANTS (judges with a prompt only) and
    report how far the scores move from the paper's layout. `reason_check`: also ask the judge
    model for a reason and a score, and score the reason alone. `concurrency`: judge calls of one
    chunk in flight at once (hosted models)."""
    if check and limit is not None and limit < 1:
        raise CalibrationError("limit must be at least 1")
    if check and concurrency < 1:
        raise CalibrationError("concurrency must be at least 1")
    the_set = record_set_get(name=record_set)
    try:
        # '' for a judge that calls no model; a calibrated judge's own (its calibration's judge model)
        model = judge_model_for(judge, model=judge_model or settings.HEMICYCLE_DEFAULT_MODEL)
    except ValueError as error:
        raise CalibrationError(str(error)) from None
    calibration = Calibration(
        judge=judge,
        judge_model=model,
        record_set=the_set,
        record_set_version=the_set.current_version,
        status=Calibration.Status.QUEUED,
        params={
            "topic": topic,
            "limit": limit,
            "seed": seed,
            "resamples": resamples,
            "probes": probes,
            "reason_check": reason_check,
            "concurrency": concurrency,
        },
        created_by=owner,
        experiment_id=experiment_id,
        cell=cell,
    )
    if check:
        calibration.total = _calibration_plan(calibration).total
    return calibration


def calibration_create(*, enqueue: bool = True, refused_as_failed: bool = False, **options) -> Calibration:
    """Store a calibration queued (options: calibration_new's, which checks them); with `enqueue`,
    its task is sent once this commits. `refused_as_failed`: one the checks refuse is stored failed,
    with the reason (an experiment's cell whose judge model left the registry since its creation)."""
    try:
        calibration = calibration_new(**options)
    except CalibrationError as error:
        if not refused_as_failed:
            raise
        calibration = calibration_new(**options, check=False)
        calibration.status, calibration.error, calibration.finished_at = (
            Calibration.Status.FAILED,
            str(error),
            timezone.now(),
        )
    model = calibration.judge_model
    with transaction.atomic():
        calibration.save()
        if enqueue and calibration.status == Calibration.Status.QUEUED:
            transaction.on_commit(partial(calibration_enqueue, calibration_id=calibration.pk, model=model))
    return calibration


def calibration_enqueue(*, calibration_id: int, model: str) -> None:
    """Send the calibration's task to its judge model's queue (after commit: the worker must see it)."""
    task_enqueue(CALIBRATION_TASK, calibration_id=calibration_id, queue=model_queue(model))


def calibration_run(
    *, progress: Callable[[int], None] | None = None, on_total=None, heartbeat: bool = False, **options
) -> Calibration:
    """Create a calibration and play it here, in this process, through the same service its task
    calls (judge_calibrate's way); CalibrationError if it failed. Options: calibration_create's.
    `heartbeat`: stamp it as a task's worker does, so that beat's reclaim leaves it to this process."""
    calibration = calibration_create(**options, enqueue=False)
    if on_total:
        on_total(calibration.total)
    with run_heartbeat(run_id=calibration.pk, stamp=calibrations_heartbeat) if heartbeat else nullcontext():
        calibration_advance(calibration_id=calibration.pk, progress=progress)
    calibration.refresh_from_db()
    if calibration.status != Calibration.Status.FINISHED:
        raise CalibrationError(f"calibration {calibration.pk} {calibration.status}: {calibration.error}")
    return calibration


def calibration_advance(*, calibration_id: int, progress: Callable[[int], None] | None = None) -> None:
    """Play the calibration from its stored scores to the end (the body of its task): take it,
    score the items that have no score yet in chunks, then measure and store the results. A
    calibration of an experiment that settles lets the experiment know (its task, by name)."""
    calibration = _calibration_claim(calibration_id=calibration_id)
    if calibration is None:
        return
    try:
        settled = _calibration_play(calibration, progress=progress)
    except Exception as error:  # noqa: BLE001 - a bug or a changed record set: it ends visibly
        logger.exception("calibration %s failed", calibration.pk)
        _calibration_fail(calibration=calibration, reason=str(error) or type(error).__name__)
        settled = True
    if settled and calibration.experiment_id is not None:
        transaction.on_commit(partial(task_enqueue, EXPERIMENT_TASK, experiment_id=calibration.experiment_id))


def _calibration_claim(*, calibration_id: int) -> Calibration | None:
    """The calibration, now RUNNING with its attempt counted and its heartbeat stamped; None when
    this task is not to play it (settled, or another task plays it and its worker beats)."""
    calibration = Calibration.objects.select_related("record_set", "created_by").get(pk=calibration_id)
    alive_since = timezone.now() - timedelta(seconds=settings.HEMICYCLE_RUN_LOST_S)
    if calibration.status in (Calibration.Status.FINISHED, Calibration.Status.FAILED):
        return None
    if calibration.status == Calibration.Status.RUNNING and (calibration.heartbeat_at or alive_since) > alive_since:
        return None
    max_attempts = settings.HEMICYCLE_RUN_MAX_ATTEMPTS
    if calibration.attempts >= max_attempts:
        _calibration_fail(calibration=calibration, reason=f"gave up after {max_attempts} attempts (worker lost)")
        return None
    claimable = Q(status=Calibration.Status.QUEUED) | Q(status=Calibration.Status.RUNNING) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=alive_since)
    )
    now = timezone.now()
    if not Calibration.objects.filter(claimable, pk=calibration.pk).update(
        status=Calibration.Status.RUNNING,
        started_at=calibration.started_at or now,
        attempts=F("attempts") + 1,
        heartbeat_at=now,
    ):
        return None
    calibration.status = Calibration.Status.RUNNING
    calibration.attempts += 1
    _cell_moved(calibration.experiment_id, status_changed=True)
    return calibration


def _calibration_play(calibration: Calibration, *, progress: Callable[[int], None] | None) -> bool:
    """Score what is left, chunk by chunk, then finish; False when its experiment holds it."""
    if calibration.record_set.current_version_id != calibration.record_set_version_id:
        raise CalibrationError("its record set has a new version since it was queued: start a new calibration")
    plan = _calibration_plan(calibration)
    if plan.total != calibration.total:
        raise CalibrationError(
            f"it now has {plan.total} scores to make, not the {calibration.total} it was queued with"
        )
    concurrency = int(calibration.params.get("concurrency") or 1)
    size = max(CHUNK, concurrency)
    stored: dict[str, set[int]] = {}
    for part, index in calibration.scores.values_list("part", "index"):
        stored.setdefault(part, set()).add(index)
    if progress and stored:
        progress(sum(len(indices) for indices in stored.values()))
    for part in plan.parts:
        done = stored.get(part.key, set())
        pending = [index for index in range(len(plan.items)) if index not in done]
        for start in range(0, len(pending), size):
            if Calibration.objects.filter(pk=calibration.pk, experiment__status__in=EXPERIMENT_HOLDS).exists():
                if Calibration.objects.filter(pk=calibration.pk, status=Calibration.Status.RUNNING).update(
                    status=Calibration.Status.QUEUED, heartbeat_at=None, attempts=0
                ):
                    _cell_moved(calibration.experiment_id, status_changed=True)
                return False
            chunk = pending[start : start + size]
            began = time.perf_counter()
            scored = _scores(part, [plan.items[index] for index in chunk], concurrency=concurrency)
            with transaction.atomic():
                CalibrationScore.objects.bulk_create(
                    [
                        CalibrationScore(calibration=calibration, part=part.key, index=index, data=data)
                        for index, data in zip(chunk, scored)
                    ],
                    ignore_conflicts=True,  # a duplicate task stored them first: the same scores
                )
                Calibration.objects.filter(pk=calibration.pk).update(
                    seconds=F("seconds") + (time.perf_counter() - began), heartbeat_at=timezone.now()
                )
                _cell_moved(calibration.experiment_id, status_changed=False)
            if progress:
                progress(len(chunk))
    _calibration_finish(calibration, plan=plan)
    return True


def _scores(part: _Part, items: list[CalibrationItem], *, concurrency: int) -> list[dict]:
    """One chunk's scores in the items' order; an item the model failed on is {"error": why}."""

    def score(item: CalibrationItem) -> dict:
        try:
            return part.score(item=item)
        except RETRIED_ERRORS as error:
            return {"error": f"{part.error_prefix}record {item.scenario.record.key} {item.group}: {error}"}
        finally:
            if concurrency > 1:
                close_old_connections()

    if concurrency > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
            return list(pool.map(score, items))
    return [score(item) for item in items]


def _calibration_finish(calibration: Calibration, *, plan: _Plan) -> None:
    """Read the stored scores back in the items' order, measure them and store the results."""
    began = time.perf_counter()
    params = calibration.params
    seed, resamples = params.get("seed", 0), params.get("resamples", DEFAULT_RESAMPLES)
    by_part: dict[str, dict[int, dict]] = {}
    for part, index, data in calibration.scores.values_list("part", "index", "data"):
        by_part.setdefault(part, {})[index] = data
    errors: list[str] = []
    scored = {}
    for part in plan.parts:
        rows = [by_part.get(part.key, {}).get(index) for index in range(len(plan.items))]
        if any(row is None for row in rows):
            raise CalibrationError(f"scores of {part.key} are missing at the finish")  # never expected
        errors.extend(row["error"] for row in rows if "error" in row)
        scored[part.key] = [row for row in rows if "error" not in row]
    pairs = [Pair.from_dict(row) for row in scored[PART_JUDGE]]
    results = calibration_results(pairs, seed=seed, resamples=resamples)
    if params.get("probes"):
        results["probes"] = {
            variant.key: paired_shift(
                pairs, [Pair.from_dict(row) for row in scored[variant.key]], seed=seed, resamples=resamples
            )
            for variant in PROBE_VARIANTS
        }
    if params.get("reason_check"):
        results["reason_check"] = _reason_results(scored[PART_REASON])
    results["skipped_records"] = plan.skipped
    results["excluded_train_records"] = len(plan.fitted_on)
    results["errors"] = len(errors)
    with transaction.atomic():
        if not Calibration.objects.filter(pk=calibration.pk, status=Calibration.Status.RUNNING).update(
            status=Calibration.Status.FINISHED,
            results=_finite(results),
            pairs=[pair.as_dict() for pair in pairs],
            errors=errors,
            seconds=F("seconds") + (time.perf_counter() - began),
            finished_at=timezone.now(),
            error="",
        ):
            return  # another task finished it first (its scores were the same)
        calibration.scores.all().delete()  # the results hold them now
        _cell_moved(calibration.experiment_id, status_changed=True)


def _reason_results(rows: list[dict]) -> dict:
    """The reason check's D, C, K, DCG and the share of scores their reasons do not support, with
    a few such reasons to read."""
    metrics = reason_metrics([(row["record"], row["real"], row["score"], row["reason_score"]) for row in rows])
    unsupported = [
        row
        for row in rows
        if row["score"] is not None
        and row["reason_score"] is not None
        and abs(row["score"] - row["reason_score"]) >= REASON_DISAGREES
    ]
    return {**metrics, "examples": unsupported[:REASON_EXAMPLES]}


def _calibration_fail(*, calibration: Calibration, reason: str) -> None:
    if (
        Calibration.objects.filter(pk=calibration.pk)
        .exclude(status=Calibration.Status.FINISHED)
        .update(status=Calibration.Status.FAILED, error=reason[:2000], finished_at=timezone.now())
    ):
        _cell_moved(calibration.experiment_id, status_changed=True)


def calibrations_heartbeat(*, run_ids: list[int]) -> int:
    """Stamp the calibrations a worker process is playing (worker/heartbeat.py calls it)."""
    return Calibration.objects.filter(pk__in=run_ids, status=Calibration.Status.RUNNING).update(
        heartbeat_at=timezone.now()
    )


def calibrations_reclaim_lost(*, lost_after_s: float, queued_after_s: float | None = None) -> list[int]:
    """Queue again every running calibration whose heartbeat is older than `lost_after_s` (its
    worker died), and with `queued_after_s`, send again the task of every queued one nobody took
    for that long (a lost message: the memory broker forgets its queue with its process). Each is
    taken by a conditional update, so two reclaims at once never send it twice. Returns their ids."""
    now = timezone.now()
    lost = Q(status=Calibration.Status.RUNNING) & (
        Q(heartbeat_at__lt=now - timedelta(seconds=lost_after_s)) | Q(heartbeat_at__isnull=True)
    )
    if queued_after_s is not None:
        waiting = (
            Q(status=Calibration.Status.QUEUED)
            & ~Q(experiment__status__in=EXPERIMENT_HOLDS)  # those wait for their experiment to resume
            & (
                Q(heartbeat_at__lt=now - timedelta(seconds=queued_after_s))
                | Q(heartbeat_at__isnull=True, created_at__lt=now - timedelta(seconds=queued_after_s))
            )
        )
        lost |= waiting
    reclaimed = []
    for calibration_id, model, heartbeat_at, status, experiment_id in Calibration.objects.filter(lost).values_list(
        "pk", "judge_model", "heartbeat_at", "status", "experiment_id"
    ):
        # The stamp keeps a queued one from being sent again before another `queued_after_s`.
        if Calibration.objects.filter(lost, pk=calibration_id, heartbeat_at=heartbeat_at).update(
            status=Calibration.Status.QUEUED, heartbeat_at=now
        ):
            transaction.on_commit(partial(calibration_enqueue, calibration_id=calibration_id, model=model))
            if status != Calibration.Status.QUEUED:
                _cell_moved(experiment_id, status_changed=True)
            reclaimed.append(calibration_id)
    return reclaimed


def _finite(value):
    """JSON has no NaN or infinity: such floats (none expected) are stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
