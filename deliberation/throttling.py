"""Throttling of sign-in, classroom joins and join-code lookups (django-ratelimit, shared cache).

Keys use the client address Django sees, REMOTE_ADDR. uvicorn sets it from X-Forwarded-For only
for a request from a trusted proxy (FORWARDED_ALLOW_IPS in docker/Dockerfile and .env; `make run`
has no proxy and ignores the header), so a client cannot choose the address it is counted under.
Joins count per (address, join code): a class behind one NAT joins its own session, and one
address cannot flood every session.
"""

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage


def client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def throttled(request: HttpRequest, *, group: str, key: str, rate: str, count: bool = True) -> bool:
    """Whether this request is over `rate` ("20/m") for `key` in `group`; `count` adds it first."""
    usage = get_usage(request, group=group, key=lambda _group, _request: key, rate=rate, increment=count)
    return bool(usage and usage["should_limit"])


def join_throttled(request: HttpRequest, *, code: str) -> bool:
    """A join attempt (a student taking a seat) in the session with this code."""
    rate = f"{settings.HEMICYCLE_JOIN_RATE}/m"
    return throttled(request, group="classroom-join", key=f"{client_address(request)}|{code}", rate=rate)


def join_lookup_throttled(request: HttpRequest, *, count: bool = True) -> bool:
    """A lookup of a join code (the join form, an unknown code's page, a QR code): the guesses
    one address may make."""
    return throttled(
        request,
        group="classroom-lookup",
        key=client_address(request),
        rate=settings.HEMICYCLE_JOIN_LOOKUP_RATE,
        count=count,
    )


def signin_throttled(request: HttpRequest, *, username: str) -> bool:
    """A sign-in attempt: per (address, user name), and per address over all names."""
    address = client_address(request)
    per_name = throttled(
        request, group="signin", key=f"{address}|{username.strip().lower()[:150]}", rate=settings.HEMICYCLE_SIGNIN_RATE
    )
    per_address = throttled(request, group="signin-address", key=address, rate=settings.HEMICYCLE_SIGNIN_ADDRESS_RATE)
    return per_name or per_address
