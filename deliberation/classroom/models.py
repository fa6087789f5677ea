"""Classroom sessions: a teacher's live sitting of a saved scenario, and the students in it.

The session's Run (strategy "classroom") holds the event log, which is the truth of what was
said; these rows hold who may do what (the join code, the students' seats and flags) and copies of
the sitting's status and timer for listings.
"""

from django.conf import settings
from django.db import models

# No look-alikes: 0/O/D, 1/I/L, 2/Z, 5/S, 6/G, 8/B, U/V are left out.
CODE_ALPHABET = "ACEFHJKMNPRTWXY3479"
CODE_LENGTH = 6
NAME_LIMIT = 40


class ClassSession(models.Model):
    class Status(models.TextChoices):
        LOBBY = "lobby"
        LIVE = "live"
        PAUSED = "paused"
        ENDED = "ended"

    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="class_sessions")
    scenario = models.ForeignKey(
        "scenarios.SavedScenario", null=True, blank=True, on_delete=models.SET_NULL, related_name="class_sessions"
    )
    run = models.OneToOneField("runs.Run", on_delete=models.CASCADE, related_name="class_session")
    code = models.CharField(max_length=CODE_LENGTH, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.LOBBY, db_index=True)
    phase_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="Timer per phase; empty: none.")
    words_per_second = models.FloatField(default=3.0, help_text="Reveal speed of agent text; 0 = instant.")
    deadline = models.DateTimeField(null=True, blank=True, help_text="When the current phase's timer runs out.")
    remaining = models.FloatField(null=True, blank=True, help_text="Seconds left on the timer while paused.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"class session {self.code} ({self.status})"


class Student(models.Model):
    """A student who joined with a display name, no account. `group` empty: a watcher."""

    class_session = models.ForeignKey(ClassSession, on_delete=models.CASCADE, related_name="students")
    name = models.CharField(max_length=NAME_LIMIT)
    group = models.CharField(max_length=32, blank=True)
    muted = models.BooleanField(default=False)
    removed = models.BooleanField(default=False)
    # Open sockets over every web process, and when one was last heard from (presence).
    connections = models.PositiveIntegerField(default=0)
    last_seen = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.group or 'watching'})"
