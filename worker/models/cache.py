"""The completion cache: the same (model, messages, parameters, seed) is answered from the database.

This is what makes runs reproducible and re-runs free. Failures are never cached.

A lookup is one statement: a hit counts itself and returns the row (UPDATE ... RETURNING), a miss
stores the new completion with INSERT ... ON CONFLICT DO NOTHING (two workers that missed together
store one row, and neither fails). deliberation/runs/hotpath.py says why.

The rows live in the runs app's table (runs.models.CachedCompletion); the runs app gives this
module its store when Django starts (runs.apps.RunsConfig.ready: completion_store_set), so that
the model backends here never import the apps above them.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from deliberation.engine.models import (
    CallObserver,
    Completion,
    Message,
    ModelClient,
    Params,
    TokenLogprob,
    gives_next_token,
    gives_token_ids,
    observed,
)

# Appended to the model's name in the key of a next-token call (never in the stored model column).
NEXT_TOKEN_KEY = "#next-token"
NEXT_TOKEN_IDS_KEY = "#next-token-ids"
# What a hit needs from the row (a Completion); the messages and parameters stay in the database.
HIT_FIELDS = ("text", "prompt_tokens", "completion_tokens", "seconds", "logprobs")
PREFETCH_KEPT = 256  # prefetched rows a run's client holds at most


def canonical_messages(messages: Sequence[Message]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def completion_key(*, model: str, messages: Sequence[Message], params: Params, seed: int) -> str:
    """SHA-256 of the canonical JSON of the four things that determine a completion."""
    payload = json.dumps(
        [model, canonical_messages(messages), params.as_dict(), seed],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def logprobs_to_json(logprobs: tuple[TokenLogprob, ...] | None) -> list | None:
    if logprobs is None:
        return None
    return [
        {
            "token": t.token,
            "logprob": t.logprob,
            "top": [list(pair) for pair in t.top],
            **({"top_ids": list(t.top_ids)} if t.top_ids else {}),
        }
        for t in logprobs
    ]


def logprobs_from_json(data: list | None) -> tuple[TokenLogprob, ...] | None:
    if data is None:
        return None
    return tuple(
        TokenLogprob(
            token=t["token"],
            logprob=t["logprob"],
            top=tuple((token, logprob) for token, logprob in t["top"]),
            top_ids=tuple(t.get("top_ids", ())),
        )
        for t in data
    )


class CompletionStore(Protocol):
    """Where completions are kept: `hit` counts a hit and returns the row (None on a miss),
    `hit_many` for several keys at once; `keep` stores a new row unless another worker stored the
    same key first."""

    def hit(self, key: str, *, fields: Sequence[str]) -> Any | None: ...

    def hit_many(self, keys: Sequence[str], *, fields: Sequence[str]) -> dict[str, Any]:
        """`hit` for several keys in one statement: the rows found, by key."""
        ...

    def keep(
        self,
        *,
        key: str,
        model: str,
        messages: list[dict],
        params: dict,
        seed: int,
        text: str,
        logprobs: list | None,
        prompt_tokens: int,
        completion_tokens: int,
        seconds: float,
    ) -> None: ...


_store: CompletionStore | None = None


def completion_store_set(store: CompletionStore) -> None:
    global _store
    _store = store


def completion_store() -> CompletionStore:
    if _store is None:
        raise RuntimeError("no completion store: Django's runs app sets it when Django starts (django.setup())")
    return _store


def completion_from_row(row: Any) -> Completion:
    return Completion(
        text=row.text,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        seconds=row.seconds,  # what the original call took; `cached` says this one took ~0
        cached=True,
        logprobs=logprobs_from_json(row.logprobs),
    )


@dataclass
class CachingClient:
    """The process's client of a model behind the cache; a run uses a copy that tells the run's
    observer before each call the cache cannot answer (observed_by)."""

    inner: ModelClient
    model: str
    observer: CallObserver | None = None
    # What a prefetch looked up for the calls to come (key -> row, None: a miss), taken by them.
    ahead: dict[str, Any] = field(default_factory=dict)

    def observed_by(self, observer: CallObserver) -> "CachingClient":
        return CachingClient(inner=observed(self.inner, observer), model=self.model, observer=observer)

    def prefetch(self, requests: Sequence[tuple[Sequence[Message], Params, int]]) -> None:
        """Look up the completions of the calls a step is about to make in one statement
        (engine.models.PrefetchingClient); each call then takes its row (or its known miss) from
        here instead of a lookup of its own. Only a run's copy (observed_by) holds them: it lives
        for one run, and the process's client is shared by threads."""
        if self.observer is None:
            return
        keys = [completion_key(model=self.model, messages=m, params=p, seed=seed) for m, p, seed in requests]
        rows = completion_store().hit_many(keys, fields=HIT_FIELDS)
        if len(self.ahead) > PREFETCH_KEPT:
            self.ahead.clear()  # calls that never came (a step that failed): bounded all the same
        self.ahead.update({key: rows.get(key) for key in keys})

    @property
    def gives_next_token(self) -> bool:
        return gives_next_token(self.inner)

    def complete(self, messages: Sequence[Message], *, params: Params, seed: int) -> Completion:
        key = completion_key(model=self.model, messages=messages, params=params, seed=seed)
        return self._cached(
            key,
            messages=messages,
            params=params,
            seed=seed,
            call=lambda: self.inner.complete(messages, params=params, seed=seed),
        )

    def next_token(self, messages: Sequence[Message], *, prefix: str, top: int, seed: int) -> Completion:
        """Cached as a one-token reply to the messages plus the open assistant prefix, keyed under
        the model's name with NEXT_TOKEN_KEY so that it never answers a chat completion."""
        stored = [*canonical_messages(messages), {"role": "assistant", "content": prefix}]
        params = Params(temperature=0.0, max_tokens=1, top_logprobs=top)
        key = completion_key(model=self.model + NEXT_TOKEN_KEY, messages=stored, params=params, seed=seed)
        return self._cached(
            key,
            messages=stored,
            params=params,
            seed=seed,
            call=lambda: self.inner.next_token(messages, prefix=prefix, top=top, seed=seed),
        )

    @property
    def gives_token_ids(self) -> bool:
        return gives_token_ids(self.inner)

    def next_token_ids(
        self, messages: Sequence[Message], *, prefix_ids: Sequence[int], top: int, seed: int
    ) -> Completion:
        """Cached one row per token step, keyed under the model's name with NEXT_TOKEN_IDS_KEY by the
        full prompt and the reply's ids. The row stores the prompt's digest and the ids, not the
        prompt: a decoded reply makes hundreds of rows that share it."""
        ids = " ".join(str(int(i)) for i in prefix_ids)
        keyed = [*canonical_messages(messages), {"role": "assistant", "content": ids}]
        params = Params(temperature=0.0, max_tokens=1, top_logprobs=top)
        key = completion_key(model=self.model + NEXT_TOKEN_IDS_KEY, messages=keyed, params=params, seed=seed)
        prompt = completion_key(model=self.model, messages=messages, params=Params(), seed=0)
        stored = [{"role": "prompt-digest", "content": prompt}, {"role": "assistant", "content": ids}]
        return self._cached(
            key,
            messages=stored,
            params=params,
            seed=seed,
            call=lambda: self.inner.next_token_ids(messages, prefix_ids=prefix_ids, top=top, seed=seed),
        )

    def end_ids(self) -> frozenset[int]:
        return self.inner.end_ids()

    def decode_ids(self, ids: Sequence[int]) -> str:
        return self.inner.decode_ids(ids)

    def _cached(
        self, key: str, *, messages: Sequence[Message], params: Params, seed: int, call: Callable[[], Completion]
    ) -> Completion:
        store = completion_store()
        row = self.ahead.pop(key) if key in self.ahead else store.hit(key, fields=HIT_FIELDS)
        if row is not None:
            return completion_from_row(row)
        if self.observer is not None:
            self.observer.before_uncached_call()
        completion = call()
        made = {
            "key": key,
            "model": self.model,
            "messages": canonical_messages(messages),
            "params": params.as_dict(),
            "seed": seed,
            "text": completion.text,
            "logprobs": logprobs_to_json(completion.logprobs),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "seconds": completion.seconds,
        }
        if self.observer is not None:
            self.observer.completion_made(made)  # stored with the run's next write (one statement)
        else:
            store.keep(**made)
        return completion
