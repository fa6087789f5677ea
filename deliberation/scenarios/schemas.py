"""The one input model of a scenario: what a user chooses in the builder, the API (v1) and the
CLI. Types, choices and ranges are declared here, so the OpenAPI schema documents them; what
needs the database (the record, the registry's models, the judges, the stances) and the strategy's
own parameters are checked by scenarios.services.scenario_config_build, the one validator.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from deliberation.engine.goals import GOAL_KEYS
from deliberation.engine.seats import SEAT_STRUCTURES
from deliberation.engine.strategies import STRATEGIES
from deliberation.safetext import SafeText
from deliberation.scenarios.models import Visibility

BIGINT_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
MAX_GROUPS = 100
MIN_DIVIDED, MAX_DIVIDED = 2, 8

Id = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
Seed = Annotated[int, Field(ge=0, le=INT_MAX)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Code = Annotated[SafeText, Field(max_length=32)]
Name = Annotated[SafeText, Field(max_length=200)]
ParamValue = int | float | bool | Annotated[SafeText, Field(max_length=200)]

SeatStructure = Literal[SEAT_STRUCTURES]
Goal = Literal[GOAL_KEYS]
StrategyName = Literal[tuple(sorted(STRATEGIES))]
VisibilityName = Literal[tuple(Visibility.values)]


class ScenarioIn(BaseModel):
    """A scenario to play or save. `model` and `judge_model` are names from GET /models (empty
    model: the lab's default); `strategy_params` are the strategy's parameters as GET /strategies
    describes them (omitted ones take their defaults)."""

    model_config = ConfigDict(extra="forbid")

    record: Id = Field(description="The record's id (GET /records).")
    groups: list[Code] = Field(
        [],
        max_length=MAX_GROUPS,
        description="Participating group codes, in order; empty: the `most_divided` groups.",
    )
    most_divided: int | None = Field(
        None,
        ge=MIN_DIVIDED,
        le=MAX_DIVIDED,
        description="Without `groups`: this many groups whose real votes on the record differ most.",
    )
    seat_structure: SeatStructure = Field(description="How seat shares are drawn; `custom` takes `custom_seats`.")
    custom_seats: dict[Code, Finite] = Field(
        {},
        max_length=MAX_GROUPS,
        description="Group code to percent, adding up to 100 (seat_structure custom).",
    )
    goal: Goal
    veto_group: Code = Field("", description="A participating group; required by the veto_power goal.")
    strategy: StrategyName
    strategy_params: dict[Code, ParamValue] = Field({}, max_length=MAX_GROUPS)
    model: Name = ""
    judge: Code = Field(
        description="llm, llm-expected, ensemble-mean, ensemble-median, similarity, real-votes, scripted, or calibrated:<calibration id>."
    )
    judge_model: Name = Field("", description="The llm judge's model; empty: the drafting model.")
    seed: Seed = 0
    # Before strategy_params, the parliament's two parameters were fields of their own.
    rounds: int | None = Field(
        None, ge=-INT_MAX - 1, le=INT_MAX, description="Deprecated: strategy_params.rounds (parliament)."
    )
    rapporteur: Code | None = Field(None, description="Deprecated: strategy_params.rapporteur (parliament).")
    name: Name = Field("", description="Name it to save the scenario (saving needs one).")
    visibility: VisibilityName = Field("private", description="Who can watch the run.")

    @model_validator(mode="after")
    def _legacy_params(self) -> "ScenarioIn":
        """`rounds` and `rapporteur` count for the parliament, as they always did; an entry of
        strategy_params with the same name wins."""
        if self.strategy == "parliament":
            legacy = {key: value for key in ("rounds", "rapporteur") if (value := getattr(self, key)) is not None}
            self.strategy_params = {**legacy, **self.strategy_params}
        self.rounds = self.rapporteur = None
        return self


# Messages for the pydantic errors a person can cause in the builder (the API shows them too).
MISSING = {
    "record": "Pick a record first: search the list below and click one.",
    "seat_structure": "Choose a seat structure.",
    "goal": "Choose a goal.",
    "strategy": "Choose a strategy.",
    "judge": "Choose a judge.",
}


def input_errors(error: ValidationError) -> dict[str, list[str]]:
    """A ValidationError of ScenarioIn as messages per top-level field."""
    errors: dict[str, list[str]] = {}
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "__all__"
        kind, ctx = item["type"], item.get("ctx", {})
        if kind == "missing":
            message = MISSING.get(field, "This field is required.")
        elif kind == "literal_error":
            message = f"Choose one of: {ctx.get('expected', '')}."
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            message = "Enter a whole number."
        elif kind in ("greater_than_equal", "greater_than"):
            message = f"At least {ctx.get('ge', ctx.get('gt'))}."
        elif kind in ("less_than_equal", "less_than"):
            message = f"At most {ctx.get('le', ctx.get('lt'))}."
        elif kind == "extra_forbidden":
            message = "Not a field of a scenario."
        else:
            message = item["msg"].removeprefix("Value error, ")
        errors.setdefault(field, []).append(message)
    return errors
