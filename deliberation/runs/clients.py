"""The engine's outside parts, built from the names a user picks: drafting model and judge.

A model name is a registry entry's (deliberation/registry): the entry gives the backend model
string and its endpoint. Building a client raises ModelRefused (the entry is gone or disabled) or
PermanentModelError (unknown backend, missing key); runs.services turns either into a failed run.
"""

from deliberation.engine.judges import ExpectedJudge, Judge, LLMJudge, RealVotesJudge, ScriptedJudge
from deliberation.engine.models import ModelClient
from deliberation.registry.selectors import model_endpoint

JUDGES = ("llm", "llm-expected", "real-votes", "scripted")
# Judges that call the judge model (the others need none).
MODEL_JUDGES = frozenset({"llm", "llm-expected"})


def drafting_client(model: str, *, allow_raw: bool = False) -> ModelClient:
    """The client of a registry model (with `allow_raw`, also of a backend string the registry
    lacks: a staff owner's run, the evaluate command)."""
    from worker.models import model_client

    endpoint = model_endpoint(name=model, allow_raw=allow_raw)
    return model_client(endpoint.model, api_base=endpoint.api_base, api_key_env=endpoint.api_key_env)


def judge_uses_model(name: str) -> bool:
    return name in MODEL_JUDGES


def judge_for(name: str, *, model: str, allow_raw: bool = False) -> Judge:
    """`llm` scores with `model` (the paper's judge), `llm-expected` the same prompt as the expected
    digit under the model's next-token distribution, `real-votes` is the oracle, `scripted` tests."""
    if name == "llm":
        return LLMJudge(drafting_client(model, allow_raw=allow_raw))
    if name == "llm-expected":  # JudgeUnavailable (a ValueError) when the backend gives no logprobs
        return ExpectedJudge(drafting_client(model, allow_raw=allow_raw))
    if name == "real-votes":
        return RealVotesJudge()
    if name == "scripted":
        return ScriptedJudge()
    raise ValueError(f"unknown judge {name!r}; choose from {', '.join(JUDGES)}")
