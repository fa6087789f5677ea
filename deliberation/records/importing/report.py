"""The report of an import: what it read, kept, skipped (and why) and wrote, per file and in all,
as plain data (stored with an upload) and as a text table (the command and the admin show it)."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

FileKind = Literal["topic", "task", "csv", "unreadable"]  # csv: a HowTheyVote.eu export table


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
        lines += text_table(rows, numeric_from=2, rule_before_last=True)
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
            lines.append(
                "Records by term: " + ", ".join(f"{t}: {n:,}" for t, n in sorted(self.records_by_term.items()))
            )
            lines.append(
                "Stances by group: " + ", ".join(f"{g}: {n:,}" for g, n in sorted(self.stances_by_group.items()))
            )
        problems = self.problems
        if problems:
            lines += ["", f"Problems ({len(problems):,}):"]
            lines += text_table(
                [("file", "record", "field", "problem")] + [tuple(problem) for problem in problems[:max_problems]],
                indent="  ",
            )
            if len(problems) > max_problems:
                lines.append(f"  ... and {len(problems) - max_problems:,} more")
        return "\n".join(lines)


def text_table(
    rows: Sequence[Sequence[str]], *, numeric_from: int | None = None, rule_before_last: bool = False, indent: str = ""
) -> list[str]:
    """The rows as aligned lines: the first row a header with a rule under it; columns from
    `numeric_from` on right-aligned; a rule before the last row (a total) if asked."""
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
