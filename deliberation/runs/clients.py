"""The engine's outside parts, built from the names a user picks: drafting model and judge."""

from deliberation.engine.judges import Judge, LLMJudge, RealVotesJudge, ScriptedJudge
from deliberation.engine.models import ModelClient

JUDGES = ("llm", "real-votes", "scripted")
# Judges that call the judge model (the others need none).
MODEL_JUDGES = frozenset({"llm"})


def drafting_client(model: str) -> ModelClient:
    from worker.models import model_client

    return model_client(model)


def judge_uses_model(name: str) -> bool:
    return name in MODEL_JUDGES


def judge_for(name: str, *, model: str) -> Judge:
    """`llm` scores with `model` (the paper's judge), `real-votes` is the oracle, `scripted` tests."""
    if name == "llm":
        return LLMJudge(drafting_client(model))
    if name == "real-votes":
        return RealVotesJudge()
    if name == "scripted":
        return ScriptedJudge()
    raise ValueError(f"unknown judge {name!r}; choose from {', '.join(JUDGES)}")
