import pytest

import worker.embedded

pytestmark = pytest.mark.django_db


def test_health_is_ok_when_the_database_and_the_embedded_worker_answer(client, monkeypatch, settings):
    settings.CELERY_EMBEDDED_WORKER = True
    monkeypatch.setattr(worker.embedded, "embedded_worker_running", lambda: True)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["checks"]["database"]["ok"] and body["checks"]["workers"]["mode"] == "embedded"


def test_health_is_503_and_says_why_when_no_worker_runs(client, monkeypatch, settings):
    settings.CELERY_EMBEDDED_WORKER = True
    monkeypatch.setattr(worker.embedded, "embedded_worker_running", lambda: False)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "not running" in response.json()["checks"]["workers"]["error"]
