import math
import random

import pytest

from deliberation.engine import hemicycle_rewards
from deliberation.engine.goals import GOAL_KEYS, goal_margin
from deliberation.engine.training import JudgedDraft, preference_pairs, preference_probability, record_split


def draft(value: float, run_id: int, text: str | None = None) -> JudgedDraft:
    return JudgedDraft(text=text or f"text {run_id}", scores={}, value=value, run_id=run_id, strategy="s", seed=0)


def test_pairs_put_the_higher_value_first_and_drop_ties_and_small_margins():
    drafts = [draft(-1.0, 1), draft(2.0, 2), draft(2.0, 3), draft(0.5, 4)]
    pairs = {(c.run_id, r.run_id) for c, r in preference_pairs(drafts)}
    assert pairs == {(2, 4), (2, 1), (3, 4), (3, 1), (4, 1)}  # 2 and 3 tie: no pair
    assert {(c.run_id, r.run_id) for c, r in preference_pairs(drafts, margin=1.5)} == {(2, 1), (3, 1)}


def test_a_passing_text_beats_a_failing_one_then_support_decides():
    seats = {"A": 0.6, "B": 0.4}
    passing = goal_margin({"A": 6, "B": 4}, seats=seats, goal="simple_majority", veto_group=None)  # u = 5.2
    failing = goal_margin({"A": 4, "B": 6}, seats=seats, goal="simple_majority", veto_group=None)  # u = 4.8
    ((chosen, rejected),) = preference_pairs([draft(failing, 1), draft(passing, 2)])
    assert (chosen.run_id, rejected.run_id) == (2, 1) and passing >= 0 > failing


def test_identical_texts_never_pair():
    assert preference_pairs([draft(3.0, 1, "same"), draft(1.0, 2, " same ")]) == []


def test_the_oracle_is_a_sigmoid_of_the_value_difference():
    assert preference_probability(2.0, 2.0) == 0.5
    assert preference_probability(3.0, 1.0) == pytest.approx(1 / (1 + math.exp(-2)))
    assert preference_probability(1.0, 3.0) == pytest.approx(1 - preference_probability(3.0, 1.0))
    assert preference_probability(3.0, 1.0, tau=10) < preference_probability(3.0, 1.0)


def test_the_split_is_by_record_seeded_and_disjoint():
    train, test = record_split(range(10), train=0.7, seed=1)
    assert len(train) == 7 and len(test) == 3 and not train & test and train | test == set(range(10))
    assert record_split(range(10), train=0.7, seed=1) == (train, test)
    assert record_split(range(10), train=0.7, seed=2) != (train, test)
    assert record_split([5, 6], train=0.9, seed=0)[1]  # two records: each split holds one
    with pytest.raises(ValueError):
        record_split([1], train=0, seed=0)


def test_the_standalone_goal_margin_equals_the_engines():
    rng = random.Random(7)
    for _ in range(300):
        codes = ["A", "B", "C", "D"][: rng.randint(2, 4)]
        weights = [rng.random() + 0.01 for _ in codes]
        seats = {code: w / sum(weights) for code, w in zip(codes, weights)}
        scores = {code: rng.randint(0, 9) for code in codes}
        goal = rng.choice(GOAL_KEYS)
        veto = codes[0] if goal == "veto_power" else None
        assert hemicycle_rewards.goal_margin(scores, seats, goal, veto) == pytest.approx(
            goal_margin(scores, seats=seats, goal=goal, veto_group=veto)
        )


def test_the_standalone_module_imports_only_the_standard_library():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(hemicycle_rewards.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"math", "collections"}


def test_judged_mediator_candidates_are_drafts_only_when_every_group_has_the_judges_scores():
    from deliberation.engine.training import judged_candidates

    def candidate(round_, index, text):
        return {"type": "candidate", "data": {"round": round_, "index": index, "text": text}}

    def ranking(round_, group, scores=None):
        data = {"round": round_, "group": group, "order": [0, 1]}
        if scores is not None:
            data["scores"] = scores
        return {"type": "ranking", "data": data}

    events = [
        candidate(1, 0, "a"),
        candidate(1, 1, "b"),
        ranking(1, "EPP", [7, 2]),
        ranking(1, "SD", [3, 8]),
        candidate(2, 0, "c"),
        candidate(2, 1, "d"),
        ranking(2, "EPP", [5, 5]),
        ranking(2, "SD"),  # SD ranked itself
    ]
    assert judged_candidates(events, ["EPP", "SD"]) == [
        ("candidate 1.0", "a", {"EPP": 7.0, "SD": 3.0}),
        ("candidate 1.1", "b", {"EPP": 2.0, "SD": 8.0}),
    ]
