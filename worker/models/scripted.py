"""Scripted clients: deterministic, no network, for tests and demos.

scripted:default    the engine's scripted_reply (a digit for judge prompts, a short draft else)
scripted:slow       the same, 0.05 s per call (tests that watch a run stream)
scripted:demo       the same, about a second per call: a first look at the live page
scripted:bad-judge  answers judge prompts with words, never a digit (exercises the fallback)
scripted:no-logprobs  the default replies, but no next-token log-probabilities (as litellm's backend)
scripted:fail       every call times out (exercises retries and the failed-run path)
scripted:flaky      scripted:default, but the first attempt of every call times out
                    (exercises retries that succeed, which the run's events show)
"""

import math
import threading
from collections.abc import Sequence

from deliberation.engine.models import (
    JUDGE_MARKER,
    Message,
    ModelClient,
    Params,
    ScriptedModelClient,
    scripted_reply,
)
from worker.models.retry import PermanentModelError

SLOW_DELAY_S = 0.05
DEMO_DELAY_S = 1.0  # one step a second: readable, and a 4-group run still ends in about half a minute


def bad_judge_reply(messages: Sequence[Message], params: Params, seed: int) -> str:
    if JUDGE_MARKER in messages[-1]["content"]:
        return "I cannot decide."
    return scripted_reply(messages, params, seed)


def bad_judge_next_token(messages: Sequence[Message], prefix: str, seed: int) -> list[tuple[str, float]]:
    return [("I", math.log(0.7)), (" cannot", math.log(0.3))]


def failing_reply(messages: Sequence[Message], params: Params, seed: int) -> str:
    raise TimeoutError("scripted:fail always times out")


def failing_token_ids(messages: Sequence[Message], prefix_ids: Sequence[int], seed: int) -> list[float]:
    raise TimeoutError("scripted:fail always times out")


class FirstAttemptTimesOut:
    """Every other call times out, starting with the first: each call a RetryingClient makes
    fails once, then answers. One counter per client; nothing kept per call."""

    def __init__(self) -> None:
        self._calls = 0
        self._lock = threading.Lock()

    def __call__(self, messages: Sequence[Message], params: Params, seed: int) -> str:
        with self._lock:
            self._calls += 1
            first_attempt = self._calls % 2 == 1
        if first_attempt:
            raise TimeoutError("scripted:flaky times out on a first attempt")
        return scripted_reply(messages, params, seed)


SCRIPTED_CLIENTS = {
    "default": lambda: ScriptedModelClient(),
    "slow": lambda: ScriptedModelClient(delay_s=SLOW_DELAY_S),
    "demo": lambda: ScriptedModelClient(delay_s=DEMO_DELAY_S),
    "bad-judge": lambda: ScriptedModelClient(responder=bad_judge_reply, next_token_responder=bad_judge_next_token),
    "no-logprobs": lambda: ScriptedModelClient(next_token_responder=None, token_ids_responder=None),
    "fail": lambda: ScriptedModelClient(responder=failing_reply, token_ids_responder=failing_token_ids),
    "flaky": lambda: ScriptedModelClient(responder=FirstAttemptTimesOut()),
}


def scripted_client(name: str) -> ModelClient:
    try:
        return SCRIPTED_CLIENTS[name]()
    except KeyError:
        raise PermanentModelError(
            f"unknown scripted model {name!r}; known: {', '.join(sorted(SCRIPTED_CLIENTS))}"
        ) from None
