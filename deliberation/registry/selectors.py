"""Reads of the model registry: which models a user may pick, and what a run's model resolves to."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from deliberation.errors import Invalid
from deliberation.registry.models import ModelEntry


class ModelRefused(Invalid, ValueError):
    """The model is not in the registry, disabled, or not for this user. `str()` is
    "field: message", as the other services' errors (forms and the API show it beside the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
        self.args = (f"{field}: {message}",)
        self.message = message


@dataclass(frozen=True)
class ModelEndpoint:
    """What the worker needs to build a model's client (registry entry or a staff's raw string)."""

    name: str  # what the run records
    model: str  # the backend model string
    api_base: str = ""
    api_key_env: str = ""


def model_entries_for(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ModelEntry]:
    """The enabled models this user may use, in the order lists show them."""
    if not user.is_authenticated:
        return ModelEntry.objects.none()
    entries = ModelEntry.objects.filter(enabled=True)
    if user.is_staff:
        return entries
    return entries.filter(
        Q(access=ModelEntry.Access.EVERYONE) | Q(access=ModelEntry.Access.GROUPS, groups__user=user)
    ).distinct()


def model_names_for(*, user: AbstractBaseUser | AnonymousUser) -> list[str]:
    return list(model_entries_for(user=user).values_list("name", flat=True))


def model_check(
    *, name: str, user: AbstractBaseUser | AnonymousUser, field: str = "model", allow_raw: bool = False
) -> str:
    """`name` if this user may use it, else ModelRefused naming the field. With `allow_raw` (the
    CLI), staff may also give a backend model string that is not in the registry; it is checked
    as the admin checks an entry's (worker.models.model_string_check)."""
    name = (name or "").strip()
    if not name:
        raise ModelRefused(field, "choose a model")
    entry = ModelEntry.objects.filter(name=name).first()
    if entry is None:
        if allow_raw and user.is_authenticated and user.is_staff:
            return _raw_checked(name, field)
        raise ModelRefused(
            field, f"{name!r} is not a model of this lab; choose from {', '.join(model_names_for(user=user)) or 'none'}"
        )
    if not entry.enabled:
        raise ModelRefused(field, f"{name!r} is disabled")
    if not model_entries_for(user=user).filter(pk=entry.pk).exists():
        raise ModelRefused(field, f"you may not use {name!r}")
    return name


def model_runnable(*, name: str, field: str = "model") -> str:
    """For the operator's shell (manage.py evaluate): an enabled registry model, or a backend
    model string that checks."""
    entry = ModelEntry.objects.filter(name=name).first()
    if entry is None:
        return _raw_checked(name, field)
    if not entry.enabled:
        raise ModelRefused(field, f"{name!r} is disabled")
    return name


def _raw_checked(name: str, field: str) -> str:
    from worker.models import model_string_check
    from worker.models.retry import PermanentModelError

    try:
        model_string_check(name)
    except PermanentModelError as error:
        raise ModelRefused(field, str(error)) from None
    return name


def model_endpoint(*, name: str, allow_raw: bool = False) -> ModelEndpoint:
    """What a run's model resolves to when the run starts: its registry entry, which must still
    exist and be enabled; with `allow_raw` (a staff owner's run, the evaluate command), a name the
    registry lacks is a backend model string on the settings' endpoint."""
    entry = ModelEntry.objects.filter(name=name).first()
    if entry is None:
        if allow_raw:
            return ModelEndpoint(name=name, model=name)
        raise ModelRefused("model", f"{name!r} is no longer in the model registry")
    if not entry.enabled:
        raise ModelRefused("model", f"{name!r} is disabled in the model registry")
    return ModelEndpoint(name=entry.name, model=entry.model, api_base=entry.api_base, api_key_env=entry.api_key_env)


def model_bounds(*, names) -> dict[str, int]:
    """The registry's own concurrency bound of each of these models that has one."""
    return dict(
        ModelEntry.objects.filter(name__in=set(names), concurrency__isnull=False).values_list("name", "concurrency")
    )
