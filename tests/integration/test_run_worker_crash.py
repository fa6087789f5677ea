"""A run survives its Celery worker dying mid-run, and its events reach viewers through Redis.

Real PostgreSQL, Redis, Celery worker processes and uvicorn (tests/integration/servers.py).
"""

import json

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from deliberation.engine.events import SERVICE_EVENT_TYPES
from deliberation.runs.models import Run
from deliberation.runs.selectors import run_transcript
from deliberation.runs.services import run_create
from deliberation.scenarios.services import scenario_config_build
from tests.factories import make_record, make_user
from tests.integration import servers


def start_run(record, owner, *, model: str, visibility: str = "private") -> Run:
    config = scenario_config_build(
        data={
            "record": record.pk,
            "groups": ["EPP", "SD", "ALDE", "GREEN_EFA"],
            "seat_structure": "random_tenths",
            "goal": "two_thirds_majority",
            "strategy": "parliament",
            "model": model,
            "judge": "scripted",
            "seed": 11,
            "strategy_params": {"rounds": 2},
        },
        user=owner,
    )
    return run_create(owner=owner, config=config, visibility=visibility)


def wait_for_status(run: Run, status: str, *, timeout: float) -> None:
    servers.wait_until(
        lambda: Run.objects.values_list("status", flat=True).get(pk=run.pk) == status,
        timeout=timeout,
        what=f"run {run.pk} to be {status}",
    )


def strategy_transcript(run: Run) -> list[tuple[str, dict]]:
    """What the strategy said and decided, in order, without the service's events around it."""
    return [(type_, data) for _, type_, data in run_transcript(run=run) if type_ not in SERVICE_EVENT_TYPES]


def test_a_killed_workers_run_is_resumed_by_the_heartbeat_reclaim_and_ends_as_if_uninterrupted(
    celery_worker, start_celery_worker, celery_beat
):
    """Production settings: the broker would redeliver the dead worker's task only after its
    visibility timeout (2 hours). The run's heartbeat stops with the worker; beat's reclaim finds
    it silent after HEMICYCLE_RUN_LOST_S (30 s) and queues it again, with an event the page shows."""
    celery_worker.stop()  # the session's shared worker must not take the run: only the one we kill
    owner, record = make_user(), make_record()
    worker = start_celery_worker(name="crashing")

    reference = start_run(record, owner, model="scripted:default")
    wait_for_status(reference, Run.Status.FINISHED, timeout=60)

    run = start_run(record, owner, model="scripted:slow")
    servers.wait_until(lambda: run.events.count() >= 8, timeout=60, what="the run to be under way")
    worker.kill()
    at_kill = run_transcript(run=run)
    worker.restart()  # as a supervisor restarts it; the broker keeps the old task for 2 hours

    wait_for_status(run, Run.Status.FINISHED, timeout=180)
    run.refresh_from_db()
    assert run.attempts == 2
    assert run_transcript(run=run)[: len(at_kill)] == at_kill  # what was stored stays as it was
    resumed = [event.data for event in run.events.filter(type="control")]
    assert resumed == [{"action": "resumed", "reason": "worker_lost", "attempt": 2}]
    assert strategy_transcript(run) == strategy_transcript(reference)
    assert "runs_reclaim_task" in celery_beat.log_text()


def test_a_run_whose_retry_a_killed_worker_held_is_queued_again_by_the_reclaim(
    celery_worker, start_celery_worker, celery_beat
):
    """After a model error the run waits out its retry's countdown (an hour here) in the worker that
    received the retry's task, queued; that worker dies. The broker would give the task back only
    after its visibility timeout (2 hours); the worker's stamp on the queued run stops instead, and
    beat's reclaim queues the run again within HEMICYCLE_RUN_LOST_S (30 s)."""
    celery_worker.stop()  # only the worker we kill may receive the retry
    owner, record = make_user(), make_record()
    env = {"HEMICYCLE_RUN_RETRY_DELAY_S": "3600", "HEMICYCLE_MODEL_MAX_RETRIES": "0", "HEMICYCLE_RUN_MAX_ATTEMPTS": "3"}
    worker = start_celery_worker(name="holding-a-retry", env=env)
    run = start_run(record, owner, model="scripted:fail")
    servers.wait_until(
        lambda: (
            run.events.filter(type="error").exists()
            and Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED, heartbeat_at__isnull=False).exists()
        ),
        timeout=60,
        what="the run's retry to be received and stamped by the worker",
    )
    worker.kill()
    worker.restart()

    servers.wait_until(
        lambda: run.events.filter(type="error").count() >= 2, timeout=180, what="the run's second attempt"
    )
    resumed = [event.data for event in run.events.filter(type="control")]
    assert resumed == [{"action": "resumed", "reason": "worker_lost", "attempt": 2}]
    assert [event.data["attempt"] for event in run.events.filter(type="error").order_by("seq")][:2] == [1, 2]


def test_events_reach_a_websocket_viewer_through_redis_in_order(celery_worker, asgi_server):
    owner, record = make_user(), make_record()
    run = start_run(record, owner, model="scripted:slow", visibility="link")
    url = f"{asgi_server.ws_url}/ws/runs/{run.pk}/?after=0&token={run.share_token}"
    received = []
    with connect(url, origin=asgi_server.url, open_timeout=10) as socket:
        while not received or received[-1]["type"] != "outcome":
            message = json.loads(socket.recv(timeout=60))
            received += message if isinstance(message, list) else [message]  # events sent together
    assert [message["seq"] for message in received] == list(run.events.values_list("seq", flat=True))


def test_a_foreign_origin_is_refused_by_the_server(asgi_server):
    owner, record = make_user(), make_record()
    run = start_run(record, owner, model="scripted:default", visibility="link")
    url = f"{asgi_server.ws_url}/ws/runs/{run.pk}/?token={run.share_token}"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="http://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403  # the handshake is refused, before any frame
    with connect(url, origin=asgi_server.url, open_timeout=10) as socket:  # the same URL from the site
        socket.send("ping")
        # The run's events may come first (a worker may be playing it): the pong follows them.
        replies = [json.loads(socket.recv(timeout=30))]
        while replies[-1] != {"type": "pong"} and len(replies) < 200:
            replies.append(json.loads(socket.recv(timeout=30)))
        assert replies[-1] == {"type": "pong"}
