import pytest

from deliberation.runs import services


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """The run ids the services enqueue (after commit), instead of Celery tasks."""
    calls: list[int] = []
    monkeypatch.setattr(services, "_enqueue", calls.append)
    return calls
