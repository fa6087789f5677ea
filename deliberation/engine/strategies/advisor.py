"""The advisor strategy: Bayesian persuasion alignment (Bai et al., arXiv 2405.18718), inference only.

A small advisor model reads the scenario and the state it cannot be wrong about, the pivotal
groups (computed: pivotal_groups), and sends the drafter a short brief; a second, usually larger
drafter model (the run's model) writes the resolution with the brief in its prompt. Three arms, as
the method's evaluation has (parameter `signal`):
- none     no brief (the one-shot prompt);
- random   a brief of the same format drawn at random from the scenario's groups and stance
           sentences, without the goal: information from the prior, no model call;
- advisor  the advisor model's brief (parameter `advisor_model`; empty: the run's model).
Events: `signal` (arm, pivotal set, text), the `draft`, then the vote. Model steps: 1 draft, plus 1
brief for the advisor arm, plus the judge's.
"""

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from deliberation.engine.events import Event
from deliberation.engine.goals import GOALS, goal_requirement
from deliberation.engine.models import Message, Params
from deliberation.engine.scenario import Scenario
from deliberation.engine.strategies.base import (
    ParamError,
    RunContext,
    param_choice,
    param_number,
    run_started,
    vote_on,
)
from deliberation.engine.strategies.forecast import coalition_feasible
from deliberation.engine.strategies.one_shot import draft_messages, seat_lines

SIGNALS = ("none", "random", "advisor")
BRIEF_WORDS = 120
# The state: a group is pivotal when it belongs to a minimal coalition that passes with its members
# at IN_SCORE and everyone else at OUT_SCORE (forecast's feasibility rule, its default margin).
IN_SCORE, OUT_SCORE, PIVOT_MARGIN = 7, 2, 0.3


@dataclass(frozen=True)
class AdvisorSettings:
    signal: str = "advisor"
    advisor_model: str = ""  # a registry model name; empty: the run's model
    brief_tokens: int = 200
    advisor_temperature: float = 0.3
    draft_tokens: int = 400

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "AdvisorSettings":
        d = cls()
        model = params.get("advisor_model", d.advisor_model)
        if not isinstance(model, str):
            raise ParamError(f"advisor_model: a model name, not {model!r}")
        return cls(
            signal=param_choice(params, "signal", d.signal, SIGNALS),
            advisor_model=model.strip(),
            brief_tokens=param_number(params, "brief_tokens", d.brief_tokens, int, 32, 512),
            advisor_temperature=param_number(params, "advisor_temperature", d.advisor_temperature, float, 0.0, 2.0),
            draft_tokens=param_number(params, "draft_tokens", d.draft_tokens, int, 64, 2048),
        )

    def model_steps(self) -> int:
        return 1 + (1 if self.signal == "advisor" else 0)


def pivotal_groups(scenario: Scenario) -> tuple[str, ...]:
    """The groups in some minimal passing coalition (scenario order). Veto power: the veto group
    always (it is in every passing coalition); Rawlsian and utilitarian: every group."""
    if GOALS[scenario.goal].kind == "score":
        return scenario.codes
    codes = scenario.codes
    out = {code: OUT_SCORE for code in codes}

    def passes(coalition: Sequence[str]) -> bool:
        return coalition_feasible(coalition, forecast=out, seats=scenario.seats, goal=scenario.goal,
                                  veto_group=scenario.veto_group, target=IN_SCORE, margin=PIVOT_MARGIN)

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
        title=scenario.record.title, background=scenario.record.background, stances=stances,
        seats=seat_lines(scenario), goal=goal_requirement(scenario.goal, veto_group=scenario.name_of(scenario.veto_group)),
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
    return brief_cut(f"Pivotal: {', '.join(scenario.name_of(c) for c in named)}\nRed lines: {red_lines}\nOffer: {offer}")


def computed_brief(scenario: Scenario, pivotal: Sequence[str]) -> str:
    """What the advisor arm sends when the advisor's answer is empty: the state alone."""
    return f"Pivotal: {', '.join(scenario.name_of(c) for c in pivotal)}"


def advised_draft_messages(scenario: Scenario, brief: str) -> list[Message]:
    messages = draft_messages(scenario, None)
    if not brief:
        return messages
    head, ask = messages[-1]["content"].rsplit("\n", 1)
    return [*messages[:-1], {"role": "user", "content": f"{head}\nAdvisor brief:\n'''{brief}'''\n{ask}"}]


@dataclass(frozen=True)
class Advisor:
    name: str = "advisor"
    needs_model: bool = True
    settings: ClassVar[type] = AdvisorSettings
    model_params: tuple[str, ...] = ("advisor_model",)

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        settings = AdvisorSettings.from_params(ctx.params)
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

    def _signal(self, scenario: Scenario, ctx: RunContext, settings: AdvisorSettings) -> dict[str, Any]:
        pivotal = pivotal_groups(scenario)
        data: dict[str, Any] = {"arm": settings.signal, "pivotal": list(pivotal), "text": "", "fallback": False}
        if settings.signal == "random":
            data["text"] = random_brief(scenario, ctx.rng("advisor", "prior"))
        elif settings.signal == "advisor":
            client = ctx.models.get("advisor_model") or ctx.model
            completion = client.complete(
                advisor_messages(scenario, pivotal),
                params=Params(temperature=settings.advisor_temperature, max_tokens=settings.brief_tokens),
                seed=ctx.child_seed("advisor", "brief"),
            )
            text = brief_cut(completion.text)
            data.update(text=text or computed_brief(scenario, pivotal), fallback=not text,
                        model=settings.advisor_model or None, usage=completion.usage())
        return data
