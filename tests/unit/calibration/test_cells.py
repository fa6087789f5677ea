"""Calibrations as experiment cells (runs/calibration_cells.py): a judge x judge model grid over
the same records, each cell a calibration played by its own task, the experiment ending when its
runs and its calibrations have settled."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from deliberation.calibration import services as calibration_services
from deliberation.calibration.models import Calibration
from deliberation.calibration.services import (
    calibration_advance,
    calibration_create,
    calibration_run,
    calibrations_reclaim_lost,
)
from deliberation.runs import experiments, services
from deliberation.runs.experiments import (
    ExperimentError,
    experiment_advance,
    experiment_create,
    experiment_pause,
    experiment_resume,
    experiment_start,
)
from deliberation.runs.models import Experiment
from tests.factories import make_user, sample_record_set

pytestmark = pytest.mark.django_db(transaction=True)

SET = "Sample EP issues"


class Queues:
    """The Celery queues in the test: calibration tasks, run tasks and experiment top-ups."""

    def __init__(self, monkeypatch):
        self.calibrations: list[int] = []
        self.runs: list[int] = []
        self.advances: list[int] = []
        monkeypatch.setattr(calibration_services, "task_enqueue", self.send)
        monkeypatch.setattr(services, "run_enqueue", self.runs.append)
        monkeypatch.setattr(experiments, "_enqueue_advance", self.advances.append)

    def send(self, name: str, *, queue: str | None = None, **kwargs) -> None:
        """worker.enqueue.task_enqueue, as the calibration services call it."""
        if name == calibration_services.CALIBRATION_TASK:
            assert queue == "runs"  # a scripted model: the CPU queue
            self.calibrations.append(kwargs["calibration_id"])
        else:
            assert name == "deliberation.runs.tasks.experiment_advance_task"
            self.advances.append(kwargs["experiment_id"])

    def play(self) -> None:
        from deliberation.runs.advance import run_advance

        while self.calibrations or self.runs or self.advances:
            if self.advances:
                experiment_advance(experiment_id=self.advances.pop(0))
            elif self.runs:
                run_advance(run_id=self.runs.pop(0))
            else:
                calibration_advance(calibration_id=self.calibrations.pop(0))


@pytest.fixture
def queues(monkeypatch):
    return Queues(monkeypatch)


@pytest.fixture
def sample_set():
    return sample_record_set(SET)


def grid(owner, **overrides) -> Experiment:
    options = dict(
        owner=owner,
        name="calibrations",
        record_set=SET,
        parties=[2],
        sample=1,
        goals=["simple_majority"],
        strategies=[],
        models=["scripted:default"],
        judges=["llm", "real-votes"],
        seeds=[0],
        calibrate=True,
        calibration_models=["scripted:default", "scripted:bad-judge"],
        calibration_limit=10,
        calibration_seed=3,
    )
    options.update(overrides)
    return experiment_create(**options)


def test_the_grid_plays_each_judge_and_model_once_as_tasks_and_ends_the_experiment(sample_set, queues):
    owner = make_user()
    experiment = grid(owner)
    assert experiment.estimate["runs"] == 0 and experiment.estimate["calibrations"] == 3  # real-votes: no model
    experiment_start(experiment=experiment, user=owner)
    cells = {c.cell: c for c in Calibration.objects.filter(experiment=experiment)}
    assert set(cells) == {
        "calibration|llm|scripted:default",
        "calibration|llm|scripted:bad-judge",
        "calibration|real-votes|",
    }
    assert sorted(queues.calibrations) == sorted(c.pk for c in cells.values())
    assert experiment.status == Experiment.Status.RUNNING

    calibration_advance(calibration_id=queues.calibrations.pop(0))  # one settles: the others are in flight
    experiment_advance(experiment_id=queues.advances.pop(0))
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.RUNNING
    queues.play()
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    played = {c.cell: c for c in Calibration.objects.filter(experiment=experiment)}
    assert {c.status for c in played.values()} == {"finished"}
    assert all(c.created_by == owner and c.params["limit"] == 10 for c in played.values())

    # Each cell is the calibration judge_calibrate makes of the same options.
    alone = calibration_run(record_set=SET, judge="llm", judge_model="scripted:default", limit=10, seed=3)
    assert played["calibration|llm|scripted:default"].results == alone.results
    assert played["calibration|real-votes|"].results["mae"] == 0
    assert played["calibration|llm|scripted:bad-judge"].results["fallbacks"] == 10

    with pytest.raises(ExperimentError, match="finished"):
        experiment_start(experiment=experiment, user=owner)  # no cell is played twice


def test_a_cell_of_a_paused_experiment_goes_back_to_the_queue_and_resumes_with_it(sample_set, queues):
    owner = make_user()
    experiment = grid(owner, judges=["llm"], calibration_models=["scripted:default"])
    experiment_start(experiment=experiment, user=owner)
    experiment_pause(experiment=experiment, user=owner)
    cell = Calibration.objects.get(experiment=experiment)
    calibration_advance(calibration_id=queues.calibrations.pop())
    cell.refresh_from_db()
    assert (cell.status, cell.scores.count()) == (Calibration.Status.QUEUED, 0)
    assert queues.advances == []
    alone = calibration_create(record_set=SET, judge="real-votes", limit=4)
    assert queues.calibrations == [alone.pk]
    queues.calibrations.clear()
    # Beat's resend of lost queued messages leaves the cells of a paused experiment waiting.
    assert calibrations_reclaim_lost(lost_after_s=30, queued_after_s=0) == [alone.pk]
    queues.calibrations.clear()

    experiment.refresh_from_db()
    experiment_resume(experiment=experiment, user=owner)
    assert queues.calibrations == [cell.pk]
    queues.play()
    assert Calibration.objects.get(pk=cell.pk).status == Calibration.Status.FINISHED
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.FINISHED


def test_an_experiment_of_runs_and_calibrations_ends_once_both_have_settled(sample_set, queues):
    owner = make_user()
    experiment = grid(owner, strategies=["one-shot"], judges=["llm"], calibration_models=["scripted:default"])
    assert experiment.estimate["runs"] == 1 and experiment.estimate["calibrations"] == 1
    experiment_start(experiment=experiment, user=owner)
    from deliberation.runs.advance import run_advance

    run_advance(run_id=queues.runs.pop())  # the run settles first: the calibration is in flight
    while queues.advances:
        experiment_advance(experiment_id=queues.advances.pop(0))
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.RUNNING
    queues.play()
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.FINISHED


def test_the_grid_is_checked_when_the_experiment_is_created(sample_set):
    owner = make_user()
    with pytest.raises(ExperimentError, match="strategies: choose at least one"):
        grid(owner, calibrate=False)
    with pytest.raises(ExperimentError, match="scripted:nope"):
        grid(owner, name="typo", calibration_models=["scripted:nope"])
    with pytest.raises(ExperimentError, match="calibrate: .*next-token log-probabilities"):
        grid(owner, name="expected", judges=["llm-expected"], calibration_models=["scripted:no-logprobs"])
    with pytest.raises(ExperimentError, match="calibrate: limit must be at least 1"):
        grid(owner, name="limit", calibration_limit=0)
    assert not Experiment.objects.filter(owner=owner).exists()


def test_cli_creates_a_calibration_grid_waits_and_reports_each_cell(sample_set, capsys, eager_worker):
    options = ["experiment", "create", "--name", "cli", "--record-set", SET, "--judges", "llm", "scripted"]
    with pytest.raises(CommandError, match="--strategies"):
        call_command(*options)
    call_command(*options, "--calibrate", "--judge-models", "scripted:default", "--calibrate-limit", "6")
    assert "0 runs and 2 calibrations" in capsys.readouterr().out
    call_command("experiment", "run", "cli", "--wait", verbosity=0)
    out = capsys.readouterr().out
    assert "cli: finished" in out
    assert ": llm on scripted:default finished, 6/6 scores, r " in out and ": scripted finished, 6/6 scores" in out


def test_the_dashboard_lists_the_cells_with_links_to_their_pages(sample_set, queues, client):
    owner = make_user()
    experiment = grid(owner, judges=["llm"], calibration_models=["scripted:default"])
    client.force_login(owner)
    url = reverse("experiment-dashboard", args=[experiment.pk])
    page = client.get(url).content.decode()
    assert "judges llm x judge models scripted:default against the real votes of" in page
    experiment_start(experiment=experiment, user=owner)
    cell = Calibration.objects.get(experiment=experiment)
    page = client.get(url).content.decode()
    assert 'data-testid="calibration-cells"' in page and f'data-calibration="{cell.pk}" data-status="queued"' in page
    assert "0 / 10" in page
    queues.play()
    page = client.get(url).content.decode()
    assert reverse("calibration-detail", args=[cell.pk]) in page and "10 / 10" in page


def test_a_cell_whose_judge_model_left_the_registry_fails_with_the_reason_and_the_others_play(sample_set, queues):
    from deliberation.registry.models import ModelEntry

    owner = make_user()
    experiment = grid(owner, judges=["llm"], calibration_models=["scripted:default", "scripted:slow"])
    ModelEntry.objects.filter(name="scripted:slow").delete()  # after creation, before the start
    experiment_start(experiment=experiment, user=owner)
    cells = {c.cell: c for c in Calibration.objects.filter(experiment=experiment)}
    refused = cells["calibration|llm|scripted:slow"]
    assert refused.status == Calibration.Status.FAILED and "scripted:slow" in refused.error
    assert queues.calibrations == [cells["calibration|llm|scripted:default"].pk]
    queues.play()
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.FINISHED
