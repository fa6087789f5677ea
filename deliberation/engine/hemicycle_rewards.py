"""Hemicycle's rewards as TRL GRPO reward functions, from the dataset's columns alone.

Standalone: the standard library only (no Django, no package import), so a trainer can copy this
file beside its script; `export_training --format grpo` writes it into the dataset's folder.
tests/unit/engine/test_hemicycle_rewards.py checks it equals the lab's engine (goals.goal_margin,
the negotiation strategy's turn reward) on the exported rows.

TRL calls a reward function with `prompts`, `completions` and every dataset column except
`prompt` as keyword arguments (one value per completion) and takes a list of floats back.

- `stored_goal_reward`: the goal margin G of the stored text (its judged `scores` column), the
  lab's reward of a final draft: voting goals u - 5 (simple majority, veto power also
  min(u - 5, u_veto - 6)) or u - 20/3 (two-thirds); Rawlsian the lowest score, utilitarian the
  mean; u = sum of seat share x score.
- `negotiation_turn_reward`: the negotiation strategy's per-turn AI-feedback reward,
  G_after - G_before (0.0 on the opening turn, where the strategy stores none).
- `make_goal_reward(judge)`: the same G for *new* completions, scored by your own judge
  (judge(text, group, stance) -> 0..9), which is what on-policy GRPO needs.
"""

import math
from collections.abc import Callable, Mapping, Sequence

MAJORITY = 5.0
TWO_THIRDS = 20 / 3
VETO_MIN = 6.0


def goal_margin(scores: Mapping[str, float], seats: Mapping[str, float], goal: str, veto_group: str | None) -> float:
    """G of a text from each group's judged support (0..9) and seat share."""
    weighted = math.fsum(seats[code] * score for code, score in scores.items())
    if goal == "simple_majority":
        return weighted - MAJORITY
    if goal == "two_thirds_majority":
        return weighted - TWO_THIRDS
    if goal == "veto_power":
        if veto_group is None:
            raise ValueError("veto_power needs a veto group")
        return min(weighted - MAJORITY, scores[veto_group] - VETO_MIN)
    if goal == "rawlsian":
        return float(min(scores.values()))
    if goal == "utilitarian":
        return math.fsum(scores.values()) / len(scores)
    raise ValueError(f"unknown goal {goal!r}")


def _by_code(records: Sequence[Mapping], key: str) -> dict[str, float]:
    return {record["group"]: float(record[key]) for record in records if record.get(key) is not None}


def stored_goal_reward(
    completions: Sequence,
    *,
    goal: Sequence[str],
    groups: Sequence[Sequence[Mapping]],
    veto_group: Sequence[str | None],
    scores: Sequence[Sequence[Mapping]],
    **_,
) -> list[float]:
    """G of each row's stored text: `groups` holds {group, seat, ...}, `scores` {group, score}."""
    return [
        goal_margin(_by_code(row_scores, "score"), _by_code(row_groups, "seat"), row_goal, row_veto)
        for row_goal, row_groups, row_veto, row_scores in zip(goal, groups, veto_group, scores, strict=True)
    ]


def negotiation_turn_reward(
    completions: Sequence, *, margin_before: Sequence[float | None], margin_after: Sequence[float], **_
) -> list[float]:
    """The speaker's reward of each stored turn: G after its proposal minus G before (no text
    before: None, or NaN as pandas reads it)."""
    return [
        0.0 if before is None or math.isnan(before) else float(after) - float(before)
        for before, after in zip(margin_before, margin_after, strict=True)
    ]


def make_goal_reward(judge: Callable[[str, str, str], float]) -> Callable[..., list[float]]:
    """A GRPO reward function scoring each new completion with `judge(text, group, stance)` for
    every group of its row, then returning its goal margin G."""

    def goal_reward(
        completions: Sequence,
        *,
        goal: Sequence[str],
        groups: Sequence[Sequence[Mapping]],
        veto_group: Sequence[str | None],
        **_,
    ) -> list[float]:
        rewards = []
        for completion, row_goal, row_groups, row_veto in zip(completions, goal, groups, veto_group, strict=True):
            text = completion[-1]["content"] if isinstance(completion, list) else completion
            scores = {
                group["group"]: float(judge(text, group["group"], group.get("stance", ""))) for group in row_groups
            }
            rewards.append(goal_margin(scores, _by_code(row_groups, "seat"), row_goal, row_veto))
        return rewards

    return goal_reward
