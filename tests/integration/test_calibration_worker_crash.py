"""Calibrations played as experiment cells survive their Celery worker dying mid-calibration: beat's
reclaim queues them again, the next worker goes on from their stored scores, and no model call
that was answered is asked again (issue 14 §1).

Real PostgreSQL, Redis, Celery worker and beat processes. The judge model is a stand-in
OpenAI-compatible server in this process (loopback) that records every request it answers; it
holds the requests after a number of answers, so that the worker is killed while each of its
threads waits on a model call (every answer before it has reached the completion cache).
"""

import hashlib
import json
import threading
import time
from collections.abc import Iterator

import pytest

from deliberation.calibration.models import Calibration
from deliberation.calibration.services import calibration_run
from deliberation.registry.models import ModelEntry
from deliberation.runs.experiments import experiment_create, experiment_start
from deliberation.runs.models import Experiment
from tests.factories import make_user, sample_record_set
from tests.integration import servers

LIMIT = 24  # pairs per cell
HOLD_AFTER = 20  # answers before the server holds requests (both cells are under way by then)
DELAY_S = 0.02


class JudgeServer(servers.ChatServer):
    """Answers each judge prompt with a digit fixed by the prompt and seed, and records each answer
    as (model, messages, seed). After `hold_after` answers it answers nothing more (the requests
    wait) until `release()`; the requests held are then dropped unanswered."""

    def __init__(self) -> None:
        self.answered: list[tuple[str, str, int]] = []
        self.hold_after: int | None = None
        self.holding = 0
        self.admitted = 0  # requests taken to be answered
        self.lock = threading.Lock()
        self.released = threading.Event()
        super().__init__(self._reply)

    def _reply(self, body: dict, headers) -> str | None:
        key = (body["model"], json.dumps(body["messages"], sort_keys=True), body.get("seed"))
        with self.lock:
            hold = self.hold_after is not None and self.admitted >= self.hold_after
            self.holding += hold
            self.admitted += not hold
        if hold:
            self.released.wait(120)
            return None  # its worker was killed meanwhile: no answer
        time.sleep(DELAY_S)
        with self.lock:
            self.answered.append(key)
        return str(int(hashlib.sha256(repr(key).encode()).hexdigest(), 16) % 10)

    def release(self) -> None:
        with self.lock:
            self.hold_after = None
        self.released.set()

    def close(self) -> None:
        self.release()
        super().close()


@pytest.fixture
def judge_server() -> Iterator[JudgeServer]:
    server = JudgeServer()
    yield server
    server.close()


def cells_of(experiment: Experiment) -> dict[str, Calibration]:
    return {c.cell: c for c in Calibration.objects.filter(experiment=experiment)}


def test_a_calibration_grid_resumes_after_its_worker_is_killed_without_repeating_a_call(
    judge_server, celery_worker, start_celery_worker, celery_beat
):
    celery_worker.stop()  # the session's shared worker must not take the cells: only the one we kill
    sample_record_set("Sample EP issues")
    for name in ("alpha", "beta"):
        ModelEntry.objects.create(name=f"{name}@standin", model=f"hosted_vllm/{name}", api_base=judge_server.url)
    owner = make_user()
    experiment = experiment_create(
        owner=owner,
        name="judges",
        record_set="Sample EP issues",
        parties=[2],
        goals=["simple_majority"],
        strategies=[],
        models=["alpha@standin"],
        judges=["llm", "real-votes"],
        seeds=[0],
        calibrate=True,
        calibration_models=["alpha@standin", "beta@standin"],
        calibration_limit=LIMIT,
        calibration_seed=5,
    )
    judge_server.hold_after = HOLD_AFTER
    worker = start_celery_worker(name="calibrating", concurrency=2)
    experiment_start(experiment=experiment, user=owner)

    # Both threads of the worker wait on a model call: every answer before has been cached.
    servers.wait_until(lambda: judge_server.holding >= 2, timeout=120, what="both cells to be under way")
    worker.kill()
    at_kill = {key: c.scores.count() for key, c in cells_of(experiment).items()}
    assert len(judge_server.answered) == HOLD_AFTER
    judge_server.release()
    worker.restart()  # as a supervisor restarts it; the broker keeps the old tasks for 2 hours

    servers.wait_until(
        lambda: Experiment.objects.values_list("status", flat=True).get(pk=experiment.pk) == "finished",
        timeout=240,
        what="the experiment to finish",
    )
    cells = cells_of(experiment)
    assert set(cells) == {"calibration|llm|alpha@standin", "calibration|llm|beta@standin", "calibration|real-votes|"}
    assert {c.status for c in cells.values()} == {"finished"}
    lost = [key for key, c in cells.items() if c.judge_model and c.attempts == 2]
    assert lost and all(at_kill[key] < LIMIT for key in lost)  # killed mid-calibration, resumed
    assert "calibrations_reclaim_task" in celery_beat.log_text()

    # Each prompt answered once: 24 pairs x 2 models, none asked again after the crash.
    assert len(judge_server.answered) == 2 * LIMIT == len(set(judge_server.answered))

    # The same as uninterrupted calibrations with the same options (made here, from the cache alone).
    for key, cell in cells.items():
        alone = calibration_run(
            record_set="Sample EP issues",
            judge=cell.judge,
            judge_model=cell.judge_model or None,
            limit=LIMIT,
            seed=5,
            owner=owner,
        )
        assert cell.results == alone.results, key
        assert [(p["record"], p["group"], p["predicted"]) for p in cell.pairs] == [
            (p["record"], p["group"], p["predicted"]) for p in alone.pairs
        ]
    assert len(judge_server.answered) == 2 * LIMIT
