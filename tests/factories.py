"""Small builders for database rows that tests need; the data is written here, not copied."""

import importlib
from pathlib import Path
from types import SimpleNamespace

from django.contrib.auth.models import User

from deliberation.engine.models import Params
from deliberation.records.models import PartyGroup, Record, RecordSet, RecordSetVersion, Stance, Topic

STANCES_7TH = {
    "EPP": (0.82, "EPP backs the proposal and wants its funding secured within the current budget."),
    "SD": (0.35, "S&D asks for binding social safeguards before it can support the text."),
    "ALDE": (0.55, "ALDE supports the aim but wants lighter reporting duties for small firms."),
    "GREEN_EFA": (0.05, "The Greens oppose the proposal unless it carries a binding climate target."),
}


SAMPLE_RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "sample_records"


def migrated_rows_load() -> None:
    """The rows that migrations write (the EP groups, the registry's models), written again: a
    transactional test's flush drops them."""
    from django.apps import apps
    from django.db import connection

    from deliberation.registry.services import models_sync_from_settings

    ep_groups = importlib.import_module("deliberation.records.migrations.0002_ep_groups")
    ep_groups.load_ep_groups(apps, SimpleNamespace(connection=connection))
    models_sync_from_settings()


SAMPLE_SET = "Sample EP issues"


def sample_record_set(name: str = SAMPLE_SET) -> str:
    """The repository's sample record set, imported under `name`, with the migrations' rows (a
    transactional test's flush drops them)."""
    from deliberation.records.services import records_import

    migrated_rows_load()
    records_import(paths=[SAMPLE_RECORDS], name=name)
    return name


def make_user(username: str = "alice") -> User:
    return User.objects.create_user(username, password="a-long-test-password")


def make_record(*, title: str = "Regulation on test issues", groups=STANCES_7TH, set_name: str = "Test set") -> Record:
    record_set, _ = RecordSet.objects.get_or_create(name=set_name)
    topic, _ = Topic.objects.get_or_create(name="agriculture")
    record = Record.objects.create(
        record_set=record_set,
        content_hash=f"hash-{title}",
        title=title,
        background="The Commission proposed a regulation; Parliament debates it.",
        resolution="The European Parliament adopts the regulation with amendments on funding and review.",
        term="7th",
    )
    record.topics.add(topic)
    if record_set.current_version is None:  # as an import leaves it: the record in the current version
        record_set.current_version = RecordSetVersion.objects.create(record_set=record_set, number=1)
        record_set.save(update_fields=["current_version"])
    record_set.current_version.records.add(record)
    for code, (score, text) in groups.items():
        group, _ = PartyGroup.objects.get_or_create(
            code=code, term="7th", defaults={"label": code, "seats_at_start": 50}
        )
        Stance.objects.create(
            record=record, group=group, text=text, real_score=score, real_choice=min(9, int(score * 10))
        )
    return record


def scenario_data(record: Record, **overrides) -> dict:
    """A parliament run's scenario on the scripted model as the API's JSON body (ScenarioIn) has
    it, fields overridable."""
    return {
        "record": record.pk,
        "groups": ["EPP", "SD", "ALDE"],
        "seat_structure": "random_tenths",
        "goal": "simple_majority",
        "strategy": "parliament",
        "model": "scripted:default",
        "judge": "scripted",
        "seed": 7,
        "rounds": 1,
        **overrides,
    }


def scenario_config(record: Record, *, user: User | None = None, **overrides):
    """scenario_data validated into a ScenarioConfig, checked as `user` would be (default: a
    signed-in user, who may use every model open to all)."""
    from deliberation.scenarios.services import scenario_config_build

    data = scenario_data(record, **overrides)
    return scenario_config_build(data=data, user=user or User.objects.get_or_create(username="scenario-builder")[0])


def builder_form(record: Record, **fields) -> dict:
    """The scenario builder's form as posted: two groups with equal seats, one negotiation round
    (the builder's strategy parameters are named params.<strategy>.<name>), fields overridable."""
    return {
        "record": record.pk,
        "groups": ["EPP", "SD"],
        "seat_structure": "equal",
        "goal": "simple_majority",
        "strategy": "parliament",
        "model": "scripted:default",
        "judge": "scripted",
        "seed": 3,
        "params.parliament.rounds": 1,
        "params.parliament.rapporteur": "largest",
        "visibility": "private",
        **fields,
    }


# `manage.py evaluate` options of PoliCon's oracle on the 2-party tasks: the real resolutions,
# judged by the real votes, simple majority (what an uploaded set is first checked with).
ORACLE_EVALUATE_OPTIONS = [
    "--strategy",
    "real-resolution",
    "--judge",
    "real-votes",
    "--parties",
    "2",
    "--goals",
    "simple_majority",
    "--verbosity",
    "0",
]

# The small grid most experiment tests create with `manage.py experiment create`: a sample of two
# tasks with 2 and 4 parties, one goal, a model strategy and a baseline, the scripted model and
# judge, one seed.
EXPERIMENT_GRID = {
    "parties": [2, 4],
    "sample": [2],
    "goals": ["simple_majority"],
    "strategies": ["one-shot", "greedy"],
    "models": ["scripted:default"],
    "judges": ["scripted"],
    "seeds": [0],
}


def experiment_options(**grid) -> list[str]:
    """`experiment create` options for EXPERIMENT_GRID with `grid`'s entries in its place (a value
    or a list of them; None leaves the option out, to the command's default)."""
    options = []
    for name, values in {**EXPERIMENT_GRID, **grid}.items():
        if values is not None:
            options += [f"--{name}", *(str(value) for value in (values if isinstance(values, list) else [values]))]
    return options


def experiment_grid(owner: User, **overrides):
    """An experiment created by the service (experiments.experiment_create) over the sample record
    set (sample_record_set): three 2-party tasks, two goals, one-shot and greedy on the scripted
    model, the llm judge, two seeds: 24 runs; any argument overridable."""
    from deliberation.runs.experiments import experiment_create

    options = {
        "owner": owner,
        "name": "grid",
        "record_set": SAMPLE_SET,
        "parties": [2],
        "sample": 3,
        "goals": ["simple_majority", "rawlsian"],
        "strategies": ["one-shot", "greedy"],
        "models": ["scripted:default"],
        "judges": ["llm"],
        "seeds": [0, 1],
    }
    return experiment_create(**{**options, **overrides})


def completion_row(key: str, text: str = "7", *, model: str = "scripted:default") -> dict:
    """A new completion cache row as worker.models.cache hands it to a run (CallObserver.completion_made)."""
    return {
        "key": key,
        "model": model,
        "messages": [{"role": "user", "content": "Vote?"}],
        "params": Params().as_dict(),
        "seed": 3,
        "text": text,
        "logprobs": None,
        "prompt_tokens": 4,
        "completion_tokens": 1,
        "seconds": 0.01,
    }
