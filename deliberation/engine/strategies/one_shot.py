"""PoliCon's one-shot drafter: one prompt with every stance and the goal, one resolution."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

from pydantic import Field

from deliberation.engine.costs import RunCost, vote_cost
from deliberation.engine.events import Event
from deliberation.engine.goals import GOALS, goal_requirement
from deliberation.engine.judges import normalised_text
from deliberation.engine.models import Message, Params
from deliberation.engine.scenario import RecordView, Scenario
from deliberation.engine.seeding import rng_for
from deliberation.engine.strategies.base import RunContext, run_started, vote_on
from deliberation.engine.strategies.params import StrategyParams, params_validate

DRAFT_SYSTEM = (
    "You are an assistant that gives helpful, clear and concise answers, accurate and detailed "
    "without needless complexity."
)

DRAFT_TEMPLATE = """Background: '''{background}'''
A group of {count} political groups in the European Parliament must find consensus on this issue:
{title}
The stance of each group:
{stances}
{requirements}
Write a consensus European Parliament resolution that meets the requirements above, as one continuous paragraph with no formatting or line breaks. Begin with 'The European Parliament' and keep to the resolution's substance: decisions, measures and figures where they apply. For opposing stances, give detailed solutions and mitigations for their concerns; present supporting stances that need moderating with fitting qualifications and limits. Leave out procedure such as votes and amendments. Be concise yet complete.{example}
Now write the resolution:"""

EXAMPLE_TEMPLATE = "\nAn example of such a resolution, on another issue:\n'''{resolution}'''"


def seat_lines(scenario: Scenario) -> str:
    return "\n".join(
        f"Group {group.name}'s seat share is {scenario.seats[group.code] * 100:.0f}%." for group in scenario.groups
    )


def requirements_text(scenario: Scenario) -> str:
    requirement = goal_requirement(scenario.goal, veto_group=scenario.name_of(scenario.veto_group))
    if GOALS[scenario.goal].kind == "pass":
        # Voting goals see the power structure; welfare goals ignore seats, as in the paper.
        return (
            "The resolution should rest on the groups' seat shares, given by these weights "
            f"rather than actual seats:\n{seat_lines(scenario)}\n{requirement}"
        )
    return requirement


def pick_example(scenario: Scenario, pool: Sequence[RecordView], seed: int) -> RecordView | None:
    """An example resolution from another record, same topic when there is one.

    Never the target itself nor any record whose resolution is the target's (the paper's
    example can leak the answer; ours cannot).
    """
    target = scenario.record
    others = [
        record
        for record in pool
        if record.key != target.key
        and record.resolution.strip()
        and normalised_text(record.resolution) != normalised_text(target.resolution)
    ]
    same_topic = [record for record in others if record.topic == target.topic]
    candidates = sorted(same_topic or others, key=lambda record: record.key)
    if not candidates:
        return None
    return rng_for(seed, "one-shot-example").choice(candidates)


def draft_messages(scenario: Scenario, example: RecordView | None) -> list[Message]:
    stances = "\n".join(f"Group {group.name}: '''{group.stance}'''" for group in scenario.groups)
    prompt = DRAFT_TEMPLATE.format(
        background=scenario.record.background,
        count=len(scenario.groups),
        title=scenario.record.title,
        stances=stances,
        requirements=requirements_text(scenario),
        example=EXAMPLE_TEMPLATE.format(resolution=example.resolution) if example else "",
    )
    return [{"role": "system", "content": DRAFT_SYSTEM}, {"role": "user", "content": prompt}]


def draft_messages_with(scenario: Scenario, block: str) -> list[Message]:
    """The one-shot prompt (no example) with `block` just before its closing ask: forecast's plan,
    advisor's brief."""
    messages = draft_messages(scenario, None)
    head, ask = messages[-1]["content"].rsplit("\n", 1)  # the template ends with its ask line
    return [*messages[:-1], {"role": "user", "content": f"{head}\n{block.strip()}\n{ask}"}]


class OneShotParams(StrategyParams):
    temperature: float = Field(
        0.0,
        ge=0,
        le=2,
        title="Temperature",
        description="The drafter's sampling temperature (0: its most likely text).",
    )
    max_tokens: int = Field(
        400, ge=16, le=2048, title="Draft tokens", description="The most tokens the resolution may take."
    )


@dataclass(frozen=True)
class OneShot:
    name: str = "one-shot"
    summary: ClassVar[str] = "One prompt with every stance and the goal; one resolution (PoliCon's baseline drafter)."
    needs_model: bool = True
    params_model: ClassVar[type[OneShotParams]] = OneShotParams

    def estimated_cost(self, *, groups: int, params: OneShotParams, judge_uses_model: bool) -> RunCost:
        """One draft, then the vote."""
        return RunCost(1, params.max_tokens) + vote_cost(groups=groups, judge_uses_model=judge_uses_model)

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        settings = params_validate(self.params_model, ctx.params, strategy=self.name)
        yield run_started(scenario, ctx, self.name)

        def draft() -> dict:
            example = pick_example(scenario, ctx.examples, ctx.seed)
            params = Params(temperature=settings.temperature, max_tokens=settings.max_tokens)
            completion = ctx.model.complete(
                draft_messages(scenario, example), params=params, seed=ctx.child_seed("draft")
            )
            return {
                "author": "drafter",
                "text": completion.text.strip(),
                "usage": completion.usage(),
                "example_record": example.key if example else None,
            }

        event = ctx.step("draft", draft)
        yield event
        yield from vote_on(scenario, ctx, event["data"]["text"])
