"""The litellm backend: hosted APIs and OpenAI-compatible servers (vLLM, Ollama, llama.cpp server).

litellm's own retries are switched off: RetryingClient is the one place that retries. Library
errors become ModelError (worth another try) or PermanentModelError (bad request, auth: not).
The API key is passed to litellm and nowhere else, and scrubbed from error messages.
"""

import os

# litellm fetches its model cost map from the internet on import unless told otherwise.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import litellm  # noqa: E402

from deliberation.engine.models import (  # noqa: E402
    Completion,
    Message,
    ModelError,
    Params,
    TokenLogprob,
)
from worker.models.retry import PermanentModelError  # noqa: E402

PERMANENT_ERRORS = (
    litellm.AuthenticationError,
    litellm.PermissionDeniedError,
    litellm.BadRequestError,  # includes ContextWindowExceededError
    litellm.NotFoundError,
    litellm.UnprocessableEntityError,
)


def _get(obj: Any, name: str) -> Any:
    """litellm returns pydantic objects from some providers and dicts from others."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def token_logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    content = _get(_get(choice, "logprobs") or {}, "content")
    if content is None:
        return None
    return tuple(
        TokenLogprob(
            token=_get(entry, "token"),
            logprob=float(_get(entry, "logprob")),
            top=tuple((_get(alt, "token"), float(_get(alt, "logprob"))) for alt in _get(entry, "top_logprobs") or ()),
        )
        for entry in content
    )


def litellm_provider(model: str) -> str:
    """The provider litellm sends `model` to; PermanentModelError when it knows none (a typo
    would otherwise be sent somewhere, with a key, at run time)."""
    try:
        return litellm.get_llm_provider(model=model)[1]
    except Exception as exc:  # noqa: BLE001 - litellm raises several types for an unknown provider
        raise PermanentModelError(f"no litellm provider for {model!r} (e.g. openai/NAME, hosted_vllm/NAME)") from exc


@dataclass
class LiteLLMClient:
    model: str
    timeout_s: float
    api_base: str = ""
    api_key: str = field(default="", repr=False)

    def complete(self, messages: Sequence[Message], *, params: Params, seed: int) -> Completion:
        want_logprobs = params.top_logprobs > 0
        options: dict[str, Any] = {
            "timeout": self.timeout_s,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": seed,
            "num_retries": 0,
            "max_retries": 0,
            # Providers without seed or logprobs support get the call without them, not an error.
            "drop_params": True,
        }
        if params.stop:
            options["stop"] = list(params.stop)
        if want_logprobs:
            options.update(logprobs=True, top_logprobs=params.top_logprobs)
        if self.api_base:
            options["api_base"] = self.api_base
        if self.api_key:
            options["api_key"] = self.api_key
        started = time.perf_counter()
        try:
            response = litellm.completion(model=self.model, messages=list(messages), **options)
        except PERMANENT_ERRORS as exc:
            raise PermanentModelError(self._reason(exc)) from exc
        except litellm.Timeout as exc:
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from exc
        except Exception as exc:  # connection, rate limit, 5xx, provider quirks: worth a retry
            raise ModelError(self._reason(exc)) from exc
        seconds = time.perf_counter() - started
        choice = response.choices[0]
        usage = _get(response, "usage")
        return Completion(
            text=_get(_get(choice, "message"), "content") or "",
            prompt_tokens=(_get(usage, "prompt_tokens") or 0) if usage else 0,
            completion_tokens=(_get(usage, "completion_tokens") or 0) if usage else 0,
            seconds=seconds,
            logprobs=token_logprobs(choice) if want_logprobs else None,
        )

    def _reason(self, exc: Exception) -> str:
        reason = f"{type(exc).__name__}: {exc}"
        return reason.replace(self.api_key, "***") if self.api_key else reason
