"""The advisor strategy: Bayesian persuasion alignment (Bai et al., arXiv 2405.18718), inference only.

A small advisor model reads the scenario and the state it cannot be wrong about, the pivotal
groups (computed: pivotal_groups), and sends the drafter a short brief; a second, usually larger
drafter model (the run's model) writes the resolution with the brief in its prompt. The method's
evaluation has three arms; each is a strategy, so an experiment compares them side by side:
- advisor-none    no brief (the one-shot prompt, without its example);
- advisor-random  a brief of the same format drawn at random from the scenario's groups and stance
                  sentences, without the goal: information from the prior, no model call;
- advisor         the advisor model's brief (parameter `advisor_model`; empty: the run's model).
Events: `signal` (arm, pivotal set, text), the `draft`, then the vote. Model steps: 1 draft, plus 1
brief for the advisor arm, plus the judge's.
"""

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from deliberation.engine.costs import RunCost, vote_cost
from deliberation.engine.events import Event
from deliberation.engine.goals import GOALS, goal_requirement
from deliberation.engine.models import Message, Params
from deliberation.engine.scenario import Scenario
from deliberation.engine.strategies.base import RunContext, run_started, vote_on
from deliberation.engine.strategies.forecast import coalition_feasible
from deliberation.engine.strategies.one_shot import (
    draft_messages,
    draft_messages_with,
    seat_lines,
)
from deliberation.engine.strategies.params import StrategyParams, params_validate

BRIEF_WORDS = 120
# The state: a group is pivotal when it belongs to a minimal coalition that passes with its members
# at IN_SCORE and everyone else at OUT_SCORE (forecast's feasibility rule, its default margin).
IN_SCORE, OUT_SCORE, PIVOT_MARGIN = 7, 2, 0.3


class DraftOnlyParams(StrategyParams):
    """The arms without an advisor (advisor-none, advisor-random): only the drafter's budget."""

    draft_tokens: int = Field(
        400, ge=64, le=2048, title="Draft tokens", description="The most tokens the resolution may take."
    )


class AdvisorParams(DraftOnlyParams):
    advisor_model: str = Field(
        "",
        max_length=200,
        title="Advisor model",
        description="The model that writes the brief (a registry name); empty: the run's model. The run's model drafts.",
    )
    brief_tokens: int = Field(
        200,
        ge=32,
        le=512,
        title="Brief tokens",
        description="The most tokens the advisor's brief may take (it is cut to 120 words).",
    )
    advisor_temperature: float = Field(
        0.3, ge=0, le=2, title="Advisor temperature", description="Sampling temperature of the advisor."
    )


def pivotal_groups(scenario: Scenario) -> tuple[str, ...]:
    """The groups in some minimal passing coalition (scenario order). Veto power: the veto group
    always (it is in every passing coalition); Rawlsian and utilitarian: every group."""
    if GOALS[scenario.goal].kind == "score":
        return scenario.codes
    codes = scenario.codes
    out = {code: OUT_SCORE for code in codes}

    def passes(coalition: Sequence[str]) -> bool:
        return coalition_feasible(
            coalition,
            forecast=out,
            seats=scenario.seats,
            goal=scenario.goal,
            veto_group=scenario.veto_group,
            target=IN_SCORE,
            margin=PIVOT_MARGIN,
        )

    members: set[str] = set()
    for mask in range(1, 2 ** len(codes)):
        coalition = [code for bit, code in enumerate(codes) if mask >> bit & 1]
        if passes(coalition) and not any(passes([c for c in coalition if c != drop]) for drop in coalition):
            members.update(coalition)
    return tuple(code for code in codes if code in members)


ADVISOR_SYSTEM = (
    "You advise the drafter of a European Parliament resolution. You point out whose votes the goal "
    "needs and what buys them, in a brief of at most {words} words."
)
ADVISOR_ASK = """Issue: {title}
Background: {background}
The groups' stances:
{stances}
{seats}
Goal: {goal}
Pivotal groups (the goal needs their votes): {pivotal}

Write the brief for the drafter in exactly three lines:
Pivotal: the groups whose votes the goal needs
Red lines: at most two points per pivotal group that the resolution must respect
Offer: one concession per group that buys its vote"""


def advisor_messages(scenario: Scenario, pivotal: Sequence[str]) -> list[Message]:
    stances = "\n".join(f"{g.name}: '''{g.stance}'''" for g in scenario.groups)
    ask = ADVISOR_ASK.format(
        title=scenario.record.title,
        background=scenario.record.background,
        stances=stances,
        seats=seat_lines(scenario),
        goal=goal_requirement(scenario.goal, veto_group=scenario.name_of(scenario.veto_group)),
        pivotal=", ".join(scenario.name_of(code) for code in pivotal),
    )
    return [{"role": "system", "content": ADVISOR_SYSTEM.format(words=BRIEF_WORDS)}, {"role": "user", "content": ask}]


def sentences(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<=[.!?])\s+|\s*\n\s*", text) if part.strip()]


def brief_cut(text: str) -> str:
    words = text.split()
    if len(words) <= BRIEF_WORDS:
        return text.strip()
    return " ".join(words[:BRIEF_WORDS]) + " [...]"


def random_brief(scenario: Scenario, rng) -> str:
    """The prior arm: the brief's format, with groups and stance sentences drawn uniformly at
    random (any group's sentence may stand under any group) and nothing about the goal."""
    codes = list(scenario.codes)
    named = rng.sample(codes, rng.randint(1, len(codes)))
    pool = [sentence for group in scenario.groups for sentence in sentences(group.stance)] or ["(no stance)"]
    red_lines = "; ".join(f"{scenario.name_of(code)}: {rng.choice(pool)}" for code in named)
    offer = "; ".join(f"{scenario.name_of(code)}: {rng.choice(pool)}" for code in named)
    return brief_cut(
        f"Pivotal: {', '.join(scenario.name_of(c) for c in named)}\nRed lines: {red_lines}\nOffer: {offer}"
    )


def computed_brief(scenario: Scenario, pivotal: Sequence[str]) -> str:
    """What the advisor arm sends when the advisor's answer is empty: the state alone."""
    return f"Pivotal: {', '.join(scenario.name_of(c) for c in pivotal)}"


def advised_draft_messages(scenario: Scenario, brief: str) -> list[Message]:
    return draft_messages_with(scenario, f"Advisor brief:\n'''{brief}'''") if brief else draft_messages(scenario, None)


@dataclass(frozen=True)
class Advisor:
    """One arm of the method's evaluation; each arm is its own strategy, so that an experiment
    puts them side by side like any strategies."""

    name: str = "advisor"
    arm: Literal["none", "random", "advisor"] = "advisor"
    needs_model: bool = True
    params_model: type[DraftOnlyParams] = AdvisorParams
    summary: str = (
        "Bayesian persuasion (Bai et al., arXiv 2405.18718): a small advisor model briefs the drafter on the "
        "pivotal groups and what buys their votes."
    )

    @property
    def model_params(self) -> tuple[str, ...]:
        return ("advisor_model",) if self.arm == "advisor" else ()

    def estimated_cost(self, *, groups: int, params: DraftOnlyParams, judge_uses_model: bool) -> RunCost:
        """The advisor's brief (advisor arm only), the draft, then the vote."""
        brief = RunCost(1, params.brief_tokens) if isinstance(params, AdvisorParams) else RunCost(0, 0)
        return brief + RunCost(1, params.draft_tokens) + vote_cost(groups=groups, judge_uses_model=judge_uses_model)

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        settings = params_validate(self.params_model, ctx.params, strategy=self.name)
        yield run_started(scenario, ctx, self.name)
        signal = ctx.step("signal", lambda: self._signal(scenario, ctx, settings))
        yield signal
        brief = signal["data"]["text"]

        def draft() -> dict[str, Any]:
            completion = ctx.model.complete(
                advised_draft_messages(scenario, brief),
                params=Params(temperature=0.0, max_tokens=settings.draft_tokens),
                seed=ctx.child_seed("advisor", "draft"),
            )
            return {"author": "drafter", "text": completion.text.strip(), "usage": completion.usage()}

        event = ctx.step("draft", draft)
        yield event
        yield from vote_on(scenario, ctx, event["data"]["text"])

    def _signal(self, scenario: Scenario, ctx: RunContext, settings: DraftOnlyParams) -> dict[str, Any]:
        pivotal = pivotal_groups(scenario)
        data: dict[str, Any] = {"arm": self.arm, "pivotal": list(pivotal), "text": "", "fallback": False}
        if self.arm == "random":
            data["text"] = random_brief(scenario, ctx.rng("advisor", "prior"))
        elif isinstance(settings, AdvisorParams):
            client = ctx.models.get("advisor_model") or ctx.model
            completion = client.complete(
                advisor_messages(scenario, pivotal),
                params=Params(temperature=settings.advisor_temperature, max_tokens=settings.brief_tokens),
                seed=ctx.child_seed("advisor", "brief"),
            )
            text = brief_cut(completion.text)
            data.update(
                text=text or computed_brief(scenario, pivotal),
                fallback=not text,
                model=settings.advisor_model or None,
                usage=completion.usage(),
            )
        return data


ADVISOR_ARMS = (
    Advisor(),
    Advisor(
        name="advisor-random",
        arm="random",
        params_model=DraftOnlyParams,
        summary="The advisor's control arm: a brief of the same shape drawn at random from the stances (the prior), "
        "no goal, no model call.",
    ),
    Advisor(
        name="advisor-none",
        arm="none",
        params_model=DraftOnlyParams,
        summary="The advisor's no-signal arm: the drafter alone, with the one-shot prompt (no example).",
    ),
)
