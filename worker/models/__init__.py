"""Model clients for the engine, chosen by a model string.

    scripted:NAME        deterministic test doubles, no network (see worker/models/scripted.py)
    local:smollm2-135m   the bundled model, run in this process by llama-cpp-python (the default)
    hosted_vllm/NAME, openai/NAME, with HEMICYCLE_MODEL_API_BASE set
                         an OpenAI-compatible model server (vLLM, ...): one HTTP request per call
                         (worker/models/openai_compatible.py says why not litellm there)
    anything else        a litellm model string: "openai/gpt-4o-mini", "ollama/llama3", ...;
                         api_base and api_key come from settings when set

Every backend is wrapped in bounded retries, then (cache=True) in the completion cache. Clients
are kept per process, one per model string, so the local model loads once per worker process.
Backend modules are imported on first use: litellm alone takes seconds to import.
"""

import threading

from django.conf import settings

from deliberation.engine.models import ModelClient
from worker.models.openai_compatible import OpenAICompatibleClient, served_model
from worker.models.retry import PermanentModelError, RetryingClient

# Scripted failures are instant, so their backoff is too: tests of the failure path stay fast.
SCRIPTED_BASE_DELAY_S = 0.01
BASE_DELAY_S = 1.0

_clients: dict[tuple[str, bool], ModelClient] = {}
_clients_lock = threading.Lock()


def backend_client(model: str) -> ModelClient:
    """The uncached, retrying client for a model string."""
    kind, _, name = model.partition(":")
    retries = settings.HEMICYCLE_MODEL_MAX_RETRIES
    if kind == "scripted":
        from worker.models.scripted import scripted_client

        return RetryingClient(scripted_client(name), model=model, retries=retries,
                              base_delay_s=SCRIPTED_BASE_DELAY_S)
    if kind == "local":
        from worker.models.local import local_model

        inner = local_model(name, n_threads=settings.HEMICYCLE_LOCAL_THREADS)
        return RetryingClient(inner, model=model, retries=retries, base_delay_s=BASE_DELAY_S)
    if not model.strip():
        raise PermanentModelError("empty model string")
    endpoint = {"timeout_s": settings.HEMICYCLE_MODEL_TIMEOUT_S, "api_base": settings.HEMICYCLE_MODEL_API_BASE,
                "api_key": settings.HEMICYCLE_MODEL_API_KEY}
    served = served_model(model)
    if served and endpoint["api_base"]:
        inner = OpenAICompatibleClient(model=served, **endpoint)
    else:
        from worker.models.litellm_backend import LiteLLMClient

        inner = LiteLLMClient(model=model, **endpoint)
    return RetryingClient(inner, model=model, retries=retries, base_delay_s=BASE_DELAY_S)


def model_client(model: str, *, cache: bool = True) -> ModelClient:
    """The process-wide client for `model`; raises PermanentModelError for an unknown name."""
    with _clients_lock:
        if (model, cache) not in _clients:
            client = backend_client(model)
            if cache:
                from worker.models.cache import CachingClient

                client = CachingClient(client, model=model)
            _clients[(model, cache)] = client
        return _clients[(model, cache)]
