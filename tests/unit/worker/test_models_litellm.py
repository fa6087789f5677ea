"""worker/models/litellm_backend.py: what reaches litellm.completion (monkeypatched: no network)."""

import pytest

from deliberation.engine.models import ModelError, Params, TokenLogprob
from worker.models.litellm_backend import LiteLLMClient, litellm  # imported with the offline cost map
from worker.models.retry import PermanentModelError, RetryingClient

MESSAGES = [{"role": "user", "content": "Hello"}]


def response(*, logprobs=None) -> litellm.ModelResponse:
    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi there"}}
    if logprobs:
        choice["logprobs"] = logprobs
    return litellm.ModelResponse(
        choices=[choice], usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    )


@pytest.fixture
def calls(monkeypatch):
    recorded: list[dict] = []

    def fake_completion(**kwargs):
        recorded.append(kwargs)
        return response()

    monkeypatch.setattr(litellm, "completion", fake_completion)
    return recorded


def test_request_carries_timeout_seed_and_sampling_parameters(calls):
    client = LiteLLMClient(model="openai/gpt-4o-mini", timeout_s=12.5)
    answer = client.complete(MESSAGES, params=Params(temperature=0.3, max_tokens=40, top_p=0.9, stop=("END",)), seed=42)
    (call,) = calls
    assert call["model"] == "openai/gpt-4o-mini" and call["messages"] == MESSAGES
    assert call["timeout"] == 12.5 and call["seed"] == 42
    assert (call["temperature"], call["max_tokens"], call["top_p"], call["stop"]) == (0.3, 40, 0.9, ["END"])
    assert call["num_retries"] == 0 and call["max_retries"] == 0  # RetryingClient retries, not litellm
    assert "logprobs" not in call and "api_base" not in call and "api_key" not in call
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == ("Hi there", 9, 2)


def test_endpoint_and_key_are_passed_when_set(calls):
    LiteLLMClient(model="hosted_vllm/m", timeout_s=5, api_base="http://gpu1:8000/v1", api_key="sk-x").complete(
        MESSAGES, params=Params(), seed=1
    )
    assert calls[0]["api_base"] == "http://gpu1:8000/v1" and calls[0]["api_key"] == "sk-x"


def test_logprobs_are_requested_and_parsed(monkeypatch):
    recorded = []
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": None,
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1, "bytes": None},
                    {"token": "Hello", "logprob": -2.5, "bytes": None},
                ],
            }
        ]
    }
    monkeypatch.setattr(litellm, "completion", lambda **kw: recorded.append(kw) or response(logprobs=logprobs))
    answer = LiteLLMClient(model="m", timeout_s=5).complete(MESSAGES, params=Params(top_logprobs=2), seed=1)
    assert recorded[0]["logprobs"] is True and recorded[0]["top_logprobs"] == 2
    assert answer.logprobs == (TokenLogprob("Hi", -0.1, (("Hi", -0.1), ("Hello", -2.5))),)


def test_timeouts_are_retried_then_reported(monkeypatch):
    attempts = []

    def timing_out(**kwargs):
        attempts.append(kwargs["timeout"])
        raise litellm.Timeout(message="read timed out", model="m", llm_provider="openai")

    monkeypatch.setattr(litellm, "completion", timing_out)
    client = RetryingClient(
        LiteLLMClient(model="m", timeout_s=3), model="m", retries=2, base_delay_s=0.0, sleep=lambda s: None
    )
    with pytest.raises(ModelError, match=r"^model m failed after 3 attempts: TimeoutError: no answer within 3 s"):
        client.complete(MESSAGES, params=Params(), seed=1)
    assert attempts == [3, 3, 3]


def test_authentication_errors_are_permanent_and_never_show_the_key(monkeypatch):
    def refusing(**kwargs):
        raise litellm.AuthenticationError(message=f"bad key {kwargs['api_key']}", llm_provider="openai", model="m")

    monkeypatch.setattr(litellm, "completion", refusing)
    client = RetryingClient(LiteLLMClient(model="m", timeout_s=3, api_key="sk-secret"), model="m", sleep=lambda s: None)
    with pytest.raises(PermanentModelError) as raised:
        client.complete(MESSAGES, params=Params(), seed=1)
    assert "AuthenticationError" in str(raised.value) and "sk-secret" not in str(raised.value)
