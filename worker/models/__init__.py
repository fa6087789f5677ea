"""Model clients for the engine, chosen by a model string.

    scripted:NAME        deterministic test doubles, no network (see worker/models/scripted.py)
    local:smollm2-135m   the bundled model, run in this process by llama-cpp-python (the default)
    hosted_vllm/NAME, openai/NAME, with an api_base
                         an OpenAI-compatible model server (vLLM, ...): one HTTP request per call
                         (worker/models/openai_compatible.py says why not litellm there)
    anything else        a litellm model string: "openai/gpt-4o-mini", "ollama/llama3", ...

The endpoint is per call: the model registry (deliberation/registry) gives each entry its base URL
and the name of the environment variable that holds its key, so several servers sit side by
side. An entry without them falls back to HEMICYCLE_MODEL_API_BASE and HEMICYCLE_MODEL_API_KEY
(one server for every model, as a small deployment has).

Every backend is wrapped in bounded retries, then (cache=True) in the completion cache. Clients
are kept per process, one per (model string, endpoint), so the local model loads once per worker
process. Backend modules are imported on first use: litellm alone takes seconds to import.
"""

import os
import threading

from django.conf import settings

from deliberation.engine.models import ModelClient, gives_token_ids
from worker.models.openai_compatible import OpenAICompatibleClient, served_model
from worker.models.retry import PermanentModelError, RetryingClient

# Scripted failures are instant, so their backoff is too: tests of the failure path stay fast.
SCRIPTED_BASE_DELAY_S = 0.01
BASE_DELAY_S = 1.0

_clients: dict[tuple[str, str, str, bool], ModelClient] = {}
_clients_lock = threading.Lock()


def model_string_check(model: str) -> None:
    """Raise PermanentModelError unless `model` names a backend this lab can build a client for
    (the scripted and local names are known here; a litellm string must name a provider). Cheap
    for scripted and local strings; imports litellm for the others."""
    kind, _, name = model.partition(":")
    if kind == "scripted":
        from worker.models.scripted import SCRIPTED_CLIENTS

        if name not in SCRIPTED_CLIENTS:
            raise PermanentModelError(f"unknown scripted model {name!r}; known: {', '.join(sorted(SCRIPTED_CLIENTS))}")
        return
    if kind == "local":
        from worker.models.local import LOCAL_MODELS

        if name not in LOCAL_MODELS:
            raise PermanentModelError(f"unknown local model {name!r}; known: {', '.join(sorted(LOCAL_MODELS))}")
        return
    if not model.strip() or model != model.strip():
        raise PermanentModelError(f"not a model string: {model!r}")
    if served_model(model):
        return
    from worker.models.litellm_backend import litellm_provider

    litellm_provider(model)


def model_gives_token_ids(model: str, *, api_base: str = "") -> bool:
    """Whether the backend of `model` at that endpoint answers next_token_ids (amulet), told from
    the string alone: no model is loaded, litellm is not imported. The local backend and
    OpenAI-compatible servers do; litellm's providers (hosted APIs) do not."""
    kind, _, name = model.partition(":")
    if kind == "scripted":
        from worker.models.scripted import SCRIPTED_CLIENTS

        return name in SCRIPTED_CLIENTS and gives_token_ids(SCRIPTED_CLIENTS[name]())
    if kind == "local":
        return True
    return served_model(model) is not None and bool(api_base or settings.HEMICYCLE_MODEL_API_BASE)


def _api_key(api_key_env: str, model: str) -> str:
    if not api_key_env:
        return settings.HEMICYCLE_MODEL_API_KEY
    key = os.environ.get(api_key_env, "")
    if not key:
        raise PermanentModelError(
            f"the key of {model} is missing: environment variable {api_key_env} is not set on this worker"
        )
    return key


def backend_client(model: str, *, api_base: str = "", api_key_env: str = "") -> ModelClient:
    """The uncached, retrying client for a model string at an endpoint (empty: the settings')."""
    kind, _, name = model.partition(":")
    retries = settings.HEMICYCLE_MODEL_MAX_RETRIES
    if kind == "scripted":
        from worker.models.scripted import scripted_client

        return RetryingClient(scripted_client(name), model=model, retries=retries, base_delay_s=SCRIPTED_BASE_DELAY_S)
    if kind == "local":
        from worker.models.local import local_model

        inner = local_model(name, n_threads=settings.HEMICYCLE_LOCAL_THREADS)
        return RetryingClient(inner, model=model, retries=retries, base_delay_s=BASE_DELAY_S)
    if not model.strip():
        raise PermanentModelError("empty model string")
    endpoint = {
        "timeout_s": settings.HEMICYCLE_MODEL_TIMEOUT_S,
        "api_base": api_base or settings.HEMICYCLE_MODEL_API_BASE,
        "api_key": _api_key(api_key_env, model),
    }
    served = served_model(model)
    if served and endpoint["api_base"]:
        inner = OpenAICompatibleClient(model=served, **endpoint)
    else:
        from worker.models.litellm_backend import LiteLLMClient

        inner = LiteLLMClient(model=model, **endpoint)
    return RetryingClient(inner, model=model, retries=retries, base_delay_s=BASE_DELAY_S)


def model_client(model: str, *, cache: bool = True, api_base: str = "", api_key_env: str = "") -> ModelClient:
    """The process-wide client for `model` at that endpoint; raises PermanentModelError for an
    unknown name or a missing key. The cache is keyed by the model string (the same weights
    answer the same prompt alike, whichever server serves them)."""
    key = (model, api_base, api_key_env, cache)
    with _clients_lock:
        if key not in _clients:
            client = backend_client(model, api_base=api_base, api_key_env=api_key_env)
            if cache:
                from worker.models.cache import CachingClient

                client = CachingClient(client, model=model)
            _clients[key] = client
        return _clients[key]
