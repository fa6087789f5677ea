from django.contrib import admin

from deliberation.calibration.models import Calibration


@admin.register(Calibration)
class CalibrationAdmin(admin.ModelAdmin):
    list_display = ("id", "judge", "judge_model", "record_set_version", "created_at")
    list_filter = ("judge",)
    readonly_fields = ("results", "pairs", "errors", "params")
