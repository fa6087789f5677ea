"""Bounded retries with exponential backoff, the one place every backend gets them."""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from deliberation.engine.models import (
    CallObserver,
    Completion,
    Message,
    ModelClient,
    ModelError,
    Params,
    gives_next_token,
    gives_token_ids,
    observed,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


class PermanentModelError(ModelError):
    """A failure that retrying cannot fix: bad request, authentication, prompt too long."""


# What a backend may raise for a failure worth another try; anything else is a bug and propagates.
RETRYABLE = (ModelError, TimeoutError, ConnectionError)


@dataclass
class RetryingClient:
    """Calls `inner` up to 1 + `retries` times, waiting base, 2 x base, 4 x base ... in between;
    a call that answered only after retries is reported to the observer (a run's: observed_by)."""

    inner: ModelClient
    model: str
    retries: int = 3
    base_delay_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    observer: CallObserver | None = None

    def observed_by(self, observer: CallObserver) -> "RetryingClient":
        return replace(self, inner=observed(self.inner, observer), observer=observer)

    @property
    def gives_next_token(self) -> bool:
        return gives_next_token(self.inner)

    def complete(self, messages: Sequence[Message], *, params: Params, seed: int) -> Completion:
        return self._with_retries(lambda: self.inner.complete(messages, params=params, seed=seed))

    def next_token(self, messages: Sequence[Message], *, prefix: str, top: int, seed: int) -> Completion:
        return self._with_retries(lambda: self.inner.next_token(messages, prefix=prefix, top=top, seed=seed))

    @property
    def gives_token_ids(self) -> bool:
        return gives_token_ids(self.inner)

    def next_token_ids(
        self, messages: Sequence[Message], *, prefix_ids: Sequence[int], top: int, seed: int
    ) -> Completion:
        return self._with_retries(
            lambda: self.inner.next_token_ids(messages, prefix_ids=prefix_ids, top=top, seed=seed)
        )

    def end_ids(self) -> frozenset[int]:
        return self._with_retries(self.inner.end_ids)

    def decode_ids(self, ids: Sequence[int]) -> str:
        return self._with_retries(lambda: self.inner.decode_ids(ids))

    def _with_retries(self, call: Callable[[], T]) -> T:
        attempts = 1 + self.retries
        errors: list[str] = []
        waited = 0.0
        for attempt in range(1, attempts + 1):
            try:
                completion = call()
            except PermanentModelError:
                raise
            except RETRYABLE as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if attempt == attempts:
                    raise ModelError(f"model {self.model} failed after {attempts} attempts: {reason}") from exc
                delay = self.base_delay_s * 2 ** (attempt - 1)
                logger.warning(
                    "model %s attempt %d/%d failed (%s); retrying in %.2f s",
                    self.model,
                    attempt,
                    attempts,
                    reason,
                    delay,
                )
                errors.append(reason[:500])
                self.sleep(delay)
                waited += delay
                continue
            if errors and self.observer is not None:
                self.observer.retried(
                    {"model": self.model, "attempts": attempt, "errors": errors, "waited_s": round(waited, 3)}
                )
            return completion
        raise AssertionError("unreachable")
