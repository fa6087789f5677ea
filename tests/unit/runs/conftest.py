import pytest

from deliberation.runs import services


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """The run ids the services enqueue (after commit), instead of Celery tasks."""
    calls: list[int] = []
    monkeypatch.setattr(services, "run_enqueue", calls.append)
    return calls


@pytest.fixture
def broadcasts(monkeypatch) -> list[dict]:
    """The event messages the services broadcast (after commit), instead of the channel layer."""
    sent: list[dict] = []
    monkeypatch.setattr(services, "broadcast_events", lambda *, run_id, messages: sent.extend(messages))
    return sent
