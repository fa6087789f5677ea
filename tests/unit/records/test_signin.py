"""Sign-in is throttled per (address, user name) and per address, before any password is checked."""

import django_ratelimit.core
import pytest
from django.core.cache import cache
from django.urls import reverse

from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    cache.clear()
    # One counting window for the whole test: django-ratelimit's windows are fixed, and a test that
    # straddled a boundary would see its counts start again.
    monkeypatch.setattr(django_ratelimit.core, "_get_window", lambda value, period: 0)
    yield
    cache.clear()


def sign_in(client, username: str, password: str, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def test_repeated_sign_in_attempts_are_refused_even_with_the_right_password(client, settings):
    settings.HEMICYCLE_SIGNIN_RATE = "3/m"
    make_user("alice")
    for _ in range(3):
        assert sign_in(client, "alice", "wrong").status_code == 200
    refused = sign_in(client, "alice", "a-long-test-password")
    assert refused.status_code == 429 and "Too many sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # Another address, or another name from this address, is not affected.
    assert sign_in(client.__class__(), "alice", "a-long-test-password", REMOTE_ADDR="10.0.0.9").status_code == 302
    assert sign_in(client.__class__(), "bob", "wrong").status_code == 200


def test_one_address_trying_many_names_is_refused(client, settings):
    settings.HEMICYCLE_SIGNIN_ADDRESS_RATE = "4/m"
    for index in range(4):
        assert sign_in(client, f"user{index}", "wrong").status_code == 200
    assert sign_in(client, "user9", "wrong").status_code == 429


def test_a_forwarded_for_header_does_not_change_the_address_that_counts(client, settings):
    """Django sees REMOTE_ADDR only; uvicorn rewrites it from X-Forwarded-For for trusted proxies
    alone (tests/unit/test_production_defaults.py checks the server command lines)."""
    settings.HEMICYCLE_SIGNIN_RATE = "2/m"
    for index in range(2):
        sign_in(client, "alice", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{index}")
    assert sign_in(client, "alice", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429
