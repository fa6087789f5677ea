"""Merging records by content hash: the same issue read from several files (a topic file and up to
three task files in EuroCon) becomes one record; the first reading wins and every conflict of a
later one is reported."""

import math

from deliberation.records.importing.plan import RecordPlan, StancePlan
from deliberation.records.importing.report import FileReport
from deliberation.records.importing.schema import RecordIn


def record_merge(
    *,
    records: dict[str, RecordPlan],
    file_report: FileReport,
    ref: str,
    record: RecordIn,
    content_hash: str,
    topic: str,
    stances: list[StancePlan],
) -> None:
    """Add the record to `records`, or merge it into the plan already there (topics, total vote,
    groups that plan lacked); conflicts are reported on `file_report` against entry `ref`."""
    plan = records.get(content_hash)
    if plan is None:
        records[content_hash] = RecordPlan(
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
        file_report.problem(ref, "total_score", f"conflicts with {plan.origin[0]} ({plan.origin[1]}): kept the first")
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


def stances_agree(first: tuple[str, float, int], other: tuple[str, float, int]) -> bool:
    """Two versions of one group's stance on one record: (text, score, choice) alike?"""
    return first[0] == other[0] and first[2] == other[2] and math.isclose(first[1], other[1], abs_tol=1e-9)
