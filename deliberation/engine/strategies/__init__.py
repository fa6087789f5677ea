"""Strategies: how a resolution comes about. Each is a generator of events."""

from deliberation.engine.strategies.base import RunContext, Strategy, outcome_of
from deliberation.engine.strategies.baselines import Greedy, RandomStance, RealResolution
from deliberation.engine.strategies.one_shot import OneShot
from deliberation.engine.strategies.parliament import Parliament

STRATEGIES: dict[str, Strategy] = {
    strategy.name: strategy
    for strategy in (OneShot(), Parliament(), RandomStance(), Greedy(), RealResolution())
}


def strategy_named(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}") from None


__all__ = ["STRATEGIES", "RunContext", "Strategy", "outcome_of", "strategy_named"]
