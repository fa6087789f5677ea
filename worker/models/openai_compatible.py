"""A lean client for OpenAI-compatible model servers (vLLM, llama.cpp server, Ollama's /v1).

`hosted_vllm/NAME` and `openai/NAME` with HEMICYCLE_MODEL_API_BASE set name such a server: a model
server of our own, where the calls are fast and many. litellm makes the same HTTP request, but its
provider dispatch, logging and response objects cost several milliseconds of CPU per call, in the
worker that also writes the run's events (bench/bench_experiment_throughput.py); this client is
one POST on a kept-alive connection and a JSON parse. Hosted APIs and other providers stay with
litellm.

Errors as the litellm backend maps them: a request the server refuses (400, 401, 403, 404, 422:
bad request, context too long, authentication, unknown model) is permanent; timeouts, connection
errors, rate limits and 5xx are worth another try (RetryingClient). The API key is sent in the
Authorization header and scrubbed from error messages.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import httpx

from deliberation.engine.models import Completion, Message, ModelError, Params, next_token_completion
from worker.models.local import token_logprobs
from worker.models.retry import PermanentModelError

# What the engine's model strings put before a served model's name.
PREFIXES = ("hosted_vllm/", "openai/")
PERMANENT_STATUS = {400, 401, 403, 404, 422}


def served_model(model: str) -> str | None:
    """The name the server knows for `model`, or None if the string names no such server."""
    prefix = next((prefix for prefix in PREFIXES if model.startswith(prefix)), None)
    return model[len(prefix):] if prefix else None


@dataclass
class OpenAICompatibleClient:
    model: str  # the name the server serves
    api_base: str  # ".../v1"
    timeout_s: float
    api_key: str = field(default="", repr=False)

    @cached_property
    def _http(self) -> httpx.Client:
        # Thread-safe and pooled: a worker's threads share kept-alive connections.
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.api_base.rstrip("/") + "/", headers=headers,
                            timeout=self.timeout_s, limits=httpx.Limits(max_keepalive_connections=64))

    def complete(self, messages: Sequence[Message], *, params: Params, seed: int) -> Completion:
        want_logprobs = params.top_logprobs > 0
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if want_logprobs:
            body.update(logprobs=True, top_logprobs=params.top_logprobs)
        data, choice, seconds = self._post(body)
        usage = data.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            seconds=seconds,
            logprobs=token_logprobs(choice) if want_logprobs else None,
        )

    gives_next_token = True

    def next_token(self, messages: Sequence[Message], *, prefix: str, top: int, seed: int) -> Completion:
        """One generated token with its top-k log-probabilities (OpenAI's `top_logprobs`, at most
        20 on most servers; vLLM allows up to its --max-logprobs). A non-empty `prefix` continues an
        open assistant message with vLLM's `continue_final_message` (a server without it refuses)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": 0.0,
            "max_tokens": 1,
            "seed": seed,
            "logprobs": True,
            "top_logprobs": top,
        }
        if prefix:
            body["messages"].append({"role": "assistant", "content": prefix})
            body.update(add_generation_prompt=False, continue_final_message=True)
        data, choice, seconds = self._post(body)
        tokens = token_logprobs(choice) or ()
        if not tokens:
            raise ModelError(self._reason("the server answered without logprobs"))
        pairs = tokens[0].top or ((tokens[0].token, tokens[0].logprob),)
        return next_token_completion(pairs, prompt_tokens=(data.get("usage") or {}).get("prompt_tokens") or 0,
                                     seconds=seconds)

    def _post(self, body: dict[str, Any]) -> tuple[dict, dict, float]:
        """The server's answer to one chat completion request: the JSON, its first choice, seconds."""
        started = time.perf_counter()
        try:
            response = self._http.post("chat/completions", json=body)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:  # connection refused or reset, protocol errors
            raise ModelError(self._reason(f"{type(exc).__name__}: {exc}")) from exc
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            reason = self._reason(f"HTTP {response.status_code}: {response.text[:500]}")
            raise (PermanentModelError if response.status_code in PERMANENT_STATUS else ModelError)(reason)
        try:
            data = response.json()
            choice = data["choices"][0]
            choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ModelError(self._reason(f"malformed response: {response.text[:500]}")) from exc
        return data, choice, seconds

    def _reason(self, reason: str) -> str:
        return reason.replace(self.api_key, "***") if self.api_key else reason
