"""The engine's outside parts, built from the names a user picks: drafting model and judge.

A model name is a registry entry's (deliberation/registry): the entry gives the backend model
string and its endpoint. Building a client raises ModelRefused (the entry is gone or disabled) or
PermanentModelError (unknown backend, missing key); runs.services turns either into a failed run.

A run builds its clients with its observer (engine.models.CallObserver): the clients report their
calls to the run (before an uncached call, after retries); `endpoints` resolves a registry name
(registry.selectors.model_endpoint, or the same read remembered over a task's runs).

Judges kept by an app above this one (the calibration app's `calibrated:<id>`) are built by that
app's JudgeProvider, registered when Django starts (its AppConfig.ready), so that the clients
never import the apps that use them.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from deliberation.engine.judges import (
    EnsembleJudge,
    ExpectedJudge,
    Judge,
    LLMJudge,
    RealVotesJudge,
    ScriptedJudge,
    SimilarityJudge,
)
from deliberation.engine.models import CallObserver, ModelClient, observed
from deliberation.registry.selectors import ModelEndpoint, ModelRefused, model_endpoint

Endpoints = Callable[..., ModelEndpoint]  # as model_endpoint: (*, name, allow_raw) -> ModelEndpoint

JUDGES = ("llm", "llm-expected", "ensemble-mean", "ensemble-median", "similarity", "real-votes", "scripted")
# Judges that call the judge model (the others need none).
MODEL_JUDGES = frozenset({"llm", "llm-expected", "ensemble-mean", "ensemble-median"})
# The ensembles: the paper's judge and the expected-digit judge on the same judge model.
ENSEMBLE_MEMBERS = ("llm", "llm-expected")
# `calibrated:<calibration id>`: that calibration's judge and model, through its isotonic map.
CALIBRATED_PREFIX = "calibrated:"


def drafting_client(
    model: str, *, allow_raw: bool = False, observer: CallObserver | None = None, endpoints: Endpoints = model_endpoint
) -> ModelClient:
    """The client of a registry model (with `allow_raw`, also of a backend string the registry
    lacks: a staff owner's run, the evaluate command), reporting to `observer` if given."""
    from worker.models import model_client

    endpoint = endpoints(name=model, allow_raw=allow_raw)
    client = model_client(endpoint.model, api_base=endpoint.api_base, api_key_env=endpoint.api_key_env)
    return client if observer is None else observed(client, observer)


def strategy_model_check(*, strategy: str, model: str, allow_raw: bool = False) -> None:
    """ModelRefused (field "model") when the strategy needs a capability the model's backend
    lacks: amulet decodes by token ids (engine/models.py: TokenIdClient). Where runs and
    experiments are created, so that the refusal comes before anything runs."""
    from deliberation.engine.strategies import strategy_named
    from worker.models import model_gives_token_ids

    if not getattr(strategy_named(strategy), "needs_token_ids", False):
        return
    endpoint = model_endpoint(name=model, allow_raw=allow_raw)
    if not model_gives_token_ids(endpoint.model, api_base=endpoint.api_base):
        raise ModelRefused(
            "model",
            (
                f"{strategy} decodes token by token from next-token log-probabilities, which {model!r} does not "
                "give: choose a local model or one served by an OpenAI-compatible server such as vLLM"
            ),
        )


def judge_name_check(name: str) -> None:
    """The one rule for a judge's name, wherever a run, an experiment or a calibration names one
    (the commands' --judge, the builder, the API, the experiment form): a fixed judge, or a
    provider's (`calibrated:<id>` of any calibration with a map, however old). ValueError saying
    what is wrong otherwise. Reads at most one row."""
    if name in JUDGES:
        return
    provider = _provider_for(name)
    if provider is None:
        raise ValueError(f"unknown judge {name!r}; choose from {judge_names_help()}")
    provider.check(name)


def judge_model_for(name: str, *, model: str) -> str:
    """The model the judge `name` calls when a run names `model` as its judge model: `model` for
    the judges that call one, a provider's judge its own (a calibration's judge model), '' for a
    judge that calls none. ValueError for a provider's judge it does not know."""
    if name in MODEL_JUDGES:
        return model
    provider = _provider_for(name)
    return provider.model_of(name) if provider is not None else ""


def judge_takes_model(name: str) -> bool:
    """Whether the judge model a run or a calibration names decides what the judge `name` calls:
    the llm judges and the ensembles; a calibrated judge calls its calibration's, whatever is named."""
    return name in MODEL_JUDGES


def judge_uses_model(name: str) -> bool:
    """Whether the judge `name` calls a model (budgets, estimates, the calibration command): the
    llm judges, the ensembles, and a calibrated judge of one of them. A provider's judge that
    cannot be resolved (its calibration deleted) counts as calling one: the budget errs on the
    side of refusing."""
    if judge_takes_model(name):
        return True
    provider = _provider_for(name)
    if provider is None:
        return False
    try:
        return bool(provider.model_of(name))
    except ValueError:
        return True


def judges_using_model(names: Iterable[str]) -> frozenset[str]:
    """Those of `names` that call a model, each resolved once (an experiment's judges, read once
    per estimate rather than once per cell)."""
    return frozenset(name for name in set(names) if judge_uses_model(name))


def judge_choices() -> list[str]:
    """Every judge a run or an experiment may name: the fixed ones and the providers' (the newest
    calibrated ones)."""
    return [*JUDGES, *(name for provider in _providers.values() for name in provider.choices())]


def similarity_embedder():
    from django.conf import settings

    from worker.models.embeddings import LocalEmbedder

    return LocalEmbedder(threads=settings.HEMICYCLE_LOCAL_THREADS)


@dataclass(frozen=True)
class JudgeProvider:
    """Judges named `<prefix><rest>`, `syntax` saying how one is written ("calibrated:<calibration
    id>"): `build(name, *, allow_raw, observer, endpoints)` makes one; `check(name)` says cheaply
    whether it exists (ValueError naming what is wrong); `model_of(name)` is the model it calls
    ('' for none; ValueError as check); `choices()` names those a form offers."""

    prefix: str
    syntax: str
    build: Callable[..., Judge]
    check: Callable[[str], None]
    model_of: Callable[[str], str]
    choices: Callable[[], list[str]]


_providers: dict[str, JudgeProvider] = {}


def judge_provider_register(provider: JudgeProvider) -> None:
    _providers[provider.prefix] = provider


def _provider_for(name: str) -> JudgeProvider | None:
    return next((provider for prefix, provider in _providers.items() if name.startswith(prefix)), None)


def judge_names_help() -> str:
    """How a judge is named, for help texts and refusals: the fixed names and each provider's syntax."""
    return ", ".join(JUDGES) + "".join(f" or {provider.syntax}" for provider in _providers.values())


def judge_for(
    name: str,
    *,
    model: str,
    allow_raw: bool = False,
    observer: CallObserver | None = None,
    endpoints: Endpoints = model_endpoint,
) -> Judge:
    """`llm` scores with `model` (the paper's judge), `llm-expected` the same prompt as the expected
    digit under the model's next-token distribution, `ensemble-mean`/`-median` both of them,
    `calibrated:<id>` a calibration's judge through its isotonic map, `similarity` sentence
    embeddings of the stance against the text (an offline baseline), `real-votes` is the oracle,
    `scripted` tests."""
    reach = {"allow_raw": allow_raw, "observer": observer, "endpoints": endpoints}
    if name == "llm":
        return LLMJudge(drafting_client(model, **reach))
    if name == "llm-expected":  # JudgeUnavailable (a ValueError) when the backend gives no logprobs
        return ExpectedJudge(drafting_client(model, **reach))
    if name in ("ensemble-mean", "ensemble-median"):
        members = {member: judge_for(member, model=model, **reach) for member in ENSEMBLE_MEMBERS}
        return EnsembleJudge(members, aggregate=name.removeprefix("ensemble-"), name=name)
    provider = _provider_for(name)
    if provider is not None:
        return provider.build(name, **reach)
    if name == "similarity":
        return SimilarityJudge(similarity_embedder())
    if name == "real-votes":
        return RealVotesJudge()
    if name == "scripted":
        return ScriptedJudge()
    raise ValueError(f"unknown judge {name!r}; choose from {judge_names_help()}")
