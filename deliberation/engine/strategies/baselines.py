"""PoliCon's baselines and the oracle: no model drafts anything.

- random: one randomly chosen group's stance is the text
- greedy: the largest group's stance is the text
- real-resolution: the resolution Parliament adopted
"""

from collections.abc import Iterator
from dataclasses import dataclass

from deliberation.engine.events import Event
from deliberation.engine.scenario import Scenario
from deliberation.engine.seeding import rng_for
from deliberation.engine.strategies.base import RunContext, run_started, vote_on


@dataclass(frozen=True)
class RandomStance:
    name: str = "random"
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        yield run_started(scenario, ctx, self.name)
        group = rng_for(ctx.seed, "random-stance").choice(scenario.groups)
        draft = ctx.step(
            "draft", lambda: {"author": self.name, "text": group.stance, "source_group": group.code}
        )
        yield draft
        yield from vote_on(scenario, ctx, draft["data"]["text"])


@dataclass(frozen=True)
class Greedy:
    name: str = "greedy"
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        yield run_started(scenario, ctx, self.name)
        group = scenario.by_seats()[0]
        draft = ctx.step(
            "draft", lambda: {"author": self.name, "text": group.stance, "source_group": group.code}
        )
        yield draft
        yield from vote_on(scenario, ctx, draft["data"]["text"])


@dataclass(frozen=True)
class RealResolution:
    name: str = "real-resolution"
    needs_model: bool = False

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        yield run_started(scenario, ctx, self.name)
        draft = ctx.step(
            "draft", lambda: {"author": self.name, "text": scenario.record.resolution}
        )
        yield draft
        yield from vote_on(scenario, ctx, draft["data"]["text"])
