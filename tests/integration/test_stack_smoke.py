"""The harness itself: each real server answers, and the test process reaches them as the app would."""

import pytest
from django.db import connection

from deliberation.records.models import RecordSet
from tests.integration import servers


@pytest.mark.django_db
def test_django_database_is_the_test_postgresql_and_round_trips_a_record_set(postgres):
    assert connection.vendor == "postgresql"
    assert connection.settings_dict["PORT"] == postgres.port

    RecordSet.objects.create(name="Smoke test set", description="written through the ORM")

    assert RecordSet.objects.get(name="Smoke test set").description == "written through the ORM"


def test_redis_answers_ping_and_settings_point_broker_and_channel_layer_at_it(redis_server, settings):
    client = redis_server.client()
    try:
        assert client.ping() is True
    finally:
        client.close()
    assert settings.CELERY_BROKER_URL == f"{redis_server.url}/0"
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] == [f"{redis_server.url}/1"]


def test_celery_worker_process_answers_a_control_ping_through_redis(celery_worker, celery_app):
    replies = celery_app.control.ping(destination=[celery_worker.hostname], timeout=5)

    assert replies == [{celery_worker.hostname: {"ok": "pong"}}]


@pytest.mark.parametrize("queue", ["runs", "models"])
def test_celery_worker_process_consumes_a_task_sent_through_redis(celery_worker, celery_app, queue):
    def consumed() -> int:
        stats = celery_app.control.inspect(destination=[celery_worker.hostname], timeout=2).stats() or {}
        return stats.get(celery_worker.hostname, {}).get("total", {}).get("celery.accumulate", 0)

    before = consumed()
    celery_app.send_task("celery.accumulate", args=(1, 2), queue=queue)

    servers.wait_until(lambda: consumed() == before + 1, timeout=30, what=f"the worker to consume from {queue}")


def test_celery_worker_handle_kills_and_restarts_the_process(celery_worker, celery_app):
    first_pid = celery_worker.pid

    celery_worker.kill()

    assert not celery_worker.alive
    assert celery_app.control.ping(destination=[celery_worker.hostname], timeout=1) == []
    celery_worker.restart()
    assert celery_worker.pid != first_pid
    assert celery_app.control.ping(destination=[celery_worker.hostname], timeout=5) == [
        {celery_worker.hostname: {"ok": "pong"}}
    ]


def test_asgi_server_process_serves_the_home_page_from_the_test_database(asgi_server):
    RecordSet.objects.create(name="Seen by the server process")

    status, body = servers.http_get(asgi_server.url + "/")

    assert status == 200
    assert "Record sets" in body
    assert "Seen by the server process" in body


def test_manage_migrates_a_fresh_postgresql_database(postgres, manage):
    postgres.create_database("hemicycle_migrate_check")
    fresh = {"DATABASE_URL": postgres.url("hemicycle_migrate_check")}

    manage("migrate", "--noinput", env=fresh)

    manage("migrate", "--check", env=fresh)  # exits non-zero while any migration is unapplied
