"""Builders of plain engine data for the engine's unit tests (no Django needed)."""

from collections.abc import Callable, Mapping, Sequence

import pytest

from deliberation.engine.scenario import Group, RecordView, Scenario

RESOLUTION = (
    "The European Parliament calls on the Commission to fund rural broadband with EUR 2 billion "
    "by 2027 and to review the scheme every two years."
)


def build_record(**overrides: str) -> RecordView:
    fields = {
        "key": "rec-1",
        "title": "Rural broadband: REPORT on the digital divide",
        "background": "Many rural areas still lack fast internet access.",
        "resolution": RESOLUTION,
        "topic": "industry, research & energy",
        "term": "9th",
    }
    return RecordView(**{**fields, **overrides})


def build_group(code: str, *, choice: int | None = None) -> Group:
    return Group(
        code=code,
        stance=f"{code} stance: the group's own view on rural broadband, told in its words.",
        real_score=None if choice is None else choice / 10,
        real_choice=choice,
    )


def build_scenario(
    *,
    seats: Mapping[str, float] | None = None,
    goal: str = "simple_majority",
    veto_group: str | None = None,
    choices: Mapping[str, int] | None = None,
    record: RecordView | None = None,
    codes: Sequence[str] | None = None,
) -> Scenario:
    seats = dict(seats or {"EPP": 0.5, "SD": 0.3, "GREEN_EFA": 0.2})
    codes = list(codes or seats)
    choices = choices or {}
    return Scenario(
        record=record or build_record(),
        groups=tuple(build_group(code, choice=choices.get(code)) for code in codes),
        seats=seats,
        goal=goal,
        veto_group=veto_group,
    )


@pytest.fixture
def make_record() -> Callable[..., RecordView]:
    return build_record


@pytest.fixture
def make_group() -> Callable[..., Group]:
    return build_group


@pytest.fixture
def make_scenario() -> Callable[..., Scenario]:
    return build_scenario
