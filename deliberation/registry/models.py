"""The models the lab offers (the registry) and what each user may spend on them.

Runs and experiments record a registry entry's `name`; the worker looks the entry up when a run
starts, so the entry decides the backend model string, the endpoint and the key. The key itself
never enters the database: an entry names the environment variable that holds it, which the
workers read.
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

ENV_NAME = RegexValidator(r"^[A-Za-z_][A-Za-z0-9_]*$", "An environment variable's name: letters, digits and _.")


class ModelEntry(models.Model):
    class Access(models.TextChoices):
        EVERYONE = "everyone", "Everyone signed in"
        STAFF = "staff", "Staff only"
        GROUPS = "groups", "Members of the named groups (and staff)"

    name = models.CharField(
        max_length=200,
        unique=True,
        help_text="What users pick and runs record, e.g. qwen2.5-7b@gpu1 or scripted:default. Renaming makes a new model.",
    )
    description = models.CharField(max_length=300, blank=True, help_text="Shown beside the name.")
    model = models.CharField(
        max_length=200,
        help_text="The backend model string: scripted:NAME, local:NAME, hosted_vllm/NAME, openai/NAME or any litellm string.",
    )
    api_base = models.CharField(
        max_length=300,
        blank=True,
        help_text="The endpoint's base URL (an OpenAI-compatible server's .../v1). Empty: HEMICYCLE_MODEL_API_BASE.",
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[ENV_NAME],
        help_text="The NAME of the environment variable that holds the key on the workers (never the key). "
        "Empty: HEMICYCLE_MODEL_API_KEY.",
    )
    concurrency = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Experiments keep at most this many runs of this model in flight. "
        "Empty: HEMICYCLE_MODEL_CONCURRENCY's bound for its backend.",
    )
    prompt_price = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Price per million prompt tokens (optional)."
    )
    completion_price = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="Price per million completion tokens (optional).",
    )
    access = models.CharField(max_length=12, choices=Access.choices, default=Access.EVERYONE)
    groups = models.ManyToManyField(
        Group, blank=True, related_name="+", help_text="Who may use it when access is 'groups'."
    )
    enabled = models.BooleanField(default=True, help_text="Off: not offered, and its queued runs fail at once.")
    position = models.PositiveSmallIntegerField(default=100, help_text="Order in the lists users see (smaller first).")

    class Meta:
        ordering = ["position", "name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name

    @property
    def summary(self) -> str:
        """The description and the prices, as the model lists show them beside the name."""
        prices = [
            f"{price.normalize():f} per million {kind} tokens"
            for price, kind in ((self.prompt_price, "prompt"), (self.completion_price, "completion"))
            if price is not None
        ]
        return "; ".join(part for part in (self.description, ", ".join(prices)) if part)


class UserBudget(models.Model):
    """What one user may spend; users without one get the settings' defaults (none: unlimited)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="budget")
    steps_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Uncached model steps in any 24 hours. Empty: HEMICYCLE_DAILY_STEPS."
    )
    tokens_per_day = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Model tokens (prompt + completion) in any 24 hours. Empty: HEMICYCLE_DAILY_TOKENS.",
    )
    experiment_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The step cap of an experiment created without one. Empty: HEMICYCLE_EXPERIMENT_CAP.",
    )

    def __str__(self) -> str:
        return f"budget of {self.user}"
