"""Reads of records."""

from django.db.models import Count, QuerySet

from deliberation.records.models import RecordSet


def record_set_list() -> QuerySet[RecordSet]:
    return RecordSet.objects.annotate(
        record_count=Count("records", distinct=True), task_count=Count("tasks", distinct=True)
    ).order_by("name")
