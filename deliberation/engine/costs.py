"""What one run costs in model steps and completion tokens, before it runs (experiment estimates,
budgets, the builder's estimate).

A model step is one event that carries model usage: a speech, a draft, an amendment, a
rapporteur's decision (with its revision, when it accepts), one judge verdict. That is the unit the
run events record (runs.selectors.run_model_steps counts the uncached ones), so an estimate and a
cap compare like with like. Each strategy estimates its own steps (`Strategy.estimated_cost`,
strategies/__init__.py: run_cost); the counts are upper bounds for a first attempt: a judge that
must be asked again because its answer held no digit, or a model error that is retried, costs more.
"""

from dataclasses import dataclass

JUDGE_TOKENS = 3  # the LLM judge answers one digit (LLMJudge asks for max_tokens=3)


@dataclass(frozen=True)
class RunCost:
    steps: int
    completion_tokens: int  # the most the steps may generate (their max_tokens)

    def __add__(self, other: "RunCost") -> "RunCost":
        return RunCost(self.steps + other.steps, self.completion_tokens + other.completion_tokens)


def vote_cost(*, groups: int, judge_uses_model: bool) -> RunCost:
    """The vote (strategies.base.vote_on): one verdict per group, a model step only with a judge
    that calls a model (real votes and the scripted judge call none)."""
    return RunCost(groups, groups * JUDGE_TOKENS) if judge_uses_model else RunCost(0, 0)
