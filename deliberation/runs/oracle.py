"""The pairwise preference oracle: which of two texts a run's scenario's goal prefers, and by how much.

What MPO-style self-play preference optimisation calls during training
(../shared/research/training-data.md §4): the run's judge scores both texts for every group (with
the run's judge seed, so a text the run already judged, or one asked before, comes from the
completion cache), each text's goal margin G follows, and P(a preferred to b) =
sigmoid((G(a) - G(b)) / tau).
"""

from deliberation.engine.strategies.base import judge_seed
from deliberation.engine.training import draft_value, preference_probability
from deliberation.errors import Invalid
from deliberation.registry.clients import judge_for
from deliberation.runs.models import Run
from deliberation.scenarios.services import engine_scenario

MAX_TEXT = 20_000


def preference_oracle(*, run: Run, text_a: str, text_b: str, tau: float = 1.0) -> dict:
    """{"preferred": "a"|"b"|None (a tie), "p_a": P(a > b), "value_a", "value_b", "scores_a",
    "scores_b", "goal", "judge"} for the run's scenario, goal and judge."""
    for name, text in (("text_a", text_a), ("text_b", text_b)):
        if not text.strip():
            raise Invalid(f"{name}: the text is empty")
        if len(text) > MAX_TEXT:
            raise Invalid(f"{name}: at most {MAX_TEXT} characters")
    if not tau > 0:
        raise Invalid("tau: must be > 0")
    judge = judge_for(run.judge, model=run.judge_model or run.model, allow_raw=run.owner.is_staff)
    scenario = engine_scenario(
        record=run.record,
        groups=run.groups,
        seats=run.seats,
        goal=run.goal,
        veto_group=run.veto_group,
        topic=run.task.topic.name if run.task_id else None,
    )
    seed = judge_seed(run.seed)
    scores = {
        side: {
            code: float(judge.score(scenario=scenario, group=code, text=text, seed=seed).score) for code in run.groups
        }
        for side, text in (("a", text_a), ("b", text_b))
    }
    values = {
        side: draft_value(scores=scores[side], seats=run.seats, goal=run.goal, veto_group=run.veto_group or None)
        for side in scores
    }
    preferred = None if values["a"] == values["b"] else ("a" if values["a"] > values["b"] else "b")
    return {
        "preferred": preferred,
        "p_a": preference_probability(values["a"], values["b"], tau=tau),
        "value_a": values["a"],
        "value_b": values["b"],
        "scores_a": scores["a"],
        "scores_b": scores["b"],
        "goal": run.goal,
        "judge": run.judge,
    }
