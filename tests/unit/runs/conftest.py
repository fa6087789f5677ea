import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from deliberation.runs import services


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """The run ids the services enqueue (after commit), instead of Celery tasks."""
    calls: list[int] = []
    monkeypatch.setattr(services, "run_enqueue", calls.append)
    return calls


@pytest.fixture
def broadcasts(monkeypatch) -> list[dict]:
    """The event messages the services broadcast (after commit), instead of the channel layer."""
    sent: list[dict] = []
    monkeypatch.setattr(services, "broadcast_events", lambda *, run_id, messages: sent.extend(messages))
    return sent


@pytest.fixture
def forbid_model_calls(monkeypatch):
    """forbid_model_calls(): from then on any call to the scripted model fails the test, its
    completions and its token-by-token decoding alike (a cached re-run makes none)."""
    from deliberation.engine.models import ScriptedModelClient

    def no_model_call(*args, **kwargs):
        raise AssertionError("a cached re-run must not call the model")

    def forbid() -> None:
        for method in ("complete", "next_token_ids"):
            monkeypatch.setattr(ScriptedModelClient, method, no_model_call)

    return forbid


SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "sample_records"
SAMPLE_SET = "Sample EP issues"


@pytest.fixture
def play_sample_experiment(monkeypatch):
    """play(name, *create_args): an experiment on the sample records created with `manage.py
    experiment create --name NAME --record-set <sample> *create_args` and played to the end in this
    process (transactional tests only)."""
    from django.apps import apps
    from django.core.management import call_command
    from django.db import connection

    from deliberation.records.services import records_import
    from deliberation.runs.models import Experiment
    from worker import embedded
    from worker.celery import app

    # A transactional test's flush drops the EP groups that the records 0002 data migration loads.
    importlib.import_module("deliberation.records.migrations.0002_ep_groups").load_ep_groups(
        apps, SimpleNamespace(connection=connection)
    )
    records_import(paths=[SAMPLE], name=SAMPLE_SET)
    # The runs play in this process, eagerly, with or without a broker (HEMICYCLE_TEST_STACK=1 has
    # one and no worker here: the command's --wait would wait for ever).
    monkeypatch.setattr(embedded, "embedded_worker_start", lambda: True)
    monkeypatch.setitem(app.conf, "task_always_eager", True)

    def play(name: str, *create_args: str) -> Experiment:
        call_command("experiment", "create", "--name", name, "--record-set", SAMPLE_SET, *create_args)
        call_command("experiment", "run", name, "--wait", verbosity=0)
        experiment = Experiment.objects.get(name=name)
        assert experiment.status == Experiment.Status.FINISHED
        return experiment

    return play
