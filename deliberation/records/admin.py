from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

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


@admin.register(PartyGroup)
class PartyGroupAdmin(admin.ModelAdmin):
    list_display = ("code", "short_label", "term", "seats_at_start", "colour", "label")
    list_filter = ("term",)
    search_fields = ("code", "short_label", "label")


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "record_count")
    search_fields = ("name",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topic]:
        return super().get_queryset(request).annotate(record_count=Count("records"))

    @admin.display(description="records", ordering="record_count")
    def record_count(self, topic: Topic) -> int:
        return topic.record_count


@admin.register(GroupAlias)
class GroupAliasAdmin(admin.ModelAdmin):
    """Map a group code found in uploaded files to a known group of that term (the importer
    applies these before it rejects a code as unknown)."""

    list_display = ("alias", "term", "group")
    list_filter = ("term",)
    search_fields = ("alias", "group__code")
    autocomplete_fields = ("group",)


@admin.register(RecordSetVersion)
class RecordSetVersionAdmin(admin.ModelAdmin):
    list_display = ("record_set", "number", "created_at", "created_by", "mode", "record_count", "note", "compare")
    list_filter = ("record_set", "mode")
    readonly_fields = ("record_set", "number", "created_at", "created_by", "mode")
    fields = ("record_set", "number", "created_at", "created_by", "mode", "note")

    def get_queryset(self, request: HttpRequest) -> QuerySet[RecordSetVersion]:
        return (
            super()
            .get_queryset(request)
            .select_related("record_set", "created_by")
            .annotate(record_count=Count("records"))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from imports

    @admin.display(description="records", ordering="record_count")
    def record_count(self, version: RecordSetVersion) -> int:
        return version.record_count

    @admin.display(description="compare")
    def compare(self, version: RecordSetVersion) -> str:
        if version.number < 2:
            return "–"
        url = reverse("record-set-compare", args=[version.record_set_id])
        return format_html(
            '<a href="{}?old={}&amp;new={}">with version {}</a>',
            url,
            version.number - 1,
            version.number,
            version.number - 1,
        )


class RecordUploadFileInline(admin.TabularInline):
    model = RecordUploadFile
    extra = 0
    fields = ("name", "size", "file")
    readonly_fields = fields
    can_delete = False


@admin.register(RecordUpload)
class RecordUploadAdmin(admin.ModelAdmin):
    """Uploads and their reports; "Add" opens the upload page (check, then import with progress)."""

    list_display = ("id", "record_set_name", "status", "created_by", "created_at", "version")
    list_filter = ("status",)
    readonly_fields = (
        "record_set_name",
        "description",
        "note",
        "mode",
        "status",
        "created_by",
        "created_at",
        "version",
        "error",
        "report_text",
        "page",
    )
    exclude = ("check_report", "result_report", "progress")
    inlines = (RecordUploadFileInline,)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        return redirect("record-upload")

    @admin.display(description="report")
    def report_text(self, upload: RecordUpload) -> str:
        report = upload.result_report or upload.check_report or {}
        return format_html("<pre>{}</pre>", report.get("text", ""))

    @admin.display(description="upload page")
    def page(self, upload: RecordUpload) -> str:
        return format_html('<a href="{}">open</a>', reverse("record-upload-detail", args=[upload.pk]))


@admin.register(RecordSet)
class RecordSetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at", "current_version", "record_count", "task_count", "links")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "current_version")

    @admin.display(description="")
    def links(self, record_set: RecordSet) -> str:
        return format_html(
            '<a href="{}">browse</a> · <a href="{}">compare versions</a> · <a href="{}?record_set={}">upload</a>',
            reverse("record-set", args=[record_set.pk]),
            reverse("record-set-compare", args=[record_set.pk]),
            reverse("record-upload"),
            record_set.name,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[RecordSet]:
        return (
            super()
            .get_queryset(request)
            .annotate(record_count=Count("records", distinct=True), task_count=Count("tasks", distinct=True))
        )

    @admin.display(description="records", ordering="record_count")
    def record_count(self, record_set: RecordSet) -> int:
        return record_set.record_count

    @admin.display(description="tasks", ordering="task_count")
    def task_count(self, record_set: RecordSet) -> int:
        return record_set.task_count


class StanceInline(admin.TabularInline):
    model = Stance
    extra = 0
    fields = ("group", "real_score", "real_choice", "text")
    autocomplete_fields = ("group",)


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ("short_title", "term", "topic_names", "stance_count", "record_set")
    list_filter = ("term", "topics", "record_set")
    search_fields = ("title",)
    list_select_related = ("record_set",)
    filter_horizontal = ("topics",)
    readonly_fields = ("content_hash",)
    inlines = (StanceInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Record]:
        return super().get_queryset(request).annotate(stance_count=Count("stances")).prefetch_related("topics")

    @admin.display(description="title", ordering="title")
    def short_title(self, record: Record) -> str:
        return str(record)

    @admin.display(description="topics")
    def topic_names(self, record: Record) -> str:
        return ", ".join(topic.name for topic in record.topics.all())

    @admin.display(description="stances", ordering="stance_count")
    def stance_count(self, record: Record) -> int:
        return record.stance_count


@admin.register(BenchmarkTask)
class BenchmarkTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "record", "party_count", "topic", "group_list", "veto_group", "record_set")
    list_filter = ("party_count", "record__term", "topic", "record_set")
    search_fields = ("record__title",)
    list_select_related = ("record", "topic", "record_set")
    raw_id_fields = ("record",)
    readonly_fields = ("content_hash",)

    @admin.display(description="groups (seat share)")
    def group_list(self, task: BenchmarkTask) -> str:
        return ", ".join(f"{code} {weight:.0%}" for code, weight in zip(task.groups, task.seat_weights))
