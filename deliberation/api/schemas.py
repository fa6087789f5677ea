"""The API's request and response shapes (they make the OpenAPI schema).

Every input is bounded here, so the schema says what is accepted and nothing out of range reaches
the database: ids and counts fit PostgreSQL's integers, floats are finite, text has no control
characters (deliberation/safetext.py) and a length that fits its column, lists a length.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

from deliberation.safetext import json_checked
from deliberation.scenarios.schemas import BIGINT_MAX, INT_MAX, Code, Id, Name, ScenarioIn, Seed

MAX_ITEMS = 100

Count = Annotated[int, Field(ge=-INT_MAX - 1, le=INT_MAX)]  # the service checks its meaning
Params = Annotated[dict[Code, dict[Code, Any]], AfterValidator(json_checked)]

__all__ = ["BIGINT_MAX", "Code", "Id", "Name", "ScenarioIn", "Seed"]  # the scenario's input model lives with scenarios


class ErrorOut(Schema):
    error: str


class FieldErrorsOut(Schema):
    errors: dict[str, list[str]]


class RecordSetOut(Schema):
    id: int
    name: str
    description: str
    records: int
    tasks: int
    version: int | None


class RecordOut(Schema):
    id: int
    record_set: str
    title: str
    term: str
    topics: list[str]


class StanceOut(Schema):
    group: str
    label: str
    text: str
    real_score: float
    real_choice: int


class RecordDetailOut(RecordOut):
    background: str
    resolution: str
    real_total_score: float | None
    stances: list[StanceOut]


class ModelOut(Schema):
    """A model of the lab's registry that you may use (prices per million tokens, when set)."""

    name: str
    description: str
    prompt_price: float | None
    completion_price: float | None


class BudgetOut(Schema):
    """What you may still spend over the last 24 hours (null: no limit) and your default
    experiment cap in model steps (null: none)."""

    steps_per_day: int | None
    steps_left: int | None
    tokens_per_day: int | None
    tokens_left: int | None
    experiment_cap: int | None


class ParamOut(Schema):
    """One parameter of a strategy: `type` is integer, number, string, boolean or choice (then
    `choices` holds [value, label] pairs); `minimum` and `maximum` bound a number."""

    name: str
    label: str
    help: str
    type: Literal["integer", "number", "string", "boolean", "choice"]
    default: int | float | bool | str | None
    minimum: float | None
    maximum: float | None
    choices: list[list[Any]]
    names_model: bool  # its value is a model of GET /models (checked as `model` is)


class StrategyOut(Schema):
    name: str
    summary: str
    needs_model: bool
    params: list[ParamOut]


class EstimateOut(Schema):
    """A run's model steps and the most completion tokens they may generate (its first attempt:
    a retried call costs more), with the parameters it would play, defaults filled in."""

    strategy: str
    groups: int
    judge: str
    steps: int
    completion_tokens: int
    params: dict[str, Any]


class ScenarioOut(Schema):
    id: int
    name: str
    record: int
    groups: list[str]
    seat_structure: str
    seats: dict[str, float]
    goal: str
    veto_group: str
    strategy: str
    model: str
    judge: str
    judge_model: str
    seed: int
    params: dict[str, Any]
    created_at: datetime

    @staticmethod
    def resolve_record(scenario) -> int:
        return scenario.record_id


class CreatedOut(Schema):
    id: int
    url: str


class RunOut(Schema):
    id: int
    status: str
    record: int
    experiment: int | None
    cell: str
    strategy: str
    model: str
    judge: str
    goal: str
    groups: list[str]
    seats: dict[str, float]
    veto_group: str | None
    seed: int
    params: dict[str, Any]
    outcome: dict[str, Any] | None
    error: str
    prompt_tokens: int
    completion_tokens: int
    model_seconds: float
    wall_seconds: float | None
    created_at: datetime
    url: str


class EventOut(Schema):
    seq: int
    type: str
    at: datetime
    data: dict[str, Any]


class ExperimentIn(Schema):
    """The grid: either a record set's benchmark tasks or saved scenarios (ids), times the rest."""

    name: Name
    goals: Annotated[list[Code], Field(max_length=MAX_ITEMS)]
    strategies: Annotated[list[Code], Field(max_length=MAX_ITEMS)]
    models: Annotated[list[Name], Field(max_length=MAX_ITEMS)]  # names from GET /models
    judges: Annotated[list[Code], Field(max_length=MAX_ITEMS)]
    seeds: Annotated[list[Seed], Field(max_length=MAX_ITEMS)] = [0]
    record_set: Name | None = None
    topic: Name | None = None
    parties: Annotated[list[Count], Field(max_length=MAX_ITEMS)] = [2, 4, 6]
    sample: Count | None = None
    sample_seed: Seed = 0
    scenario_ids: Annotated[list[Id], Field(max_length=1000)] = []
    params: Params | None = None
    call_cap: Annotated[int, Field(ge=0, le=INT_MAX)] | None = None
    # Calibration cells: every judge x each judge model against the record set's real votes
    # (no strategies: calibrations alone); default judge models: the models.
    calibrate: bool = False
    calibration_models: Annotated[list[Name], Field(max_length=MAX_ITEMS)] = []
    calibration_limit: Count | None = None
    calibration_seed: Seed = 0


class ExperimentOut(Schema):
    id: int
    name: str
    status: str
    spec: dict[str, Any]
    estimate: dict[str, Any]
    call_cap: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class StartedOut(Schema):
    status: str
    started_runs: list[int]


class CalibrationCellOut(Schema):
    id: int
    cell: str
    judge: str
    judge_model: str
    status: str
    scored: int = Field(description="Scores stored so far, of `total`.")
    total: int
    pearson: float | None = Field(description="Once finished (null when undefined).")
    mae: float | None
    bias: float | None
    error: str


class CalibrationsProgressOut(Schema):
    total: int = Field(description="Calibration cells of the grid.")
    settled: int = Field(description="Cells finished or failed.")
    scored: int
    scores: int
    cells: list[CalibrationCellOut]


class ProgressBarOut(Schema):
    max: int = Field(description="Runs plus calibration cells: a cell weighs as one run.")
    value: float = Field(description="Settled runs and cells, plus each cell in flight's share of its scores.")


class ProgressOut(Schema):
    experiment: int
    name: str
    status: str
    total: int
    done: int
    failed: int
    running: int
    remaining: int
    steps_spent: int
    steps_estimate: int
    call_cap: int | None
    eta_s: float | None
    calibrations: CalibrationsProgressOut
    bar: ProgressBarOut


class ResultOut(Schema):
    cell: str
    run: int
    status: str
    record: int
    task: int | None
    groups: list[str]
    goal: str
    strategy: str
    model: str
    judge: str
    seed: int
    scores: dict[str, int] | None
    weighted_total: float | None
    goals: dict[str, bool | float] | None
    error: str


# Voting power and counterfactual re-tallies (engine/power.py, engine/rules.py, runs/counterfactuals.py)


class QuotaOut(Schema):
    share: float
    fraction: str
    strict: bool
    veto: str | None
    groups_share: float | None
    label: str


class GroupPowerOut(Schema):
    code: str
    seat_share: float
    shapley_shubik: float
    shapley_shubik_fraction: str
    banzhaf: float
    banzhaf_fraction: str
    swings: int


class PowerOut(Schema):
    goal: str
    quota: QuotaOut
    groups: list[GroupPowerOut]


class RankingOut(Schema):
    winners: list[str]
    ranking: list[list[str]]
    points: dict[str, float]


class TallyOut(Schema):
    seats: dict[str, float]
    weighted_total: float
    verdicts: dict[str, bool | float | None]
    result: bool | float | None
    power: PowerOut | None
    ranking: RankingOut | None


class RuleOut(Schema):
    key: str
    label: str
    kind: str


class StoredOutcomeOut(Schema):
    goal: str
    label: str
    result: bool | float | None


class DraftOut(Schema):
    key: str
    id: int
    strategy: str
    url: str


class CounterfactualOut(Schema):
    run: int
    scores: dict[str, int]
    rule: RuleOut
    seat_structure: str
    seed: int | None
    veto_group: str | None
    stored: StoredOutcomeOut
    original: TallyOut
    counterfactual: TallyOut
    drafts: list[DraftOut]


class GroupRewardOut(Schema):
    group: str
    deontological: float | None = Field(
        description="-1 broke, +1 kept an endorsement of the final text, 0 endorsed none"
    )
    utilitarian: float | None = Field(description="the mean judged support of the final text over all groups, 0..9")


class RunRewardsOut(Schema):
    run: int
    rewards: list[GroupRewardOut]


class SweepStructureOut(Schema):
    key: str
    label: str


class SweepRowOut(Schema):
    strategy: str
    structure: str
    rule: str
    rate: float | None  # None when no run (or contest) counts
    n: int


class SweepOut(Schema):
    runs: int
    structures: list[SweepStructureOut]
    rules: list[RuleOut]
    rows: list[SweepRowOut]


class PreferenceIn(Schema):
    text_a: str = Field(max_length=20_000, description="The first text (a resolution).")
    text_b: str = Field(max_length=20_000, description="The second text.")
    tau: float = Field(
        1.0, gt=0, le=100, description="The oracle's temperature: P(a > b) = sigmoid((G(a) - G(b)) / tau)."
    )


class PreferenceOut(Schema):
    preferred: Literal["a", "b"] | None = Field(description="The text the run's goal prefers; null: a tie.")
    p_a: float = Field(description="P(a preferred to b).")
    value_a: float = Field(description="G(a): the goal margin of text a over the judge's scores.")
    value_b: float
    scores_a: dict[str, float] = Field(description="The judge's score of text a for each group, 0..9.")
    scores_b: dict[str, float]
    goal: str
    judge: str
