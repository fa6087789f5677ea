"""The model registry on the real stack: a Celery worker process calls two OpenAI-compatible
servers side by side, each with the key its registry entry names, and a run whose model cannot be
built fails at once instead of staying "running".

The two servers are small HTTP servers in this process (loopback), recording what each request
carried; the worker process reaches them as it would reach two vLLM hosts.
"""

import json
from collections.abc import Iterator

import pytest

from deliberation.registry.models import ModelEntry
from deliberation.runs.models import Run
from deliberation.runs.services import run_create
from tests.factories import make_record, make_user, scenario_config
from tests.integration import servers

KEYS = {"HEMICYCLE_TEST_KEY_ONE": "sk-test-one", "HEMICYCLE_TEST_KEY_TWO": "sk-test-two"}


class ModelServer(servers.ChatServer):
    """An OpenAI-compatible chat endpoint that answers a fixed draft and records each request's
    model and Authorization header."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        super().__init__(self._reply)

    def _reply(self, body: dict, headers) -> str:
        self.requests.append((body["model"], headers.get("Authorization", "")))
        return "The European Parliament adopts it."


@pytest.fixture
def two_model_servers() -> Iterator[tuple[ModelServer, ModelServer]]:
    one, two = ModelServer(), ModelServer()
    yield one, two
    one.close()
    two.close()


@pytest.fixture
def keyed_worker(celery_worker, start_celery_worker):
    # The session's worker lacks the keys: only this one may take the runs.
    celery_worker.stop()
    return start_celery_worker(name="registry", env=KEYS)


def wait_settled(run: Run) -> Run:
    servers.wait_until(
        lambda: Run.objects.values_list("status", flat=True).get(pk=run.pk) in {Run.Status.FINISHED, Run.Status.FAILED},
        timeout=60,
        what=f"run {run.pk} to settle",
    )
    run.refresh_from_db()
    return run


def test_two_servers_side_by_side_each_with_the_key_its_entry_names(two_model_servers, keyed_worker):
    one, two = two_model_servers
    ModelEntry.objects.create(
        name="alpha@one", model="hosted_vllm/alpha", api_base=one.url, api_key_env="HEMICYCLE_TEST_KEY_ONE"
    )
    ModelEntry.objects.create(
        name="beta@two", model="hosted_vllm/beta", api_base=two.url, api_key_env="HEMICYCLE_TEST_KEY_TWO"
    )
    owner = make_user()
    record = make_record()
    runs = [
        run_create(
            owner=owner, config=scenario_config(record, user=owner, model=name, strategy="one-shot", judge="scripted")
        )
        for name in ("alpha@one", "beta@two")
    ]
    for run in runs:
        assert wait_settled(run).status == Run.Status.FINISHED, run.error
    assert one.requests == [("alpha", "Bearer sk-test-one")]
    assert two.requests == [("beta", "Bearer sk-test-two")]
    # The keys live in the workers' environment only.
    stored = json.dumps(list(ModelEntry.objects.values()), default=str)
    assert "sk-test" not in stored and "HEMICYCLE_TEST_KEY_ONE" in stored


def test_a_run_whose_model_cannot_be_built_fails_at_once_on_the_worker(two_model_servers, keyed_worker):
    one, _ = two_model_servers
    ModelEntry.objects.create(
        name="keyless", model="hosted_vllm/alpha", api_base=one.url, api_key_env="HEMICYCLE_TEST_KEY_UNSET"
    )
    owner = make_user()
    record = make_record()
    keyed_worker.stop()  # hold the runs until the registry has changed under them
    keyless = run_create(owner=owner, config=scenario_config(record, user=owner, model="keyless", strategy="one-shot"))
    removed = run_create(owner=owner, config=scenario_config(record, user=owner, model="scripted:slow", seed=8))
    ModelEntry.objects.filter(name="scripted:slow").delete()  # after creation, before the worker starts it
    keyed_worker.start()

    for run, reason in (
        (
            keyless,
            "drafting model keyless: the key of hosted_vllm/alpha is missing: "
            "environment variable HEMICYCLE_TEST_KEY_UNSET is not set on this worker",
        ),
        (removed, "drafting model scripted:slow: 'scripted:slow' is no longer in the model registry"),
    ):
        run = wait_settled(run)
        assert (run.status, run.error, run.attempts) == (Run.Status.FAILED, reason, 1)
        assert list(run.events.values_list("type", "data__final")) == [("error", True)]
    assert one.requests == []  # no call went out without its key
