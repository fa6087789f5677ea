"""Runs, their event log, and the completion cache."""

from django.db import models


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
