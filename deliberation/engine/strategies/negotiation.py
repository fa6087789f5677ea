"""negotiation: two agents of one model, opposing personas, turn by turn towards a common text
(self-play as in arXiv 2603.10476; research/strategies.md §5), with an AI-feedback reward per turn.

Sides. Side A opens: the largest group writes the first proposal, which the judge scores for every
group. For more than two groups the chamber then splits into a coalition for and a coalition
against that opening: A is the opener and every group the judge already puts "for" it (score
>= 6); B is everyone else (if nobody is left, the group that likes it least). With two groups
the sides are the two groups. Each side's agent speaks for all its groups' stances at once.
(Coalitions, not pairwise rounds: one dialogue, two agents, as in the source, and a cost linear in
the turns rather than quadratic in the groups.)

Turns. A, B, A, B ... up to `max_turns`. An agent either answers ACCEPT (the other side's latest
proposal stands: agreement, the dialogue ends) or writes a full counter-proposal. Every new
proposal is scored by the run's judge for every group; the turn event stores the prompt the agent
saw, its reply, each group's score before and after, each side's seat-weighted support before and
after, the goal margin G before and after (goals.goal_margin) and the speaker's reward
G_after - G_before (none for the opening, which has no before). These are the trajectories and
rewards the training-data exports read.

End. After an agreement the agreed text goes to the vote verbatim; otherwise one neutral joint
draft from both sides' last proposals. Then the usual vote.
"""

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from deliberation.engine.costs import RunCost, vote_cost
from deliberation.engine.events import Event
from deliberation.engine.goals import VETO_MIN, goal_margin, goal_requirement
from deliberation.engine.judges import normalised_text
from deliberation.engine.models import Message, Params
from deliberation.engine.scenario import Scenario
from deliberation.engine.strategies.base import (
    RunContext,
    judge_seed,
    run_started,
    usage_sum,
    vote_on,
)
from deliberation.engine.strategies.one_shot import (
    DRAFT_SYSTEM,
    draft_messages,
    seat_lines,
)
from deliberation.engine.strategies.params import StrategyParams, params_validate

ACCEPT = "ACCEPT"


class NegotiationParams(StrategyParams):
    max_turns: int = Field(6, ge=2, le=12, title="Turn limit", description="The most messages, both sides together.")
    temperature: float = Field(0.7, ge=0, le=2, title="Temperature", description="The agents' sampling temperature.")
    turn_tokens: int = Field(
        300, ge=32, le=1024, title="Proposal tokens", description="The most tokens one proposal may take."
    )
    final_tokens: int = Field(
        400,
        ge=64,
        le=2048,
        title="Joint draft tokens",
        description="The most tokens of the joint draft written when the sides do not agree.",
    )


PERSONA = (
    "You negotiate in the European Parliament for {names} ({share:.0f}% of the seats together). "
    "You want a joint resolution that your side can vote for; give way where your side's stances "
    "allow, hold firm where they do not.\n{stances}"
)
FACTS = "Issue: {title}\nBackground: {background}\n{seats}\nGoal: {goal}"
OPENING_ASK = (
    "Write your side's opening proposal: the full resolution text, as one paragraph beginning "
    "'The European Parliament'."
)
COUNTER_ASK = (
    "If your side can vote for the other side's latest proposal as it stands, answer with the "
    "single word ACCEPT. Otherwise write your counter-proposal: the full resolution text, as one "
    "paragraph beginning 'The European Parliament', moving towards the other side where your "
    "side's stances allow."
)


def proposal_hash(text: str) -> str:
    return hashlib.sha256(normalised_text(text).encode()).hexdigest()


def is_accept(reply: str) -> bool:
    words = reply.strip().split()
    return bool(words) and words[0].strip(".,:;!\"'*").upper() == ACCEPT


def side_support(scenario: Scenario, scores: Mapping[str, float], groups: Sequence[str]) -> float:
    """The seat-weighted mean support of a side's groups."""
    weight = sum(scenario.seats[code] for code in groups)
    return sum(scenario.seats[code] * scores[code] for code in groups) / weight


def split_sides(scenario: Scenario, opener: str, scores: Mapping[str, float]) -> dict[str, list[str]]:
    """Coalition for the opening proposal (A: the opener and every group for it) and against (B)."""
    side_a = [code for code in scenario.codes if code == opener or scores[code] >= VETO_MIN]
    side_b = [code for code in scenario.codes if code not in side_a]
    if not side_b:  # everyone is for it: the least keen group still speaks for the other side
        order = {group.code: index for index, group in enumerate(scenario.by_seats())}
        least = min((code for code in scenario.codes if code != opener), key=lambda code: (scores[code], -order[code]))
        side_a.remove(least)
        side_b = [least]
    return {"A": side_a, "B": side_b}


def turn_messages(
    scenario: Scenario, groups: Sequence[str], *, latest: Mapping[str, str | None], side: str
) -> list[Message]:
    """What one side's agent sees: its persona (its groups' stances), the facts, the proposals on
    the table (the other side's latest and its own), and the ask."""
    other = "B" if side == "A" else "A"
    stances = "\n".join(
        f"The stance of {scenario.name_of(code)}: '''{scenario.group(code).stance}'''" for code in groups
    )
    persona = PERSONA.format(
        names=", ".join(scenario.name_of(code) for code in groups),
        share=100 * sum(scenario.seats[code] for code in groups),
        stances=stances,
    )
    facts = FACTS.format(
        title=scenario.record.title,
        background=scenario.record.background,
        seats=seat_lines(scenario),
        goal=goal_requirement(scenario.goal, veto_group=scenario.name_of(scenario.veto_group)),
    )
    table = ""
    if latest.get(other):
        table += f"\nThe other side's latest proposal:\n'''{latest[other]}'''"
    if latest.get(side):
        table += f"\nYour side's latest proposal:\n'''{latest[side]}'''"
    ask = COUNTER_ASK if latest.get(other) else OPENING_ASK
    return [{"role": "system", "content": persona}, {"role": "user", "content": f"{facts}{table}\n{ask}"}]


def joint_messages(
    scenario: Scenario, latest: Mapping[str, str | None], sides: Mapping[str, Sequence[str]]
) -> list[Message]:
    """The neutral drafter's prompt when the sides did not agree: one-shot's task, with both
    sides' last proposals before it."""
    base = draft_messages(scenario, None)
    proposals = "\n".join(
        f"The last proposal of {', '.join(scenario.name_of(code) for code in sides[side])}:\n'''{latest[side]}'''"
        for side in ("A", "B")
        if latest.get(side)
    )
    ask = f"Two sides negotiated without agreeing. {proposals}\nBuild on both proposals.\n\n"
    return [{"role": "system", "content": DRAFT_SYSTEM}, {"role": "user", "content": ask + base[1]["content"]}]


@dataclass(frozen=True)
class Negotiation:
    name: str = "negotiation"
    needs_model: bool = True
    params_model: ClassVar[type[NegotiationParams]] = NegotiationParams

    def estimated_cost(self, *, groups: int, params: NegotiationParams, judge_uses_model: bool) -> RunCost:
        """Each turn is one step (the agent's reply; its proposal's verdicts ride along in the
        same event: groups judge calls, counted in completion tokens), then the joint draft
        (none after an agreement), then the vote."""
        judging = vote_cost(groups=groups, judge_uses_model=judge_uses_model)
        turns = RunCost(params.max_turns, params.max_turns * (params.turn_tokens + judging.completion_tokens))
        return turns + RunCost(1, params.final_tokens) + judging

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        settings = params_validate(self.params_model, ctx.params, strategy=self.name)
        yield run_started(scenario, ctx, self.name)
        opener = scenario.by_seats()[0].code
        sides: dict[str, list[str]] = {"A": [opener], "B": []}
        latest: dict[str, str | None] = {"A": None, "B": None}
        table: dict[str, Any] = {"text": None, "scores": None}  # the proposal on the table, judged
        agreed_turn = None

        for turn in range(1, settings.max_turns + 1):
            side = "A" if turn % 2 else "B"
            event = ctx.step(
                "turn",
                lambda turn=turn, side=side, sides=sides, table=table: self._turn(
                    scenario,
                    ctx,
                    settings,
                    turn=turn,
                    side=side,
                    sides=sides,
                    latest=latest,
                    table=table,
                    opener=opener,
                ),
            )
            yield event
            data = event["data"]
            sides = {key: list(value) for key, value in data["sides"].items()}
            table = {"text": data["proposal"], "scores": data["scores_after"]}
            if data["accept"]:
                agreed_turn = turn
                break
            latest[side] = data["proposal"]

        if agreed_turn is not None:
            final = ctx.step(
                "draft", lambda: {"author": "negotiation", "text": table["text"], "agreed_turn": agreed_turn}
            )
        else:

            def joint() -> dict:
                completion = ctx.model.complete(
                    joint_messages(scenario, latest, sides),
                    params=Params(temperature=0.0, max_tokens=settings.final_tokens),
                    seed=ctx.child_seed("negotiation", "joint"),
                )
                return {"author": "mediator", "text": completion.text.strip(), "usage": completion.usage()}

            final = ctx.step("draft", joint)
        yield final
        yield from vote_on(scenario, ctx, final["data"]["text"])

    def _turn(
        self,
        scenario: Scenario,
        ctx: RunContext,
        settings: NegotiationParams,
        *,
        turn: int,
        side: str,
        sides: Mapping[str, list[str]],
        latest: Mapping[str, str | None],
        table: Mapping[str, Any],
        opener: str,
    ) -> dict:
        """One agent's turn and the judge's feedback on what it leaves on the table."""
        messages = turn_messages(scenario, sides[side], latest=latest, side=side)
        completion = ctx.model.complete(
            messages,
            params=Params(temperature=settings.temperature, max_tokens=settings.turn_tokens),
            seed=ctx.child_seed("negotiation", turn, side),
        )
        reply = completion.text.strip()
        usages = [completion.usage()]
        accept = turn > 1 and is_accept(reply)
        before = table["scores"]
        if accept:
            proposal, after = table["text"], before
        else:
            proposal, after = reply, {}
            for group in scenario.by_seats():
                verdict = ctx.judge.score(scenario=scenario, group=group.code, text=proposal, seed=judge_seed(ctx.seed))
                after[group.code] = verdict.score
                usages.append(
                    {
                        "prompt_tokens": verdict.prompt_tokens,
                        "completion_tokens": verdict.completion_tokens,
                        "seconds": verdict.seconds,
                        "cached": verdict.cached,
                    }
                )
        new_sides = split_sides(scenario, opener, after) if turn == 1 else {key: list(v) for key, v in sides.items()}

        def support(scores: Mapping[str, float] | None) -> dict[str, float] | None:
            return (
                None
                if scores is None
                else {key: side_support(scenario, scores, groups) for key, groups in new_sides.items()}
            )

        def margin(scores: Mapping[str, float] | None) -> float | None:
            if scores is None:
                return None
            return goal_margin(scores, seats=scenario.seats, goal=scenario.goal, veto_group=scenario.veto_group)

        margin_before, margin_after = margin(before), margin(after)
        return {
            "turn": turn,
            "side": side,
            "groups": list(sides[side]),
            "sides": new_sides,
            "messages": [dict(m) for m in messages],
            "text": reply,
            "accept": accept,
            "proposal": proposal,
            "proposal_hash": proposal_hash(proposal),
            "scores_before": before,
            "scores_after": after,
            "support_before": support(before),
            "support_after": support(after),
            "margin_before": margin_before,
            "margin_after": margin_after,
            "reward": None if margin_before is None else margin_after - margin_before,
            "judge_calls": len(usages) - 1,
            "usage": usage_sum(usages),
        }
