"""worker/models/cache.py: the completion cache keyed by (model, messages, params, seed)."""

import pytest

from deliberation.engine.models import Completion, ModelError, Params, TokenLogprob
from deliberation.runs.models import CachedCompletion
from worker.models.cache import CachingClient, completion_key, completion_store

MESSAGES = [{"role": "system", "content": "You are EPP."}, {"role": "user", "content": "Draft."}]
PARAMS = Params(temperature=0.2, max_tokens=50)


class CountingClient:
    def __init__(self, text: str = "A draft.", logprobs=None) -> None:
        self.calls = 0
        self.text = text
        self.logprobs = logprobs

    def complete(self, messages, *, params, seed):
        self.calls += 1
        return Completion(
            text=f"{self.text} #{self.calls}",
            prompt_tokens=17,
            completion_tokens=5,
            seconds=0.25,
            logprobs=self.logprobs,
        )


@pytest.mark.django_db
def test_rerun_is_answered_from_the_cache_without_a_model_call():
    inner = CountingClient()
    client = CachingClient(inner, model="scripted:default")
    first = client.complete(MESSAGES, params=PARAMS, seed=7)
    again = client.complete(MESSAGES, params=PARAMS, seed=7)
    assert inner.calls == 1
    assert first.cached is False and again.cached is True
    assert again.text == first.text == "A draft. #1"
    assert (again.prompt_tokens, again.completion_tokens, again.seconds) == (17, 5, 0.25)
    assert CachedCompletion.objects.get().hits == 1


@pytest.mark.django_db
def test_a_miss_stores_the_request_and_its_token_counts():
    CachingClient(CountingClient(), model="m").complete(MESSAGES, params=PARAMS, seed=7)
    row = CachedCompletion.objects.get()
    assert row.key == completion_key(model="m", messages=MESSAGES, params=PARAMS, seed=7)
    assert (row.model, row.seed, row.messages, row.params) == ("m", 7, MESSAGES, PARAMS.as_dict())
    assert (row.prompt_tokens, row.completion_tokens, row.seconds, row.hits) == (17, 5, 0.25, 0)


VARIANTS = {
    "model": dict(model="other-model"),
    "messages": dict(messages=[MESSAGES[0], {"role": "user", "content": "Draft!"}]),
    "role": dict(messages=[{"role": "user", "content": "You are EPP."}, MESSAGES[1]]),
    "temperature": dict(params=Params(temperature=0.3, max_tokens=50)),
    "max_tokens": dict(params=Params(temperature=0.2, max_tokens=51)),
    "stop": dict(params=Params(temperature=0.2, max_tokens=50, stop=("\n",))),
    "top_logprobs": dict(params=Params(temperature=0.2, max_tokens=50, top_logprobs=2)),
    "seed": dict(seed=8),
}


@pytest.mark.django_db
@pytest.mark.parametrize("changed", VARIANTS)
def test_changing_any_part_of_the_request_misses_the_cache(changed):
    base = dict(model="m", messages=MESSAGES, params=PARAMS, seed=7)
    variant = {**base, **VARIANTS[changed]}
    assert completion_key(**variant) != completion_key(**base)
    inner = CountingClient()
    CachingClient(inner, model=base["model"]).complete(base["messages"], params=base["params"], seed=base["seed"])
    CachingClient(inner, model=variant["model"]).complete(
        variant["messages"], params=variant["params"], seed=variant["seed"]
    )
    assert inner.calls == 2


def test_key_ignores_the_key_order_inside_messages():
    reordered = [{"content": m["content"], "role": m["role"]} for m in MESSAGES]
    assert completion_key(model="m", messages=reordered, params=PARAMS, seed=1) == completion_key(
        model="m", messages=MESSAGES, params=PARAMS, seed=1
    )


@pytest.mark.django_db
def test_logprobs_survive_the_cache():
    logprobs = (TokenLogprob("A", -0.5, (("A", -0.5), ("The", -1.25))), TokenLogprob(" draft", -0.1))
    client = CachingClient(CountingClient(logprobs=logprobs), model="m")
    params = Params(max_tokens=2, top_logprobs=2)
    client.complete(MESSAGES, params=params, seed=1)
    assert client.complete(MESSAGES, params=params, seed=1).logprobs == logprobs


@pytest.mark.django_db
def test_a_row_stored_by_a_racing_worker_does_not_break_the_store():
    class RacingClient(CountingClient):
        def complete(self, messages, *, params, seed):
            answer = super().complete(messages, params=params, seed=seed)
            CachedCompletion.objects.create(  # another worker finished the same call first
                key=completion_key(model="m", messages=messages, params=params, seed=seed),
                model="m",
                messages=[],
                params={},
                seed=seed,
                text="theirs",
            )
            return answer

    answer = CachingClient(RacingClient(), model="m").complete(MESSAGES, params=PARAMS, seed=1)
    assert answer.text == "A draft. #1"
    assert CachedCompletion.objects.get().text == "theirs"


@pytest.mark.django_db
def test_failures_are_not_cached():
    class FailingClient:
        def complete(self, messages, *, params, seed):
            raise ModelError("down")

    with pytest.raises(ModelError):
        CachingClient(FailingClient(), model="m").complete(MESSAGES, params=PARAMS, seed=1)
    assert not CachedCompletion.objects.exists()


class NextTokenCounting(CountingClient):
    gives_next_token = True

    def next_token(self, messages, *, prefix, top, seed):
        from deliberation.engine.models import next_token_completion

        self.calls += 1
        return next_token_completion([("7", -0.2), (" 6", -1.9)][:top], prompt_tokens=11)


@pytest.mark.django_db
def test_next_token_calls_are_cached_apart_from_completions():
    inner = NextTokenCounting()
    client = CachingClient(inner, model="m")
    assert client.gives_next_token and not CachingClient(CountingClient(), model="m").gives_next_token
    first = client.next_token(MESSAGES, prefix="", top=20, seed=3)
    again = client.next_token(MESSAGES, prefix="", top=20, seed=3)
    assert inner.calls == 1 and again.cached and again.logprobs == first.logprobs
    assert again.logprobs[0].top == (("7", -0.2), (" 6", -1.9))
    client.next_token(MESSAGES, prefix="The score is", top=20, seed=3)  # another prefix: another call
    # a chat completion of the same messages with one token and the same logprobs is another entry
    client.complete(
        [*MESSAGES, {"role": "assistant", "content": ""}],
        params=Params(temperature=0.0, max_tokens=1, top_logprobs=20),
        seed=3,
    )
    assert inner.calls == 3
    row = CachedCompletion.objects.get(
        key=completion_key(
            model="m#next-token",
            messages=[*MESSAGES, {"role": "assistant", "content": ""}],
            params=Params(temperature=0.0, max_tokens=1, top_logprobs=20),
            seed=3,
        )
    )
    assert row.model == "m" and row.text == "7"


@pytest.mark.django_db
def test_token_id_steps_are_cached_one_row_each_with_their_ids():
    from deliberation.engine.models import ScriptedModelClient

    inner = ScriptedModelClient()
    client = CachingClient(inner, model="m")
    assert client.gives_token_ids and not CachingClient(CountingClient(), model="m").gives_token_ids
    first = client.next_token_ids(MESSAGES, prefix_ids=[1, 2], top=5, seed=3)
    again = client.next_token_ids(MESSAGES, prefix_ids=[1, 2], top=5, seed=3)
    assert len(inner.token_id_calls) == 1 and again.cached and not first.cached
    assert again.logprobs == first.logprobs and len(again.logprobs[0].top_ids) == 5
    client.next_token_ids(MESSAGES, prefix_ids=[1, 3], top=5, seed=3)  # other ids: another step
    client.next_token(MESSAGES, prefix="", top=5, seed=3)  # a text prefix is another kind of entry
    assert len(inner.token_id_calls) == 2 and CachedCompletion.objects.count() == 3
    row = CachedCompletion.objects.filter(model="m", messages__1__content="1 2").get()
    assert row.messages[0]["role"] == "prompt-digest" and "Draft." not in str(row.messages)
    assert client.end_ids() == frozenset({0}) and client.decode_ids([1, 2, 3]) == "The European Parliament"


class Heard:
    """A run's CallObserver: what its clients told it."""

    def __init__(self) -> None:
        self.before_calls = 0
        self.retries: list[dict] = []

    def before_uncached_call(self) -> None:
        self.before_calls += 1

    def completion_made(self, completion: dict) -> None:
        completion_store().keep(**completion)  # as the run's next write would

    def retried(self, retry: dict) -> None:
        self.retries.append(retry)


@pytest.mark.django_db
def test_a_runs_copy_tells_its_observer_before_each_miss_and_never_on_a_hit():
    from deliberation.engine.models import observed
    from worker.models.retry import RetryingClient

    inner = CountingClient()
    shared = CachingClient(RetryingClient(inner, model="m", base_delay_s=0), model="m")
    heard = Heard()
    mine = observed(shared, heard)
    mine.complete(MESSAGES, params=PARAMS, seed=7)
    mine.complete(MESSAGES, params=PARAMS, seed=7)  # a hit: the model is not called
    mine.complete(MESSAGES, params=PARAMS, seed=8)
    assert heard.before_calls == 2 and inner.calls == 2
    # The process's client is untouched: another run's calls reach no one else's observer.
    shared.complete(MESSAGES, params=PARAMS, seed=9)
    assert heard.before_calls == 2 and shared.observer is None and shared.inner.observer is None


class Observer:
    def __init__(self) -> None:
        self.uncached = 0

    def before_uncached_call(self) -> None:
        self.uncached += 1

    def completion_made(self, completion: dict) -> None:
        completion_store().keep(**completion)  # as the run's next write would

    def retried(self, retry: dict) -> None:
        pass


def cache_statements(queries) -> list[str]:
    return [query["sql"] for query in queries if CachedCompletion._meta.db_table in query["sql"]]


@pytest.mark.django_db
def test_a_prefetch_answers_a_step_s_calls_in_one_lookup():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    inner = CountingClient()
    seeds = [1, 2, 3, 4]
    shared = CachingClient(inner, model="m")
    for seed in seeds[:3]:
        shared.complete(MESSAGES, params=PARAMS, seed=seed)  # three of the four are cached
    run_client = shared.observed_by(Observer())
    with CaptureQueriesContext(connection) as queries:
        run_client.prefetch([(MESSAGES, PARAMS, seed) for seed in seeds])
        answers = [run_client.complete(MESSAGES, params=PARAMS, seed=seed) for seed in seeds]
    # One UPDATE ... RETURNING for the four lookups, then only the miss's INSERT.
    statements = cache_statements(queries.captured_queries)
    assert len(statements) == 2 and statements[0].startswith("UPDATE") and statements[1].startswith("INSERT")
    assert [answer.cached for answer in answers] == [True, True, True, False]
    assert [answer.text for answer in answers] == ["A draft. #1", "A draft. #2", "A draft. #3", "A draft. #4"]
    assert inner.calls == 4 and run_client.observer.uncached == 1
    assert sorted(CachedCompletion.objects.values_list("hits", flat=True)) == [0, 1, 1, 1]
    assert run_client.ahead == {}  # each call took its row


@pytest.mark.django_db
def test_a_call_the_prefetch_did_not_name_is_looked_up_alone():
    inner = CountingClient()
    shared = CachingClient(inner, model="m")
    shared.complete(MESSAGES, params=PARAMS, seed=9)
    run_client = shared.observed_by(Observer())
    run_client.prefetch([(MESSAGES, PARAMS, 1)])
    again = run_client.complete(MESSAGES, params=PARAMS, seed=9)
    assert again.cached is True and again.text == "A draft. #1" and inner.calls == 1


@pytest.mark.django_db
def test_the_process_client_keeps_no_prefetched_rows():
    """Its client is shared by the worker's threads: only a run's copy holds rows ahead."""
    shared = CachingClient(CountingClient(), model="m")
    shared.complete(MESSAGES, params=PARAMS, seed=1)
    shared.prefetch([(MESSAGES, PARAMS, 1)])
    assert shared.ahead == {}


class Holding(Observer):
    """A run's observer that holds the rows, as a run holds them until its next write."""

    def __init__(self) -> None:
        super().__init__()
        self.made: list[dict] = []

    def completion_made(self, completion: dict) -> None:
        self.made.append(completion)


@pytest.mark.django_db
def test_a_runs_copy_hands_each_new_completion_to_the_run_and_stores_nothing_itself():
    inner = CountingClient()
    shared = CachingClient(inner, model="m")
    holding = Holding()
    answer = shared.observed_by(holding).complete(MESSAGES, params=PARAMS, seed=5)
    (made,) = holding.made
    assert CachedCompletion.objects.count() == 0  # the run writes it, with the event it went into
    assert made["key"] == completion_key(model="m", messages=MESSAGES, params=PARAMS, seed=5)
    assert (made["model"], made["seed"], made["text"], made["params"]) == ("m", 5, answer.text, PARAMS.as_dict())
    completion_store().keep(**made)
    again = shared.complete(MESSAGES, params=PARAMS, seed=5)  # the process's client: no observer
    assert again.cached and again.text == answer.text and inner.calls == 1
    shared.complete(MESSAGES, params=PARAMS, seed=6)
    assert CachedCompletion.objects.filter(seed=6).exists()  # stored at once without a run
