"""Writes of records: importing EuroCon / PoliCon record sets."""

import time
from collections.abc import Sequence
from pathlib import Path

from django.db import transaction
from django.db.models import Model

from deliberation.records.importer import ImportPlan, ImportReport, Problem, import_plan, stances_agree
from deliberation.records.models import BenchmarkTask, PartyGroup, Record, RecordSet, Stance, Topic


def records_import(*, paths: Sequence[Path], name: str, description: str = "") -> ImportReport:
    """Import EuroCon / PoliCon files into the record set `name` (created when it is new).

    paths: JSON files (topic or task files, told apart by content, else by location), folders laid
    out like the EuroCon release (topic_datas/*.json, task_datas/{2,4,6}/*.json) and zip archives
    of either, read in memory. All of them go into the one record set.

    Everything is read and validated first; then, if anything is worth keeping, it is written in
    one transaction, so a failure while writing leaves the database as it was. A file that cannot
    be read or parsed at all (missing, not UTF-8, bad or truncated JSON, an unsafe zip member) is
    reported and the rest is still imported; a bad record or stance is skipped and reported with
    its file, record id (or position) and field. Records are recognised by content, so the same
    issue from a topic file and a task file is one record (stances merged, the first of two
    differing versions kept and the conflict reported) and an issue under two topics gets both.
    Importing the same data again adds nothing; an import that keeps nothing writes nothing, not
    even the record set.
    """
    started = time.perf_counter()
    plan = import_plan(paths=paths, known_groups=_known_group_codes(), record_set=name)
    if plan.report.kept:
        _write(plan, name=name, description=description)
    plan.report.seconds = time.perf_counter() - started
    return plan.report


def _known_group_codes() -> dict[str, list[str]]:
    codes: dict[str, list[str]] = {}
    for term, code in PartyGroup.objects.values_list("term", "code"):
        codes.setdefault(term, []).append(code)
    return codes


@transaction.atomic
def _write(plan: ImportPlan, *, name: str, description: str) -> None:
    report = plan.report
    record_set, report.record_set_created = RecordSet.objects.get_or_create(
        name=name, defaults={"description": description}
    )
    group_ids = {(term, code): pk for pk, term, code in PartyGroup.objects.values_list("pk", "term", "code")}
    topic_ids = _topic_ids({topic for record in plan.records.values() for topic in record.topics})

    record_ids = dict(Record.objects.filter(record_set=record_set).values_list("content_hash", "pk"))
    new_records = [
        Record(
            record_set=record_set,
            content_hash=record.content_hash,
            title=record.title,
            background=record.background,
            resolution=record.resolution,
            term=record.term,
            real_total_score=record.total_score,
            real_total_choice=record.total_choice,
        )
        for record in plan.records.values()
        if record.content_hash not in record_ids
    ]
    Record.objects.bulk_create(new_records)
    record_ids.update((record.content_hash, record.pk) for record in new_records)
    report.records_new = len(new_records)

    through = Record.topics.through
    linked = set(through.objects.filter(record__record_set=record_set).values_list("record_id", "topic_id"))
    links = {
        (record_ids[record.content_hash], topic_ids[topic])
        for record in plan.records.values()
        for topic in record.topics
    }
    through.objects.bulk_create(
        [through(record_id=record_id, topic_id=topic_id) for record_id, topic_id in sorted(links - linked)]
    )

    stored = {
        (record_id, group_id): (text, score, choice)
        for record_id, group_id, text, score, choice in Stance.objects.filter(
            record__record_set=record_set
        ).values_list("record_id", "group_id", "text", "real_score", "real_choice")
    }
    new_stances = []
    for record in plan.records.values():
        for stance in record.stances.values():
            key = (record_ids[record.content_hash], group_ids[(record.term, stance.group)])
            if key not in stored:
                new_stances.append((*key, stance.text, stance.score, stance.choice))
            elif not stances_agree(stored[key], stance.vote_and_text):
                message = f"{stance.group} stance differs from the one already stored: kept the stored one"
                _conflict(report, stance.origin, message)
    _insert_rows(Stance, ("record", "group", "text", "real_score", "real_choice"), new_stances)
    report.stances_new = len(new_stances)

    stored_tasks = set(BenchmarkTask.objects.filter(record_set=record_set).values_list("content_hash", flat=True))
    new_tasks = [
        (
            record_set.pk,
            record_ids[task.record_hash],
            topic_ids[task.topic],
            task.party_count,
            list(task.groups),
            list(task.seat_weights),
            task.veto_group,
            task.content_hash,
        )
        for task in plan.tasks.values()
        if task.content_hash not in stored_tasks
    ]
    _insert_rows(
        BenchmarkTask,
        ("record_set", "record", "topic", "party_count", "groups", "seat_weights", "veto_group", "content_hash"),
        new_tasks,
    )
    report.tasks_new = len(new_tasks)


def _insert_rows(model: type[Model], field_names: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """INSERT rows (values in field_names order) with one executemany.

    For the tens of thousands of stances and tasks of a release, bulk_create's per-object work
    (model instances, per-field SQL compilation, and the query log under DEBUG) was most of the
    import's time; each value still goes through its field's get_db_prep_save (JSON included).
    """
    if not rows:
        return
    db = transaction.get_connection()  # the connection itself: the proxy's per-access lookup adds up
    fields = [model._meta.get_field(name) for name in field_names]
    quote = db.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        quote(model._meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    prepared = [[field.get_db_prep_save(value, db) for field, value in zip(fields, row)] for row in rows]
    with db.cursor() as cursor:
        cursor.executemany(sql, prepared)


def _topic_ids(names: set[str]) -> dict[str, int]:
    existing = dict(Topic.objects.filter(name__in=names).values_list("name", "pk"))
    Topic.objects.bulk_create([Topic(name=name) for name in sorted(names - set(existing))])
    return dict(Topic.objects.filter(name__in=names).values_list("name", "pk"))


def _conflict(report: ImportReport, origin: Problem, message: str) -> None:
    report.file(origin.file).problem(origin.record, origin.field, message)
