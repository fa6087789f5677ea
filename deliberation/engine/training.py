"""Training data from judged drafts: preference pairs, the pairwise oracle, the split by record.

Pure functions over plain data (no Django); runs/training.py reads the runs and writes the files.
../shared/research/training-data.md has the formats (TRL's column names) and the reasons.

The goal's own value of a text is its goal margin G (goals.goal_margin) over the judged scores:
voting goals u - threshold (and for veto power min(u - 5, u_veto - 6)), so a text that passes
(G >= 0) beats one that fails, then the higher weighted support wins; the Rawlsian goal is the
lowest group score, the utilitarian the mean.
"""

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from deliberation.engine.goals import goal_margin
from deliberation.engine.models import Message


@dataclass(frozen=True)
class JudgedDraft:
    """A final text and its judged support per group, with where it came from."""

    text: str
    scores: Mapping[str, float]
    value: float  # G of the scenario's goal
    run_id: int
    strategy: str
    seed: int
    source: str = "final"  # the run's final text, or "candidate R.I" (mediator round R, candidate I)


def draft_value(*, scores: Mapping[str, float], seats: Mapping[str, float], goal: str, veto_group: str | None) -> float:
    return float(goal_margin(scores, seats=seats, goal=goal, veto_group=veto_group))


def preference_pairs(drafts: Sequence[JudgedDraft], *, margin: float = 0.0) -> list[tuple[JudgedDraft, JudgedDraft]]:
    """Every (chosen, rejected) pair of one scenario's drafts whose values differ by more than
    `margin` (so ties are always dropped), best chosen first; identical texts never pair."""
    if margin < 0:
        raise ValueError("margin must be >= 0")
    ranked = sorted(drafts, key=lambda draft: (-draft.value, draft.run_id))
    pairs = []
    for i, chosen in enumerate(ranked):
        for rejected in ranked[i + 1 :]:
            if chosen.value - rejected.value > margin and chosen.text.strip() != rejected.text.strip():
                pairs.append((chosen, rejected))
    return pairs


def preference_probability(value_a: float, value_b: float, *, tau: float = 1.0) -> float:
    """P(a preferred to b) = sigmoid((G(a) - G(b)) / tau): the pairwise oracle MPO-style
    self-play calls (training-data.md §4)."""
    if tau <= 0:
        raise ValueError("tau must be > 0")
    return 1.0 / (1.0 + math.exp(-(value_a - value_b) / tau))


def record_split(record_ids: Iterable[int], *, train: float, seed: int) -> tuple[set[int], set[int]]:
    """(train records, test records): the records shuffled by `seed`, the first round(train x n)
    to train. A record is in exactly one split, so no scenario's rows leak across."""
    if not 0 < train <= 1:
        raise ValueError("the train fraction must be in (0, 1]")
    ordered = sorted(set(record_ids))
    random.Random(seed).shuffle(ordered)
    cut = round(train * len(ordered))
    if train < 1 and len(ordered) > 1:
        cut = min(max(cut, 1), len(ordered) - 1)  # both splits hold a record when there are two
    return set(ordered[:cut]), set(ordered[cut:])


def assistant(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


def score_list(scores: Mapping[str, float] | None, groups: Sequence[str]) -> list[dict]:
    """Scores as a list of records in the scenario's order: the Arrow schema stays the same on
    every row (a dict keyed by group code would not: codes differ by term). None: no text yet."""
    scores = scores or {}
    return [{"group": code, "score": float(scores[code]) if scores.get(code) is not None else None} for code in groups]


def judged_candidates(events: Iterable[Mapping], groups: Sequence[str]) -> list[tuple[str, str, dict[str, float]]]:
    """(source, text, scores) of each mediator candidate the judge scored for every group
    (ranking=judge: each group's ranking event carries the judge's score of every candidate of its
    round, by candidate index). Candidates of rounds ranked by the agents themselves have no
    judged scores and are left out."""
    texts: dict[tuple[int, int], str] = {}
    scores: dict[int, dict[str, list[float]]] = {}
    for event in events:
        data = event["data"]
        if event["type"] == "candidate":
            texts[(data["round"], data["index"])] = data["text"]
        elif event["type"] == "ranking" and data.get("scores") is not None:
            scores.setdefault(data["round"], {})[data["group"]] = data["scores"]
    out = []
    for (round_, index), text in sorted(texts.items()):
        by_group = scores.get(round_, {})
        if all(code in by_group and index < len(by_group[code]) for code in groups):
            out.append((f"candidate {round_}.{index}", text, {code: float(by_group[code][index]) for code in groups}))
    return out
