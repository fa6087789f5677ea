import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command
from django.urls import reverse

from deliberation.engine.strategies import run_cost
from deliberation.errors import Forbidden
from deliberation.records.models import BenchmarkTask
from deliberation.routing import websocket_application
from deliberation.runs import advance, experiments, services
from deliberation.runs.advance import run_advance
from deliberation.runs.experiments import (
    ExperimentError,
    experiment_advance,
    experiment_cancel,
    experiment_cells,
    experiment_create,
    experiment_pause,
    experiment_resume,
    experiment_start,
    model_concurrency_bucket,
)
from deliberation.runs.models import Experiment, Run
from deliberation.runs.selectors import experiment_progress
from tests.factories import experiment_grid as grid, experiment_options, make_user, sample_record_set

pytestmark = pytest.mark.django_db(transaction=True)

SET = "Sample EP issues"
ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture
def sample_set():
    return sample_record_set(SET)


class Queues:
    """The Celery queues, in the test: run tasks and experiment top-ups, played one at a time."""

    def __init__(self, monkeypatch):
        self.runs: list[int] = []
        self.advances: list[int] = []
        self.max_in_flight = 0
        self.tasks = 0
        # One run per task, as the counts below assume; the test of chains sets it back.
        monkeypatch.setattr(advance, "RUNS_PER_TASK", 1)
        monkeypatch.setattr(services, "run_enqueue", self.runs.append)
        monkeypatch.setattr(experiments, "_enqueue_advance", self.advances.append)

    def in_flight(self, experiment: Experiment) -> int:
        return experiment.runs.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING]).count()

    def play(self, experiment: Experiment, *, runs: int | None = None) -> None:
        """Work the queues (top-ups first, as a worker may) until empty or `runs` runs were played."""
        played = 0
        while self.runs or self.advances:
            if self.advances:
                experiment_advance(experiment_id=self.advances.pop(0))
                continue
            if runs is not None and played == runs:
                return
            self.max_in_flight = max(self.max_in_flight, self.in_flight(experiment))
            run_advance(run_id=self.runs.pop(0))
            self.tasks += 1
            played += 1


@pytest.fixture
def queues(monkeypatch):
    return Queues(monkeypatch)


@pytest.fixture
def model_calls(monkeypatch):
    """Every call that reaches the scripted model (the completion cache answers the others)."""
    from deliberation.engine.models import ScriptedModelClient

    calls = []
    real = ScriptedModelClient.complete

    def counted(self, messages, *, params, seed):
        calls.append(seed)
        return real(self, messages, params=params, seed=seed)

    monkeypatch.setattr(ScriptedModelClient, "complete", counted)
    return calls


# --- estimates ---------------------------------------------------------------------------------


def test_run_cost_counts_hand_computed_steps_per_strategy():
    four = dict(party_count=4, judge_uses_model=True, params={})
    assert run_cost(strategy="one-shot", **four).steps == 1 + 4
    # 4 groups x (opening + 1 round) speeches, 1 draft, 3 amendments + 3 decisions, 4 verdicts
    assert run_cost(strategy="parliament", **{**four, "params": {"rounds": 1}}).steps == 8 + 1 + 6 + 4
    # a mediator drafts: all 4 groups may amend
    assert (
        run_cost(strategy="parliament", **{**four, "params": {"rounds": 1, "rapporteur": "mediator"}}).steps
        == 8 + 1 + 8 + 4
    )
    assert run_cost(strategy="greedy", **four).steps == 4
    assert run_cost(strategy="real-resolution", party_count=4, judge_uses_model=False, params={}).steps == 0
    assert run_cost(strategy="one-shot", party_count=2, judge_uses_model=False, params={}).steps == 1
    assert (
        run_cost(strategy="one-shot", party_count=2, judge_uses_model=True, params={}).completion_tokens == 400 + 2 * 3
    )


def test_grid_size_and_estimate_match_hand_computed_numbers(sample_set):
    experiment = grid(make_user())
    # 3 tasks x 2 goals x 2 strategies x 1 model x 1 judge x 2 seeds
    assert experiment.estimate["runs"] == 24
    assert len({cell.key for cell in experiment_cells(experiment.spec)}) == 24
    # one-shot: 12 runs x (1 draft + 2 verdicts); greedy: 12 runs x 2 verdicts
    assert experiment.estimate["per_strategy"]["one-shot"] == {"runs": 12, "steps": 36, "completion_tokens": 12 * 406}
    assert experiment.estimate["per_strategy"]["greedy"]["steps"] == 24
    assert experiment.estimate["steps"] == 60
    assert experiment.status == Experiment.Status.DRAFT and not experiment.runs.exists()


def test_the_task_sample_is_seeded(sample_set):
    owner = make_user()
    first = grid(owner, name="a", sample=4, sample_seed=3)
    again = grid(owner, name="b", sample=4, sample_seed=3)
    other = grid(owner, name="c", sample=4, sample_seed=4)
    assert first.spec["source"]["ids"] == again.spec["source"]["ids"]
    assert first.spec["source"]["ids"] != other.spec["source"]["ids"]


def test_create_refuses_the_real_votes_judge_with_a_drafting_strategy(sample_set):
    with pytest.raises(ExperimentError, match="real-votes"):
        grid(make_user(), judges=["real-votes"])
    with pytest.raises(ExperimentError, match="goals: unknown"):
        grid(make_user("bob"), goals=["unanimity"])
    with pytest.raises(ExperimentError, match="no record set named 'Nope'"):
        grid(make_user("carol"), record_set="Nope")


# --- running -----------------------------------------------------------------------------------


def test_an_experiment_run_plays_the_tasks_groups_seats_and_veto_group(sample_set, queues):
    owner = make_user()
    experiment = grid(
        owner, sample=1, parties=[4], goals=["veto_power"], strategies=["greedy"], judges=["scripted"], seeds=[0]
    )
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment)
    run = experiment.runs.get()
    task = BenchmarkTask.objects.get(pk=experiment.spec["source"]["ids"][0])
    assert run.status == Run.Status.FINISHED and run.task == task
    assert run.groups == task.groups and run.seats == dict(zip(task.groups, task.seat_weights))
    assert run.outcome["veto_group"] == task.veto_group
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED


def test_in_flight_runs_never_exceed_the_bound_of_their_model_backend(sample_set, queues, settings):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"scripted:": 2, "*": 4}
    owner = make_user()
    experiment = grid(owner, models=["scripted:slow"], judges=["scripted"])
    started = experiment_start(experiment=experiment, user=owner)
    assert len(started) == 2
    queues.play(experiment)
    assert queues.max_in_flight == 2
    assert experiment.runs.filter(status=Run.Status.FINISHED).count() == 24


def test_a_settled_run_tops_up_in_its_own_worker_and_leaves_a_failed_top_up_to_the_task(
    sample_set, queues, settings, monkeypatch
):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 1}
    owner = make_user()
    experiment = grid(owner)
    experiment_start(experiment=experiment, user=owner)
    run_advance(run_id=queues.runs.pop(0))  # settles: the next run starts from here, no task
    assert queues.advances == [] and len(queues.runs) == 1 and experiment.runs.count() == 2

    def unavailable(*, experiment_id):
        raise RuntimeError("database went away")

    monkeypatch.setattr(experiments, "experiment_advance", unavailable)
    run_advance(run_id=queues.runs.pop(0))
    assert queues.advances == [experiment.pk] and queues.runs == []


def test_a_registry_models_own_concurrency_is_its_bound_and_its_alone(sample_set, queues, settings):
    from deliberation.registry.models import ModelEntry

    settings.HEMICYCLE_MODEL_CONCURRENCY = {"scripted:": 2, "*": 4}
    ModelEntry.objects.filter(name="scripted:slow").update(concurrency=3)
    owner = make_user()
    slow = grid(owner, name="slow", models=["scripted:slow"], judges=["scripted"])
    default = grid(owner, name="default", models=["scripted:default"], judges=["scripted"])
    assert len(experiment_start(experiment=slow, user=owner)) == 3  # the registry's 3, not the prefix's 2
    assert len(experiment_start(experiment=default, user=owner)) == 2  # its own bucket, not slow's
    ModelEntry.objects.filter(name="scripted:slow").update(concurrency=1)
    queues.play(slow)
    assert queues.max_in_flight == 3  # the three in flight settle; then one at a time
    slow.refresh_from_db()
    assert slow.status == Experiment.Status.FINISHED


def two_experiments_on_one_slot_model(bound: int) -> tuple[Experiment, Experiment]:
    """`first` holds every slot of scripted:slow (its registry bound); `waiting` starts nothing."""
    from deliberation.registry.models import ModelEntry

    ModelEntry.objects.filter(name="scripted:slow").update(concurrency=bound)
    owner, other = make_user(), make_user("bob")
    first = grid(owner, name="first", models=["scripted:slow"], judges=["scripted"])
    waiting = grid(other, name="waiting", models=["scripted:slow"], judges=["scripted"])
    assert len(experiment_start(experiment=first, user=owner)) == bound
    assert experiment_start(experiment=waiting, user=other) == []  # the slots are taken
    return first, waiting


@pytest.mark.parametrize("control", [experiment_cancel, experiment_pause])
def test_cancelling_or_pausing_an_experiment_tops_up_the_others_waiting_on_the_same_model_at_once(
    sample_set, queues, control
):
    first, waiting = two_experiments_on_one_slot_model(2)
    control(experiment=first, user=first.owner)
    # No task of the stopped or paused runs has run yet: the waiting experiment is topped up anyway.
    assert queues.advances == [waiting.pk]
    experiment_advance(experiment_id=queues.advances.pop())
    assert queues.in_flight(waiting) == 2


def test_a_run_that_cannot_build_its_judge_fails_at_once_and_frees_its_slot(sample_set, queues):
    first, waiting = two_experiments_on_one_slot_model(1)
    broken = first.runs.get()
    Run.objects.filter(pk=broken.pk).update(judge="llm", judge_model="scripted:nope")  # invalid since creation
    run_advance(run_id=queues.runs.pop(0))
    broken.refresh_from_db()
    assert broken.status == Run.Status.FAILED and "judge model scripted:nope" in broken.error
    assert queues.in_flight(first) + queues.in_flight(waiting) == 1  # the slot went to the next run at once


def test_model_strings_fall_under_their_longest_prefix(settings):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"scripted:": 8, "scripted:slow": 1, "*": 4}
    assert model_concurrency_bucket("scripted:slow") == "scripted:slow"
    assert model_concurrency_bucket("scripted:default") == "scripted:"
    assert model_concurrency_bucket("hosted_vllm/qwen") == "*"


def test_a_resumed_experiment_never_plays_a_cell_twice(sample_set, queues, settings):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 3}
    owner = make_user()
    experiment = grid(owner, judges=["scripted"])
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment, runs=5)
    finished_before = dict(experiment.runs.filter(status=Run.Status.FINISHED).values_list("pk", "finished_at"))
    assert len(finished_before) == 5

    experiment_pause(experiment=experiment, user=owner)
    queues.play(experiment)  # the queued tasks find their runs paused
    assert experiment.runs.filter(status=Run.Status.PAUSED).count() == 3
    # A worker crash loses the queues; starting again (twice) tops up without doubling anything.
    queues.runs.clear()
    experiment_resume(experiment=experiment, user=owner)
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment)

    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    cells = list(experiment.runs.values_list("cell", flat=True))
    assert len(cells) == len(set(cells)) == 24
    assert experiment.runs.filter(status=Run.Status.FINISHED).count() == 24
    still = dict(experiment.runs.filter(pk__in=finished_before).values_list("pk", "finished_at"))
    assert still == finished_before


def test_a_cancelled_experiment_stops_its_runs_and_resumes_where_it_was(sample_set, queues, settings):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 2}
    owner = make_user()
    experiment = grid(owner, judges=["scripted"], seeds=[0])
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment, runs=3)
    experiment_cancel(experiment=experiment, user=owner)
    queues.play(experiment)
    assert experiment.status == Experiment.Status.CANCELLED
    assert experiment.runs.filter(status=Run.Status.STOPPED).count() == 2
    assert experiment.runs.count() == 5

    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    assert experiment.runs.count() == 12 and experiment.runs.filter(status=Run.Status.FINISHED).count() == 12


def test_the_cap_ends_the_experiment_cleanly_before_it_is_exceeded(sample_set, queues, settings):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 4}
    owner = make_user()
    # one-shot with the LLM judge on 2-party tasks: 3 steps a run; 8 steps fit two runs, not three
    experiment = grid(owner, strategies=["one-shot"], call_cap=8)
    started = experiment_start(experiment=experiment, user=owner)
    assert len(started) == 2
    queues.play(experiment)
    experiment.refresh_from_db()
    progress = experiment_progress(experiment=experiment)
    assert experiment.status == Experiment.Status.CAPPED
    assert progress["done"] == 2 and progress["running"] == 0 and progress["remaining"] == 10
    assert progress["steps_spent"] == 6 <= experiment.call_cap


def test_a_re_run_with_the_same_seeds_is_served_from_the_completion_cache(sample_set, queues, model_calls):
    owner = make_user()
    first = grid(owner, name="first", strategies=["one-shot"])
    experiment_start(experiment=first, user=owner)
    queues.play(first)
    assert len(model_calls) == 12 * 3
    model_calls.clear()

    again = grid(owner, name="again", strategies=["one-shot"])
    experiment_start(experiment=again, user=owner)
    queues.play(again)
    again.refresh_from_db()
    assert again.status == Experiment.Status.FINISHED
    assert model_calls == []
    assert experiment_progress(experiment=again)["steps_spent"] == 0
    assert set(again.runs.values_list("uncached_steps", flat=True)) == {0}
    assert set(first.runs.values_list("uncached_steps", flat=True)) == {3}
    outcomes = lambda e: sorted((run.cell, json.dumps(run.outcome, sort_keys=True)) for run in e.runs.all())  # noqa: E731
    assert outcomes(again) == outcomes(first)


def test_a_task_whose_run_finished_plays_the_next_runs_itself_each_held_by_its_heartbeat(
    sample_set, queues, model_calls, monkeypatch, settings
):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 2}
    held: list[int] = []
    real_advance = advance.run_advance

    def with_heartbeat(*, run_id):
        @contextmanager
        def heartbeat(run_id):
            held.append(run_id)
            yield

        real_advance(run_id=run_id, held=heartbeat)

    monkeypatch.setattr(sys.modules[__name__], "run_advance", with_heartbeat)
    monkeypatch.setattr(advance, "RUNS_PER_TASK", 4)
    owner = make_user()
    first = grid(owner, name="first", strategies=["one-shot"])
    experiment_start(experiment=first, user=owner)
    queues.play(first)
    first.refresh_from_db()
    assert first.status == Experiment.Status.FINISHED and len(model_calls) == 12 * 3
    # Two runs started by the experiment, each task went on with up to 4 runs: 12 runs in 4 tasks
    # (the model called by each), every cell played once, never more than the bound in flight.
    assert queues.tasks == 4 and queues.max_in_flight <= 2
    assert sorted(held) == sorted(first.runs.values_list("pk", flat=True))  # every run of a chain beat

    queues.tasks = 0
    model_calls.clear()
    again = grid(owner, name="again", strategies=["one-shot"])
    experiment_start(experiment=again, user=owner)
    queues.play(again)
    again.refresh_from_db()
    assert again.status == Experiment.Status.FINISHED and model_calls == []
    assert queues.tasks == 4 and queues.max_in_flight <= 2
    assert sorted(again.runs.values_list("cell", flat=True)) == sorted(first.runs.values_list("cell", flat=True))
    assert set(again.runs.values_list("status", flat=True)) == {Run.Status.FINISHED}


def test_a_chain_ends_after_its_time_and_the_next_run_goes_through_the_queue(sample_set, queues, settings, monkeypatch):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 2}
    monkeypatch.setattr(advance, "RUNS_PER_TASK", 100)
    monkeypatch.setattr(advance, "CHAIN_S", 0.0)
    owner = make_user()
    experiment = grid(owner, strategies=["one-shot"])
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED and queues.tasks == 12


def test_a_task_s_top_up_takes_only_the_slot_its_run_freed(sample_set, queues, settings):
    """Two runs settle together: each one's task tops up its own slot. The first top-up filling
    both ended the other task's chain and sent its next run through the queue."""
    from deliberation.runs.selectors import TaskReads

    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 2}
    owner = make_user()
    experiment = grid(owner, judges=["scripted"])
    experiment_start(experiment=experiment, user=owner)
    assert len(queues.runs) == 2
    experiment.runs.update(status=Run.Status.FINISHED)  # both slots free, no top-up yet
    started, held = experiments._advance(experiment_id=experiment.pk, hold_for="runs", reads=TaskReads())
    assert len(started) == 1 and isinstance(held, Run) and held.pk == started[0]
    assert held.status == Run.Status.RUNNING and held.attempts == 1  # created claimed: its task plays it
    assert len(queues.runs) == 2  # nothing enqueued
    started, held = experiments._advance(experiment_id=experiment.pk, hold_for="runs", reads=TaskReads())
    assert len(started) == 1 and held.pk == started[0]  # the second task's top-up finds its slot
    assert experiment_advance(experiment_id=experiment.pk) == []  # both slots are taken again


def test_a_top_up_reads_the_grid_s_next_tasks_with_the_first_and_keeps_a_bounded_number(sample_set, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    owner = make_user()
    experiment = grid(owner, parties=[2, 4], sample=4)
    spec = experiment.spec
    cells = experiments.experiment_cells(spec)
    tasks: dict = {}
    with CaptureQueriesContext(connection) as queries:
        experiments._cell_config(cells[0], spec, tasks=tasks)
    assert sorted(tasks) == sorted(spec["source"]["ids"])  # the first read brought the others
    assert len(queries.captured_queries) == 2  # the tasks with their records, then their stances
    with CaptureQueriesContext(connection) as queries:
        for cell in cells:
            experiments._cell_config(cell, spec, tasks=tasks)
    assert queries.captured_queries == []
    monkeypatch.setattr(experiments, "TASKS_KEPT", 2)
    kept: dict = {}
    experiments._cell_config(cells[0], spec, tasks=kept)
    assert len(kept) == 2


def test_a_chain_of_cached_runs_asks_few_statements_per_run(sample_set, queues, model_calls, monkeypatch, settings):
    """The harness's cost of a cached run is its database round trips (bench/bench_cached_runs.py):
    the draft's and the votes' lookups (one each: the votes are prefetched together), the events,
    the group scores, the finish, and the top-up's lock, runs read and insert of the run it hands
    on, created claimed (no claim, no read of the run, its task or its record's stances again)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 1}
    owner = make_user()
    first = grid(owner, name="first", strategies=["one-shot"], parties=[4], sample=2)
    experiment_start(experiment=first, user=owner)
    queues.play(first)
    monkeypatch.setattr(advance, "RUNS_PER_TASK", 100)
    model_calls.clear()
    queues.tasks = 0
    again = grid(owner, name="again", strategies=["one-shot"], parties=[4], sample=2)
    experiment_start(experiment=again, user=owner)
    assert len(queues.runs) == 1
    with CaptureQueriesContext(connection) as queries:
        queues.play(again)  # one task: the first run read, the 7 others handed on as created
    again.refresh_from_db()
    assert again.status == Experiment.Status.FINISHED and model_calls == [] and queues.tasks == 1
    cached = [q["sql"] for q in queries.captured_queries if "runs_cachedcompletion" in q["sql"]]
    assert len(cached) == 2 * 8  # 4 groups' votes in one lookup, not four
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # Per run at most: 2 lookups, the events, the group scores' upsert (in a transaction on
    # SQLite), the finish, the top-up's transaction (lock, runs read, insert); then what the first
    # run and the experiment's end read once.
    assert len(statements) <= 8 * 12 + 16, "\n".join(statements)


def test_top_ups_in_processes_that_each_remember_a_part_play_every_cell_once(sample_set, queues, settings, monkeypatch):
    """Each worker process remembers the runs its top-ups read (experiments._seen); two that take
    turns still start every cell exactly once, across a cancel and a resume."""
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 2}
    memories = [{}, {}]
    turn = [0]
    real_advance = experiments._advance

    def advance_in_the_next_process(**kwargs):
        turn[0] += 1
        monkeypatch.setattr(experiments, "_seen", memories[turn[0] % 2])
        return real_advance(**kwargs)

    monkeypatch.setattr(experiments, "_advance", advance_in_the_next_process)
    owner = make_user()
    experiment = grid(owner, judges=["scripted"])
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment, runs=5)
    experiment_cancel(experiment=experiment, user=owner)
    queues.play(experiment)
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    cells = list(experiment.runs.values_list("cell", flat=True))
    assert len(cells) == len(set(cells)) == 24
    assert set(experiment.runs.values_list("status", flat=True)) == {Run.Status.FINISHED}
    assert all(memory for memory in memories) and queues.max_in_flight <= 2


def test_progress_counts_done_running_and_remaining_runs(sample_set, queues, settings):
    settings.HEMICYCLE_MODEL_CONCURRENCY = {"*": 2}
    owner = make_user()
    experiment = grid(owner, judges=["scripted"])
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment, runs=4)
    progress = experiment_progress(experiment=experiment)
    assert (progress["done"], progress["failed"], progress["running"], progress["remaining"]) == (4, 0, 2, 18)
    assert progress["eta_s"] is not None and progress["eta_s"] >= 0


def test_only_the_owner_controls_an_experiment(sample_set):
    owner = make_user()
    experiment = grid(owner)
    with pytest.raises(Forbidden):
        experiment_start(experiment=experiment, user=make_user("mallory"))


# --- command line ------------------------------------------------------------------------------


def test_cli_creates_runs_waits_reports_and_exports(sample_set, tmp_path, capsys, eager_worker):
    call_command("experiment", "create", "--name", "cli", "--record-set", SET, *experiment_options(seeds=[0, 1]))
    assert "8 runs" in capsys.readouterr().out
    call_command("experiment", "run", "cli", "--wait", verbosity=0)
    assert "finished; 8 done, 0 failed" in capsys.readouterr().out
    call_command("experiment", "status", "cli")
    assert "8 done" in capsys.readouterr().out

    out = tmp_path / "cli.json"
    call_command("experiment", "export", "cli", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["status"] == "finished" and len(data["runs"]) == 8
    assert {row["strategy"] for row in data["runs"]} == {"one-shot", "greedy"}
    assert all(row["status"] == "finished" and "simple_majority" in row["goals"] for row in data["runs"])
    assert len({row["cell"] for row in data["runs"]}) == 8


def test_cli_takes_registry_models_and_a_raw_backend_string_from_staff_only(sample_set, queues):
    from django.contrib.auth.models import User

    options = [
        "experiment",
        "create",
        "--record-set",
        SET,
        *experiment_options(parties=2, sample=1, strategies="greedy", models=None, seeds=None),
    ]
    with pytest.raises(CommandError, match="^models: 'scripted:nope' is not a model of this lab"):
        call_command(*options, "--name", "typo", "--models", "scripted:nope")
    with pytest.raises(CommandError, match="^models: 'hosted_vllm/q' is not a model of this lab"):
        call_command(*options, "--name", "raw", "--models", "hosted_vllm/q")  # the default owner is not staff
    User.objects.create_user("root", is_staff=True)
    with pytest.raises(CommandError, match="^models: unknown scripted model 'nope'"):
        call_command(*options, "--name", "raw", "--owner", "root", "--models", "scripted:nope")
    call_command(*options, "--name", "raw", "--owner", "root", "--models", "hosted_vllm/q", "scripted:default")
    assert Experiment.objects.get(name="raw").spec["models"] == ["hosted_vllm/q", "scripted:default"]
    assert not Experiment.objects.filter(name__in=["typo"]).exists()


def test_cli_pauses_and_cancels_and_refuses_what_the_state_forbids(sample_set, queues, capsys):
    owner = make_user()
    experiment = grid(owner, judges=["scripted"])
    with pytest.raises(CommandError, match="cannot be paused"):
        call_command("experiment", "pause", "grid")
    experiment_start(experiment=experiment, user=owner)
    call_command("experiment", "pause", "grid")
    assert "grid: paused" in capsys.readouterr().out
    call_command("experiment", "cancel", "grid")
    assert "grid: cancelled" in capsys.readouterr().out
    assert not experiment.runs.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING, Run.Status.PAUSED]).exists()


def test_cli_names_an_unknown_experiment(sample_set):
    with pytest.raises(CommandError, match="no experiment named"):
        call_command("experiment", "status", "nope")


# --- progress: JSON and websocket ----------------------------------------------------------------


def test_progress_api_answers_only_the_owner(sample_set, client):
    owner = make_user()
    experiment = grid(owner)
    url = f"/api/experiments/{experiment.pk}/progress"
    assert client.get(url).status_code == 401
    client.force_login(make_user("mallory"))
    assert client.get(url).status_code == 404
    client.force_login(owner)
    answer = client.get(url).json()
    assert (answer["status"], answer["total"], answer["remaining"], answer["steps_estimate"]) == ("draft", 24, 24, 60)


def in_own_loop(scenario):
    """An async scenario on a loop of its own, in a thread of its own (as tests/unit/live does)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


def experiment_socket(experiment: Experiment, user) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(websocket_application, f"/ws/experiments/{experiment.pk}/", headers=[ORIGIN])
    socket.scope["user"] = user
    return socket


def test_the_owner_sees_progress_pushed_over_the_websocket(sample_set, queues):
    owner = make_user()
    experiment = grid(owner, sample=1, goals=["simple_majority"], strategies=["greedy"], judges=["scripted"], seeds=[0])
    experiment_start(experiment=experiment, user=owner)
    run_id = queues.runs.pop()

    async def scenario():
        socket = experiment_socket(experiment, owner)
        connected, _ = await socket.connect()
        assert connected
        now = json.loads(await socket.receive_from(timeout=10))
        await sync_to_async(run_advance, thread_sensitive=False)(run_id=run_id)
        await sync_to_async(queues.play, thread_sensitive=False)(experiment)  # the top-up it asked for
        # The start's own push can land after the socket joined (the publisher sends it from its
        # thread): read on to the snapshot the run's end pushed.
        pushed = json.loads(await socket.receive_from(timeout=10))
        for _ in range(5):
            if pushed["status"] != "running":
                break
            pushed = json.loads(await socket.receive_from(timeout=10))
        await socket.disconnect()
        return now, pushed

    now, pushed = in_own_loop(scenario)
    assert (now["status"], now["running"], now["done"]) == ("running", 1, 0)
    assert (pushed["status"], pushed["running"], pushed["done"]) == ("finished", 0, 1)


def test_top_ups_push_progress_at_most_once_an_interval_but_every_change_of_status(sample_set, queues, monkeypatch):
    pushed: list[tuple[int, str]] = []
    monkeypatch.setattr(
        experiments,
        "broadcast_experiment_progress",
        lambda *, experiment_id, progress: pushed.append((progress["done"], progress["status"])),
    )
    clock = [1000.0]
    monkeypatch.setattr(experiments.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(experiments, "_progress_sent", {})  # experiment ids repeat across tests
    owner = make_user()
    experiment = grid(
        owner, sample=1, goals=["simple_majority"], strategies=["greedy", "random"], judges=["scripted"], seeds=[0]
    )
    experiment_start(experiment=experiment, user=owner)  # running: pushed
    experiment_advance(experiment_id=experiment.pk)  # the same status within the interval: not pushed
    assert pushed == [(0, "running")]

    clock[0] += experiments.PROGRESS_INTERVAL_S
    experiment_advance(experiment_id=experiment.pk)  # an interval later: pushed
    assert pushed == [(0, "running"), (0, "running")]

    queues.play(experiment)  # every run settles within the interval: only the end is pushed
    assert pushed[-1] == (2, "finished") and len(pushed) == 3


def test_the_experiment_socket_refuses_anyone_but_the_owner(sample_set):
    experiment = grid(make_user())
    mallory = make_user("mallory")

    async def scenario():
        return await experiment_socket(experiment, mallory).connect()

    assert in_own_loop(scenario) == (False, 4403)


# --- saved scenarios as the source -------------------------------------------------------------


def saved_scenarios(owner, count: int = 2, **overrides):
    from deliberation.scenarios.services import scenario_save
    from tests.factories import make_record, scenario_config

    return [
        scenario_save(
            owner=owner, name=f"scenario {n}", config=scenario_config(make_record(title=f"issue {n}"), **overrides)
        )
        for n in range(count)
    ]


def test_saved_scenarios_play_their_groups_and_seats_under_each_goal_of_the_grid(queues):
    owner = make_user()
    scenarios = saved_scenarios(owner, veto_group="SD")
    experiment = experiment_create(
        owner=owner,
        name="saved",
        scenario_ids=[s.pk for s in scenarios],
        goals=["simple_majority", "veto_power"],
        strategies=["parliament"],
        models=["scripted:default"],
        judges=["llm"],
        seeds=[5],
        params={"parliament": {"rounds": 1}},
    )
    # 2 scenarios x 2 goals; 3 groups: 6 speeches + 1 draft + 2 amendments + 2 decisions + 3 verdicts
    assert experiment.estimate["runs"] == 4 and experiment.estimate["steps"] == 4 * 14
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment)
    runs = list(experiment.runs.order_by("cell"))
    assert [run.status for run in runs] == ["finished"] * 4
    by_scenario = {s.pk: s for s in scenarios}
    for run in runs:
        source = by_scenario[int(run.cell.split("|")[0].split(":")[1])]
        assert (run.groups, run.seats, run.seed, run.params) == (source.groups, source.seats, 5, {"rounds": 1})
    assert {run.goal for run in runs} == {"simple_majority", "veto_power"}


def test_saved_scenarios_without_a_veto_group_refuse_the_veto_goal():
    owner = make_user()
    scenarios = saved_scenarios(owner, count=1)
    with pytest.raises(ExperimentError, match="veto group"):
        experiment_create(
            owner=owner,
            name="saved",
            scenario_ids=[scenarios[0].pk],
            goals=["veto_power"],
            strategies=["greedy"],
            models=["scripted:default"],
            judges=["scripted"],
            seeds=[0],
        )


def test_a_task_sample_covers_every_requested_party_count(sample_set):
    owner = make_user()
    for seed in range(5):
        experiment = grid(owner, name=f"s{seed}", parties=[2, 4, 6], sample=3, sample_seed=seed)
        counts = sorted(experiment.spec["source"]["party_counts"].values())
        assert counts == [2, 4, 6], (seed, counts)
    small = grid(owner, name="two", parties=[2, 4], sample=2, sample_seed=1)
    assert sorted(small.spec["source"]["party_counts"].values()) == [2, 4]


# --- the consensus strategies of issue 13 ------------------------------------------------------


NEW_STRATEGIES = ["mediator", "forecast", "advisor", "advisor-random", "advisor-none", "amulet", "negotiation"]


def test_one_experiment_plays_the_consensus_strategies_beside_one_shot_within_their_estimate(
    sample_set, queues, client
):
    owner = make_user()
    experiment = grid(
        owner,
        sample=1,
        goals=["simple_majority"],
        strategies=["one-shot", *NEW_STRATEGIES],
        seeds=[0],
        params={"mediator": {"candidates": 2, "rounds": 2}, "advisor": {"advisor_model": "scripted:slow"}},
    )
    experiment_start(experiment=experiment, user=owner)
    queues.play(experiment)
    runs = {run.strategy: run for run in experiment.runs.all()}
    assert sorted(runs) == sorted(["one-shot", *NEW_STRATEGIES])
    assert all(run.status == Run.Status.FINISHED for run in runs.values()), {r.strategy: r.error for r in runs.values()}
    for strategy, run in runs.items():  # the cache was empty, so every step was a call; forecast may stop early
        estimate = experiment.estimate["per_strategy"][strategy]["steps"]
        assert run.uncached_steps == estimate or (strategy == "forecast" and run.uncached_steps < estimate)
    assert runs["mediator"].params["candidates"] == 2 and runs["mediator"].events.filter(type="candidate").count() == 4
    assert runs["advisor"].events.get(type="signal").data["model"] == "scripted:slow"
    assert [runs[name].events.get(type="signal").data["arm"] for name in ("advisor-none", "advisor-random")] == [
        "none",
        "random",
    ]
    # The dashboard's paper table has a cell for each of them, beside one-shot.
    client.force_login(owner)
    page = client.get(reverse("experiment-dashboard", args=[experiment.pk])).content.decode()
    for strategy in ["one-shot", *NEW_STRATEGIES]:
        assert f"strategy={strategy}&amp;model=scripted%3Adefault&amp;judge=llm&amp;goal=simple_majority" in page


def test_create_refuses_an_advisor_model_the_owner_may_not_use(sample_set):
    with pytest.raises(ExperimentError, match="params: advisor advisor_model: 'nope' is not a model of this lab"):
        grid(make_user(), strategies=["advisor"], params={"advisor": {"advisor_model": "nope"}})


def test_create_refuses_amulet_with_a_model_without_token_ids(sample_set):
    with pytest.raises(ExperimentError, match="models: amulet decodes token by token.*'scripted:no-logprobs'"):
        grid(make_user(), strategies=["one-shot", "amulet"], models=["scripted:default", "scripted:no-logprobs"])
    experiment = grid(make_user("bob"), strategies=["amulet", "negotiation"], models=["scripted:default"])
    assert set(experiment.estimate["per_strategy"]) == {"amulet", "negotiation"}
