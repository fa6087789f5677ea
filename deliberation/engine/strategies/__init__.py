"""Strategies: how a resolution comes about. Each is a generator of events, declares its
parameters (params.py) and estimates its model steps (docs/strategies.md)."""

import sys
from collections.abc import Mapping
from typing import Any

from deliberation.engine.costs import RunCost
from deliberation.engine.strategies.advisor import ADVISOR_ARMS
from deliberation.engine.strategies.amulet import Amulet
from deliberation.engine.strategies.base import RunContext, Strategy, model_params_of, outcome_of
from deliberation.engine.strategies.baselines import (
    Greedy,
    RandomStance,
    RealResolution,
)
from deliberation.engine.strategies.forecast import Forecast
from deliberation.engine.strategies.mediator import Mediator
from deliberation.engine.strategies.negotiation import Negotiation
from deliberation.engine.strategies.one_shot import OneShot
from deliberation.engine.strategies.params import (
    ParamsError,
    StrategyParams,
    params_description,
    params_validate,
)
from deliberation.engine.strategies.parliament import Parliament

STRATEGIES: dict[str, Strategy] = {
    strategy.name: strategy
    for strategy in (
        OneShot(),
        Parliament(),
        RandomStance(),
        Greedy(),
        RealResolution(),
        Mediator(),
        Forecast(),
        *ADVISOR_ARMS,
        Amulet(),
        Negotiation(),
    )
}


def strategy_named(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}") from None


def strategy_params(name: str, raw: Mapping[str, Any]) -> StrategyParams:
    """`raw` checked against the strategy's declaration (ParamsError names each bad parameter)."""
    return params_validate(strategy_named(name).params_model, raw, strategy=name)


def run_cost(*, strategy: str, party_count: int, judge_uses_model: bool, params: Mapping[str, Any]) -> RunCost:
    """The model steps and completion tokens of one run (engine/costs.py says what a step is);
    ValueError (ParamsError) when the parameters do not fit the strategy."""
    chosen = strategy_named(strategy)
    return chosen.estimated_cost(
        groups=party_count,
        params=strategy_params(strategy, params),
        judge_uses_model=judge_uses_model,
    )


def strategy_summary(strategy: Strategy) -> str:
    """One line on what the strategy does: its `summary`, else its module's first docstring line."""
    summary = getattr(strategy, "summary", "")
    if not summary:
        summary = (sys.modules[type(strategy).__module__].__doc__ or "").strip().split("\n", 1)[0]
    return summary


def strategy_descriptions() -> list[dict[str, Any]]:
    """Every strategy with its parameters, as the builder and GET /api/v1/strategies show them."""
    return [
        {
            "name": name,
            "summary": strategy_summary(STRATEGIES[name]),
            "needs_model": STRATEGIES[name].needs_model,
            "params": [
                {**param, "names_model": param["name"] in model_params_of(STRATEGIES[name])}
                for param in params_description(STRATEGIES[name].params_model)
            ],
        }
        for name in sorted(STRATEGIES)
    ]


__all__ = [
    "STRATEGIES",
    "ParamsError",
    "RunContext",
    "RunCost",
    "Strategy",
    "outcome_of",
    "run_cost",
    "strategy_descriptions",
    "strategy_named",
    "strategy_params",
]
