"""Reads of records, and their translation into the engine's plain data."""

from collections.abc import Sequence

from django.db.models import Count, Prefetch, QuerySet

from deliberation.engine.scenario import Group, RecordView, Scenario
from deliberation.records.models import BenchmarkTask, Record, RecordSet, Stance


def record_set_list() -> QuerySet[RecordSet]:
    return RecordSet.objects.annotate(
        record_count=Count("records", distinct=True), task_count=Count("tasks", distinct=True)
    ).order_by("name")


def record_set_get(*, name: str) -> RecordSet:
    try:
        return RecordSet.objects.get(name=name)
    except RecordSet.DoesNotExist:
        known = ", ".join(RecordSet.objects.values_list("name", flat=True)) or "none yet"
        raise RecordSet.DoesNotExist(f"no record set named {name!r} (known: {known})") from None


def _stances_with_groups() -> Prefetch:
    return Prefetch("stances", queryset=Stance.objects.select_related("group"))


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
            BenchmarkTask.objects.filter(record_set=record_set, party_count=count)
            .select_related("record", "topic")
            .prefetch_related(Prefetch("record__stances", queryset=Stance.objects.select_related("group")))
            .order_by("id")
        )
        if topic:
            queryset = queryset.filter(topic__name=topic)
        tasks.extend(queryset[:limit] if limit else queryset)
    return tasks


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
    records = Record.objects.filter(record_set=record_set).prefetch_related("topics").order_by("id")
    for record in records:
        for topic in record.topics.all():
            pool.append(record_view(record, topic=topic.name))
    return pool


def record_search(
    *, topic: str | None = None, term: str | None = None, query: str | None = None, record_set: str | None = None
) -> QuerySet[Record]:
    records = Record.objects.select_related("record_set").prefetch_related("topics").annotate(
        stance_count=Count("stances", distinct=True)
    )
    if record_set:
        records = records.filter(record_set__name=record_set)
    if topic:
        records = records.filter(topics__name=topic)
    if term:
        records = records.filter(term=term)
    if query:
        records = records.filter(title__icontains=query)
    return records.filter(stance_count__gte=2).order_by("record_set__name", "id")
