"""Reads of runs and their event log."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from deliberation.runs.models import Run, RunEvent


def run_events_after(*, run_id: int, seq: int) -> QuerySet[RunEvent]:
    return RunEvent.objects.filter(run_id=run_id, seq__gt=seq).order_by("seq")


def run_for_viewer(*, user: AbstractBaseUser | AnonymousUser, run_id: int, token: str = "") -> Run | None:
    """The run if this user may watch it (owner; anyone signed in; anyone with the link), else None."""
    run = Run.objects.filter(pk=run_id).select_related("owner", "record").first()
    if run is None:
        return None
    if user.is_authenticated and run.owner_id == user.pk:
        return run
    if run.visibility == Run.Visibility.SIGNED_IN and user.is_authenticated:
        return run
    if run.visibility == Run.Visibility.LINK and token and token == run.share_token:
        return run
    return None


def run_list_for_owner(*, owner: AbstractBaseUser) -> QuerySet[Run]:
    return Run.objects.filter(owner=owner).select_related("record").order_by("-created_at")


def run_transcript(*, run: Run) -> list[tuple[int, str, dict]]:
    """What was said and decided, without the cost of saying it (usage differs on a cached re-run)."""
    return [
        (seq, type_, {key: value for key, value in data.items() if key != "usage"})
        for seq, type_, data in run.events.order_by("seq").values_list("seq", "type", "data")
    ]
