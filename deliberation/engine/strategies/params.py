"""Strategy parameters: each strategy declares them once, as a small pydantic model.

The declaration is the one place that knows a parameter's name, type, default, range or choices
and help text. From it come the validation of a scenario's `strategy_params` (with messages that
name the parameter and the allowed values), the description the builder and the API show
(`params_description`), and the values a run plays with. docs/strategies.md says how to declare.
"""

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class StrategyParams(BaseModel):
    """The base of every strategy's parameters: frozen, and an unknown name is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(StrategyParams):
    """A strategy without parameters."""


class ParamsError(ValueError):
    """Parameters that do not fit a strategy's declaration: `errors` maps each offending
    parameter to its messages; str() reads "name: message; ..." as the engine's errors do."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {name: list(messages) for name, messages in errors.items()}
        super().__init__(
            "; ".join(f"{name}: {message}" for name, messages in self.errors.items() for message in messages)
        )


def _bounds(model: type[StrategyParams], name: str) -> tuple[Any, Any]:
    schema = model.model_json_schema()["properties"].get(name, {})
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    return low, high


def _message(model: type[StrategyParams], strategy: str, error: dict) -> str:
    kind, name, value = error["type"], str(error["loc"][0]) if error["loc"] else "", error.get("input")
    if kind == "extra_forbidden":
        names = ", ".join(model.model_fields)
        return f"{strategy} has no such parameter; it takes {names}" if names else f"{strategy} takes no parameters"
    if kind == "missing":
        return "required"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"a whole number, not {value!r}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"a number, not {value!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"true or false, not {value!r}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        low, high = _bounds(model, name)
        if low is not None and high is not None:
            return f"between {low:g} and {high:g}, not {value}"
        return f"at least {low:g}, not {value}" if low is not None else f"at most {high:g}, not {value}"
    if kind == "literal_error":
        choices = model.model_json_schema()["properties"][name].get("enum", [])
        return f"one of {', '.join(map(str, choices))}, not {value!r}"
    return error["msg"]


def params_validate(model: type[StrategyParams], raw: Mapping[str, Any], *, strategy: str) -> StrategyParams:
    """`raw` (a stored dict, a form's strings, the CLI's NAME=VALUE pairs) checked against the
    declaration; ParamsError names every offending parameter."""
    if not isinstance(raw, Mapping):
        raise ParamsError({"strategy_params": [f"give {strategy}'s parameters as an object of name: value"]})
    try:
        return model.model_validate(dict(raw))
    except ValidationError as error:
        errors: dict[str, list[str]] = {}
        for item in error.errors():
            name = str(item["loc"][0]) if item["loc"] else "strategy_params"
            errors.setdefault(name, []).append(_message(model, strategy, item))
        raise ParamsError(errors) from None


def params_from_pairs(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """["rounds=2", "rapporteur=mediator"] (the CLI's --param, the estimate's ?param=) as a dict
    of strings, which params_validate reads as the declared types."""
    raw: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParamsError({"param": [f"{pair!r} is not NAME=VALUE"]})
        raw[name.strip()] = value.strip()
    return raw


def params_description(model: type[StrategyParams]) -> list[dict[str, Any]]:
    """One entry per parameter, in declaration order, for the builder and the API: name, label,
    help, type (integer, number, string, boolean or choice), default, minimum, maximum and, for a
    choice, its [value, label] pairs (labels from the field's json_schema_extra "labels")."""
    properties = model.model_json_schema()["properties"]
    described = []
    for name in model.model_fields:
        schema = properties[name]
        kind = "choice" if "enum" in schema else schema.get("type", "string")
        labels = schema.get("labels", {})
        described.append(
            {
                "name": name,
                "label": schema.get("title") or name.replace("_", " ").capitalize(),
                "help": schema.get("description", ""),
                "type": kind,
                "default": schema.get("default"),
                "minimum": schema.get("minimum"),
                "maximum": schema.get("maximum"),
                "choices": [[value, labels.get(value, str(value))] for value in schema.get("enum", [])],
            }
        )
    return described
