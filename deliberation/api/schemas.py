"""The API's request and response shapes (they make the OpenAPI schema)."""

from datetime import datetime
from typing import Any

from ninja import Schema


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


class ScenarioIn(Schema):
    """The scenario builder's fields; scenarios/forms.py (ScenarioForm) validates them."""

    record: int | None = None
    groups: list[str] | None = None
    most_divided: int | None = None
    seat_structure: str | None = None
    custom_seats: dict[str, float] | None = None
    goal: str | None = None
    veto_group: str | None = None
    strategy: str | None = None
    model: str | None = None
    judge: str | None = None
    judge_model: str | None = None
    seed: int | None = None
    rounds: int | None = None
    rapporteur: str | None = None
    name: str | None = None
    visibility: str | None = None


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

    name: str
    goals: list[str]
    strategies: list[str]
    models: list[str]
    judges: list[str]
    seeds: list[int] = [0]
    record_set: str | None = None
    topic: str | None = None
    parties: list[int] = [2, 4, 6]
    sample: int | None = None
    sample_seed: int = 0
    scenario_ids: list[int] = []
    params: dict[str, dict[str, Any]] | None = None
    call_cap: int | None = None


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
