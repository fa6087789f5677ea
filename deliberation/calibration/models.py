"""Judge calibrations: one judge (and judge model) measured against the real votes of a record set."""

from django.conf import settings
from django.db import models


class Calibration(models.Model):
    """The pairs a judge scored (real adopted resolution x group with a real vote) and their metrics.

    `results` is engine.calibration.calibration_metrics plus `isotonic` (the map fitted on one split
    of records, raw and calibrated metrics on the other); `pairs` is every scored pair, so the page
    can draw them and a calibrated judge can be refitted without a model call.

    Played as a run is (calibration.services): created queued, taken by a task (running, with a
    heartbeat), its scores stored in chunks (CalibrationScore) so that a task that dies leaves
    them and the next one goes on from there; `results`, `pairs` and `errors` are written when
    it finishes. An experiment's calibration cell has `experiment` and `cell` (unique together).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

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
    # A row written with its results (as before calibrations were played by tasks) is finished;
    # calibration.services.calibration_create writes QUEUED ones.
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.FINISHED, db_index=True)
    total = models.PositiveIntegerField(default=0, help_text="Scores to make: pairs x (1 + probes + reason check).")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Task attempts so far.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the task playing it.")
    error = models.TextField(blank=True, help_text="Why it failed.")
    experiment = models.ForeignKey(
        "runs.Experiment", null=True, blank=True, on_delete=models.CASCADE, related_name="calibrations"
    )
    cell = models.CharField(max_length=300, blank=True, help_text="The experiment's calibration cell it plays.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["record_set", "judge", "judge_model", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "cell"],
                condition=models.Q(experiment__isnull=False),
                name="calibration_cell_once_per_experiment",
            )
        ]

    def __str__(self) -> str:
        model = f" on {self.judge_model}" if self.judge_model else ""
        return f"calibration {self.pk}: {self.judge}{model}"


class CalibrationScore(models.Model):
    """One score of a calibration being played: item `index` (calibration.services.calibration_items'
    order) in one `part` ("judge", a probe's layout, "reason"). `data` is what the finish reads back
    (a Pair, a reason-check row, or {"error": why}). Deleted when the calibration finishes."""

    calibration = models.ForeignKey(Calibration, on_delete=models.CASCADE, related_name="scores", db_index=False)
    part = models.CharField(max_length=40)
    index = models.PositiveIntegerField()
    data = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["calibration", "part", "index"], name="calibration_score_once")]

    def __str__(self) -> str:
        return f"calibration {self.calibration_id} {self.part} {self.index}"
