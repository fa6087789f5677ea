"""What a valid EuroCon / PoliCon record, stance and task looks like (pydantic models).

The planner validates every entry of a file with these; a field that fails is reported with the
entry and the rest of the file is still planned.
"""

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictStr,
    ValidationInfo,
)

from deliberation.records.normalise import (
    collapse_whitespace,
    normalise_group_code,
    normalise_term,
    stance_text,
)
from deliberation.safetext import text_checked


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; in a vote share that is garbage, not a number.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _record_id(value: Any) -> int | str | None:
    if value is None or (isinstance(value, (int, str)) and not isinstance(value, bool)):
        return value
    raise ValueError("expected a number or text")


def _stance_text(value: Any) -> str:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        return stance_text(value)
    raise ValueError("expected text or a list of texts")


def _collapsed(value: str, info: ValidationInfo) -> str:
    # Task files repeat each record's long texts for every party count: an import-wide memo
    # (the validation context) collapses each distinct text once.
    memo = info.context
    if memo is None:
        return collapse_whitespace(value)
    collapsed = memo.get(value)
    if collapsed is None:
        collapsed = memo[value] = collapse_whitespace(value)
    return collapsed


# Numbers may come as numeric strings ("0.3"); anything else that is not a number is an error.
Score = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=1, allow_inf_nan=False)]
Choice = Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=9)]
Weight = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, le=1, allow_inf_nan=False)]
# Text is checked for control characters (NUL above all: PostgreSQL refuses it) before it is
# planned, so the check reports the field instead of the write failing with a traceback.
Text = Annotated[str, AfterValidator(text_checked), AfterValidator(_collapsed)]
RequiredText = Annotated[str, AfterValidator(text_checked), AfterValidator(_collapsed), AfterValidator(_not_blank)]
GroupCode = Annotated[
    str, AfterValidator(text_checked), AfterValidator(normalise_group_code), AfterValidator(_not_blank)
]
StanceText = Annotated[str, BeforeValidator(_stance_text), AfterValidator(text_checked)]
TopicName = Annotated[StrictStr, AfterValidator(text_checked)]


class StanceIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    party_name: GroupCode
    score: Score
    choice: Choice
    stance: StanceText


class RecordIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[int | str | None, PlainValidator(_record_id)] = None
    topic: TopicName | None = None
    title: RequiredText
    background: RequiredText
    resolution: Text
    parliament_terms: Annotated[str, AfterValidator(normalise_term)]
    total_score: Score | None = None
    total_choice: Choice | None = None
    party_num: Annotated[int, BeforeValidator(_not_bool), Field(ge=0)] | None = None
    stances: list[Any]  # each entry is validated on its own, so one bad stance drops only itself


class TaskFieldsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    seat_weights: list[Weight]
    veto_party_name: GroupCode
