"""Planning an import: read every source, validate every entry, merge records by content hash
and build the tasks; nothing is written (records.services writes the plan).

`import_plan` reads the sources (sources.py), validates each entry with the models of schema.py,
merges records (merge.py) and returns the plan (plan.py) with a report (report.py) of everything it
kept, skipped and why. A file that cannot be read or parsed at all is reported and the others are
still planned. Task files are planned after every topic file, so they are read twice (once to
learn their kind) rather than kept.
"""

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from deliberation.records.importing.merge import record_merge
from deliberation.records.importing.plan import ImportPlan, RecordPlan, StancePlan, TaskPlan, plan_totals
from deliberation.records.importing.report import FileReport, ImportReport, Problem
from deliberation.records.importing.schema import RecordIn, StanceIn, TaskFieldsIn
from deliberation.records.importing.sources import ReadLimits, Source, file_kind, read_sources
from deliberation.records.normalise import normalise_topic, record_content_hash, task_content_hash

SEAT_SUM_TOLERANCE = 1e-6


def import_plan(
    *,
    paths: Sequence[Path],
    known_groups: Mapping[str, Iterable[str]],
    record_set: str,
    aliases: Mapping[tuple[str, str], str] | None = None,
    names: Mapping[Path, str] | None = None,
    limits: ReadLimits = ReadLimits(),
    progress: Callable[[int, int], None] | None = None,
) -> ImportPlan:
    """Read and validate everything under `paths`; nothing is written.

    known_groups maps a term ("7th") to the group codes that exist in it; aliases maps (term,
    code found in a file) to the code it stands for in that term (the admin's GroupAlias rows).
    names gives a path the name reports use (an upload's original file name). Topic files are
    merged before task files, so a record's stances come first from the topic file (which
    carries them all) and a task file only adds groups the topic file lacked. progress(done,
    total) is called after each document is planned.
    """
    report = ImportReport(record_set=record_set)
    planner = _Planner(
        known_groups={term: set(codes) for term, codes in known_groups.items()}, aliases=dict(aliases or {})
    )
    sources = read_sources(paths, names=names, limits=limits)
    done = 0

    def planned(file_report: FileReport, source: Source, records: list[Any]) -> None:
        nonlocal done
        planner.plan_file(file_report, records, fallback_topic=source.fallback_topic)
        done += 1
        if progress:
            progress(done, len(sources))

    later: list[tuple[FileReport, Source]] = []
    for source in sources:
        records, problem = source.records(limits)
        if records is None:
            unreadable = FileReport(source.name, "unreadable")
            unreadable.problem("", "", problem)
            report.files.append(unreadable)
            done += 1
            continue
        file_report = FileReport(source.name, file_kind(records, source.kind_hint))
        report.files.append(file_report)
        if file_report.kind == "topic":
            planned(file_report, source, records)
        else:
            later.append((file_report, source))
        del records
    for file_report, source in later:
        records, problem = source.records(limits)
        if records is None:  # changed on disk since the first reading
            file_report.kind = "unreadable"
            file_report.problem("", "", problem)
            continue
        planned(file_report, source, records)
        del records
    report.files.sort(key=lambda file_report: ("topic", "task", "unreadable").index(file_report.kind))
    return plan_totals(ImportPlan(records=planner.records, tasks=planner.tasks, report=report))


def _record_ref(raw: Any, index: int) -> str:
    raw_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(raw_id, (int, str)) and not isinstance(raw_id, bool):
        return f"id {raw_id}"
    return f"item {index}"


def _location(loc: tuple[int | str, ...], prefix: str = "") -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _report_errors(file_report: FileReport, ref: str, exc: ValidationError, prefix: str = "") -> None:
    for error in exc.errors():
        message = "missing" if error["type"] == "missing" else error["msg"]
        file_report.problem(ref, _location(error["loc"], prefix), message)


class _Planner:
    def __init__(self, *, known_groups: dict[str, set[str]], aliases: dict[tuple[str, str], str]) -> None:
        self.known_groups = known_groups
        self.aliases = aliases
        self.records: dict[str, RecordPlan] = {}
        self.tasks: dict[str, TaskPlan] = {}
        # Memos: EuroCon repeats every record and stance in up to three task files.
        self._collapsed_texts: dict[str, str] = {}
        self._record_hashes: dict[tuple[str, str, str, str], str] = {}
        self._stances_seen: dict[tuple[Any, ...], StanceIn | ValidationError] = {}

    def plan_file(self, file_report: FileReport, records: list[Any], *, fallback_topic: str) -> None:
        first_seen: dict[int | str, int] = {}
        for index, raw in enumerate(records):
            kept_record = self._plan_entry(file_report, index, raw, first_seen, fallback_topic)
            file_report.records_kept += kept_record
            file_report.records_skipped += not kept_record

    def _plan_entry(
        self,
        file_report: FileReport,
        index: int,
        raw: Any,
        first_seen: dict[int | str, int],
        fallback_topic: str,
    ) -> bool:
        """Plan one entry of a file; True when its record was kept (its task counts itself)."""
        ref = _record_ref(raw, index)
        is_task = file_report.kind == "task"
        record, task_fields = self._validate(file_report, ref, raw, first_seen, index)
        if record is None:
            file_report.tasks_skipped += is_task
            return False

        stances, dropped = self._stances(file_report, ref, record.stances, record.parliament_terms)
        if not stances:
            reason = "no stances" if not record.stances else "no usable stances"
            file_report.problem(ref, "stances", f"{reason}: record skipped")
            file_report.tasks_skipped += is_task
            return False

        topic = normalise_topic(record.topic or "") or normalise_topic(fallback_topic)
        content_hash = self._record_hash(record)
        record_merge(
            records=self.records,
            file_report=file_report,
            ref=ref,
            record=record,
            content_hash=content_hash,
            topic=topic,
            stances=stances,
        )
        if is_task:
            task = self._task(file_report, ref, record, task_fields, stances, dropped, content_hash, topic)
            if task is None:
                file_report.tasks_skipped += 1
            else:
                file_report.tasks_kept += 1
                self.tasks.setdefault(task.content_hash, task)
        return True

    def _validate(
        self, file_report: FileReport, ref: str, raw: Any, first_seen: dict[int | str, int], index: int
    ) -> tuple[RecordIn | None, TaskFieldsIn | None]:
        if not isinstance(raw, dict):
            file_report.problem(ref, "", f"expected a JSON object, found {type(raw).__name__}: skipped")
            return None, None
        raw_id = raw.get("id")
        if isinstance(raw_id, (int, str)) and not isinstance(raw_id, bool):
            if raw_id in first_seen:
                file_report.problem(
                    ref, "id", f"duplicate id in this file (first at item {first_seen[raw_id]}): skipped"
                )
                return None, None
            first_seen[raw_id] = index
        record = task_fields = None
        try:
            record = RecordIn.model_validate(raw, context=self._collapsed_texts)
        except ValidationError as exc:
            _report_errors(file_report, ref, exc)
        if file_report.kind == "task":
            try:
                task_fields = TaskFieldsIn.model_validate(raw)
            except ValidationError as exc:  # the record may still be kept; its task is not
                _report_errors(file_report, ref, exc)
        return record, task_fields

    def _stances(
        self, file_report: FileReport, ref: str, raw_stances: list[Any], term: str
    ) -> tuple[list[StancePlan], int]:
        """The record's usable stances and how many were dropped (each drop is reported)."""
        stances: dict[str, StancePlan] = {}
        known = self.known_groups.get(term, set())
        dropped = 0
        for position, raw in enumerate(raw_stances):
            where = f"stances[{position}]"
            if not isinstance(raw, dict):
                file_report.problem(ref, where, f"expected an object, found {type(raw).__name__}: stance skipped")
                dropped += 1
                continue
            stance = self._validate_stance(raw)
            if isinstance(stance, ValidationError):
                _report_errors(file_report, ref, stance, prefix=where)
                dropped += 1
                continue
            code = self.aliases.get((term, stance.party_name), stance.party_name)
            if code != stance.party_name:
                stance = stance.model_copy(update={"party_name": code})
            if stance.party_name not in known:
                file_report.problem(
                    ref,
                    f"{where}.party_name",
                    f"unknown group code {stance.party_name} for the {term} term: map it in the admin"
                    " (group aliases); stance skipped",
                )
                dropped += 1
            elif stance.party_name in stances:
                file_report.problem(
                    ref, f"{where}.party_name", f"group {stance.party_name} appears twice: later stance skipped"
                )
                dropped += 1
            else:
                if not stance.stance:  # EuroCon has one; the group's real vote still makes the task
                    file_report.problem(ref, f"{where}.stance", f"{stance.party_name} stance text is empty: kept")
                origin = Problem(file_report.name, ref, where, "")
                stances[stance.party_name] = StancePlan(
                    stance.party_name, stance.stance, stance.score, stance.choice, origin
                )
        file_report.stances_skipped += dropped
        return list(stances.values()), dropped

    def _validate_stance(self, raw: dict[str, Any]) -> StanceIn | ValidationError:
        text = raw.get("stance")
        text = tuple(text) if isinstance(text, list) else text
        key = (raw.get("party_name"), raw.get("score"), raw.get("choice"), text)
        try:
            return self._stances_seen[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: garbage that validation will name
            key = None
        try:
            result: StanceIn | ValidationError = StanceIn.model_validate(raw)
        except ValidationError as exc:
            result = exc
        if key is not None:
            self._stances_seen[key] = result
        return result

    def _record_hash(self, record: RecordIn) -> str:
        key = (record.title, record.background, record.resolution, record.parliament_terms)
        content_hash = self._record_hashes.get(key)
        if content_hash is None:
            content_hash = self._record_hashes[key] = record_content_hash(
                title=record.title,
                background=record.background,
                resolution=record.resolution,
                term=record.parliament_terms,
            )
        return content_hash

    def _task(
        self,
        file_report: FileReport,
        ref: str,
        record: RecordIn,
        task_fields: TaskFieldsIn | None,
        stances: list[StancePlan],
        dropped: int,
        record_hash: str,
        topic: str,
    ) -> TaskPlan | None:
        problems: list[tuple[str, str]] = []
        count = len(record.stances)
        if dropped:
            problems.append(
                ("stances", f"{dropped} of its {count} stances unusable, so its seat weights no longer fit")
            )
        if count < 2:
            problems.append(("stances", f"a task needs at least 2 groups, it has {count}"))
        if record.party_num is not None and record.party_num != count:
            problems.append(("party_num", f"party_num is {record.party_num} but there are {count} stances"))
        if task_fields is not None:
            veto = self.aliases.get((record.parliament_terms, task_fields.veto_party_name))
            if veto:
                task_fields = task_fields.model_copy(update={"veto_party_name": veto})
            weights = task_fields.seat_weights
            if len(weights) != count:
                problems.append(("seat_weights", f"{len(weights)} seat weights for {count} stances"))
            elif abs(math.fsum(weights) - 1.0) > SEAT_SUM_TOLERANCE:
                problems.append(("seat_weights", f"seat weights add up to {math.fsum(weights):.6g}, not 1"))
            groups = [stance.group for stance in stances]
            if not dropped and task_fields.veto_party_name not in groups:
                problems.append(
                    ("veto_party_name", f"veto group {task_fields.veto_party_name!r} is not among the task's groups")
                )
        for field_name, message in problems:
            file_report.problem(ref, field_name, f"{message}: task skipped")
        if problems or task_fields is None:
            return None
        groups = tuple(stance.group for stance in stances)
        weights = tuple(task_fields.seat_weights)
        return TaskPlan(
            content_hash=task_content_hash(
                record_hash=record_hash,
                party_count=len(groups),
                groups=groups,
                seat_weights=weights,
                veto_group=task_fields.veto_party_name,
                topic=topic,
            ),
            record_hash=record_hash,
            topic=topic,
            party_count=len(groups),
            groups=groups,
            seat_weights=weights,
            veto_group=task_fields.veto_party_name,
        )
