"""Building scenarios: validating a user's choices (scenario_config_build), choosing groups,
resolving seat shares, saving them."""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from pydantic import ValidationError

from deliberation.engine.scenario import Scenario, ScenarioError
from deliberation.engine.seats import seat_shares, select_max_variance
from deliberation.engine.seeding import seed_for
from deliberation.engine.strategies import STRATEGIES, ParamsError, strategy_params
from deliberation.engine.strategies.base import model_params_of
from deliberation.errors import Invalid
from deliberation.records.models import PartyGroup, Record
from deliberation.records.selectors import engine_group, record_stances, record_view
from deliberation.registry.clients import judge_name_check, strategy_model_check
from deliberation.registry.selectors import ModelRefused, model_check
from deliberation.scenarios.models import SavedScenario
from deliberation.scenarios.schemas import ScenarioIn, input_errors


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything a user chooses, validated and resolved (seats computed, groups fixed)."""

    record: Record
    groups: tuple[str, ...]
    seat_structure: str
    seats: Mapping[str, float]
    goal: str
    veto_group: str
    strategy: str
    model: str
    judge: str
    judge_model: str
    seed: int
    params: Mapping[str, object]

    def model_fields(self) -> dict:
        return {
            "record": self.record,
            "groups": list(self.groups),
            "seat_structure": self.seat_structure,
            "seats": dict(self.seats),
            "goal": self.goal,
            "veto_group": self.veto_group,
            "strategy": self.strategy,
            "model": self.model,
            "judge": self.judge,
            "judge_model": self.judge_model,
            "seed": self.seed,
            "params": dict(self.params),
        }


def most_divided_groups(*, record: Record, count: int, seed: int) -> list[str]:
    """PoliCon's choice: the `count` groups whose real votes on this record vary most."""
    choices = [
        (stance.group.code, stance.real_choice) for stance in record.stances.select_related("group").order_by("id")
    ]
    return select_max_variance(choices, count, random.Random(seed_for(seed, "groups")))


def term_seat_counts(term: str) -> dict[str, int]:
    return {
        code: seats
        for code, seats in PartyGroup.objects.filter(term=term).values_list("code", "seats_at_start")
        if seats
    }


def scenario_seats(
    *,
    record: Record,
    groups: Sequence[str],
    structure: str,
    seed: int,
    custom_percent: Mapping[str, float] | None = None,
) -> dict[str, float]:
    custom = {code: share / 100 for code, share in (custom_percent or {}).items()}
    return seat_shares(
        structure,
        list(groups),
        rng=random.Random(seed_for(seed, "seats")),
        seat_counts=term_seat_counts(record.term) if structure == "real" else None,
        custom=custom if structure == "custom" else None,
    )


def engine_scenario(
    *,
    record: Record,
    groups: Sequence[str],
    seats: Mapping[str, float],
    goal: str,
    veto_group: str,
    topic: str | None = None,
) -> Scenario:
    """`topic` defaults to the record's first topic by name; a benchmark task names its own."""
    stances = record_stances(record=record)
    missing = [code for code in groups if code not in stances]
    if missing:
        raise ScenarioError(f"groups: no stance of {', '.join(missing)} on this record")
    if topic is None:
        topic = record.topics.order_by("name").values_list("name", flat=True).first() or ""
    return Scenario(
        record=record_view(record, topic=topic),
        groups=tuple(engine_group(stances[code]) for code in groups),
        seats=dict(seats),
        goal=goal,
        veto_group=veto_group or None,
    )


@transaction.atomic
def scenario_save(*, owner: AbstractBaseUser, name: str, config: ScenarioConfig) -> SavedScenario:
    scenario, _ = SavedScenario.objects.update_or_create(owner=owner, name=name, defaults=config.model_fields())
    return scenario


class ScenarioInvalid(Invalid, ValueError):
    """A scenario that cannot be played: `errors` maps each field (a strategy parameter by its
    own name) to its messages, shown beside the builder's inputs and in the API's 400 answer."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {field: list(messages) for field, messages in errors.items()}
        super().__init__("; ".join(f"{field}: {' '.join(messages)}" for field, messages in self.errors.items()))

    def field_errors(self) -> dict[str, list[str]]:
        return self.errors


# ScenarioError messages start with the engine's field name; each goes under the right input.
ENGINE_FIELD = {"seats": "seat_structure", "groups": "groups", "goal": "goal", "veto_group": "veto_group"}


def _invalid(field: str, message: str) -> ScenarioInvalid:
    return ScenarioInvalid({field: [message]})


def scenario_config_build(
    *,
    data: ScenarioIn | Mapping[str, Any],
    user: AbstractBaseUser | AnonymousUser,
) -> ScenarioConfig:
    """The one validator of a scenario (builder, API, CLI): `data` checked against the input
    model, the database (record, stances), the registry's models this user may use, the judges
    and the strategy's declared parameters; resolved into a ScenarioConfig (groups chosen, seats
    drawn, parameters with their defaults). ScenarioInvalid says what is wrong, per field."""
    if not isinstance(data, ScenarioIn):
        try:
            data = ScenarioIn.model_validate(dict(data))
        except ValidationError as error:
            raise ScenarioInvalid(input_errors(error)) from None
    errors: dict[str, list[str]] = {}
    record = Record.objects.filter(pk=data.record).first()
    if record is None:
        errors["record"] = ["That record does not exist (any more): pick another one."]
    models = {}
    # Empty model: the lab's default, if this user may use it (else the message says to choose).
    for field, name in (
        ("model", data.model.strip() or settings.HEMICYCLE_DEFAULT_MODEL),
        ("judge_model", data.judge_model.strip()),
    ):
        try:
            models[field] = model_check(name=name, user=user, field=field) if name else ""
        except ModelRefused as error:
            errors[field] = [error.message]
    try:
        judge_name_check(data.judge)
    except ValueError as error:
        errors["judge"] = [f"{str(error)[0].upper()}{str(error)[1:]}."]
    try:
        params = strategy_params(data.strategy, data.strategy_params)
    except ParamsError as error:
        errors.update(error.errors)
    else:  # a further model the strategy calls (advisor_model): one this user may use, as `model`
        for param in model_params_of(STRATEGIES[data.strategy]):
            name = str(getattr(params, param, "") or "").strip()
            try:
                if name:
                    model_check(name=name, user=user, field=param)
            except ModelRefused as error:
                errors[param] = [error.message]
    if errors:
        raise ScenarioInvalid(errors)

    groups = list(data.groups)
    if not groups:
        if not data.most_divided:
            raise _invalid("groups", "Pick at least two groups, or ask for the k most divided.")
        try:
            groups = most_divided_groups(record=record, count=data.most_divided, seed=data.seed)
        except ScenarioError as error:
            raise _invalid("most_divided", str(error).split(": ", 1)[-1]) from None
    if len(set(groups)) != len(groups) or len(groups) < 2:
        raise _invalid("groups", "Pick at least two different groups.")
    if data.seat_structure == "custom":
        if set(data.custom_seats) != set(groups):
            raise _invalid("custom_seats", "Give a seat share for every participating group.")
        total = sum(data.custom_seats.values())
        if abs(total - 100) > 0.01:
            raise _invalid("custom_seats", f"Custom seat shares add up to {total:g}%, not 100%.")
    if data.judge == "real-votes" and data.strategy != "real-resolution":
        raise _invalid("judge", "The real-votes judge only scores the adopted resolution (strategy real-resolution).")
    try:  # a capability the strategy needs from the model's backend (amulet: next-token ids)
        strategy_model_check(strategy=data.strategy, model=models["model"])
    except ModelRefused as error:
        raise _invalid(error.field, error.message) from None
    veto = data.veto_group.strip()
    if data.goal == "veto_power" and not veto:
        raise _invalid("veto_group", "Veto power needs a veto group.")
    if veto and veto not in groups:
        raise _invalid("veto_group", "The veto group must be one of the participating groups.")
    try:
        seats = scenario_seats(
            record=record,
            groups=groups,
            structure=data.seat_structure,
            seed=data.seed,
            custom_percent=data.custom_seats,
        )
        # Build the engine's scenario once: it is the final word on what can be played.
        engine_scenario(record=record, groups=groups, seats=seats, goal=data.goal, veto_group=veto)
    except ScenarioError as error:
        field, _, message = str(error).partition(": ")
        raise _invalid(ENGINE_FIELD.get(field, "__all__"), message or str(error)) from None
    return ScenarioConfig(
        record=record,
        groups=tuple(groups),
        seat_structure=data.seat_structure,
        seats=seats,
        goal=data.goal,
        veto_group=veto,
        strategy=data.strategy,
        model=models["model"],
        judge=data.judge,
        judge_model=models["judge_model"],
        seed=data.seed,
        params=params.model_dump(),
    )
