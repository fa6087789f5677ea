"""Reading and validating EuroCon / PoliCon record files: the plan of an import, no database write.

`import_plan` reads every source (JSON files, folders laid out like the EuroCon release, zip
archives of either), validates every record with the pydantic models below, merges records by
content hash and returns what services.records_import will write, with a report of everything it
kept, skipped and why. A file that cannot be read or parsed at all is reported and the others are
still planned.

Memory stays bounded by one file: sources are listed first (a zip's directory, a folder's names)
and each is read, parsed and planned on its own, then dropped; a zip's members are read one at a
time, never extracted. Task files are planned after every topic file, so they are read twice
(once to learn their kind) rather than kept.
"""

import json
import math
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictStr,
    ValidationError,
    ValidationInfo,
)

from deliberation.records.normalise import (
    collapse_whitespace,
    normalise_group_code,
    normalise_term,
    normalise_topic,
    record_content_hash,
    stance_text,
    task_content_hash,
)
from deliberation.safetext import text_checked

SEAT_SUM_TOLERANCE = 1e-6
# One JSON file, or one zip member once inflated (the largest EuroCon file is 1.2 MB).
MAX_FILE_BYTES = 32 * 1024 * 1024
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """How much one import may read: per file, and per zip archive (members, inflated bytes).

    Zip bombs lie about sizes in their directory, so an archive is checked against its declared
    sizes first and its inflated bytes are counted again while reading.
    """

    max_file_bytes: int = MAX_FILE_BYTES
    max_zip_members: int = 10_000
    max_zip_bytes: int = 1024 * 1024 * 1024


def _mib(size: int) -> str:
    return f"{size / 2**20:.3g} MiB"

FileKind = Literal["topic", "task", "csv", "unreadable"]  # csv: a HowTheyVote.eu export table


# Validation models ------------------------------------------------------------------------------


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; in a vote share that is garbage, not a number.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _record_id(value: Any) -> int | str | None:
    if value is None or (isinstance(value, (int, str)) and not isinstance(value, bool)):
        return value
    raise ValueError("expected a number or text")


def _stance_text(value: Any) -> str:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        return stance_text(value)
    raise ValueError("expected text or a list of texts")


def _collapsed(value: str, info: ValidationInfo) -> str:
    # Task files repeat each record's long texts for every party count: an import-wide memo
    # (the validation context) collapses each distinct text once.
    memo = info.context
    if memo is None:
        return collapse_whitespace(value)
    collapsed = memo.get(value)
    if collapsed is None:
        collapsed = memo[value] = collapse_whitespace(value)
    return collapsed


# Numbers may come as numeric strings ("0.3"); anything else that is not a number is an error.
Score = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=1, allow_inf_nan=False)]
Choice = Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=9)]
Weight = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, le=1, allow_inf_nan=False)]
# Text is checked for control characters (NUL above all: PostgreSQL refuses it) before it is
# planned, so the check reports the field instead of the write failing with a traceback.
Text = Annotated[str, AfterValidator(text_checked), AfterValidator(_collapsed)]
RequiredText = Annotated[str, AfterValidator(text_checked), AfterValidator(_collapsed), AfterValidator(_not_blank)]
GroupCode = Annotated[
    str, AfterValidator(text_checked), AfterValidator(normalise_group_code), AfterValidator(_not_blank)
]
StanceText = Annotated[str, BeforeValidator(_stance_text), AfterValidator(text_checked)]
TopicName = Annotated[StrictStr, AfterValidator(text_checked)]


class StanceIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    party_name: GroupCode
    score: Score
    choice: Choice
    stance: StanceText


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[int | str | None, PlainValidator(_record_id)] = None
    topic: TopicName | None = None
    title: RequiredText
    background: RequiredText
    resolution: Text
    parliament_terms: Annotated[str, AfterValidator(normalise_term)]
    total_score: Score | None = None
    total_choice: Choice | None = None
    party_num: Annotated[int, BeforeValidator(_not_bool), Field(ge=0)] | None = None
    stances: list[Any]  # each entry is validated on its own, so one bad stance drops only itself


class TaskFieldsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    seat_weights: list[Weight]
    veto_party_name: GroupCode


# The report ------------------------------------------------------------------------------------


class Problem(NamedTuple):
    file: str
    record: str  # "id 12", or "item 3" (0-based position) where the record has no usable id
    field: str
    message: str


@dataclass
class FileReport:
    name: str
    kind: FileKind
    records_kept: int = 0
    records_skipped: int = 0
    tasks_kept: int = 0
    tasks_skipped: int = 0
    stances_skipped: int = 0
    problems: list[Problem] = field(default_factory=list)

    def problem(self, record: str, field_name: str, message: str) -> None:
        self.problems.append(Problem(self.name, record, field_name, message))


@dataclass
class ImportReport:
    """What an import read, kept, skipped (and why) and wrote.

    Per file, "kept" counts the valid entries of that file; the totals count distinct records
    and tasks (the same issue in a topic file and a task file is one record), and "new" what this
    import added to the database (0 when the same data is imported again).
    """

    record_set: str
    files: list[FileReport] = field(default_factory=list)
    records: int = 0
    records_new: int = 0
    stances: int = 0
    stances_new: int = 0
    tasks: int = 0
    tasks_new: int = 0
    tasks_by_party_count: dict[int, int] = field(default_factory=dict)
    topics: list[str] = field(default_factory=list)
    records_by_topic: dict[str, int] = field(default_factory=dict)
    records_by_term: dict[str, int] = field(default_factory=dict)
    stances_by_group: dict[str, int] = field(default_factory=dict)  # "8th EPP" -> stances kept
    record_set_created: bool = False
    version: int | None = None  # the record set's version holding this import's records
    version_created: bool = False
    seconds: float = 0.0

    @property
    def kept(self) -> bool:
        return bool(self.records or self.tasks)

    @property
    def problems(self) -> list[Problem]:
        return [problem for report in self.files for problem in report.problems]

    @property
    def records_skipped(self) -> int:
        return sum(report.records_skipped for report in self.files)

    @property
    def tasks_skipped(self) -> int:
        return sum(report.tasks_skipped for report in self.files)

    @property
    def stances_skipped(self) -> int:
        return sum(report.stances_skipped for report in self.files)

    @property
    def skipped_anything(self) -> bool:
        return bool(self.records_skipped or self.tasks_skipped or self.stances_skipped)

    @property
    def unreadable(self) -> list[FileReport]:
        """Files that could not be read at all (bad JSON, not UTF-8, too large, unsafe zip...)."""
        return [report for report in self.files if report.kind == "unreadable"]

    def file(self, name: str) -> FileReport:
        return next(report for report in self.files if report.name == name)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (an upload stores its check and its result this way)."""
        data = asdict(self)
        data["problems"] = [problem._asdict() for problem in self.problems]
        for report in data["files"]:
            report["problem_count"] = len(report.pop("problems"))
        data["tasks_by_party_count"] = {str(count): n for count, n in self.tasks_by_party_count.items()}
        data["kept"] = self.kept
        data["skipped_anything"] = self.skipped_anything
        data["records_skipped"] = self.records_skipped
        data["tasks_skipped"] = self.tasks_skipped
        data["stances_skipped"] = self.stances_skipped
        data["text"] = self.render()
        return data

    def render(self, *, max_problems: int = 200) -> str:
        if not self.kept:
            state = "nothing kept, nothing written"
        elif self.record_set_created:
            state = "new record set"
        else:
            state = "existing record set"
        if self.kept and self.version is not None:
            state += f", version {self.version}" + ("" if self.version_created else " unchanged")
        rows = [("file", "kind", "records kept", "skipped", "tasks kept", "skipped", "problems")]
        for report in self.files:
            is_task = report.kind == "task"
            rows.append(
                (
                    report.name,
                    report.kind,
                    f"{report.records_kept:,}" if report.kind != "unreadable" else "-",
                    f"{report.records_skipped:,}" if report.kind != "unreadable" else "-",
                    f"{report.tasks_kept:,}" if is_task else "-",
                    f"{report.tasks_skipped:,}" if is_task else "-",
                    f"{len(report.problems):,}",
                )
            )
        rows.append(
            (
                "total (distinct)",
                "",
                f"{self.records:,}",
                f"{self.records_skipped:,}",
                f"{self.tasks:,}",
                f"{self.tasks_skipped:,}",
                f"{len(self.problems):,}",
            )
        )
        lines = [f'Import into record set "{self.record_set}" ({state}), {self.seconds:.2f} s', ""]
        lines += _table(rows, numeric_from=2, rule_before_last=True)
        by_count = ", ".join(f"{count} parties: {n:,}" for count, n in sorted(self.tasks_by_party_count.items()))
        lines += [
            "",
            f"New: {self.records_new:,} records, {self.stances_new:,} stances, {self.tasks_new:,} tasks"
            f" (of {self.records:,} records, {self.stances:,} stances, {self.tasks:,} tasks kept)",
            f"Tasks by party count: {by_count or 'none'}",
            f"Topics ({len(self.topics)}): {'; '.join(self.topics) or 'none'}",
        ]
        if self.records_by_topic:
            lines += ["", "Records by topic:"]
            lines += [f"  {topic}: {n:,}" for topic, n in sorted(self.records_by_topic.items())]
            lines.append("Records by term: " + ", ".join(f"{t}: {n:,}" for t, n in sorted(self.records_by_term.items())))
            lines.append("Stances by group: " + ", ".join(f"{g}: {n:,}" for g, n in sorted(self.stances_by_group.items())))
        problems = self.problems
        if problems:
            lines += ["", f"Problems ({len(problems):,}):"]
            lines += _table(
                [("file", "record", "field", "problem")]
                + [tuple(problem) for problem in problems[:max_problems]],
                indent="  ",
            )
            if len(problems) > max_problems:
                lines.append(f"  ... and {len(problems) - max_problems:,} more")
        return "\n".join(lines)


def _table(
    rows: Sequence[Sequence[str]], *, numeric_from: int | None = None, rule_before_last: bool = False, indent: str = ""
) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if numeric_from is not None and column >= numeric_from else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ]
        return (indent + "  ".join(cells)).rstrip()

    rule = indent + "  ".join("-" * width for width in widths)
    lines = [line(rows[0]), rule] + [line(row) for row in rows[1:]]
    if rule_before_last:
        lines.insert(len(lines) - 1, rule)
    return lines


# The plan --------------------------------------------------------------------------------------


@dataclass
class StancePlan:
    group: str
    text: str
    score: float
    choice: int
    origin: Problem  # where it came from (file, record, field), for conflict reports

    @property
    def vote_and_text(self) -> tuple[str, float, int]:
        return self.text, self.score, self.choice


@dataclass
class RecordPlan:
    content_hash: str
    title: str
    background: str
    resolution: str
    term: str
    topics: list[str]
    total_score: float | None
    total_choice: int | None
    stances: dict[str, StancePlan]
    origin: tuple[str, str]


@dataclass(frozen=True)
class TaskPlan:
    content_hash: str
    record_hash: str
    topic: str
    party_count: int
    groups: tuple[str, ...]
    seat_weights: tuple[float, ...]
    veto_group: str


@dataclass
class ImportPlan:
    records: dict[str, RecordPlan]
    tasks: dict[str, TaskPlan]
    report: ImportReport


@dataclass(frozen=True)
class Source:
    """One JSON document to read (load() gives its bytes, None past the size limit), or (problem
    set) one that could not be reached."""

    name: str
    kind_hint: Literal["topic", "task"] | None
    fallback_topic: str
    load: Callable[[], bytes | None] | None = None
    problem: str = ""
    unreadable: str = "cannot be read"  # what a failing load() is reported as

    def records(self, limits: "ReadLimits") -> tuple[list[Any] | None, str]:
        """The parsed list of records, or None and why not."""
        if self.problem or self.load is None:
            return None, self.problem
        try:
            content = self.load()
        except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as exc:  # CRC, bad compression
            return None, f"{self.unreadable}: {getattr(exc, 'strerror', None) or exc}"
        if content is None:
            return None, f"inflates past {_mib(limits.max_file_bytes)}: not read"
        return _parse(content)


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
        file_report = FileReport(source.name, _file_kind(records, source.kind_hint))
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


def plan_totals(plan: ImportPlan) -> ImportPlan:
    """The report's totals of what the plan keeps (distinct records, stances, tasks, by topic...)."""
    report = plan.report
    report.records = len(plan.records)
    report.stances = sum(len(record.stances) for record in plan.records.values())
    report.tasks = len(plan.tasks)
    for task in plan.tasks.values():
        report.tasks_by_party_count[task.party_count] = report.tasks_by_party_count.get(task.party_count, 0) + 1
    report.topics = sorted({topic for record in plan.records.values() for topic in record.topics})
    for record in plan.records.values():
        for topic in record.topics:
            report.records_by_topic[topic] = report.records_by_topic.get(topic, 0) + 1
        report.records_by_term[record.term] = report.records_by_term.get(record.term, 0) + 1
        for code in record.stances:
            key = f"{record.term} {code}"
            report.stances_by_group[key] = report.stances_by_group.get(key, 0) + 1
    return plan


# Sources ---------------------------------------------------------------------------------------


def read_sources(
    paths: Sequence[Path], *, names: Mapping[Path, str] | None = None, limits: ReadLimits = ReadLimits()
) -> list[Source]:
    """Every JSON document under the paths: a file, a folder (searched recursively) or a zip."""
    sources: list[Source] = []
    names = names or {}
    for path in paths:
        path = Path(path)
        label = names.get(path)
        if path.is_dir():
            found = _folder_sources(path, limits)
            sources += found or [_unreachable(path, "no .json files in this folder", label)]
        elif path.is_file() and zipfile.is_zipfile(path):
            sources += _zip_sources(path, label or path.name, limits)
        elif path.is_file():
            sources.append(_file_source(path, label or str(path), PurePosixPath(label or path.name), limits))
        else:
            sources.append(_unreachable(path, "no such file or folder", label))
    return sources


def _unreachable(path: Path, problem: str, label: str | None = None) -> Source:
    return Source(name=label or str(path), kind_hint=None, fallback_topic="", problem=problem)


def _kind_hint(relative: PurePosixPath) -> Literal["topic", "task"] | None:
    if "task_datas" in relative.parts[:-1]:
        return "task"
    if "topic_datas" in relative.parts[:-1]:
        return "topic"
    return None


def _hidden(relative: PurePosixPath) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _folder_sources(root: Path, limits: ReadLimits) -> list[Source]:
    sources = []
    for path in sorted(root.rglob("*.json")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_file() and not _hidden(relative):
            sources.append(_file_source(path, f"{root.name}/{relative}", relative, limits))
    return sources


def _file_source(path: Path, name: str, relative: PurePosixPath, limits: ReadLimits) -> Source:
    source = Source(name=name, kind_hint=_kind_hint(relative), fallback_topic=relative.stem)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return replace(source, problem=f"cannot be read: {exc.strerror or exc}")
    if size > limits.max_file_bytes:
        return replace(
            source, problem=f"file is {_mib(size)}, over the limit of {_mib(limits.max_file_bytes)}: not read"
        )
    return replace(source, load=partial(_read_file, path, budget=limits.max_file_bytes))


def _read_file(path: Path, *, budget: int) -> bytes | None:
    with open(path, "rb") as handle:
        content = handle.read(budget + 1)
    return None if len(content) > budget else content


def _unsafe_member(name: str) -> bool:
    parts = re.split(r"[\\/]", name)
    return name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name)) or ".." in parts


def _zip_sources(path: Path, label: str, limits: ReadLimits) -> list[Source]:
    """The archive's .json members, each read from the archive when it is planned (one at a time,
    nothing extracted to disk).

    An archive with too many members, or more inflated bytes than the limit by its directory, or
    any absolute or `..` member path, is refused whole: a zip like that is not a EuroCon release,
    and half of it would be a misleading import. A member never inflates past its declared size
    (zipfile stops there and the CRC check fails), and its bytes are counted while reading too.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        return [_unreachable(path, f"not a readable zip archive: {exc}", label)]
    refused = zip_refusal(members, limits)
    if refused:
        return [_unreachable(path, refused, label)]
    sources: list[Source] = []
    for info in members:
        relative = PurePosixPath(info.filename.replace("\\", "/"))
        if info.is_dir() or relative.suffix.lower() != ".json" or _hidden(relative):
            continue
        source = Source(name=f"{label}:{info.filename}", kind_hint=_kind_hint(relative), fallback_topic=relative.stem,
                        unreadable="cannot be read from the archive")
        if info.file_size > limits.max_file_bytes:
            problem = f"member is {_mib(info.file_size)}, over the limit of {_mib(limits.max_file_bytes)}: not read"
            sources.append(replace(source, problem=problem))
            continue
        sources.append(replace(source, load=partial(_zip_member, path, info, budget=limits.max_file_bytes)))
    return sources or [_unreachable(path, "no .json files in this archive", label)]


def _zip_member(path: Path, info: zipfile.ZipInfo, *, budget: int) -> bytes | None:
    with zipfile.ZipFile(path) as archive:
        return _read_member(archive, info, budget=budget)


def zip_refusal(members: Sequence[zipfile.ZipInfo], limits: ReadLimits) -> str:
    if len(members) > limits.max_zip_members:
        return f"zip archive has {len(members):,} members, more than the limit of {limits.max_zip_members:,}: not read"
    unsafe = [info.filename for info in members if _unsafe_member(info.filename)]
    if unsafe:
        return f"zip member path {unsafe[0]!r} is absolute or climbs out with '..': the archive is refused"
    declared = sum(info.file_size for info in members)
    if declared > limits.max_zip_bytes:
        return (
            f"zip archive would inflate to {_mib(declared)}, over the limit of {_mib(limits.max_zip_bytes)}: not read"
        )
    return ""


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, budget: int) -> bytes | None:
    """The member's bytes, or None once more than `budget` bytes come out (whatever it declared)."""
    chunks: list[bytes] = []
    total = 0
    with archive.open(info) as member:
        while chunk := member.read(READ_CHUNK):
            total += len(chunk)
            if total > budget:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _parse(content: bytes) -> tuple[list[Any] | None, str]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte 0x{content[exc.start]:02x} at offset {exc.start}): not read"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON, perhaps truncated ({exc.msg} at line {exc.lineno}, column {exc.colno}): not read"
    except RecursionError:
        return None, "not valid JSON (nested too deeply): not read"
    if not isinstance(data, list):
        return None, f"expected a JSON list of records, found {type(data).__name__}: not read"
    return data, ""


def _file_kind(records: list[Any], hint: Literal["topic", "task"] | None) -> FileKind:
    """A task file by content (its records carry seat weights and a veto group), else by location."""
    if any(isinstance(raw, dict) and ("seat_weights" in raw or "veto_party_name" in raw) for raw in records):
        return "task"
    return hint or "topic"


# Planning --------------------------------------------------------------------------------------


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
        self._merge(file_report, ref, record, content_hash, topic, stances)
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

    def _merge(
        self,
        file_report: FileReport,
        ref: str,
        record: RecordIn,
        content_hash: str,
        topic: str,
        stances: list[StancePlan],
    ) -> None:
        plan = self.records.get(content_hash)
        if plan is None:
            self.records[content_hash] = RecordPlan(
                content_hash=content_hash,
                title=record.title,
                background=record.background,
                resolution=record.resolution,
                term=record.parliament_terms,
                topics=[topic],
                total_score=record.total_score,
                total_choice=record.total_choice,
                stances={stance.group: stance for stance in stances},
                origin=(file_report.name, ref),
            )
            return
        if topic not in plan.topics:
            plan.topics.append(topic)
        if plan.total_score is None:
            plan.total_score, plan.total_choice = record.total_score, record.total_choice
        elif record.total_score is not None and not math.isclose(plan.total_score, record.total_score, abs_tol=1e-9):
            file_report.problem(
                ref, "total_score", f"conflicts with {plan.origin[0]} ({plan.origin[1]}): kept the first"
            )
        for stance in stances:
            first = plan.stances.get(stance.group)
            if first is None:
                plan.stances[stance.group] = stance
            elif not stances_agree(first.vote_and_text, stance.vote_and_text):
                file_report.problem(
                    ref,
                    stance.origin.field,
                    f"{stance.group} stance conflicts with {first.origin.file} ({first.origin.record}): kept the first",
                )

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


def stances_agree(first: tuple[str, float, int], other: tuple[str, float, int]) -> bool:
    """Two versions of one group's stance on one record: (text, score, choice) alike?"""
    return first[0] == other[0] and first[2] == other[2] and math.isclose(first[1], other[1], abs_tol=1e-9)
