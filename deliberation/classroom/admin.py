from django.contrib import admin

from deliberation.classroom.models import ClassSession, Student


class StudentInline(admin.TabularInline):
    model = Student
    extra = 0
    fields = ("name", "group", "muted", "removed", "connections", "last_seen", "joined_at")
    readonly_fields = ("connections", "last_seen", "joined_at")


@admin.register(ClassSession)
class ClassSessionAdmin(admin.ModelAdmin):
    list_display = ("code", "teacher", "scenario", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("code", "teacher__username")
    raw_id_fields = ("run", "scenario", "teacher")
    readonly_fields = ("code", "created_at", "started_at", "ended_at", "deadline", "remaining")
    inlines = [StudentInline]
