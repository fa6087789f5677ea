"""engine/events.py: one pydantic model per event type; good data passes, bad data is refused
with a message that names the event and the key."""

import json
import types
import typing

import pytest
from pydantic import BaseModel

from deliberation.engine.events import (
    EVENT_DATA,
    EVENT_TYPES,
    EventInvalid,
    event_validate,
    make_event,
)


def sample_value(hint):
    """A JSON-able value of a model field's type (every optional key filled in)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        return sample_value(next(arg for arg in args if arg is not type(None)))
    if origin is list:
        return [sample_value(args[0])]
    if origin is dict:
        return {"EPP": sample_value(args[1])}
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return full_sample(hint)
    return {str: "EPP", int: 3, float: 6.5, bool: True}[hint]


def full_sample(model: type[BaseModel]) -> dict:
    return {name: sample_value(field.annotation) for name, field in model.model_fields.items()}


def required_sample(model: type[BaseModel]) -> dict:
    return {
        name: required_sample(field.annotation)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        else sample_value(field.annotation)
        for name, field in model.model_fields.items()
        if field.is_required()
    }


def event(type_: str, data: dict, seq: int = 4) -> dict:
    return {"seq": seq, "type": type_, "data": data}


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_every_event_type_with_every_key_validates_and_survives_a_json_round_trip(type_):
    stored = {**event(type_, full_sample(EVENT_DATA[type_])), "at": "2025-05-26T10:00:00+00:00"}
    event_validate(stored)
    again = json.loads(json.dumps(stored))
    assert again == stored
    event_validate(again)


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_every_event_type_validates_with_its_required_keys_only(type_):
    event_validate(event(type_, required_sample(EVENT_DATA[type_])))


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_every_required_key_is_required(type_):
    data = required_sample(EVENT_DATA[type_])
    for key in data:
        with pytest.raises(EventInvalid, match=rf"event 4 \({type_}\): {key}: Field required"):
            event_validate(event(type_, {k: v for k, v in data.items() if k != key}))


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_an_unknown_key_is_refused(type_):
    data = {**required_sample(EVENT_DATA[type_]), "applause": 3}
    with pytest.raises(EventInvalid, match="applause: Extra inputs are not permitted"):
        event_validate(event(type_, data))


def vote_data(**changes) -> dict:
    data = {
        "group": "EPP",
        "score": 7,
        "position": "for",
        "fallback": False,
        "attempts": 1,
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "seconds": 0.1, "cached": False},
    }
    return {**data, **changes}


def test_a_vote_with_a_wrong_type_names_the_key():
    with pytest.raises(EventInvalid, match=r"event 4 \(vote\): score: Input should be a valid number"):
        event_validate(event("vote", vote_data(score="seven")))
    with pytest.raises(EventInvalid, match=r"position: Input should be 'for', 'abstain' or 'against'"):
        event_validate(event("vote", vote_data(position="yes")))


def test_nested_keys_are_checked_too():
    with pytest.raises(EventInvalid, match=r"usage.cached: Field required"):
        event_validate(event("vote", vote_data(usage={"prompt_tokens": 1, "completion_tokens": 1, "seconds": 0.0})))
    with pytest.raises(EventInvalid, match=r"detail.verdict: Extra inputs are not permitted"):
        event_validate(event("vote", vote_data(detail={"verdict": "fine"})))
    retry = {"model": "scripted:flaky", "attempts": 2, "errors": ["timeout"], "waited_s": 0.5}
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "seconds": 0.0, "cached": False, "retries": [retry]}
    event_validate(event("vote", vote_data(usage=usage)))
    with pytest.raises(EventInvalid, match=r"usage.retries.0.waited_s: Input should be a valid number"):
        event_validate(event("vote", vote_data(usage={**usage, "retries": [{**retry, "waited_s": "later"}]})))


def test_fractional_scores_of_the_expected_judge_fit_the_tally_and_the_outcome():
    event_validate(
        event(
            "tally",
            {
                "scores": {"EPP": 6.2345},
                "seats": {"EPP": 1.0},
                "weighted_total": 6.2,
                "threshold": None,
                "goal": "simple_majority",
            },
        )
    )


def test_an_optional_key_may_be_absent_but_not_null_unless_declared_so():
    event_validate(event("phase", {"phase": "opening"}))
    event_validate(event("phase", {"phase": "opening", "seconds": None, "deadline": None}))  # classroom, untimed
    with pytest.raises(EventInvalid, match="round: Input should be a valid integer"):
        event_validate(event("phase", {"phase": "negotiation", "round": None}))


def test_the_classroom_keys_are_declared():
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0, "cached": False}
    student = {"by": "students", "student": 12, "name": "Ada"}
    event_validate(
        event(
            "speech",
            {
                "group": "EPP",
                "phase": "opening",
                "text": "(no statement)",
                "usage": usage,
                "by": "agent",
                "skipped": True,
            },
        )
    )
    event_validate(event("draft", {"author": "EPP", "text": "The EP", "version": 1, "usage": usage, **student}))
    event_validate(event("vote", vote_data(attempts=0, usage=usage, **student)))
    event_validate(event("vote", vote_data(by="judge")))
    event_validate(event("control", {"action": "paused", "by": "teacher", "remaining": 12.5}))
    event_validate(event("control", {"action": "resumed", "by": "teacher", "deadline": "2025-05-26T10:00:00+00:00"}))
    event_validate(event("control", {"action": "removed", "by": "teacher", "student": 12, "name": "Ada"}))
    event_validate(event("control", {"action": "reveal_speed", "by": "teacher", "words_per_second": 4.0}))
    event_validate(event("error", {"message": "EPP: down", "attempt": 1, "final": False, "turn": "opening:speech:EPP"}))
    event_validate(event("seat_joined", {"student": 12, "name": "Ada", "group": None}))
    with pytest.raises(EventInvalid, match="by: Input should be 'students' or 'judge'"):
        event_validate(event("vote", vote_data(by="agent")))
    with pytest.raises(EventInvalid, match="by: Input should be 'students' or 'agent'"):
        event_validate(
            event("speech", {"group": "EPP", "phase": "opening", "text": "x", "usage": usage, "by": "judge"})
        )
    with pytest.raises(EventInvalid, match="action: Input should be"):
        event_validate(event("control", {"action": "applauded", "by": "teacher"}))


def test_data_that_is_not_an_object_is_refused():
    with pytest.raises(EventInvalid, match=r"event 4 \(phase\): data: Input should be a valid dictionary"):
        event_validate(event("phase", ["opening"]))


def test_an_unknown_type_is_refused():
    with pytest.raises(EventInvalid, match="unknown event type 'applause'"):
        event_validate(event("applause", {}))
    with pytest.raises(EventInvalid, match="unknown event type 'applause'"):
        make_event(1, "applause", {})


def test_validation_keeps_the_data_as_given():
    data = vote_data()
    given = json.loads(json.dumps(data))
    event_validate(event("vote", data))
    assert data == given
