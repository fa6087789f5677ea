"""A lean client for OpenAI-compatible model servers (vLLM, llama.cpp server, Ollama's /v1).

`hosted_vllm/NAME` and `openai/NAME` with HEMICYCLE_MODEL_API_BASE set name such a server: a model
server of our own, where the calls are fast and many. litellm makes the same HTTP request, but its
provider dispatch, logging and response objects cost several milliseconds of CPU per call, in the
worker that also writes the run's events (bench/bench_experiment_throughput.py); this client is
one POST on a kept-alive connection and a JSON parse. Hosted APIs and other providers stay with
litellm.

The POST is the standard library's http.client on one kept-alive connection per worker thread
(a run's calls are sequential within its thread): about 100 us of CPU per call where httpx's
pooled client took about 350 us (its pool's locks, events and request models), measured alone on
loopback. A connection the server closed while idle is noticed on its next request, which goes
again once on a new connection at once (the server never read it). It connects directly: no
HTTP(S)_PROXY, as befits a model server of our own next to the workers.

Errors as the litellm backend maps them: a request the server refuses (400, 401, 403, 404, 422:
bad request, context too long, authentication, unknown model) is permanent; timeouts, connection
errors, rate limits and 5xx are worth another try (RetryingClient). The API key is sent in the
Authorization header and scrubbed from error messages.
"""

import http.client
import json
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from deliberation.engine.models import (
    Completion,
    Message,
    ModelError,
    Params,
    next_token_completion,
    token_ids_completion,
)
from worker.models.local import token_logprobs
from worker.models.retry import PermanentModelError

# What the engine's model strings put before a served model's name.
PREFIXES = ("hosted_vllm/", "openai/")
PERMANENT_STATUS = {400, 401, 403, 404, 422}
PROMPTS_KEPT = 8
TOKEN_ID_PREFIX = "token_id:"


def token_id_of(key: str) -> int:
    """The id in a `return_tokens_as_token_ids` token ("token_id:42")."""
    if not key.startswith(TOKEN_ID_PREFIX):
        raise ValueError(f"not a token id: {key!r}")
    return int(key[len(TOKEN_ID_PREFIX) :])


def served_model(model: str) -> str | None:
    """The name the server knows for `model`, or None if the string names no such server."""
    prefix = next((prefix for prefix in PREFIXES if model.startswith(prefix)), None)
    return model[len(prefix) :] if prefix else None


@dataclass
class OpenAICompatibleClient:
    model: str  # the name the server serves
    api_base: str  # ".../v1"
    timeout_s: float
    api_key: str = field(default="", repr=False)
    _prompts: dict[tuple, list[int]] = field(default_factory=dict, init=False, repr=False)
    _end_ids: frozenset[int] | None = field(default=None, init=False, repr=False)
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)

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
        return next_token_completion(
            pairs, prompt_tokens=(data.get("usage") or {}).get("prompt_tokens") or 0, seconds=seconds
        )

    gives_token_ids = True

    def next_token_ids(
        self, messages: Sequence[Message], *, prefix_ids: Sequence[int], top: int, seed: int
    ) -> Completion:
        """vLLM's way to read a distribution after given ids: the chat prompt's ids (the server's
        /tokenize, assistant turn opened) plus `prefix_ids` as the `prompt` of /v1/completions,
        one greedy token, its top-k raw logprobs keyed by id (`return_tokens_as_token_ids`:
        exact even inside a multi-byte character). k is capped by the server's --max-logprobs."""
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": [*self._prompt_ids(messages), *map(int, prefix_ids)],
            "max_tokens": 1,
            "temperature": 0.0,
            "seed": seed,
            "logprobs": top,
            "return_tokens_as_token_ids": True,
        }
        _, choice, seconds = self._post(body, path="completions")
        top_entries = (choice.get("logprobs") or {}).get("top_logprobs") or [{}]
        try:
            triples = [(token_id_of(key), key, float(logprob)) for key, logprob in (top_entries[0] or {}).items()]
        except (IndexError, AttributeError, TypeError, ValueError) as exc:
            raise ModelError(self._reason(f"malformed logprobs: {str(choice)[:500]}")) from exc
        if not triples:
            raise ModelError(self._reason("the server answered without logprobs"))
        return token_ids_completion(triples, prompt_tokens=len(body["prompt"]), seconds=seconds)

    def end_ids(self) -> frozenset[int]:
        """The id that closes an assistant turn in this model's chat template: where the template
        with the reply closed goes on from the template with it open (the server's /tokenize)."""
        if self._end_ids is None:
            turn = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
            opened = self._tokenize(turn, add_generation_prompt=False, continue_final_message=True)
            closed = self._tokenize(turn, add_generation_prompt=False)
            if len(closed) <= len(opened) or closed[: len(opened)] != opened:
                raise PermanentModelError(
                    self._reason("cannot tell this model's end-of-turn token from its chat template")
                )
            self._end_ids = frozenset({closed[len(opened)]})
        return self._end_ids

    def decode_ids(self, ids: Sequence[int]) -> str:
        data = self._post_json(f"{self._root}/detokenize", {"model": self.model, "tokens": [int(i) for i in ids]})
        return str(data.get("prompt", ""))

    def _prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """The chat prompt's ids with the assistant turn opened; a decoding loop sends the same
        prompts hundreds of times, so the last few are kept."""
        key = tuple((m["role"], m["content"]) for m in messages)
        ids = self._prompts.get(key)
        if ids is None:
            ids = self._tokenize(list(messages), add_generation_prompt=True)
            while len(self._prompts) >= PROMPTS_KEPT:
                del self._prompts[next(iter(self._prompts))]
            self._prompts[key] = ids
        return ids

    def _tokenize(self, messages: Sequence[Message], **options: bool) -> list[int]:
        body = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            **options,
        }
        tokens = self._post_json(f"{self._root}/tokenize", body).get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ModelError(self._reason("the server's /tokenize answered no token ids"))
        return tokens

    @property
    def _root(self) -> str:
        """The server's root: vLLM serves /tokenize and /detokenize beside /v1, not under it."""
        return self.api_base.rstrip("/").removesuffix("/v1")

    def _post_json(self, url: str, body: dict[str, Any]) -> dict:
        """The server's JSON object answering `body` at `url` (/tokenize, /detokenize)."""
        reply, _ = self._send(url, body)
        try:
            data = json.loads(reply)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ModelError(self._reason(f"malformed response: {_shown(reply)}"))
        return data

    def _post(self, body: dict[str, Any], *, path: str = "chat/completions") -> tuple[dict, dict, float]:
        """The server's answer to one completion request: the JSON, its first choice, seconds."""
        reply, seconds = self._send(path, body)
        try:
            data = json.loads(reply)
            choice = data["choices"][0]
            if path == "chat/completions":
                choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ModelError(self._reason(f"malformed response: {_shown(reply)}")) from exc
        return data, choice, seconds

    @cached_property
    def _target(self) -> tuple[str, str, int | None, str]:
        """(scheme, host, port, path) of api_base."""
        parts = urlsplit(self.api_base.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentModelError(f"not an http(s) URL: {self.api_base!r}")
        return parts.scheme, parts.hostname, parts.port, parts.path

    @cached_property
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to the server, and whether it served a request before."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        scheme, host, port, _ = self._target
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
        self._local.connection = connection
        return connection, False

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _exchange(self, path: str, payload: bytes) -> tuple[int, bytes]:
        """One request and its whole answer on this thread's connection; a kept-alive connection
        the server closed meanwhile fails before the server reads anything, so the request goes
        once more on a new one."""
        for _ in range(2):
            connection, reused = self._connection()
            try:
                connection.request("POST", path, body=payload, headers=self._headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop_connection()
                if not reused:
                    raise
            except BaseException:
                self._drop_connection()  # a half-read answer must not be the next request's
                raise
        raise AssertionError("unreachable")

    def _send(self, url: str, body: dict[str, Any]) -> tuple[bytes, float]:
        """One POST (`url`: a path under api_base, or an absolute URL on the same server); a
        refused request is permanent, the rest worth another try (module docstring)."""
        path = urlsplit(url).path if "://" in url else f"{self._target[3]}/{url}"
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        started = time.perf_counter()
        try:
            status, reply = self._exchange(path, payload)
        except TimeoutError as exc:
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:  # connection refused or reset, protocol errors
            raise ModelError(self._reason(f"{type(exc).__name__}: {exc}")) from exc
        seconds = time.perf_counter() - started
        if status != 200:
            reason = self._reason(f"HTTP {status}: {_shown(reply)}")
            raise (PermanentModelError if status in PERMANENT_STATUS else ModelError)(reason)
        return reply, seconds

    def _reason(self, reason: str) -> str:
        return reason.replace(self.api_key, "***") if self.api_key else reason


def _shown(reply: bytes) -> str:
    """The start of an answer, for an error message."""
    return reply[:500].decode("utf-8", "replace")
