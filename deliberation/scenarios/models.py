"""Scenarios: a record, the groups taking part, their seat shares, a goal, and how to play it."""

from django.conf import settings
from django.db import models

from deliberation.engine.goals import GOALS
from deliberation.engine.seats import SEAT_STRUCTURES

GOAL_CHOICES = [(key, goal.label) for key, goal in GOALS.items()]
SEAT_STRUCTURE_CHOICES = [
    ("random_tenths", "PoliCon random tenths (seeded)"),
    ("real", "Real EP seats of the record's term"),
    ("equal", "Equal shares"),
    ("custom", "Custom shares"),
]
assert [key for key, _ in SEAT_STRUCTURE_CHOICES] == list(SEAT_STRUCTURES)


class Visibility(models.TextChoices):
    """Who can watch a run (Run.Visibility; the scenario input offers the same)."""

    PRIVATE = "private", "Only me"
    SIGNED_IN = "signed_in", "Anyone signed in"
    LINK = "link", "Anyone with the link"


class ScenarioFields(models.Model):
    """What a saved scenario and a run both carry: everything needed to play it again."""

    record = models.ForeignKey("records.Record", on_delete=models.PROTECT, related_name="+")
    groups = models.JSONField(help_text="Participating group codes, in order.")
    seat_structure = models.CharField(max_length=20, choices=SEAT_STRUCTURE_CHOICES)
    seats = models.JSONField(help_text="Resolved seat shares: group code -> share, summing to 1.")
    goal = models.CharField(max_length=32, choices=GOAL_CHOICES)
    veto_group = models.CharField(max_length=32, blank=True)
    strategy = models.CharField(max_length=32)
    model = models.CharField(max_length=200, help_text="Drafting model string.")
    judge = models.CharField(max_length=20)
    judge_model = models.CharField(max_length=200, blank=True)
    seed = models.BigIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True, help_text="Strategy parameters.")

    class Meta:
        abstract = True

    def scenario_fields(self) -> dict:
        return {field: getattr(self, field) for field in SCENARIO_FIELD_NAMES}


SCENARIO_FIELD_NAMES = (
    "record",
    "groups",
    "seat_structure",
    "seats",
    "goal",
    "veto_group",
    "strategy",
    "model",
    "judge",
    "judge_model",
    "seed",
    "params",
)


class SavedScenario(ScenarioFields):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scenarios")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="scenario_name_per_owner")]

    def __str__(self) -> str:
        return self.name
