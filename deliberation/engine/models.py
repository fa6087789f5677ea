"""The model-client protocol and its deterministic test double."""

import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypedDict


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Params:
    temperature: float = 0.0
    max_tokens: int = 400
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0  # > 0 asks the backend for per-token log-probabilities

    def as_dict(self) -> dict:
        return {**asdict(self), "stop": list(self.stop)}


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()
    # next_token_ids: the token id of each entry of `top`, in the same order (empty otherwise)
    top_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached: bool = False
    logprobs: tuple[TokenLogprob, ...] | None = None

    def usage(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 4),
            "cached": self.cached,
        }


class ModelError(Exception):
    """A model call failed for good (after the backend's own bounded retries)."""


class ModelClient(Protocol):
    def complete(self, messages: Sequence[Message], *, params: Params, seed: int) -> Completion: ...


class CallObserver(Protocol):
    """Who hears of one run's model calls: the run service, given to the run's clients when it
    builds them (`observed`), so that the clients report to the run and never reach into it.

    `before_uncached_call`: the completion cache cannot answer and is about to call the model (the
    run writes the events it holds first, and may stop there: a pause). `completion_made`: that
    call's answer, as the cache stores it (the arguments of its store's `keep`): the run stores it
    with its next write, in the same statement as the event the answer went into, so nothing
    that depends on it is ever stored without it. `retried`: a call answered only after retries
    ({"model", "attempts", "errors", "waited_s"}: events.RetryData)."""

    def before_uncached_call(self) -> None: ...

    def completion_made(self, completion: dict) -> None: ...

    def retried(self, retry: dict) -> None: ...


def observed(client: ModelClient, observer: CallObserver) -> ModelClient:
    """`client` as one run uses it: each wrapper that reports (the cache, the retries) is copied
    with the run's observer; the backend under them stays the process's own (its connections, a
    loaded model). A client that reports nothing is returned as it is."""
    bind = getattr(client, "observed_by", None)
    return client if bind is None else bind(observer)


class PrefetchingClient(ModelClient, Protocol):
    """A client told ahead of the calls a step is about to make, as (messages, params, seed): the
    completion cache answers them in one lookup instead of one per call (a vote asks every group's
    judge at once). A hint only: each call is still made with `complete`, and may differ."""

    def prefetch(self, requests: Sequence[tuple[Sequence[Message], Params, int]]) -> None: ...


class NextTokenClient(ModelClient, Protocol):
    """A client that also gives the log-probabilities of the next token.

    `next_token` reads the distribution at the first position of the assistant's reply, after
    `prefix` (an open assistant turn; "" for the reply's first token), without sampling. The
    answer is a Completion whose text is the most likely token and whose single TokenLogprob
    holds the `top` most likely tokens, best first (a backend may return fewer). Judges that score
    from a distribution (llm-expected) and decoding-time strategies (amulet) use it.
    """

    gives_next_token: bool

    def next_token(self, messages: Sequence[Message], *, prefix: str, top: int, seed: int) -> Completion: ...


def gives_next_token(client: object) -> bool:
    """Whether `client` (and every wrapper around its backend) can answer next_token."""
    return bool(getattr(client, "gives_next_token", False))


class TokenIdClient(ModelClient, Protocol):
    """A client that decodes by token ids: what decoding-time strategies (amulet) need.

    `next_token_ids` reads the next-token distribution after the chat prompt of `messages` with
    the assistant turn opened and the token ids `prefix_ids` of the reply so far appended (ids,
    never text: re-tokenising decoded text can give other ids). The answer is a Completion whose
    single TokenLogprob holds the `top` most likely tokens, best first, with their ids in
    `top_ids`: raw log-softmax of the logits, no temperature, no sampling. `end_ids` are the ids
    that close the assistant's turn; `decode_ids` is the text of a reply's ids.
    """

    gives_token_ids: bool

    def next_token_ids(
        self, messages: Sequence[Message], *, prefix_ids: Sequence[int], top: int, seed: int
    ) -> Completion: ...

    def end_ids(self) -> frozenset[int]: ...

    def decode_ids(self, ids: Sequence[int]) -> str: ...


def gives_token_ids(client: object) -> bool:
    """Whether `client` (and every wrapper around its backend) can answer next_token_ids."""
    return bool(getattr(client, "gives_token_ids", False))


def token_ids_completion(
    top: Sequence[tuple[int, str, float]], *, prompt_tokens: int = 0, seconds: float = 0.0
) -> Completion:
    """The Completion a next_token_ids call answers, from (id, text, logprob) triples in any
    order (equal logprobs: the lower id first, so that every backend ranks alike)."""
    ranked = sorted(top, key=lambda triple: (-triple[2], triple[0]))
    if not ranked:
        raise ModelError("the backend gave no next-token log-probabilities")
    _, token, logprob = ranked[0]
    return Completion(
        text=token,
        prompt_tokens=prompt_tokens,
        completion_tokens=1,
        seconds=seconds,
        logprobs=(
            TokenLogprob(
                token=token,
                logprob=logprob,
                top=tuple((text, lp) for _, text, lp in ranked),
                top_ids=tuple(i for i, _, _ in ranked),
            ),
        ),
    )


def next_token_completion(
    top: Sequence[tuple[str, float]], *, prompt_tokens: int = 0, seconds: float = 0.0
) -> Completion:
    """The Completion a next_token call answers, from (token, logprob) pairs in any order."""
    ranked = tuple(sorted(top, key=lambda pair: -pair[1]))
    if not ranked:
        raise ModelError("the backend gave no next-token log-probabilities")
    token, logprob = ranked[0]
    return Completion(
        text=token,
        prompt_tokens=prompt_tokens,
        completion_tokens=1,
        seconds=seconds,
        logprobs=(TokenLogprob(token=token, logprob=logprob, top=ranked),),
    )


# Words in a prompt that tell the scripted double which shape of answer the caller expects.
JUDGE_MARKER = "choice_number"
REASON_MARKER = "reason_and_score"
DECISION_MARKER = "ACCEPT or REJECT"
NO_AMENDMENT = "NO AMENDMENT"
RANKING_MARKER = "Candidates to rank:"  # then the letters, "A, B, C, D" (strategies.mediator)
FORECAST_MARKER = "Groups to forecast:"  # then the groups' names, ", "-separated (strategies.forecast)

Responder = Callable[[Sequence[Message], Params, int], str]
# (messages, prefix, seed) -> (token, logprob) pairs: the scripted next-token distribution
NextTokenResponder = Callable[[Sequence[Message], str, int], Sequence[tuple[str, float]]]
# (messages, prefix ids, seed) -> a logprob per SCRIPTED_VOCAB id: the scripted distribution by id
TokenIdsResponder = Callable[[Sequence[Message], Sequence[int], int], Sequence[float]]


def _digest(messages: Sequence[Message], seed: int) -> int:
    text = "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in messages)
    return int.from_bytes(hashlib.sha256(f"{seed}\x1d{text}".encode()).digest()[:8], "big")


def _listed_after(ask: str, marker: str) -> list[str]:
    """The ", "-separated items on the line that starts with `marker` (empty when there is none)."""
    for line in ask.splitlines():
        if line.startswith(marker):
            return [item.strip() for item in line.removeprefix(marker).split(", ") if item.strip()]
    return []


def scripted_reply(messages: Sequence[Message], params: Params, seed: int) -> str:
    """Deterministic text that has the shape each caller expects.

    A judge prompt gets one digit; a ranking prompt a shuffle of its letters ("C > A > B"); a
    forecast prompt one line per group ("EPP: 6 | ..."); any other prompt gets a short paragraph that starts the way a
    resolution must, and names a token derived from the prompt so that different prompts differ.
    """
    digest = _digest(messages, seed)
    ask = messages[-1]["content"]
    if JUDGE_MARKER in ask:
        return str(digest % 10)
    if REASON_MARKER in ask:
        return (
            f"Reason: the draft {'covers' if digest % 2 else 'misses'} the position's key points. Score: {digest % 10}"
        )
    if DECISION_MARKER in ask:
        verdict = "ACCEPT" if digest % 2 else "REJECT"
        return f"{verdict} because it {'brings' if digest % 2 else 'would cost'} the votes the goal needs."
    listed = _listed_after(ask, RANKING_MARKER)
    if listed:
        random.Random(digest).shuffle(listed)
        return " > ".join(listed)
    listed = _listed_after(ask, FORECAST_MARKER)
    if listed:
        draw = random.Random(digest)
        return "\n".join(f"{name}: {draw.randrange(10)} | {name} wants its core demand kept" for name in listed)
    if NO_AMENDMENT in ask and digest % 4 == 0:
        return NO_AMENDMENT
    return (
        f"The European Parliament calls for a balanced compromise (draft {digest % 100000:05d}), "
        "with concrete funding, a review clause and safeguards for the groups that oppose it."
    )


def scripted_next_token(messages: Sequence[Message], prefix: str, seed: int) -> list[tuple[str, float]]:
    """A fixed-shape distribution: on a judge prompt most mass on one digit (derived from the
    prompt, as scripted_reply's digit is), some on its neighbours and their " d" variants, a
    little on a word; elsewhere a few words."""
    digest = _digest([*messages, {"role": "assistant", "content": prefix}], seed)
    if JUDGE_MARKER in messages[-1]["content"]:
        peak = digest % 10
        shares = {str(peak): 0.6, "The": 0.1}
        for neighbour in (peak - 1, peak + 1):
            if 0 <= neighbour <= 9:
                shares[str(neighbour)] = shares.get(str(neighbour), 0) + 0.1
                shares[f" {neighbour}"] = 0.05
        return [(token, math.log(share)) for token, share in shares.items()]
    return [(" The", math.log(0.5)), (" a", math.log(0.3)), (" and", math.log(0.2))]


# The scripted double's token vocabulary: id = index; SCRIPTED_END closes the assistant's turn.
SCRIPTED_VOCAB: tuple[str, ...] = (
    "<end>",
    "The",
    " European",
    " Parliament",
    " calls",
    " for",
    " a",
    " balanced",
    " compromise",
    " with",
    " funding",
    ",",
    " review",
    " clause",
    " and",
    " safeguards",
    " groups",
    " that",
    " oppose",
    " it",
    ".",
    " support",
    " welcomes",
    " urges",
)
SCRIPTED_END = 0
SCRIPTED_END_AFTER = 12  # replies end (most mass on SCRIPTED_END) from this many tokens on


def scripted_next_token_ids(messages: Sequence[Message], prefix_ids: Sequence[int], seed: int) -> list[float]:
    """Log-probabilities over SCRIPTED_VOCAB, derived from the prompt, the reply so far and the
    seed (two prompts give two distributions, as two contexts of one model do); from
    SCRIPTED_END_AFTER tokens on, the end token takes nearly all the mass in every context."""
    if len(prefix_ids) >= SCRIPTED_END_AFTER:  # the same in every context: the end wins any mix
        logits = [-20.0] * len(SCRIPTED_VOCAB)
        logits[SCRIPTED_END] = 12.0
    else:
        head = _digest([*messages, {"role": "assistant", "content": " ".join(map(str, prefix_ids))}], seed)
        logits = [-((head >> (index % 60)) % 97) / 12.0 for index in range(len(SCRIPTED_VOCAB))]
        logits[SCRIPTED_END] = -20.0
    top = max(logits)
    norm = top + math.log(math.fsum(math.exp(logit - top) for logit in logits))
    return [logit - norm for logit in logits]


@dataclass
class ScriptedModelClient:
    """The test double: no network, same answer for the same messages and seed.

    `responder` replaces the default replies; `delay_s` simulates a slow model; `calls` records
    the latest requests (at least `max_calls`, at most twice that) so tests can assert what the engine asked for (a worker keeps
    its clients for its lifetime: an unbounded record grew its memory with every run).
    `next_token_responder` gives the next-token distribution (None: this double has no logprobs,
    like a backend without them); `next_token_calls` records (messages, prefix, top, seed), bounded alike.
    `token_ids_responder` gives the distribution over SCRIPTED_VOCAB by token id
    (scripted_next_token_ids; None: no next_token_ids either); `token_id_calls` records
    (messages, prefix_ids, top, seed).
    """

    responder: Responder = scripted_reply
    delay_s: float = 0.0
    calls: list[tuple[tuple[Message, ...], Params, int]] = field(default_factory=list)
    max_calls: int = 1000
    next_token_responder: NextTokenResponder | None = scripted_next_token
    next_token_calls: list[tuple[tuple[Message, ...], str, int, int]] = field(default_factory=list)
    token_ids_responder: TokenIdsResponder | None = scripted_next_token_ids
    token_id_calls: list[tuple[tuple[Message, ...], tuple[int, ...], int, int]] = field(default_factory=list)

    @property
    def gives_next_token(self) -> bool:
        return self.next_token_responder is not None

    @property
    def gives_token_ids(self) -> bool:
        return self.token_ids_responder is not None

    def next_token_ids(
        self, messages: Sequence[Message], *, prefix_ids: Sequence[int], top: int, seed: int
    ) -> Completion:
        if self.token_ids_responder is None:
            raise ModelError("this scripted model gives no next-token log-probabilities")
        self.token_id_calls.append((tuple(messages), tuple(prefix_ids), top, seed))
        if len(self.token_id_calls) > 2 * self.max_calls:
            del self.token_id_calls[: len(self.token_id_calls) - self.max_calls]
        logprobs = self.token_ids_responder(messages, prefix_ids, seed)
        triples = sorted(((i, SCRIPTED_VOCAB[i], lp) for i, lp in enumerate(logprobs)), key=lambda t: (-t[2], t[0]))
        return token_ids_completion(triples[:top], prompt_tokens=sum(len(m["content"].split()) for m in messages))

    def end_ids(self) -> frozenset[int]:
        return frozenset({SCRIPTED_END})

    def decode_ids(self, ids: Sequence[int]) -> str:
        return "".join(SCRIPTED_VOCAB[i] for i in ids)

    def next_token(self, messages: Sequence[Message], *, prefix: str, top: int, seed: int) -> Completion:
        if self.next_token_responder is None:
            raise ModelError("this scripted model gives no next-token log-probabilities")
        self.next_token_calls.append((tuple(messages), prefix, top, seed))
        if len(self.next_token_calls) > 2 * self.max_calls:
            del self.next_token_calls[: len(self.next_token_calls) - self.max_calls]
        pairs = sorted(self.next_token_responder(messages, prefix, seed), key=lambda pair: -pair[1])[:top]
        return next_token_completion(pairs, prompt_tokens=sum(len(m["content"].split()) for m in messages))

    def complete(self, messages: Sequence[Message], *, params: Params, seed: int) -> Completion:
        started = time.perf_counter()
        self.calls.append((tuple(messages), params, seed))
        if len(self.calls) > 2 * self.max_calls:  # trimmed in batches: amortised O(1) per call
            del self.calls[: len(self.calls) - self.max_calls]
        if self.delay_s:
            time.sleep(self.delay_s)
        text = self.responder(messages, params, seed)
        prompt_tokens = sum(len(m["content"].split()) for m in messages)
        return Completion(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(text.split()),
            seconds=time.perf_counter() - started,
        )
