"""API tokens (writes and the one read authentication needs)."""

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from deliberation.api.models import ApiToken


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user: AbstractBaseUser, name: str = "") -> tuple[ApiToken, str]:
    """A new token for the user: the row (which keeps only the hash) and the token itself,
    which is never stored and cannot be shown again."""
    token = secrets.token_urlsafe(32)
    row = ApiToken.objects.create(user=user, name=name, key_hash=token_hash(token), prefix=token[:8])
    return row, token


def api_token_user(*, token: str) -> AbstractBaseUser | None:
    """The active user the token belongs to, else None; records when the token was last used."""
    row = ApiToken.objects.filter(key_hash=token_hash(token)).select_related("user").first()
    if row is None or not row.user.is_active:
        return None
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row.user
