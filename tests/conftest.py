"""Fixtures every test layer shares: the real server stack and how tests are marked.

Layers, by folder (the marker is added from the folder; ``-m`` selects on it):
  tests/unit/         no marker: SQLite test database, memory broker, no server processes
  tests/integration/  ``integration``: PostgreSQL, Redis, Celery worker and uvicorn processes
  tests/e2e/          ``e2e``: the same stack plus Chromium (tests/e2e/conftest.py)

How the stack is wired (tests/integration/servers.py explains why): when the session runs
integration or e2e tests, DATABASE_URL and REDIS_URL point at loopback ports chosen before Django
loads, so the test process itself (ORM, Celery publisher, channel layer) talks to the same
PostgreSQL and Redis as the server processes. pytest-django's test database (test_hemicycle) is
created on that PostgreSQL, and the server processes are pointed at it.

A test that uses a server process (``celery_worker``, ``start_celery_worker``, ``celery_beat``, ``asgi_server``,
``stack_env``, ``manage``, the e2e ``page``) is marked ``django_db(transaction=True)`` unless it
says otherwise: its writes must be committed for another process to see them, and the tables are
emptied after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.channel_layers import channel_layers_reset
from tests.integration import servers

LAYER_MARKERS = {
    "integration": servers.REPO_ROOT / "tests" / "integration",
    "e2e": servers.REPO_ROOT / "tests" / "e2e",
}
SERVER_PROCESS_FIXTURES = {
    "celery_worker",
    "start_celery_worker",
    "celery_beat",
    "asgi_server",
    "stack_env",
    "manage",
    "page",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path)
        for marker, folder in LAYER_MARKERS.items():
            if folder in path.parents:
                item.add_marker(marker)
        uses_processes = SERVER_PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses_processes and item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(transaction=True))


class BrowserTestsLast:
    """Browser tests run after every other test of the session: Playwright's sync API keeps an
    event loop running in the main thread for as long as the browser lives, and tests that run
    their own loop (asyncio.run, async_to_sync) must not meet it. trylast: after pytest-django
    has put transactional tests after the others."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(BrowserTestsLast(), "hemicycle-browser-tests-last")
    _flush_retried_on_deadlock()


def _flush_retried_on_deadlock() -> None:
    """A transactional test empties every table when it ends (TRUNCATE), while the session's
    worker or server process may still be finishing a write for it (a run's last event, a
    heartbeat). PostgreSQL then breaks the deadlock by aborting one side; when that is the
    TRUNCATE, the flush is simply tried again: the other side has finished by then."""
    from django.db import OperationalError
    from django.test import TransactionTestCase

    flush = TransactionTestCase._fixture_teardown

    def flush_retrying(self) -> None:
        for attempt in range(5):
            try:
                return flush(self)
            except OperationalError as error:
                if "deadlock" not in str(error) or attempt == 4:
                    raise

    TransactionTestCase._fixture_teardown = flush_retrying


# ---------------------------------------------------------------------------------------------
# Server logs on failure


_LOG_SIZES = pytest.StashKey[dict]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG_SIZES] = servers.log_sizes()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and servers.LOG_SOURCES:
        before = item.stash.get(_LOG_SIZES, {})
        for name, path in servers.LOG_SOURCES:
            size = path.stat().st_size if path.exists() else 0
            if size > before.get(path, 0):
                text = servers.read_tail(path, lines=150, since=before.get(path, 0))
                report.sections.append((f"{name} log during this test ({path})", text))
    return report


# ---------------------------------------------------------------------------------------------
# Channel layers: a fresh one for each test


@pytest.fixture(autouse=True)
def fresh_channel_layers() -> Iterator[None]:
    """Each test gets channel layers of its own (tests/channel_layers.py says why)."""
    channel_layers_reset()
    yield
    channel_layers_reset()


@pytest.fixture
def eager_worker(monkeypatch: pytest.MonkeyPatch, settings) -> None:
    """What plays an experiment from the command line (`experiment run --wait`, `evaluate`:
    runs/play.py) starts the embedded worker; the unit tests' in-memory SQLite cannot take its
    threads' concurrent writes, so here Celery plays each task where it is sent. On the stack too:
    there the command would wait for a worker process, and found one only when an earlier test of
    the session had started it (alone or in another order, it waited forever). Use it in
    transactional tests: the runs are enqueued once their rows are committed."""
    from worker import embedded
    from worker.celery import app

    settings.CELERY_EMBEDDED_WORKER = True
    monkeypatch.setattr(
        embedded, "embedded_worker_start", lambda: monkeypatch.setitem(app.conf, "task_always_eager", True)
    )


# ---------------------------------------------------------------------------------------------
# Servers: PostgreSQL and Redis (session-wide, started on first use)


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.PostgresServer]:
    """The throwaway PostgreSQL cluster; ``.url(dbname)``, ``.port``, ``.create_database(name)``."""
    server = servers.PostgresServer(port=servers.stack_plan().postgres_port)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.RedisServer]:
    """The Redis server; ``.url``, ``.port``, ``.client(db)`` (db 0 broker, db 1 channel layer)."""
    server = servers.RedisServer(port=servers.stack_plan().redis_port)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With the stack on, the Django test database lives on our PostgreSQL: start it first, and
    Redis with it, since settings then put the broker, channel layer and cache there.

    Without it, SQLite's test database is a file (in WAL mode, as settings open every SQLite
    database), not Django's shared-cache memory database: shared cache locks whole tables, so a
    websocket's open read failed a worker thread's event write at once ("database table is
    locked", no busy wait), where WAL lets both go on, as on the file `make run` serves."""
    if servers.PLAN is not None:
        request.getfixturevalue("postgres")
        request.getfixturevalue("redis_server")
        return
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")


@pytest.fixture(scope="session")
def server_log_dir() -> Path:
    """var/test-logs/<time>-<pid>/: each server process's log, one folder per session."""
    return servers.session_log_dir()


@pytest.fixture(scope="session")
def stack_env(
    postgres: servers.PostgresServer, redis_server: servers.RedisServer, django_db_setup: None
) -> dict[str, str]:
    """Environment for a process of ours: DATABASE_URL of the *test* database, REDIS_URL,
    DJANGO_SETTINGS_MODULE, CELERY_EMBEDDED_WORKER=0. Copy it before changing it."""
    from django.db import connection

    return servers.process_env(database_url=postgres.url(connection.settings_dict["NAME"]), redis_url=redis_server.url)


@pytest.fixture
def manage(stack_env: dict[str, str]) -> Callable[..., object]:
    """``manage("migrate", "--check", env={"DATABASE_URL": ...})``: manage.py in a subprocess,
    in the stack's environment (the test database) with ``env`` merged over it."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
        return servers.manage(*args, env={**stack_env, **(env or {})}, timeout=timeout)

    return run


# ---------------------------------------------------------------------------------------------
# Our processes: Celery workers and the ASGI server


@pytest.fixture(scope="session")
def _celery_worker_session(stack_env: dict[str, str], server_log_dir: Path) -> Iterator[servers.CeleryWorker]:
    worker = servers.CeleryWorker(name="worker", env=stack_env, log_dir=server_log_dir)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def celery_worker(_celery_worker_session: servers.CeleryWorker) -> servers.CeleryWorker:
    """A real worker process on queues runs,models (threads pool, 2 threads), running when the
    test starts. ``.kill()`` (SIGKILL), ``.restart(env=...)``, ``.stop()``, ``.hostname``,
    ``.log_text()``. Shared by the session; restarted for the next test if a test killed it."""
    return _celery_worker_session.ensure_running()


@pytest.fixture
def start_celery_worker(
    stack_env: dict[str, str], server_log_dir: Path
) -> Iterator[Callable[..., servers.CeleryWorker]]:
    """Factory for extra workers, stopped after the test:
    ``start_celery_worker(name="models-1", queues="models", concurrency=1, env={...}, extra_args=(...))``."""
    started: list[servers.CeleryWorker] = []

    def start(
        *,
        name: str,
        queues: str = "runs,models",
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> servers.CeleryWorker:
        worker = servers.CeleryWorker(
            name=name,
            env={**stack_env, **(env or {})},
            log_dir=server_log_dir,
            queues=queues,
            concurrency=concurrency,
            extra_args=extra_args,
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def celery_beat(stack_env: dict[str, str], server_log_dir: Path) -> Iterator[servers.CeleryBeat]:
    """Celery beat sending settings.CELERY_BEAT_SCHEDULE's periodic tasks (the stuck-run sweep, the
    lost-run reclaim, ...) to the broker, as production's one beat does; stopped after the test."""
    beat = servers.CeleryBeat(name="beat", env=stack_env, log_dir=server_log_dir)
    beat.start()
    yield beat
    beat.stop()


@pytest.fixture(scope="session")
def _asgi_server_session(stack_env: dict[str, str], server_log_dir: Path) -> Iterator[servers.AsgiServer]:
    server = servers.AsgiServer(name="asgi", env=stack_env, log_dir=server_log_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def asgi_server(_asgi_server_session: servers.AsgiServer) -> servers.AsgiServer:
    """uvicorn serving deliberation.asgi on 127.0.0.1 (``.url``, ``.ws_url``, ``.port``), answering
    HTTP when the test starts; no embedded worker (pair it with ``celery_worker``)."""
    return _asgi_server_session.ensure_running()
