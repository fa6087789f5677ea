"""Judge calibrations: one judge (and judge model) measured against the real votes of a record set."""

from django.conf import settings
from django.db import models


class Calibration(models.Model):
    """The pairs a judge scored (real adopted resolution x group with a real vote) and their metrics.

    `results` is engine.calibration.calibration_metrics plus `isotonic` (the map fitted on one split
    of records, raw and calibrated metrics on the other); `pairs` is every scored pair, so the page
    can draw them and a calibrated judge can be refitted without a model call.
    """

    judge = models.CharField(max_length=40)
    judge_model = models.CharField(max_length=200, blank=True, help_text="Empty for judges that call no model.")
    record_set = models.ForeignKey("records.RecordSet", on_delete=models.CASCADE, related_name="calibrations")
    record_set_version = models.ForeignKey(
        "records.RecordSetVersion", null=True, on_delete=models.PROTECT, related_name="calibrations"
    )
    params = models.JSONField(default=dict, help_text="topic, limit, seed, resamples, split.")
    results = models.JSONField(default=dict)
    pairs = models.JSONField(default=list)
    errors = models.JSONField(default=list, help_text="Pairs the judge could not score (model errors), with why.")
    seconds = models.FloatField(default=0.0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["record_set", "judge", "judge_model", "-created_at"])]

    def __str__(self) -> str:
        model = f" on {self.judge_model}" if self.judge_model else ""
        return f"calibration {self.pk}: {self.judge}{model}"
