"""What one run costs in model steps and completion tokens, before it runs (experiment estimates).

A model step is one event that carries model usage: a speech, a draft, an amendment, a
rapporteur's decision (with its revision, when it accepts), one judge verdict. That is the unit the
run events record (runs.selectors.run_model_steps counts the uncached ones), so an estimate and a
cap compare like with like. The counts are upper bounds for a first attempt: a judge that must be
asked again because its answer held no digit, or a model error that is retried, costs more.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deliberation.engine.strategies.one_shot import OneShot
from deliberation.engine.strategies.parliament import DECISION_TOKENS, ParliamentSettings

JUDGE_TOKENS = 3  # the LLM judge answers one digit (LLMJudge asks for max_tokens=3)


@dataclass(frozen=True)
class RunCost:
    steps: int
    completion_tokens: int  # the most the steps may generate (their max_tokens)


def run_cost(*, strategy: str, party_count: int, judge_uses_model: bool, params: Mapping[str, Any]) -> RunCost:
    """Steps of one run: one-shot 1 draft + k verdicts; parliament k*(1+rounds) speeches + 1 draft
    + an amendment and a decision per group but the rapporteur + k verdicts; the baselines only the
    k verdicts. Verdicts cost a step only with the LLM judge (real votes and the scripted judge
    call no model)."""
    k = party_count
    judge = RunCost(k, k * JUDGE_TOKENS) if judge_uses_model else RunCost(0, 0)
    if strategy == "one-shot":
        max_tokens = int(params.get("max_tokens", OneShot.max_tokens))
        return RunCost(1 + judge.steps, max_tokens + judge.completion_tokens)
    if strategy == "parliament":
        settings = ParliamentSettings.from_params(params)
        speeches = k * (1 + settings.rounds)
        amenders = k - 1 if settings.rapporteur == "largest" else k
        steps = speeches + 1 + 2 * amenders + judge.steps
        tokens = (
            speeches * settings.speech_tokens
            + settings.draft_tokens
            + amenders * (settings.speech_tokens + DECISION_TOKENS + settings.draft_tokens)
            + judge.completion_tokens
        )
        return RunCost(steps, tokens)
    return judge
