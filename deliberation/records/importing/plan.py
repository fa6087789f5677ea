"""The plan of an import: the records, stances and tasks it will write (keyed by content hash),
with its report; records.services writes it in one transaction."""

from dataclasses import dataclass

from deliberation.records.importing.report import ImportReport, Problem


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
