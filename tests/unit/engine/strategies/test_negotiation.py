"""The negotiation strategy: sides, turns, the agreement test, per-turn judge feedback and rewards,
seeds, resume, parameters and the cost estimate (scripted model and judge)."""

import pytest

from deliberation.engine.events import event_validate
from deliberation.engine.goals import goal_margin
from deliberation.engine.judges import ScriptedJudge
from deliberation.engine.models import ScriptedModelClient
from deliberation.engine.strategies import RunContext, strategy_named
from deliberation.engine.strategies.negotiation import (
    Negotiation,
    NegotiationParams,
    is_accept,
    proposal_hash,
    split_sides,
)
from deliberation.engine.strategies.params import ParamsError
from tests.unit.engine.conftest import build_scenario

SEATS = {"EPP": 0.4, "SD": 0.3, "RE": 0.2, "ECR": 0.1}


class Sides:
    """A model whose reply names the speaking side and the turn; side B accepts on `accept_turn`."""

    def __init__(self, accept_turn: int | None = None) -> None:
        self.accept_turn = accept_turn
        self.turn = 0

    def __call__(self, messages, params, seed):
        if "negotiate" not in messages[0]["content"]:
            return "The European Parliament adopts the joint text."
        self.turn += 1
        if self.turn == self.accept_turn:
            return "ACCEPT. We can live with that."
        return f"The European Parliament proposal {self.turn} by {messages[0]['content'].split(' for ')[1].split(' (')[0]}."


def run(*, responder=None, params=None, seed=3, judge=None, recorded=(), seats=SEATS, goal="simple_majority"):
    model = ScriptedModelClient(responder=responder or Sides())
    ctx = RunContext(model=model, judge=judge or ScriptedJudge(), seed=seed, params=params or {}, recorded=recorded)
    scenario = build_scenario(seats=seats, goal=goal)
    return list(strategy_named("negotiation").run(scenario, ctx)), model, scenario


def timeless(events):
    """The events' data less the seconds model calls took (they differ between any two runs)."""
    return [
        {**e["data"], "usage": {**e["data"]["usage"], "seconds": None}} if "usage" in e["data"] else e["data"]
        for e in events
    ]


def turns(events):
    return [e["data"] for e in events if e["type"] == "turn"]


def test_sides_alternate_until_the_turn_limit_then_a_joint_draft_is_voted():
    events, model, _ = run(params={"max_turns": 4})
    for event in events:
        event_validate(event)
    assert [e["type"] for e in events] == (
        ["run_started"] + ["turn"] * 4 + ["draft"] + ["vote"] * 4 + ["tally", "outcome"]
    )
    assert [t["side"] for t in turns(events)] == ["A", "B", "A", "B"]
    draft = events[5]["data"]
    assert draft["author"] == "mediator" and "agreed_turn" not in draft
    joint = model.calls[-1][0][-1]["content"]
    assert "proposal 3 by" in joint and "proposal 4 by" in joint  # both sides' last proposals
    assert len(model.calls) == 5


def test_the_largest_group_opens_and_the_chamber_splits_by_the_judged_opening():
    judge = ScriptedJudge(scores={"EPP": 7, "SD": 2, "RE": 6, "ECR": 5})
    events, model, _ = run(judge=judge, params={"max_turns": 3})
    first, second = turns(events)[:2]
    assert first["groups"] == ["EPP"] and "for EPP (40% of the seats" in model.calls[0][0][0]["content"]
    assert first["sides"] == {"A": ["EPP", "RE"], "B": ["SD", "ECR"]}
    assert second["groups"] == ["SD", "ECR"] and "SD stance" in model.calls[1][0][0]["content"]
    assert "EPP stance" not in model.calls[1][0][0]["content"]
    assert "proposal 1" in model.calls[1][0][1]["content"]  # B sees A's opening proposal


def test_when_everyone_is_for_the_opening_the_least_keen_group_speaks_for_the_other_side():
    scenario = build_scenario(seats=SEATS)
    assert split_sides(scenario, "EPP", {"EPP": 9, "SD": 8, "RE": 6, "ECR": 6}) == {
        "A": ["EPP", "SD", "RE"],
        "B": ["ECR"],
    }  # RE and ECR tie: the smaller group
    assert split_sides(build_scenario(seats={"EPP": 0.6, "SD": 0.4}), "EPP", {"EPP": 1, "SD": 1}) == {
        "A": ["EPP"],
        "B": ["SD"],
    }  # two groups: always one each


def test_an_accept_ends_the_dialogue_and_the_agreed_text_goes_to_the_vote_verbatim():
    events, model, _ = run(responder=Sides(accept_turn=4))
    steps = turns(events)
    assert len(steps) == 4 and steps[-1]["accept"] and steps[-1]["side"] == "B"
    assert steps[-1]["proposal"] == steps[2]["proposal"] and steps[-1]["judge_calls"] == 0
    assert steps[-1]["scores_after"] == steps[-1]["scores_before"] and steps[-1]["reward"] == 0.0
    draft = next(e["data"] for e in events if e["type"] == "draft")
    assert draft == {"author": "negotiation", "text": steps[2]["proposal"], "agreed_turn": 4}
    assert len(model.calls) == 4  # no joint draft


def test_an_opening_accept_is_a_proposal_not_an_agreement():
    events, _, _ = run(responder=Sides(accept_turn=1), params={"max_turns": 2})
    assert not turns(events)[0]["accept"]


def test_each_turn_stores_prompt_reply_scores_support_margins_and_reward():
    judge = ScriptedJudge()
    events, model, scenario = run(judge=judge)
    steps = turns(events)
    for index, step in enumerate(steps):
        assert step["messages"] == [dict(m) for m in model.calls[index][0]]
        assert step["text"] == step["proposal"] and step["proposal_hash"] == proposal_hash(step["proposal"])
        expected = {
            code: judge.score(scenario=scenario, group=code, text=step["proposal"], seed=_judge_seed(3)).score
            for code in SEATS
        }
        assert step["scores_after"] == expected and step["judge_calls"] == 4
        assert step["margin_after"] == pytest.approx(
            goal_margin(expected, seats=SEATS, goal="simple_majority", veto_group=None)
        )
        sides = step["sides"]
        for side in ("A", "B"):
            weight = sum(SEATS[c] for c in sides[side])
            assert step["support_after"][side] == pytest.approx(
                sum(SEATS[c] * expected[c] for c in sides[side]) / weight
            )
        if index == 0:
            assert step["scores_before"] is None and step["reward"] is None and step["support_before"] is None
        else:
            previous = steps[index - 1]
            assert step["scores_before"] == previous["scores_after"]
            assert step["support_before"] == pytest.approx(previous["support_after"])
            assert step["reward"] == pytest.approx(step["margin_after"] - previous["margin_after"])


def _judge_seed(seed):
    from deliberation.engine.strategies.base import judge_seed

    return judge_seed(seed)


def test_same_seed_same_run_other_seed_other_agent_seeds():
    first, model, _ = run(seed=3)
    again, _, _ = run(seed=3)
    assert timeless(first) == timeless(again)
    _, other, _ = run(seed=4)
    assert [c[2] for c in model.calls] != [c[2] for c in other.calls]
    assert len({c[2] for c in model.calls}) == len(model.calls)  # every turn its own child seed


def stateless(messages, params, seed):
    return f"The European Parliament text {seed % 10007}."


def test_a_resumed_run_replays_stored_turns_without_model_calls():
    first, model, _ = run(responder=stateless, params={"max_turns": 4})
    for k in (1, 3, 5, 6):
        resumed, again, _ = run(responder=stateless, params={"max_turns": 4}, recorded=first[:k])
        assert timeless(resumed) == timeless(first), f"after {k} events"
        assert again.calls == model.calls[max(0, k - 1) :], f"after {k} events"


def test_the_estimate_matches_the_steps_without_agreement_and_bounds_them_with_one():
    params = NegotiationParams(max_turns=4)
    cost = Negotiation().estimated_cost(groups=4, params=params, judge_uses_model=True)
    events, _, _ = run(params={"max_turns": 4})
    # steps: events that carry usage (the scripted judge's verdicts do, at zero cost; a model judge's cost)
    assert cost.steps == len([e for e in events if "usage" in e["data"]]) == 4 + 1 + 4
    agreed, _, _ = run(responder=Sides(accept_turn=2), params={"max_turns": 4})
    assert len([e for e in agreed if "usage" in e["data"]]) == 2 + 4  # no joint draft after the agreement
    without = Negotiation().estimated_cost(groups=4, params=params, judge_uses_model=False)
    assert without.steps == 5 and without.completion_tokens == 4 * 300 + 400


def test_parameters_are_validated():
    with pytest.raises(ParamsError, match="max_turns: between 2 and 12"):
        run(params={"max_turns": 1})
    with pytest.raises(ParamsError, match="negotiation has no such parameter"):
        run(params={"rounds": 2})


@pytest.mark.parametrize(
    ("reply", "accepted"),
    [
        ("ACCEPT", True),
        ("accept.", True),
        ("**ACCEPT** we agree", True),
        ("  Accept: fine", True),
        ("We cannot accept this", False),
        ("", False),
        ("The European Parliament accepts", False),
    ],
)
def test_accept_is_the_first_word(reply, accepted):
    assert is_accept(reply) is accepted
