"""worker/models/retry.py: bounded retries with exponential backoff, then one clear error."""

import pytest

from deliberation.engine.models import Completion, ModelError, Params
from worker.models.retry import PermanentModelError, RetryingClient

MESSAGES = [{"role": "user", "content": "Hello"}]


class FlakyClient:
    """Raises the given errors in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def complete(self, messages, *, params, seed):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Completion(text="ok", prompt_tokens=1, completion_tokens=1)


def retrying(inner, *, retries=3):
    sleeps: list[float] = []
    return RetryingClient(inner, model="test:model", retries=retries, base_delay_s=0.01, sleep=sleeps.append), sleeps


def test_transient_failures_are_retried_with_doubling_delays():
    inner = FlakyClient(TimeoutError("slow"), ModelError("503"))
    client, sleeps = retrying(inner)
    assert client.complete(MESSAGES, params=Params(), seed=1).text == "ok"
    assert inner.calls == 3
    assert sleeps == [0.01, 0.02]


def test_persistent_failure_ends_in_one_clear_error_after_all_attempts():
    inner = FlakyClient(*[ConnectionError("refused")] * 10)
    client, sleeps = retrying(inner, retries=3)
    with pytest.raises(ModelError) as raised:
        client.complete(MESSAGES, params=Params(), seed=1)
    assert str(raised.value) == "model test:model failed after 4 attempts: ConnectionError: refused"
    assert inner.calls == 4
    assert sleeps == [0.01, 0.02, 0.04]  # no wait after the last attempt


def test_permanent_errors_are_not_retried():
    inner = FlakyClient(PermanentModelError("bad request"), TimeoutError())
    client, sleeps = retrying(inner)
    with pytest.raises(PermanentModelError, match="bad request"):
        client.complete(MESSAGES, params=Params(), seed=1)
    assert inner.calls == 1 and sleeps == []


def test_programming_errors_propagate_without_retry():
    inner = FlakyClient(TypeError("bug"))
    client, sleeps = retrying(inner)
    with pytest.raises(TypeError):
        client.complete(MESSAGES, params=Params(), seed=1)
    assert inner.calls == 1


def test_a_call_answered_after_retries_is_reported_to_the_runs_observer_only():
    from deliberation.engine.models import observed

    heard: list[dict] = []

    class Observer:
        def before_uncached_call(self) -> None:
            pass

        def retried(self, retry: dict) -> None:
            heard.append(retry)

    inner = FlakyClient(TimeoutError("slow"))
    shared, _ = retrying(inner)
    assert observed(shared, Observer()).complete(MESSAGES, params=Params(), seed=1).text == "ok"
    assert heard == [{"model": "test:model", "attempts": 2, "errors": ["TimeoutError: slow"], "waited_s": 0.01}]
    inner.errors.append(TimeoutError("again"))
    shared.complete(MESSAGES, params=Params(), seed=1)  # the process's client has no observer
    assert len(heard) == 1
