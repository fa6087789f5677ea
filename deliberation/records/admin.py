from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from deliberation.records.models import BenchmarkTask, PartyGroup, Record, RecordSet, Stance, Topic


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


@admin.register(RecordSet)
class RecordSetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at", "record_count", "task_count")
    search_fields = ("name", "description")
    readonly_fields = ("created_at",)

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
