"""Writes of records: importing EuroCon / PoliCon record sets."""

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Model

from deliberation.errors import Invalid
from deliberation.records.importing.merge import stances_agree
from deliberation.records.importing.plan import ImportPlan
from deliberation.records.importing.planner import import_plan
from deliberation.records.importing.report import ImportReport, Problem
from deliberation.records.importing.sources import MAX_FILE_BYTES, ReadLimits
from deliberation.records.models import (
    BenchmarkTask,
    GroupAlias,
    PartyGroup,
    Record,
    RecordSet,
    RecordSetVersion,
    RecordUpload,
    RecordUploadFile,
    Stance,
    Topic,
)
from worker.enqueue import task_enqueue

logger = logging.getLogger(__name__)


Progress = Callable[[float, str], None]  # (fraction done 0..1, what is happening)


def read_limits() -> ReadLimits:
    return ReadLimits(
        max_file_bytes=min(MAX_FILE_BYTES, settings.HEMICYCLE_UPLOAD_MAX_UNCOMPRESSED_BYTES),
        max_zip_members=settings.HEMICYCLE_UPLOAD_MAX_ZIP_MEMBERS,
        max_zip_bytes=settings.HEMICYCLE_UPLOAD_MAX_UNCOMPRESSED_BYTES,
    )


def records_check(
    *, paths: Sequence[Path], name: str, names: Mapping[Path, str] | None = None, progress: Progress | None = None
) -> ImportPlan:
    """Read and validate the files as an import would (group aliases applied); write nothing."""
    return import_plan(
        paths=paths,
        known_groups=known_group_codes(),
        aliases=_group_aliases(),
        record_set=name,
        names=names,
        limits=read_limits(),
        progress=(lambda done, total: progress(PLAN_SHARE * done / total, f"checked {done} of {total} files"))
        if progress
        else None,
    )


def records_import(
    *,
    paths: Sequence[Path],
    name: str,
    description: str = "",
    mode: str = RecordSetVersion.Mode.EXTEND,
    note: str = "",
    created_by: AbstractBaseUser | None = None,
    names: Mapping[Path, str] | None = None,
    refuse_unreadable: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import EuroCon / PoliCon files into the record set `name` (created when it is new).

    paths: JSON files (topic or task files, told apart by content, else by location), folders laid
    out like the EuroCon release (topic_datas/*.json, task_datas/{2,4,6}/*.json) and zip archives
    of either, read in memory. All of them go into the one record set. The command line and the
    browser upload (a Celery task) both import through here.

    Everything is read and validated first; then, if anything is worth keeping, it is written in
    one transaction, so a failure while writing leaves the database as it was. A file that cannot
    be read or parsed at all (missing, not UTF-8, bad or truncated JSON, over a size limit, an
    unsafe zip) is reported and the rest is still imported, unless refuse_unreadable (uploads),
    when nothing is written at all; a bad record or stance is skipped and reported with
    its file, record id (or position) and field. Records are recognised by content, so the same
    issue from a topic file and a task file is one record (stances merged, the first of two
    differing versions kept and the conflict reported) and an issue under two topics gets both.
    Importing the same data again adds nothing; an import that keeps nothing writes nothing, not
    even the record set.

    Versions: each import that changes what the set holds makes a new RecordSetVersion, the
    set's current one. mode "extend" (the default) keeps the previous version's records and adds
    the imported ones; "replace" makes a version of exactly the imported records. A version equal
    to the current one is not made again.
    """
    started = time.perf_counter()
    plan = records_check(paths=paths, name=name, names=names, progress=progress)
    if plan.report.kept and not (refuse_unreadable and plan.report.unreadable):
        _write(plan, name=name, description=description, mode=mode, note=note, created_by=created_by, progress=progress)
    plan.report.seconds = time.perf_counter() - started
    if progress:
        progress(1.0, "finished")
    return plan.report


PLAN_SHARE = 0.5  # of the progress bar: reading and checking; the rest is writing


def records_import_plan(
    *,
    plan: ImportPlan,
    name: str,
    description: str = "",
    mode: str = RecordSetVersion.Mode.EXTEND,
    note: str = "",
    created_by: AbstractBaseUser | None = None,
) -> ImportReport:
    """Write a plan that another reader made (records.howtheyvote) as records_import writes its
    own: nothing when it keeps nothing, else one transaction, a new version when the set changes."""
    started = time.perf_counter()
    if plan.report.kept:
        _write(plan, name=name, description=description, mode=mode, note=note, created_by=created_by, progress=None)
    plan.report.seconds += time.perf_counter() - started
    return plan.report


def known_group_codes() -> dict[str, list[str]]:
    codes: dict[str, list[str]] = {}
    for term, code in PartyGroup.objects.values_list("term", "code"):
        codes.setdefault(term, []).append(code)
    return codes


def _group_aliases() -> dict[tuple[str, str], str]:
    return {(term, alias): code for term, alias, code in GroupAlias.objects.values_list("term", "alias", "group__code")}


@transaction.atomic
def _write(
    plan: ImportPlan,
    *,
    name: str,
    description: str,
    mode: str,
    note: str,
    created_by: AbstractBaseUser | None,
    progress: Progress | None,
) -> None:
    def step(fraction: float, label: str) -> None:
        if progress:
            progress(PLAN_SHARE + (1 - PLAN_SHARE) * fraction, label)

    report = plan.report
    step(0.0, "writing records")
    record_set, report.record_set_created = RecordSet.objects.get_or_create(
        name=name, defaults={"description": description}
    )
    # Imports into one set take turns (on PostgreSQL): each version builds on the one before.
    record_set = (
        RecordSet.objects.select_for_update(of=("self",)).select_related("current_version").get(pk=record_set.pk)
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
    step(0.2, "linking topics")

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

    step(0.3, "writing stances")
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

    step(0.7, "writing benchmark tasks")
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

    step(0.9, "making the version")
    imported = {record_ids[content_hash] for content_hash in plan.records}
    version, report.version_created = _version_make(
        record_set=record_set, record_ids=imported, mode=mode, note=note, created_by=created_by
    )
    report.version = version.number


def _version_make(
    *, record_set: RecordSet, record_ids: set[int], mode: str, note: str, created_by: AbstractBaseUser | None
) -> tuple[RecordSetVersion, bool]:
    """The set's new current version, or its current one when the records would be the same."""
    current = record_set.current_version
    previous = set(current.records.values_list("pk", flat=True)) if current else set()
    wanted = previous | record_ids if mode == RecordSetVersion.Mode.EXTEND else record_ids
    if current is not None and wanted == previous:
        return current, False
    version = RecordSetVersion.objects.create(
        record_set=record_set,
        number=(current.number if current else 0) + 1,
        note=note,
        mode=mode,
        created_by=created_by,
    )
    through = RecordSetVersion.records.through
    through.objects.bulk_create([through(recordsetversion_id=version.pk, record_id=pk) for pk in sorted(wanted)])
    RecordSet.objects.filter(pk=record_set.pk).update(current_version=version)
    record_set.current_version = version
    return version, True


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


# Uploads from the browser -----------------------------------------------------------------------


class UploadRefused(Invalid):
    """An upload that is not stored or not started, with the reason in an admin's words."""


def record_upload_create(
    *,
    files: Sequence[UploadedFile],
    record_set_name: str,
    created_by: AbstractBaseUser,
    description: str = "",
    note: str = "",
    mode: str = RecordSetVersion.Mode.EXTEND,
) -> RecordUpload:
    """Store the uploaded files and queue their check (record_upload_check, in a worker).

    Files over HEMICYCLE_UPLOAD_MAX_BYTES are refused before anything is stored. The web process
    only copies the files; reading them (a zip member by member) is the worker's job, so an
    upload that inflates to gigabytes never touches the web process's memory.
    """
    if not files:
        raise UploadRefused("Choose at least one file: EuroCon / PoliCon JSON files or a zip archive of them.")
    limit = settings.HEMICYCLE_UPLOAD_MAX_BYTES
    for uploaded in files:
        if uploaded.size > limit:
            raise UploadRefused(
                f"{uploaded.name} is {_mib(uploaded.size)}, over the upload limit of {_mib(limit)}: "
                "nothing was stored. Split it into smaller files or zip archives."
            )
    with transaction.atomic():
        upload = RecordUpload.objects.create(
            record_set_name=record_set_name,
            description=description,
            note=note,
            mode=mode,
            created_by=created_by,
            status=RecordUpload.Status.CHECKING,
        )
        for index, uploaded in enumerate(files):
            # Stored under a name of ours; the admin's file name is kept for the reports only.
            suffix = Path(uploaded.name).suffix.lower()
            stored_name = f"{index:03d}{suffix if suffix in {'.json', '.zip'} else '.upload'}"
            RecordUploadFile.objects.create(
                upload=upload, file=File(uploaded, name=stored_name), name=uploaded.name[:255], size=uploaded.size
            )
        transaction.on_commit(partial(_enqueue_check, upload.pk))
    return upload


@contextmanager
def _upload_taken(upload_id: int, statuses: Collection[str]) -> Iterator[RecordUpload | None]:
    """The upload while it is in one of statuses, held by this task alone until the block ends;
    None when it is not in them or another task holds it (that one does the work: leave it).

    One task can run twice at once (acks_late redelivers a task whose worker has not acked it yet;
    a test or an operator may apply a queued task in process beside a worker), and two runs that
    both read the upload, then wrote it, did one check or import twice: a late check wrote
    "checked" over an import the admin had queued since, and no import ran. On
    PostgreSQL the block is one transaction holding the upload's row lock (SELECT ... FOR UPDATE
    SKIP LOCKED: a second run does not wait, it finds nothing and returns); a killed worker's
    connection takes its lock with it, so the redelivered task finds the upload free, in the same
    status. SQLite has no row locks, and an IMMEDIATE transaction there would hold the whole
    database's write lock while the files are read: there the block only reads the upload (the
    check still writes its result only over "checking").
    """
    if not connection.features.has_select_for_update_skip_locked:
        yield RecordUpload.objects.filter(pk=upload_id, status__in=statuses).first()
        return
    with transaction.atomic():
        yield RecordUpload.objects.select_for_update(skip_locked=True).filter(pk=upload_id, status__in=statuses).first()


def record_upload_check(*, upload_id: int) -> RecordUpload:
    """Check a stored upload as the import would read it (records_check; nothing written to
    records); the Celery task's work. The upload ends CHECKED (ready to import) or REFUSED (a file
    could not be read, or nothing in the files is usable); a refused upload's files are deleted.
    One check at a time (_upload_taken): a second delivery of the task leaves it to the first."""
    with _upload_taken(upload_id, {RecordUpload.Status.CHECKING}) as upload:
        if upload is None:
            return RecordUpload.objects.get(pk=upload_id)
        key = upload_progress_key(upload.pk)

        def progress(fraction: float, label: str) -> None:
            cache.set(key, {"progress": round(fraction / PLAN_SHARE, 3), "label": label}, timeout=24 * 3600)

        report = records_check(**_upload_sources(upload), name=upload.record_set_name, progress=progress).report
        usable = report.kept and not report.unreadable
        if not usable:  # before the status says so: a refused upload never shows files it kept
            record_upload_files_delete(upload=upload)
        # Only over "checking": never over an import the admin has queued since.
        RecordUpload.objects.filter(pk=upload.pk, status=RecordUpload.Status.CHECKING).update(
            check_report=report.as_dict(),
            status=RecordUpload.Status.CHECKED if usable else RecordUpload.Status.REFUSED,
            error=upload_refusal(report),
        )
        cache.delete(key)
    return RecordUpload.objects.get(pk=upload_id)


def record_upload_files_delete(*, upload: RecordUpload) -> None:
    """Delete an upload's stored files (its reports stay): a refused upload keeps nothing."""
    for item in upload.files.all():
        item.file.delete(save=False)
    upload.files.all().delete()


def upload_refusal(report: ImportReport) -> str:
    """Why an upload cannot be imported, in an admin's words; empty when it can."""
    if report.unreadable:
        names = ", ".join(file.name for file in report.unreadable[:5])
        more = f" and {len(report.unreadable) - 5} more" if len(report.unreadable) > 5 else ""
        return (
            f"{len(report.unreadable)} file(s) could not be read ({names}{more}), so nothing will be written: "
            "see the problems below, fix the files and upload them again."
        )
    if not report.kept:
        return "No record in these files passed the checks, so nothing will be written: see the problems below."
    return ""


def _upload_sources(upload: RecordUpload) -> dict:
    files = list(upload.files.all())
    paths = [Path(item.file.path) for item in files]
    return {"paths": paths, "names": {path: item.name for path, item in zip(paths, files)}}


def record_upload_start(*, upload: RecordUpload, skip_problems: bool = False) -> None:
    """Queue the import of a checked upload (once: a second click does nothing).

    An upload whose check skipped records, stances or tasks is imported only when the admin
    agrees to skip them (skip_problems); otherwise nothing happens and UploadRefused says why.
    """
    if upload.status == RecordUpload.Status.REFUSED:
        raise UploadRefused(upload.error or "This upload cannot be imported.")
    check = upload.check_report or {}
    if check.get("skipped_anything") and not skip_problems:
        raise UploadRefused(
            f"The check skipped {check['records_skipped']} record(s), {check['stances_skipped']} stance(s) and "
            f"{check['tasks_skipped']} task(s) for the problems listed below, so nothing was imported. Fix the "
            "files and upload them again, or tick the box to import the rest without them."
        )
    started = RecordUpload.objects.filter(pk=upload.pk, status=RecordUpload.Status.CHECKED).update(
        status=RecordUpload.Status.QUEUED
    )
    if started:
        transaction.on_commit(partial(_enqueue_upload, upload.pk))


def _enqueue_check(upload_id: int) -> None:
    task_enqueue("deliberation.records.tasks.record_upload_check_task", upload_id=upload_id)


def _enqueue_upload(upload_id: int) -> None:
    task_enqueue("deliberation.records.tasks.record_upload_import_task", upload_id=upload_id)


def upload_progress_key(upload_id: int) -> str:
    return f"record-upload-progress:{upload_id}"


def record_upload_import(*, upload_id: int) -> RecordUpload:
    """Import a queued upload through records_import, as the command line does; the Celery task's work.

    Progress goes to the cache (the import's writes are one transaction, which a reader could
    not see until the end). Nothing is written when any file cannot be read. One import of an
    upload at a time (_upload_taken): a second delivery of the task while the first imports leaves
    it to the first; one redelivered after its worker died imports again (imports are idempotent).
    """
    # Claimed first, in a transaction of its own, so that readers see "importing" while it runs.
    with _upload_taken(upload_id, {RecordUpload.Status.QUEUED, RecordUpload.Status.IMPORTING}) as upload:
        if upload is None:
            return RecordUpload.objects.get(pk=upload_id)
        RecordUpload.objects.filter(pk=upload.pk).update(status=RecordUpload.Status.IMPORTING)
    with _upload_taken(upload_id, {RecordUpload.Status.IMPORTING}) as upload:
        if upload is None:  # another delivery took it in between
            return RecordUpload.objects.get(pk=upload_id)
        _upload_import(upload)
    return RecordUpload.objects.get(pk=upload_id)


def _upload_import(upload: RecordUpload) -> None:
    key = upload_progress_key(upload.pk)

    def progress(fraction: float, label: str) -> None:
        cache.set(key, {"progress": round(fraction, 3), "label": label}, timeout=24 * 3600)

    # Under the upload's lock (PostgreSQL), a savepoint: a failed import leaves the transaction usable.
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            report = records_import(
                **_upload_sources(upload),
                name=upload.record_set_name,
                description=upload.description,
                mode=upload.mode,
                note=upload.note or f"upload {upload.pk}",
                created_by=upload.created_by,
                refuse_unreadable=True,
                progress=progress,
            )
    except Exception as error:  # noqa: BLE001 - the admin must see why; the transaction rolled back
        logger.exception("record upload %s failed", upload.pk)
        RecordUpload.objects.filter(pk=upload.pk).update(
            status=RecordUpload.Status.FAILED, error=f"The import failed and nothing was written: {error}"
        )
        return
    written = report.kept and not report.unreadable
    version = (
        RecordSetVersion.objects.filter(record_set__name=upload.record_set_name, number=report.version).first()
        if written
        else None
    )
    RecordUpload.objects.filter(pk=upload.pk).update(
        status=RecordUpload.Status.DONE if written else RecordUpload.Status.FAILED,
        result_report=report.as_dict(),
        progress=1.0,
        version=version,
        error="" if written else upload_refusal(report),
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
