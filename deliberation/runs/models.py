"""Runs, their event log, and the completion cache."""

import secrets

from django.conf import settings
from django.db import models

from deliberation.scenarios.models import ScenarioFields, Visibility

# A classroom session's run (deliberation.classroom): people and agent turns append its events.
CLASSROOM_STRATEGY = "classroom"


def new_share_token() -> str:
    return secrets.token_urlsafe(32)


class CachedCompletion(models.Model):
    """Every model completion, keyed by (model, messages, parameters, seed).

    `key` is the SHA-256 of the canonical JSON of those four; a cached re-run makes no call.
    """

    key = models.CharField(max_length=64, unique=True)
    model = models.CharField(max_length=200, db_index=True)
    messages = models.JSONField()
    params = models.JSONField()
    seed = models.BigIntegerField()
    text = models.TextField()
    logprobs = models.JSONField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)
    hits = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.model} {self.key[:12]}"


class Experiment(models.Model):
    """A grid of runs: a scenario source x goals x strategies x models x judges x seeds.

    `spec` is the resolved grid (runs.experiments.ExperimentSpec as JSON): the benchmark task or
    saved scenario ids are fixed at creation, so the cells never change under a running experiment.
    Each cell is played by at most one Run (Run.experiment + Run.cell is unique).
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        FINISHED = "finished"
        CANCELLED = "cancelled"
        CAPPED = "capped"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=200)
    spec = models.JSONField()
    estimate = models.JSONField(default=dict, help_text="Runs, model steps and tokens, per strategy and in all.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    call_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many uncached model steps over the whole experiment."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="experiment_name_per_owner")]

    def __str__(self) -> str:
        return f"experiment {self.name} ({self.status})"


class Run(ScenarioFields):
    """One scenario played once. Its events (RunEvent) are the truth of what happened."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        FINISHED = "finished"
        FAILED = "failed"
        STOPPED = "stopped"

    Visibility = Visibility

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    scenario = models.ForeignKey(
        "scenarios.SavedScenario", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    visibility = models.CharField(max_length=12, choices=Visibility.choices, default=Visibility.PRIVATE)
    share_token = models.CharField(max_length=43, unique=True, default=new_share_token)
    record_set_version = models.ForeignKey(
        "records.RecordSetVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
        help_text="The version of the record's set this run played.",
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Task attempts so far.")
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last sign of life of the task advancing the run (runs.recovery: a silent running run lost its worker).",
    )
    error = models.TextField(blank=True)
    outcome = models.JSONField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    model_seconds = models.FloatField(default=0.0)
    uncached_steps = models.PositiveIntegerField(
        default=0, help_text="Model steps the completion cache did not answer (set when the run finishes)."
    )
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    cell = models.CharField(max_length=300, blank=True, help_text="The experiment grid cell this run plays.")
    # Copies of the outcome that dashboards aggregate over many runs (set when the run finishes).
    goal_value = models.FloatField(
        null=True, blank=True, help_text="The run's own goal: 1 or 0 for a pass goal, the score for a score goal."
    )
    largest_share = models.FloatField(null=True, blank=True, help_text="The largest group's seat share.")
    task = models.ForeignKey(
        "records.BenchmarkTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        help_text="The benchmark task this run plays (its topic picks the one-shot examples).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "cell"],
                condition=models.Q(experiment__isnull=False),
                name="run_cell_once_per_experiment",
            )
        ]
        indexes = [
            # The dashboard reads an experiment's runs through this index alone (an index-only
            # scan on PostgreSQL, a sixth of the wide rows): the count and last finish that key its
            # cache and the columns its aggregates group (dashboards.selectors), and the progress
            # (runs.selectors.experiment_progress). SQLite ignores `include`.
            models.Index(
                fields=["experiment", "status", "finished_at"],
                include=[
                    "judge",
                    "strategy",
                    "model",
                    "goal",
                    "task",
                    "record",
                    "goal_value",
                    "largest_share",
                    "started_at",
                    "uncached_steps",
                    "id",
                ],
                name="run_experiment_results",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.strategy}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in {self.Status.QUEUED, self.Status.RUNNING}

    @property
    def wall_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RunEvent(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=32)
    data = models.JSONField()
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="event_seq_unique")]
        ordering = ["run_id", "seq"]

    def as_message(self) -> dict:
        return {"seq": self.seq, "type": self.type, "at": self.at.isoformat(), "data": self.data}


class RunGroupScore(models.Model):
    """One group's judge score in one finished run, with what the dashboards' per-group views
    compare it to: the group's seat share in the run and its real vote on the run's record.

    Written when the run finishes (runs.group_scores.group_scores_write, from
    runs.services.run_finish), so that the dashboards aggregate these rows in the database
    instead of unnesting every run's outcome JSON. `experiment` and `strategy` are copies of the
    run's (neither changes after the run is created): the views group by them without a join.
    """

    # No index of its own: the unique constraint (run, group) leads with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="group_scores", db_index=False)
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="group_scores"
    )
    strategy = models.CharField(max_length=32)
    group = models.CharField(max_length=32, help_text="The group's code.")
    score = models.FloatField(help_text="The judge's score of the group's support, 0..9.")
    seat_share = models.FloatField(null=True, blank=True)
    real_choice = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The group's real vote on the record (Stance.real_choice), 0..9."
    )
    # engine/rewards.py: computed from the run's events when it finishes (and by rewards_backfill).
    reward_deontological = models.FloatField(
        null=True, blank=True, help_text="-1 voted against a text it endorsed, +1 kept, 0 endorsed nothing."
    )
    reward_utilitarian = models.FloatField(
        null=True, blank=True, help_text="Mean judged support of the final text over the run's groups, 0..9."
    )

    class Meta:
        # The per-group views read all of an experiment's rows (the experiment's index finds them;
        # PostgreSQL scans and hashes them faster than it walks a covering index: measured).
        constraints = [models.UniqueConstraint(fields=["run", "group"], name="group_score_once_per_run")]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.group}: {self.score}"
