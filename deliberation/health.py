"""GET /healthz: is the database answering, is Redis answering, is any Celery worker listening?"""

import time

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def _check(probe) -> dict:
    started = time.perf_counter()
    try:
        detail = probe()
    except Exception as error:  # a health check reports every failure, whatever its kind
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **(detail or {})}


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _redis() -> dict:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return {}


def _workers() -> dict:
    if settings.CELERY_EMBEDDED_WORKER:
        from worker.embedded import embedded_worker_running

        if not embedded_worker_running():
            raise RuntimeError("the embedded worker thread is not running")
        return {"mode": "embedded"}
    from worker.celery import app

    replies = app.control.ping(timeout=1.0) or []
    if not replies:
        raise RuntimeError("no Celery worker answered")
    return {"workers": sorted(name for reply in replies for name in reply)}


def stack_health() -> dict:
    checks = {"database": _check(_database), "workers": _check(_workers)}
    if settings.REDIS_URL:
        checks["redis"] = _check(_redis)
    return {"ok": all(check["ok"] for check in checks.values()), "checks": checks}


def healthz(request: HttpRequest) -> JsonResponse:
    report = stack_health()
    return JsonResponse(report, status=200 if report["ok"] else 503)
