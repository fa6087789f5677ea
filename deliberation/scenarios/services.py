"""Building scenarios: choosing groups, resolving seat shares, saving them."""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from deliberation.engine.scenario import Scenario, ScenarioError
from deliberation.engine.seats import seat_shares, select_max_variance
from deliberation.engine.seeding import seed_for
from deliberation.records.models import PartyGroup, Record
from deliberation.records.selectors import engine_group, record_view
from deliberation.scenarios.models import SavedScenario


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
            "record": self.record, "groups": list(self.groups), "seat_structure": self.seat_structure,
            "seats": dict(self.seats), "goal": self.goal, "veto_group": self.veto_group,
            "strategy": self.strategy, "model": self.model, "judge": self.judge,
            "judge_model": self.judge_model, "seed": self.seed, "params": dict(self.params),
        }


def most_divided_groups(*, record: Record, count: int, seed: int) -> list[str]:
    """PoliCon's choice: the `count` groups whose real votes on this record vary most."""
    choices = [(stance.group.code, stance.real_choice) for stance in record.stances.select_related("group").order_by("id")]
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
    *, record: Record, groups: Sequence[str], seats: Mapping[str, float], goal: str, veto_group: str,
    topic: str | None = None,
) -> Scenario:
    """`topic` defaults to the record's first topic by name; a benchmark task names its own."""
    stances = {stance.group.code: stance for stance in record.stances.select_related("group")}
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
    scenario, _ = SavedScenario.objects.update_or_create(
        owner=owner, name=name, defaults=config.model_fields()
    )
    return scenario
