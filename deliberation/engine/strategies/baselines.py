"""PoliCon's baselines and the oracle: no model drafts anything.

- random: one randomly chosen group's stance is the text
- greedy: the largest group's stance is the text
- real-resolution: the resolution Parliament adopted
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

from deliberation.engine.costs import RunCost, vote_cost
from deliberation.engine.events import Event
from deliberation.engine.scenario import Group, Scenario
from deliberation.engine.seeding import rng_for
from deliberation.engine.strategies.base import RunContext, run_started, vote_on
from deliberation.engine.strategies.params import NoParams, params_validate


class _Baseline:
    """No parameters; the only model steps are the judge's verdicts."""

    params_model: ClassVar[type[NoParams]] = NoParams

    def estimated_cost(self, *, groups: int, params: NoParams, judge_uses_model: bool) -> RunCost:
        return vote_cost(groups=groups, judge_uses_model=judge_uses_model)


def _adopt(scenario: Scenario, ctx: RunContext, name: str, draft: dict) -> Iterator[Event]:
    """Put a ready-made text to the vote."""
    params_validate(NoParams, ctx.params, strategy=name)
    yield run_started(scenario, ctx, name)
    event = ctx.step("draft", lambda: {"author": name, **draft})
    yield event
    yield from vote_on(scenario, ctx, event["data"]["text"])


def _stance_draft(group: Group) -> dict:
    return {"text": group.stance, "source_group": group.code}


@dataclass(frozen=True)
class RandomStance(_Baseline):
    name: str = "random"
    summary: ClassVar[str] = "A random group's stance becomes the text (no model)."
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        group = rng_for(ctx.seed, "random-stance").choice(scenario.groups)
        yield from _adopt(scenario, ctx, self.name, _stance_draft(group))


@dataclass(frozen=True)
class Greedy(_Baseline):
    name: str = "greedy"
    summary: ClassVar[str] = "The largest group's stance becomes the text (no model)."
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        yield from _adopt(scenario, ctx, self.name, _stance_draft(scenario.by_seats()[0]))


@dataclass(frozen=True)
class RealResolution(_Baseline):
    name: str = "real-resolution"
    summary: ClassVar[str] = "The resolution Parliament really adopted (pair with the real-votes judge)."
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        yield from _adopt(scenario, ctx, self.name, {"text": scenario.record.resolution})
