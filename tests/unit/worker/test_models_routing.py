"""worker/models/__init__.py: model strings pick a backend; clients are kept per process."""

import time

import pytest
from django.test import override_settings

from deliberation.engine.judges import parse_score
from deliberation.engine.models import JUDGE_MARKER, ModelError, Params, scripted_reply
from deliberation.runs.models import CachedCompletion
from worker.models import backend_client, model_client, model_string_check
from worker.models.cache import CachingClient
from worker.models.litellm_backend import LiteLLMClient
from worker.models.local import LocalModel, local_model
from worker.models.openai_compatible import OpenAICompatibleClient
from worker.models.retry import PermanentModelError, RetryingClient

DRAFT = [{"role": "user", "content": "Draft a resolution on fisheries."}]
JUDGE = [{"role": "user", "content": f"Score it. Answer with the {JUDGE_MARKER} only."}]


def test_scripted_default_answers_with_the_engine_script():
    client = model_client("scripted:default", cache=False)
    assert client.complete(DRAFT, params=Params(), seed=3).text == scripted_reply(DRAFT, Params(), 3)


def test_clients_are_kept_per_process_and_per_model_string():
    assert model_client("scripted:default", cache=False) is model_client("scripted:default", cache=False)
    assert model_client("scripted:default", cache=False) is not model_client("scripted:slow", cache=False)


def test_cache_flag_wraps_the_retrying_backend_in_the_cache():
    cached = model_client("scripted:default")
    assert isinstance(cached, CachingClient) and isinstance(cached.inner, RetryingClient)
    assert isinstance(model_client("scripted:default", cache=False), RetryingClient)


def test_scripted_slow_takes_its_delay():
    started = time.perf_counter()
    model_client("scripted:slow", cache=False).complete(DRAFT, params=Params(), seed=1)
    assert time.perf_counter() - started >= 0.05


def test_scripted_bad_judge_never_gives_a_digit_to_the_judge_but_drafts_normally():
    client = model_client("scripted:bad-judge", cache=False)
    assert parse_score(client.complete(JUDGE, params=Params(), seed=1).text) is None
    assert client.complete(DRAFT, params=Params(), seed=1).text == scripted_reply(DRAFT, Params(), 1)


@pytest.mark.django_db
def test_scripted_fail_ends_in_a_clear_error_and_caches_nothing():
    with override_settings(HEMICYCLE_MODEL_MAX_RETRIES=2):
        client = CachingClient(backend_client("scripted:fail"), model="scripted:fail")
    with pytest.raises(ModelError, match=r"^model scripted:fail failed after 3 attempts: TimeoutError"):
        client.complete(DRAFT, params=Params(), seed=1)
    assert not CachedCompletion.objects.exists()


@pytest.mark.parametrize("model", ["local:gpt-5", "local:", "scripted:nonsense"])
def test_unknown_local_or_scripted_names_are_a_clear_error(model):
    with pytest.raises(PermanentModelError, match="unknown .* model .*known: "):
        model_client(model)


def test_local_model_routes_to_the_one_process_wide_llama_without_loading_it():
    client = model_client("local:smollm2-135m", cache=False)
    assert isinstance(client.inner, LocalModel)
    assert client.inner is local_model("smollm2-135m")


@override_settings(
    HEMICYCLE_MODEL_TIMEOUT_S=12.5, HEMICYCLE_MODEL_API_BASE="http://vllm:8000/v1", HEMICYCLE_MODEL_API_KEY="sk-test"
)
def test_other_strings_go_to_litellm_with_endpoint_settings():
    client = backend_client("ollama/llama3")
    assert client.inner == LiteLLMClient(
        model="ollama/llama3", timeout_s=12.5, api_base="http://vllm:8000/v1", api_key="sk-test"
    )
    assert "sk-test" not in repr(client)


@pytest.mark.parametrize("model", ["hosted_vllm/Qwen/Qwen2.5-7B-Instruct", "openai/Qwen/Qwen2.5-7B-Instruct"])
@override_settings(
    HEMICYCLE_MODEL_TIMEOUT_S=12.5, HEMICYCLE_MODEL_API_BASE="http://vllm:8000/v1", HEMICYCLE_MODEL_API_KEY="sk-test"
)
def test_a_model_server_of_our_own_gets_the_lean_openai_compatible_client(model):
    client = backend_client(model)
    assert isinstance(client, RetryingClient) and client.model == model
    assert client.inner == OpenAICompatibleClient(
        model="Qwen/Qwen2.5-7B-Instruct", api_base="http://vllm:8000/v1", timeout_s=12.5, api_key="sk-test"
    )
    assert "sk-test" not in repr(client)


@override_settings(HEMICYCLE_MODEL_API_BASE="")
def test_openai_without_an_endpoint_is_the_hosted_api_through_litellm():
    assert isinstance(backend_client("openai/gpt-4o-mini").inner, LiteLLMClient)


@override_settings(
    HEMICYCLE_MODEL_TIMEOUT_S=12.5,
    HEMICYCLE_MODEL_API_BASE="http://fallback:8000/v1",
    HEMICYCLE_MODEL_API_KEY="sk-global",
)
def test_each_endpoint_gets_its_own_client_with_the_key_from_its_environment_variable(monkeypatch):
    monkeypatch.setenv("HEMICYCLE_TEST_GPU1_KEY", "sk-gpu1")
    monkeypatch.setenv("HEMICYCLE_TEST_GPU2_KEY", "sk-gpu2")
    model = "hosted_vllm/Qwen/Qwen2.5-7B-Instruct"
    one = model_client(model, cache=False, api_base="http://gpu1:8000/v1", api_key_env="HEMICYCLE_TEST_GPU1_KEY")
    two = model_client(model, cache=False, api_base="http://gpu2:8000/v1", api_key_env="HEMICYCLE_TEST_GPU2_KEY")
    assert one is not two
    assert (one.inner.api_base, one.inner.api_key) == ("http://gpu1:8000/v1", "sk-gpu1")
    assert (two.inner.api_base, two.inner.api_key) == ("http://gpu2:8000/v1", "sk-gpu2")
    # Neither given: the settings' endpoint and key, as one-server deployments have.
    fallback = backend_client(model).inner
    assert (fallback.api_base, fallback.api_key) == ("http://fallback:8000/v1", "sk-global")
    hosted = backend_client(
        "openai/gpt-4o-mini", api_base="https://api.example/v1", api_key_env="HEMICYCLE_TEST_GPU1_KEY"
    )
    assert isinstance(hosted.inner, OpenAICompatibleClient) and hosted.inner.api_key == "sk-gpu1"


def test_a_missing_key_variable_is_a_permanent_error_that_names_it(monkeypatch):
    monkeypatch.delenv("HEMICYCLE_TEST_NO_KEY", raising=False)
    with pytest.raises(PermanentModelError, match="environment variable HEMICYCLE_TEST_NO_KEY is not set"):
        backend_client("hosted_vllm/q", api_base="http://gpu1:8000/v1", api_key_env="HEMICYCLE_TEST_NO_KEY")


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("scripted:nope", "unknown scripted model"),
        ("local:nope", "unknown local model"),
        ("", "not a model string"),
        (" openai/x", "not a model string"),
        ("nosuchprovider/x", "no litellm provider"),
    ],
)
def test_model_string_check_refuses_what_could_not_run(model, error):
    with pytest.raises(PermanentModelError, match=error):
        model_string_check(model)


@pytest.mark.parametrize(
    "model", ["scripted:default", "local:smollm2-135m", "hosted_vllm/q", "openai/gpt-4o-mini", "ollama/llama3"]
)
def test_model_string_check_accepts_every_backend(model):
    model_string_check(model)
