"""Calibrating a judge: score every real adopted resolution for every group that has a real vote,
exactly as a run's vote does (engine.strategies.base.verdict_data, the same prompts and seeds,
so the same completion cache), compare with the real choices, and store the result."""

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, transaction

from deliberation.calibration.models import Calibration
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
from deliberation.registry.clients import CALIBRATED_PREFIX, drafting_client, judge_for, judge_uses_model

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


def calibration_pairs(
    *,
    items: list[CalibrationItem],
    judge: Judge,
    seed: int,
    concurrency: int = 1,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Pair], list[str]]:
    """Every item scored, in the items' order; items the model failed on are reasons, not pairs."""

    def score(item: CalibrationItem) -> Pair | str:
        try:
            return item_score(item=item, judge=judge, seed=seed)
        except (ModelError, TimeoutError, ConnectionError, JudgeRefused) as error:
            return f"record {item.scenario.record.key} {item.group}: {error}"
        finally:
            if concurrency > 1:
                close_old_connections()
            if progress:
                progress(1)

    if concurrency > 1:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(score, items))
    else:
        results = [score(item) for item in items]
    return [r for r in results if isinstance(r, Pair)], [r for r in results if isinstance(r, str)]


def reason_check_run(
    *,
    items: list[CalibrationItem],
    model: str,
    allow_raw: bool,
    seed: int,
    errors: list[str],
    progress: Callable[[int], None] | None = None,
) -> dict:
    """The reason check on every item's adopted resolution: D, C, K, DCG and the share of scores
    their reasons do not support, with a few such reasons to read."""
    checker = ReasonCheck(drafting_client(model, allow_raw=allow_raw))
    rows = []
    examples = []
    for item in items:
        try:
            verdict = checker.check(
                scenario=item.scenario,
                group=item.group,
                text=item.scenario.record.resolution,
                seed=judge_seed(seed_for(seed, item.record_hash)),
            )
        except (ModelError, TimeoutError, ConnectionError) as error:
            errors.append(f"reason check, record {item.scenario.record.key} {item.group}: {error}")
            continue
        finally:
            if progress:
                progress(1)
        rows.append((item.scenario.record.key, item.real, verdict.score, verdict.reason_score))
        unsupported = (
            verdict.score is not None
            and verdict.reason_score is not None
            and abs(verdict.score - verdict.reason_score) >= REASON_DISAGREES
        )
        if unsupported and len(examples) < REASON_EXAMPLES:
            examples.append(
                {
                    "record": item.scenario.record.key,
                    "group": item.group,
                    "real": item.real,
                    "score": verdict.score,
                    "reason_score": verdict.reason_score,
                    "reason": verdict.reason,
                }
            )
    return {**reason_metrics(rows), "examples": examples}


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


def calibration_run(
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
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Calibration:
    """Score, measure and store one calibration (RecordSet.DoesNotExist for an unknown set).

    `probes`: also score every item under each of PROBE_VARIANTS (judges with a prompt only) and
    report how far the scores move from the paper's layout. `reason_check`: also ask the judge
    model for a reason and a score, and score the reason alone (reason_check_run)."""
    started = time.perf_counter()
    if limit is not None and limit < 1:
        raise CalibrationError("limit must be at least 1")
    the_set = record_set_get(name=record_set)
    model = (judge_model or settings.HEMICYCLE_DEFAULT_MODEL) if judge_uses_model(judge) else ""
    try:
        # The operator's command: a registry model, or a backend string (as manage.py evaluate takes).
        the_judge = judge_for(judge, model=model, allow_raw=owner is None or owner.is_staff)
    except ValueError as error:
        raise CalibrationError(str(error)) from None
    fitted_on = calibrated_train_records(judge=judge, record_set=the_set)
    items, skipped = calibration_items(record_set=the_set, topic=topic, limit=limit, seed=seed, exclude=fitted_on)
    if not items:
        raise CalibrationError("no adopted resolution with real group votes to score in this selection")
    if reason_check and not model:
        raise CalibrationError("the reason check asks the judge model for reasons: choose a judge that calls a model")
    if probes and judge not in PROMPT_JUDGES:
        raise CalibrationError(f"the bias probes change the judge's prompt: only {', '.join(PROMPT_JUDGES)} have one")
    allow_raw = owner is None or owner.is_staff
    if on_total:
        on_total(len(items) * (1 + (len(PROBE_VARIANTS) if probes else 0) + (1 if reason_check else 0)))
    pairs, errors = calibration_pairs(
        items=items, judge=the_judge, seed=seed, concurrency=concurrency, progress=progress
    )
    results = calibration_results(pairs, seed=seed, resamples=resamples)
    if probes:
        results["probes"] = {}
        for variant in PROBE_VARIANTS:
            probe_judge = PROMPT_JUDGES[judge](drafting_client(model, allow_raw=allow_raw), variant=variant)
            variant_pairs, variant_errors = calibration_pairs(
                items=items, judge=probe_judge, seed=seed, concurrency=concurrency, progress=progress
            )
            results["probes"][variant.key] = paired_shift(pairs, variant_pairs, seed=seed, resamples=resamples)
            errors.extend(f"{variant.key} probe: {error}" for error in variant_errors)
    if reason_check:
        results["reason_check"] = reason_check_run(
            items=items, model=model, allow_raw=allow_raw, seed=seed, errors=errors, progress=progress
        )
    results["skipped_records"] = skipped
    results["excluded_train_records"] = len(fitted_on)
    results["errors"] = len(errors)
    seconds = time.perf_counter() - started
    with transaction.atomic():
        return Calibration.objects.create(
            judge=judge,
            judge_model=model,
            record_set=the_set,
            record_set_version=the_set.current_version,
            params={
                "topic": topic,
                "limit": limit,
                "seed": seed,
                "resamples": resamples,
                "probes": probes,
                "reason_check": reason_check,
            },
            results=_finite(results),
            pairs=[pair.as_dict() for pair in pairs],
            errors=errors,
            seconds=round(seconds, 3),
            created_by=owner,
        )


def _finite(value):
    """JSON has no NaN or infinity: such floats (none expected) are stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
