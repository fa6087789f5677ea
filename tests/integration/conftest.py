"""Integration tests: real PostgreSQL, Redis, Celery worker processes and uvicorn, on loopback.

Nothing here is mocked or skipped; a missing server binary fails the test with what to install.
Every test in this folder is marked ``integration``. The fixtures live in tests/conftest.py (the
e2e tests share them) and the servers in tests/integration/servers.py.

Run: ``pytest tests/integration`` (or ``make test``). When the session includes this folder, the
test process itself runs on the stack: the ORM on PostgreSQL (pytest-django's test database
``test_hemicycle``), Celery's publisher on Redis db 0, the channel layer on Redis db 1.

Fixtures:
  postgres              session  PostgresServer: .url(dbname), .port, .create_database(name)
  redis_server          session  RedisServer: .url, .port, .client(db)
  stack_env             session  dict: environment for a process of ours (test database URL,
                                 REDIS_URL, DJANGO_SETTINGS_MODULE, CELERY_EMBEDDED_WORKER=0)
  manage                function manage(*args, env=None): manage.py in a subprocess on the stack
  celery_worker         function CeleryWorker on queues runs,models, running at test start:
                                 .kill() (SIGKILL), .restart(env=...), .stop(), .hostname,
                                 .log_text(), .alive
  start_celery_worker   function factory(name=, queues=, concurrency=, env=, extra_args=) for
                                 more workers, stopped after the test
  asgi_server           function AsgiServer (uvicorn) running at test start: .url, .ws_url, .port
  celery_app            function the Celery app of this process, publishing to the test Redis

A test using a server process is marked ``django_db(transaction=True)`` automatically: data must
be committed for the other process to see it; tables are emptied after the test. Wait for work by
polling the database with a deadline (servers.wait_until), never by sleeping. Server logs are in
var/test-logs/<time>-<pid>/ (one folder per session) and what they wrote during a failing test
is shown in its report.
"""

import pytest

from tests.integration import servers


@pytest.fixture
def celery_app(redis_server: servers.RedisServer):
    """worker.celery.app as this test process sees it: its broker is the test Redis (db 0)."""
    from worker.celery import app

    broker = app.conf.broker_url
    if not broker.startswith(redis_server.url):
        raise servers.StackError(f"the Celery app publishes to {broker}, not to the test Redis {redis_server.url}")
    return app
