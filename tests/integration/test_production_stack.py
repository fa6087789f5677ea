"""The production stack as it runs: PostgreSQL, Redis, Celery worker processes, uvicorn processes."""

import json
import re
import threading

import requests
from websockets.sync.client import connect

from deliberation.runs.models import Run
from tests.factories import make_record, make_user
from tests.integration import servers

PASSWORD = "a-long-test-password"


def signed_in_session(server: servers.AsgiServer, username: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{server.url}/accounts/login/", timeout=10)
    response = session.post(
        f"{server.url}/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{server.url}/accounts/login/"},
        timeout=10,
    )
    assert response.ok and "sessionid" in session.cookies
    return session


def watch_until_outcome(url: str, *, origin: str, cookie: str = "") -> list[dict]:
    headers = {"Cookie": cookie} if cookie else None
    received: list[dict] = []
    with connect(url, origin=origin, additional_headers=headers, open_timeout=10) as socket:
        while not received or received[-1]["type"] != "outcome":
            message = json.loads(socket.recv(timeout=60))
            received += message if isinstance(message, list) else [message]  # events sent together
    return received


def test_a_run_started_through_the_api_runs_on_the_workers_and_streams_through_redis(celery_worker, asgi_server):
    user, record = make_user(), make_record()
    session = signed_in_session(asgi_server, user.username)
    response = session.post(
        f"{asgi_server.url}/api/runs",
        data=json.dumps(
            {
                "record": record.pk,
                "groups": ["EPP", "SD", "ALDE", "GREEN_EFA"],
                "seat_structure": "real",
                "goal": "veto_power",
                "veto_group": "SD",
                "strategy": "parliament",
                "model": "scripted:slow",
                "judge": "scripted",
                "rounds": 1,
            }
        ),
        headers={
            "Content-Type": "application/json",
            "X-CSRFToken": session.cookies["csrftoken"],
            "Referer": asgi_server.url + "/",
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    cookie = f"sessionid={session.cookies['sessionid']}"
    received = watch_until_outcome(
        f"{asgi_server.ws_url}/ws/runs/{run_id}/?after=0", origin=asgi_server.url, cookie=cookie
    )

    run = Run.objects.get(pk=run_id)
    assert run.owner == user
    assert [m["seq"] for m in received] == list(run.events.values_list("seq", flat=True))
    servers.wait_until(
        lambda: Run.objects.get(pk=run_id).status == Run.Status.FINISHED, timeout=30, what="the run to finish"
    )


def test_two_web_processes_serve_the_same_run_stream(celery_worker, asgi_server, stack_env, server_log_dir):
    second = servers.AsgiServer(name="asgi-second", env=stack_env, log_dir=server_log_dir)
    second.start()
    try:
        record, owner = make_record(), make_user()
        from deliberation.runs.services import run_create
        from tests.factories import scenario_config

        run = run_create(
            owner=owner, config=scenario_config(record, model="scripted:slow", rounds=2), visibility="link"
        )
        results: dict[str, list[dict]] = {}

        def watch(name: str, server: servers.AsgiServer) -> None:
            url = f"{server.ws_url}/ws/runs/{run.pk}/?after=0&token={run.share_token}"
            results[name] = watch_until_outcome(url, origin=server.url)

        viewers = [
            threading.Thread(target=watch, args=(name, server))
            for name, server in (("first", asgi_server), ("second", second))
        ]
        for viewer in viewers:
            viewer.start()
        for viewer in viewers:
            viewer.join(timeout=120)
        stored = list(run.events.values_list("seq", "type"))
        assert [(m["seq"], m["type"]) for m in results["first"]] == stored
        assert [(m["seq"], m["type"]) for m in results["second"]] == stored
    finally:
        second.stop()


def test_health_reports_the_database_redis_and_the_workers(celery_worker, asgi_server):
    response = requests.get(f"{asgi_server.url}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["database"]["vendor"] == "postgresql"
    assert checks["redis"]["ok"] is True
    assert celery_worker.hostname in checks["workers"]["workers"]


def test_production_settings_pass_the_deploy_check(manage, stack_env):
    env = {
        **stack_env,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 64 + "-not-a-real-secret-but-long-enough",
        "DJANGO_ALLOWED_HOSTS": "hemicycle.example.org",
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert "no issues" in result.stdout


def test_each_queue_has_its_own_worker_and_bundled_model_runs_go_to_the_models_queue(
    celery_worker, start_celery_worker
):
    from deliberation.runs.services import run_create
    from tests.factories import scenario_config

    celery_worker.stop()  # only the two queue-specific workers below may take tasks
    runs_worker = start_celery_worker(name="runs-only", queues="runs")
    models_worker = start_celery_worker(
        name="models-only", queues="models", concurrency=1, extra_args=("--prefetch-multiplier", "1")
    )
    owner, record = make_user(), make_record()
    scripted = run_create(owner=owner, config=scenario_config(record, strategy="greedy", groups=["EPP", "SD"]))
    local = run_create(
        owner=owner,
        config=scenario_config(record, strategy="one-shot", model="local:smollm2-135m", groups=["EPP", "SD"]),
    )
    for run in (scripted, local):
        servers.wait_until(
            lambda run=run: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED,
            timeout=300,
            what=f"run {run.pk} ({run.model}) to finish",
        )

    def tasks_in(worker: servers.CeleryWorker) -> int:
        # "received" is logged before the task runs; "succeeded" only after it returns, which can
        # be after the run's status reads finished here.
        return len(re.findall(r"run_advance_task\[[^\]]*\] received", worker.log_text()))

    assert tasks_in(runs_worker) == 1 and tasks_in(models_worker) == 1
    draft = Run.objects.get(pk=local.pk).events.get(type="draft").data
    assert draft["text"] and draft["usage"]["completion_tokens"] > 0


def test_the_beat_sweep_task_revives_a_run_whose_task_was_lost(celery_worker, celery_app):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import scenario_config

    owner, record = make_user(), make_record()
    # A run whose task never reached a worker (say, the broker lost it): queued and silent.
    run = Run.objects.create(owner=owner, **scenario_config(record).model_fields())
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))

    celery_app.send_task("deliberation.runs.tasks.runs_sweep_task", kwargs={"idle_seconds": 600}, queue="runs")

    servers.wait_until(
        lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED, timeout=60, what="the swept run to finish"
    )
