"""Strategy parameters in HTML forms (the builder, the new-experiment page): one input per
declared parameter (engine/strategies/params.py describes them), named
`params.<strategy>.<parameter>`, rendered by scenarios/_strategy_params.html."""

from collections.abc import Callable, Mapping
from typing import Any

from django.http import QueryDict

from deliberation.engine.strategies import strategy_descriptions

PARAM = "params.{strategy}."  # + the parameter's name


def strategy_params_posted(post: QueryDict, *, strategy: str) -> dict[str, str]:
    """The strategy's non-empty inputs (an empty one takes the parameter's default)."""
    prefix = PARAM.format(strategy=strategy)
    return {key.removeprefix(prefix): value for key, value in post.items() if key.startswith(prefix) and value.strip()}


def strategy_inputs(
    *,
    values: Mapping[str, Mapping[str, Any]],
    errors: Mapping[str, Mapping[str, list[str]]],
    shown: Callable[[str], bool],
    prefill: bool,
) -> list[dict[str, Any]]:
    """Every strategy with its parameters' inputs: `values` and `errors` per strategy and
    parameter; `prefill` puts the defaults in the inputs (else they are the placeholders)."""
    return [
        {
            **strategy,
            "shown": shown(strategy["name"]),
            "params": [
                {
                    **param,
                    "input": PARAM.format(strategy=strategy["name"]) + param["name"],
                    "value": values.get(strategy["name"], {}).get(param["name"], param["default"] if prefill else None),
                    "errors": errors.get(strategy["name"], {}).get(param["name"], []),
                }
                for param in strategy["params"]
            ],
        }
        for strategy in strategy_descriptions()
    ]
