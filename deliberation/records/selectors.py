"""Reads of records, and their translation into the engine's plain data."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, F, Prefetch, Q, QuerySet, prefetch_related_objects

from deliberation.engine.scenario import Group, RecordView, Scenario
from deliberation.records.models import (
    BenchmarkTask,
    PartyGroup,
    Record,
    RecordSet,
    RecordSetVersion,
    RecordUpload,
    Stance,
    Topic,
    seating_key,
)


def group_labels() -> dict[str, str]:
    """Group code -> the short label people read ("SD" -> "S&D"); a code's labels agree across
    terms (fixtures/ep_groups.json), so one per code."""
    rows = PartyGroup.objects.order_by("term").values_list("code", "short_label")
    return {code: label or code for code, label in rows}


def topic_task_counts() -> list[tuple[str, int]]:
    """Each topic with its number of benchmark tasks, by name (topics without tasks left out)."""
    rows = Topic.objects.annotate(task_count=Count("tasks")).filter(task_count__gt=0).order_by("name")
    return [(topic.name, topic.task_count) for topic in rows]


def _term_number(term: str) -> int:
    digits = "".join(ch for ch in term if ch.isdigit())
    return int(digits) if digits else 0


def import_report_tables(report: dict) -> dict:
    """An import report's counts as people read them: party counts and terms in number order,
    topics by name, stances per term with each group's label, seated left to right."""
    labels = dict(
        ((term, code), label or code)
        for term, code, label in PartyGroup.objects.values_list("term", "code", "short_label")
    )
    by_term: dict[str, list[dict]] = {}
    for key, count in (report.get("stances_by_group") or {}).items():
        term, _, code = key.partition(" ")
        by_term.setdefault(term, []).append({"code": code, "label": labels.get((term, code), code), "count": count})
    return {
        "tasks_by_party_count": sorted(((int(k), n) for k, n in (report.get("tasks_by_party_count") or {}).items())),
        "records_by_topic": sorted((report.get("records_by_topic") or {}).items()),
        "records_by_term": sorted(
            (report.get("records_by_term") or {}).items(), key=lambda item: _term_number(item[0])
        ),
        "stances_by_term": [
            {"term": term, "groups": sorted(rows, key=lambda row: (seating_key(row["code"]), row["code"]))}
            for term, rows in sorted(by_term.items(), key=lambda item: _term_number(item[0]))
        ],
    }


def record_set_list() -> QuerySet[RecordSet]:
    """Record sets with the size of their current version."""
    return (
        RecordSet.objects.select_related("current_version")
        .annotate(
            record_count=Count("current_version__records", distinct=True),
            task_count=Count("tasks", filter=Q(tasks__record__versions=F("current_version")), distinct=True),
        )
        .order_by("name")
    )


def current_records(queryset: QuerySet[Record]) -> QuerySet[Record]:
    """Only records in their set's current version (what browsing, scenarios and the benchmark see)."""
    return queryset.filter(versions=F("record_set__current_version"))


def record_set_get(*, name: str) -> RecordSet:
    try:
        return RecordSet.objects.get(name=name)
    except RecordSet.DoesNotExist:
        known = ", ".join(RecordSet.objects.values_list("name", flat=True)) or "none yet"
        raise RecordSet.DoesNotExist(f"no record set named {name!r} (known: {known})") from None


def stances_with_groups(lookup: str = "stances") -> Prefetch:
    """A record's stances with their groups (`lookup`: the path to them from the rows read)."""
    return Prefetch(lookup, queryset=Stance.objects.select_related("group"))


def benchmark_task_list(
    *,
    record_set: RecordSet,
    party_counts: Sequence[int] = (2, 4, 6),
    topic: str | None = None,
    limit: int | None = None,
) -> list[BenchmarkTask]:
    """The record set's tasks, `limit` per party count, with everything a scenario needs."""
    tasks: list[BenchmarkTask] = []
    for count in party_counts:
        queryset = (
            BenchmarkTask.objects.filter(
                record_set=record_set, party_count=count, record__versions=record_set.current_version_id
            )
            .select_related("record", "topic")
            .prefetch_related(Prefetch("record__stances", queryset=Stance.objects.select_related("group")))
            .order_by("id")
        )
        if topic:
            queryset = queryset.filter(topic__name=topic)
        tasks.extend(queryset[:limit] if limit else queryset)
    return tasks


def record_stances(*, record: Record) -> dict[str, Stance]:
    """The record's stances by group code, with their groups; no query when they were prefetched
    with the record (an experiment's top-up reads each task's once: runs.experiments)."""
    prefetch_related_objects([record], stances_with_groups())
    return {stance.group.code: stance for stance in record.stances.all()}


def record_view(record: Record, *, topic: str) -> RecordView:
    return RecordView(
        key=str(record.pk),
        title=record.title,
        background=record.background,
        resolution=record.resolution,
        topic=topic,
        term=record.term,
    )


def engine_group(stance: Stance) -> Group:
    return Group(
        code=stance.group.code,
        stance=stance.text,
        label=stance.group.short_label or stance.group.label,
        real_score=stance.real_score,
        real_choice=stance.real_choice,
    )


def task_scenario(task: BenchmarkTask, *, goal: str) -> Scenario:
    """A benchmark task under one goal, groups in the task's order with its seat weights."""
    stances = {stance.group.code: stance for stance in task.record.stances.all()}
    return Scenario(
        record=record_view(task.record, topic=task.topic.name),
        groups=tuple(engine_group(stances[code]) for code in task.groups),
        seats=dict(zip(task.groups, task.seat_weights)),
        goal=goal,
        veto_group=task.veto_group,
    )


def example_pool(*, record_set: RecordSet) -> list[RecordView]:
    """Every record of the set once per topic: the one-shot drafter's examples come from here."""
    pool = []
    records = current_records(Record.objects.filter(record_set=record_set)).prefetch_related("topics").order_by("id")
    for record in records:
        for topic in record.topics.all():
            pool.append(record_view(record, topic=topic.name))
    return pool


def record_search(
    *,
    topic: str | None = None,
    term: str | None = None,
    query: str | None = None,
    record_set: str | None = None,
    min_stances: int = 2,  # a scenario needs two groups; browsing shows every record
) -> QuerySet[Record]:
    records = (
        current_records(Record.objects.select_related("record_set"))
        .prefetch_related("topics")
        .annotate(stance_count=Count("stances", distinct=True))
    )
    if record_set:
        records = records.filter(record_set__name=record_set)
    if topic:
        records = records.filter(topics__name=topic)
    if term:
        records = records.filter(term=term)
    if query:
        records = records.filter(title__icontains=query)
    return records.filter(stance_count__gte=min_stances).order_by("record_set__name", "id")


def record_get(*, record_id: int) -> Record:
    """A record with its set, topics and stances (groups biggest first), for its page."""
    return (
        Record.objects.select_related("record_set").prefetch_related("topics", stances_with_groups()).get(pk=record_id)
    )


def record_version_for_run(*, record: Record) -> RecordSetVersion | None:
    """The version a run on this record plays: the newest of its set's versions that holds it."""
    return (
        RecordSetVersion.objects.filter(record_set_id=record.record_set_id, records=record).order_by("-number").first()
    )


@dataclass(frozen=True)
class VersionDiff:
    old: RecordSetVersion
    new: RecordSetVersion
    added: list[Record]
    removed: list[Record]
    changed: list[tuple[Record, Record]]  # (in old, in new): same title and term, other content


def record_set_versions_compare(*, old: RecordSetVersion, new: RecordSetVersion) -> VersionDiff:
    """Records added, removed and changed from `old` to `new` (changed: same title and term,
    different content hash, so another background, resolution or term text)."""
    old_records = {record.pk: record for record in old.records.all()}
    new_records = {record.pk: record for record in new.records.all()}
    gone = [old_records[pk] for pk in sorted(old_records.keys() - new_records.keys())]
    came = [new_records[pk] for pk in sorted(new_records.keys() - old_records.keys())]
    came_by_key = {(record.title, record.term): record for record in came}
    changed = []
    removed = []
    for record in gone:
        match = came_by_key.pop((record.title, record.term), None)
        if match is None:
            removed.append(record)
        else:
            changed.append((record, match))
    changed_new = {pair[1].pk for pair in changed}
    added = [record for record in came if record.pk not in changed_new]
    return VersionDiff(old=old, new=new, added=added, removed=removed, changed=changed)


def record_upload_list() -> QuerySet[RecordUpload]:
    return RecordUpload.objects.select_related("created_by", "version").prefetch_related("files")
