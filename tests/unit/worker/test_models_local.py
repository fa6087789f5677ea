"""worker/models/local.py: the bundled SmolLM2-135M, really run on CPU (offline, a few seconds)."""

import threading
from dataclasses import replace

import pytest

from deliberation.engine.models import Params
from worker.models import model_client
from worker.models.local import (
    LOCAL_MODELS,
    TRUNCATION_MARK,
    LocalModel,
    fit_to_context,
    local_model,
)
from worker.models.retry import PermanentModelError

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def words(text: str) -> int:
    return len(text.split())


def last_words(text: str, n: int) -> str:
    return " ".join(text.split()[-n:])


def fit(messages, budget):
    return fit_to_context(messages, budget=budget, count_tokens=words, keep_tail=last_words)


# --- truncation policy (a word is a token here; each message costs 6 tokens of template) ---

SYSTEM = {"role": "system", "content": "You speak for EPP."}  # 4 words + 6 = 10
HISTORY = [{"role": "user", "content": "old " * 20}, {"role": "assistant", "content": "older " * 20}]
LAST = {"role": "user", "content": "background " * 30 + "Answer with one digit."}  # 34 + 6 = 40


def test_a_prompt_that_fits_is_left_alone():
    messages = [SYSTEM, *HISTORY, LAST]
    assert fit(messages, budget=200) == messages


def test_oldest_non_system_messages_go_first():
    assert fit([SYSTEM, *HISTORY, LAST], budget=80) == [SYSTEM, HISTORY[1], LAST]
    assert fit([SYSTEM, *HISTORY, LAST], budget=50) == [SYSTEM, LAST]


def test_then_the_head_of_the_last_message_goes_keeping_its_instructions():
    system, last = fit([SYSTEM, *HISTORY, LAST], budget=35)
    assert system == SYSTEM
    assert last["content"].startswith(TRUNCATION_MARK.strip())
    assert last["content"].endswith("Answer with one digit.")
    assert 10 + words(last["content"]) + 6 <= 35


def test_a_system_prompt_too_long_for_the_budget_is_an_error():
    with pytest.raises(PermanentModelError, match="does not fit"):
        fit([SYSTEM, LAST], budget=15)


# --- the real model ---


def test_bundled_model_answers_offline_with_token_counts():
    answer = model_client("local:smollm2-135m", cache=False).complete(QUESTION, params=Params(max_tokens=8), seed=1)
    assert answer.text.strip()
    assert answer.prompt_tokens > words(QUESTION[0]["content"])
    assert 0 < answer.completion_tokens <= 8
    assert answer.seconds > 0 and answer.cached is False and answer.logprobs is None


def test_same_seed_gives_the_same_sampled_text():
    client = model_client("local:smollm2-135m", cache=False)
    params = Params(temperature=1.0, max_tokens=12)
    assert (
        client.complete(QUESTION, params=params, seed=5).text == client.complete(QUESTION, params=params, seed=5).text
    )


def test_logprobs_are_returned_per_token_when_asked():
    answer = model_client("local:smollm2-135m", cache=False).complete(
        QUESTION, params=Params(max_tokens=4, top_logprobs=3), seed=1
    )
    assert answer.logprobs is not None and len(answer.logprobs) == answer.completion_tokens
    assert "".join(t.token for t in answer.logprobs) == answer.text
    for token in answer.logprobs:
        assert token.logprob <= 0
        assert len(token.top) >= 3 and token.top[0][1] >= token.top[-1][1]
        assert token.logprob == pytest.approx(token.top[0][1])  # greedy picks the most likely


def test_next_token_reads_the_full_distribution_of_the_first_reply_token():
    client = model_client("local:smollm2-135m", cache=False)
    answer = client.next_token(QUESTION, prefix="", top=50, seed=1)
    (token,) = answer.logprobs
    assert len(token.top) == 50 and token.top[0][0] == answer.text
    assert all(a[1] >= b[1] for a, b in zip(token.top, token.top[1:])) and token.top[0][1] <= 0
    # the most likely token is what greedy decoding writes first
    greedy = client.complete(QUESTION, params=Params(max_tokens=1, top_logprobs=1), seed=1)
    assert greedy.logprobs[0].token == answer.text
    assert greedy.logprobs[0].logprob == pytest.approx(token.top[0][1], abs=1e-3)
    after = client.next_token(QUESTION, prefix=answer.text, top=5, seed=1)
    assert after.logprobs[0].top != token.top[:5]  # the open prefix moves the position on
    # the context keeps the shared head of the prompt: the same answer as from a fresh context
    again = client.next_token(QUESTION, prefix="", top=50, seed=1).logprobs[0].top
    assert [t for t, _ in again] == [t for t, _ in token.top]
    assert [lp for _, lp in again] == pytest.approx([lp for _, lp in token.top], abs=1e-4)


def test_next_token_ids_continue_after_ids_as_a_fresh_evaluation_does():
    model = local_model("smollm2-135m")
    other = [{"role": "system", "content": "Answer like a poet."}, *QUESTION]
    first = model.next_token_ids(QUESTION, prefix_ids=[], top=10, seed=1).logprobs[0]
    assert first.top == model.next_token(QUESTION, prefix="", top=10, seed=1).logprobs[0].top
    assert len(first.top_ids) == 10 and model.decode_ids(first.top_ids[:1]) == first.token
    ids = list(first.top_ids[:1])
    for _ in range(3):  # two prompts in turn, as amulet asks: each keeps a context of its own
        model.next_token_ids(other, prefix_ids=ids, top=10, seed=1)
        ids.append(model.next_token_ids(QUESTION, prefix_ids=ids, top=10, seed=1).logprobs[0].top_ids[0])
    stepped = model.next_token_ids(QUESTION, prefix_ids=ids, top=10, seed=1).logprobs[0]
    fresh = LocalModel(LOCAL_MODELS["smollm2-135m"], n_threads=1).next_token_ids(
        QUESTION, prefix_ids=ids, top=10, seed=1
    )
    assert stepped.top_ids == fresh.logprobs[0].top_ids
    assert [lp for _, lp in stepped.top] == pytest.approx([lp for _, lp in fresh.logprobs[0].top], abs=1e-3)
    assert model.end_ids() >= {2}  # <|im_end|> closes the assistant's turn
    with pytest.raises(PermanentModelError, match="vocabulary"):
        model.next_token_ids(QUESTION, prefix_ids=[10**9], top=5, seed=1)


def test_the_model_loads_once_per_process():
    client = model_client("local:smollm2-135m", cache=False)
    client.complete(QUESTION, params=Params(max_tokens=2), seed=1)
    loaded = local_model("smollm2-135m")._llamas[False]
    assert model_client("local:smollm2-135m", cache=True).inner.inner is client.inner
    client.complete(QUESTION, params=Params(max_tokens=2), seed=2)
    assert local_model("smollm2-135m")._llamas[False] is loaded


def test_concurrent_calls_are_serialised_safely():
    client = model_client("local:smollm2-135m", cache=False)
    expected = client.complete(QUESTION, params=Params(max_tokens=6), seed=1).text
    answers: list[str] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(client.complete(QUESTION, params=Params(max_tokens=6), seed=1).text)
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [expected] * 4


def test_a_prompt_longer_than_the_context_is_truncated_not_refused():
    small = LocalModel(replace(LOCAL_MODELS["smollm2-135m"], n_ctx=256))
    long_question = [{"role": "user", "content": "Fisheries policy matters. " * 200 + "What is the capital of France?"}]
    answer = small.complete(long_question, params=Params(max_tokens=8), seed=1)
    assert "Paris" in answer.text  # the question at the end survived the cut
    assert answer.prompt_tokens + answer.completion_tokens <= 256
