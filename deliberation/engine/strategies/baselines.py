"""PoliCon's baselines and the oracle: no model drafts anything.

- random: one randomly chosen group's stance is the text
- greedy: the largest group's stance is the text
- real-resolution: the resolution Parliament adopted
"""

from collections.abc import Iterator
from dataclasses import dataclass

from deliberation.engine.events import Event
from deliberation.engine.scenario import Group, Scenario
from deliberation.engine.seeding import rng_for
from deliberation.engine.strategies.base import RunContext, run_started, vote_on


def _adopt(scenario: Scenario, ctx: RunContext, name: str, draft: dict) -> Iterator[Event]:
    """Put a ready-made text to the vote."""
    yield run_started(scenario, ctx, name)
    event = ctx.step("draft", lambda: {"author": name, **draft})
    yield event
    yield from vote_on(scenario, ctx, event["data"]["text"])


def _stance_draft(group: Group) -> dict:
    return {"text": group.stance, "source_group": group.code}


@dataclass(frozen=True)
class RandomStance:
    name: str = "random"
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        group = rng_for(ctx.seed, "random-stance").choice(scenario.groups)
        yield from _adopt(scenario, ctx, self.name, _stance_draft(group))


@dataclass(frozen=True)
class Greedy:
    name: str = "greedy"
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        yield from _adopt(scenario, ctx, self.name, _stance_draft(scenario.by_seats()[0]))


@dataclass(frozen=True)
class RealResolution:
    name: str = "real-resolution"
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        yield from _adopt(scenario, ctx, self.name, {"text": scenario.record.resolution})
