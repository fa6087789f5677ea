"""An experiment's calibration cells in its progress (runs.selectors.experiment_progress), and the
progress each cell's stored chunk or change of status pushes to the experiment's page
(calibration.services -> runs.calibration_cells.experiment_calibration_cell_moved), on commit."""

import pytest
from django.db import transaction
from django.urls import reverse

from deliberation.calibration import services as calibration_services
from deliberation.calibration.models import Calibration
from deliberation.calibration.services import calibration_advance
from deliberation.runs import calibration_cells
from deliberation.runs.advance import run_advance
from deliberation.runs.experiments import experiment_advance, experiment_start
from deliberation.runs.selectors import experiment_progress
from tests.factories import make_user
from tests.unit.calibration.test_cells import grid, queues, sample_set  # noqa: F401 - queues and sample_set are fixtures

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 10  # pairs per cell: a chunk of 8, then one of 2


class Clock:
    """time.monotonic for the throttle: it stands still, or moves `step` seconds at each reading."""

    def __init__(self) -> None:
        self.now, self.step = 1000.0, 0.0

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def pushed(monkeypatch):
    """What the cells' news pushed to the experiment's page, as (status, bar value, each cell's
    (status, scored)), and the throttle's clock."""
    sent: list[tuple] = []

    def broadcast(*, experiment_id: int, progress: dict) -> None:
        cells = tuple((cell["status"], cell["scored"]) for cell in progress["calibrations"]["cells"])
        sent.append((progress["status"], progress["bar"]["value"], cells))

    monkeypatch.setattr(calibration_cells, "broadcast_experiment_progress", broadcast)
    monkeypatch.setattr(calibration_cells, "_cell_progress_sent", {})  # experiment ids repeat across tests
    clock = Clock()
    monkeypatch.setattr(calibration_cells.time, "monotonic", clock)
    return sent, clock


def cells_of(progress: dict) -> list[tuple]:
    return [(c["judge"], c["status"], c["scored"], c["total"]) for c in progress["calibrations"]["cells"]]


def test_progress_counts_the_cells_before_they_exist_then_each_one_as_it_plays(sample_set, queues):
    owner = make_user()
    experiment = grid(owner, judges=["llm", "real-votes"], calibration_models=["scripted:default"])
    progress = experiment_progress(experiment=experiment)
    assert progress["calibrations"] == {"total": 2, "settled": 0, "scored": 0, "scores": 0, "cells": []}
    assert progress["bar"] == {"max": 2, "value": 0}  # no run: the bar is the cells'

    experiment_start(experiment=experiment, user=owner)
    progress = experiment_progress(experiment=experiment)
    assert cells_of(progress) == [("llm", "queued", 0, LIMIT), ("real-votes", "queued", 0, LIMIT)]
    assert [(c["pearson"], c["mae"], c["bias"]) for c in progress["calibrations"]["cells"]] == [(None,) * 3] * 2
    assert progress["calibrations"]["scores"] == 2 * LIMIT

    llm, real = Calibration.objects.filter(experiment=experiment).order_by("pk")
    queues.calibrations.remove(real.pk)
    calibration_advance(calibration_id=real.pk)
    progress = experiment_progress(experiment=experiment)
    assert cells_of(progress) == [("llm", "queued", 0, LIMIT), ("real-votes", "finished", LIMIT, LIMIT)]
    cell = progress["calibrations"]["cells"][1]
    assert (cell["pearson"], cell["mae"], cell["bias"]) == (1.0, 0.0, 0.0)  # the real votes score themselves
    assert cell["id"] == real.pk and cell["cell"] == "calibration|real-votes|" and cell["error"] == ""
    assert progress["calibrations"]["settled"] == 1 and progress["calibrations"]["scored"] == LIMIT
    assert progress["bar"] == {"max": 2, "value": 1}

    queues.play()
    experiment.refresh_from_db()
    progress = experiment_progress(experiment=experiment)
    assert progress["status"] == "finished" and progress["calibrations"]["settled"] == 2
    assert progress["bar"] == {"max": 2, "value": 2}
    llm.refresh_from_db()
    assert progress["calibrations"]["cells"][0]["mae"] == llm.results["mae"]


def test_the_bar_weighs_a_cell_as_a_run_and_fills_it_by_its_stored_scores(sample_set, queues, pushed):
    sent, clock = pushed
    owner = make_user()
    experiment = grid(owner, strategies=["real-resolution"], judges=["real-votes"])
    experiment_start(experiment=experiment, user=owner)
    assert experiment_progress(experiment=experiment)["bar"] == {"max": 2, "value": 0}  # a run and a cell

    run_advance(run_id=queues.runs.pop())
    while queues.advances:
        experiment_advance(experiment_id=queues.advances.pop(0))
    assert experiment_progress(experiment=experiment)["bar"] == {"max": 2, "value": 1}

    clock.step = calibration_cells.CELL_PROGRESS_INTERVAL_S  # each chunk's news goes out
    calibration_advance(calibration_id=queues.calibrations.pop())
    # claimed, the chunk of 8 (8/10 of the cell), the chunk of 2, finished: each pushed as stored
    assert sent == [
        ("running", 1, (("running", 0),)),
        ("running", 1.8, (("running", 8),)),
        ("running", 2, (("running", 10),)),
        ("running", 2, (("finished", 10),)),
    ]


def test_a_cells_chunks_push_at_most_once_an_interval_and_every_change_of_status(sample_set, queues, pushed):
    sent, clock = pushed
    owner = make_user()
    experiment = grid(owner, judges=["real-votes"], calibration_limit=20)  # chunks of 8, 8 and 4
    experiment_start(experiment=experiment, user=owner)
    calibration_advance(calibration_id=queues.calibrations.pop())
    # The clock stands still: the chunks are not pushed, the claim and the finish are.
    assert sent == [("running", 0, (("running", 0),)), ("running", 1, (("finished", 20),))]
    experiment_advance(experiment_id=queues.advances.pop())  # the experiment ends: its top-up says so
    experiment.refresh_from_db()
    assert experiment_progress(experiment=experiment)["status"] == "finished"


def test_a_cells_news_waits_for_the_commit(sample_set, pushed):
    sent, _ = pushed
    owner = make_user()
    experiment = grid(owner, judges=["real-votes"])
    with transaction.atomic():
        calibration_services._cell_moved(experiment.pk, status_changed=True)
        assert sent == []
    assert [status for status, _, _ in sent] == ["draft"]
    with pytest.raises(RuntimeError), transaction.atomic():
        calibration_services._cell_moved(experiment.pk, status_changed=True)
        raise RuntimeError("rolled back")
    assert len(sent) == 1  # nothing stored, nothing said
    calibration_services._cell_moved(None, status_changed=True)  # a calibration of no experiment
    assert len(sent) == 1


def test_a_news_that_cannot_be_sent_leaves_the_calibration_to_finish(sample_set, queues, monkeypatch):
    def broken(*, experiment_id: int, progress: dict) -> None:
        raise ConnectionError("the channel layer is down")

    monkeypatch.setattr(calibration_cells, "broadcast_experiment_progress", broken)
    owner = make_user()
    experiment = grid(owner, judges=["real-votes"])
    experiment_start(experiment=experiment, user=owner)
    calibration_advance(calibration_id=queues.calibrations.pop())
    assert Calibration.objects.get(experiment=experiment).status == Calibration.Status.FINISHED


def test_the_dashboard_draws_the_cells_panel_before_the_cells_exist_and_the_bar_with_them(sample_set, queues, client):
    owner = make_user()
    experiment = grid(owner, judges=["real-votes"], strategies=["real-resolution"])
    client.force_login(owner)
    url = reverse("experiment-dashboard", args=[experiment.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="calibration-cells"' in page and "created when the experiment starts" in page
    assert 'max="2" value="0" data-role="bar"' in page
    experiment_start(experiment=experiment, user=owner)
    queues.play()
    page = client.get(url).content.decode()
    cell = Calibration.objects.get(experiment=experiment)
    assert f'data-calibration="{cell.pk}" data-status="finished"' in page
    assert '<td class="num" data-col="pearson">1.000</td><td class="num" data-col="mae">0.00</td>' in page
    assert 'max="2" value="2" data-role="bar"' in page
    assert 'data-testid="progress-calibrations-settled">1</span>' in page


def test_the_progress_api_documents_and_returns_the_cells(sample_set, queues, client):
    owner = make_user()
    experiment = grid(owner, judges=["real-votes"])
    experiment_start(experiment=experiment, user=owner)
    queues.play()
    client.force_login(owner)
    body = client.get(reverse("api-experiment-progress", args=[experiment.pk])).json()
    assert cells_of(body) == [("real-votes", "finished", LIMIT, LIMIT)]
    assert body["bar"] == {"max": 1, "value": 1}


def test_the_progress_of_an_experiment_without_a_grid_asks_nothing_more(sample_set, queues, django_assert_num_queries):
    # The runs' top-ups push this progress as runs settle: the cells must cost them nothing.
    owner = make_user()
    experiment = grid(owner, strategies=["one-shot"], judges=["scripted"], calibrate=False)
    experiment_start(experiment=experiment, user=owner)
    with django_assert_num_queries(2):  # the runs' aggregate, the steps of the runs in flight
        progress = experiment_progress(experiment=experiment)
    assert progress["calibrations"] == {"total": 0, "settled": 0, "scored": 0, "scores": 0, "cells": []}
    assert progress["bar"] == {"max": 1, "value": 0}
