"""Zulip-style check of the event log (engine/run_state.py): for every strategy, played through the
run services on the scripted model and judge, the state rebuilt from the stored events equals the
state the services report (the Run row: status, outcome, goal value, error, tokens; the per-group
scores), and equals the state rebuilt from what was broadcast live. Parametrised over STRATEGIES,
so a new strategy is covered when it is registered."""

import pytest

from deliberation.engine.judges import ScriptedJudge
from deliberation.engine.run_state import run_state
from deliberation.engine.strategies import STRATEGIES
from deliberation.engine.strategies.base import judge_seed
from deliberation.runs import steps
from deliberation.runs.advance import run_advance
from deliberation.runs.models import CachedCompletion, Run, RunGroupScore
from deliberation.runs.selectors import uncached_steps
from deliberation.runs.services import (
    RunRetry,
    outcome_goal_value,
    run_create,
    run_pause,
    run_resume,
    run_stop,
)
from tests.factories import make_record, make_user, scenario_config

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]

MODEL_STRATEGIES = [name for name, strategy in STRATEGIES.items() if strategy.needs_model]


def new_run(strategy: str, **overrides) -> Run:
    config = scenario_config(make_record(), strategy=strategy, judge="scripted", **overrides)
    return run_create(owner=make_user(), config=config)


def stored_events(run: Run) -> list[dict]:
    return [
        {"seq": seq, "type": type_, "data": data}
        for seq, type_, data in run.events.order_by("seq").values_list("seq", "type", "data")
    ]


def assert_services_agree_with_the_log(run: Run, broadcasts: list[dict]) -> None:
    run.refresh_from_db()
    events = stored_events(run)
    state = run_state(events)
    live = run_state(sorted(broadcasts, key=lambda message: message["seq"]))

    assert [m["seq"] for m in sorted(broadcasts, key=lambda m: m["seq"])] == [e["seq"] for e in events]
    assert live == state
    assert state.status == run.status
    assert state.outcome == run.outcome
    assert (state.error or "") == run.error
    assert state.strategy in (None, run.strategy)
    scores = dict(RunGroupScore.objects.filter(run=run).values_list("group", "score"))
    if state.outcome is None:
        assert scores == {}
        return
    # The services' figures of a finished run, as the log gives them.
    assert run.goal_value == outcome_goal_value(state.outcome, run.goal)
    assert scores == {group: float(score) for group, score in state.votes.items()}
    assert (
        run.prompt_tokens == state.usage["prompt_tokens"] and run.completion_tokens == state.usage["completion_tokens"]
    )
    assert run.model_seconds == pytest.approx(state.usage["seconds"])
    assert run.uncached_steps == uncached_steps(event["data"].get("usage") for event in events)
    # The tally and the outcome follow from the votes, and the votes were cast on the last draft.
    assert state.tally["scores"] == state.outcome["scores"] == state.votes
    assert sorted(state.votes) == sorted(run.groups)
    assert state.outcome["fallbacks"] == state.fallbacks
    assert state.drafts and state.text == state.drafts[-1]
    seed = judge_seed(run.seed)
    assert state.votes == {
        group: ScriptedJudge().score(scenario=None, group=group, text=state.text, seed=seed).score
        for group in state.votes
    }


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_finished_run_rebuilds_from_its_events(strategy, broadcasts):
    run = new_run(strategy)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    assert_services_agree_with_the_log(run, broadcasts)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_cached_replay_rebuilds_from_its_events(strategy, broadcasts):
    first = new_run(strategy)
    run_advance(run_id=first.pk)
    again = run_create(owner=first.owner, config=scenario_config(first.record, strategy=strategy, judge="scripted"))
    broadcasts.clear()
    run_advance(run_id=again.pk)
    assert_services_agree_with_the_log(again, broadcasts)


def halting_store(monkeypatch, halt):
    """Make each step a write (no cache), and call `halt(run)` once, after the first write past
    event 1 (a strategy whose later steps take no model call writes them with its outcome, and
    finishes whatever lands meanwhile: the halt then finds a finished run)."""
    real_store = steps.events_store
    CachedCompletion.objects.all().delete()

    def store_then_halt(*, run, events, completions=()):
        status = real_store(run=run, events=events, completions=completions)
        if any(event["seq"] >= 2 for event in events) and not getattr(store_then_halt, "done", False):
            store_then_halt.done = True
            halt(run)
        return status

    monkeypatch.setattr(steps, "events_store", store_then_halt)
    return real_store


@pytest.mark.parametrize("strategy", MODEL_STRATEGIES)
def test_a_paused_then_resumed_run_rebuilds_from_its_events_at_each_stop(strategy, broadcasts, monkeypatch):
    run = new_run(strategy)
    real_store = halting_store(monkeypatch, lambda r: run_pause(run=r, user=r.owner))
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status in (Run.Status.PAUSED, Run.Status.FINISHED)
    assert_services_agree_with_the_log(run, broadcasts)
    if run.status == Run.Status.FINISHED:
        return

    monkeypatch.setattr(steps, "events_store", real_store)
    run_resume(run=run, user=run.owner)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    assert_services_agree_with_the_log(run, broadcasts)


@pytest.mark.parametrize("strategy", MODEL_STRATEGIES)
def test_a_stopped_run_rebuilds_from_its_events(strategy, broadcasts, monkeypatch):
    run = new_run(strategy)
    halting_store(monkeypatch, lambda r: run_stop(run=r, user=r.owner))
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status in (Run.Status.STOPPED, Run.Status.FINISHED)
    assert_services_agree_with_the_log(run, broadcasts)


@pytest.mark.parametrize("strategy", MODEL_STRATEGIES)
def test_a_failing_run_rebuilds_from_its_events_while_it_retries_and_once_it_failed(strategy, broadcasts, settings):
    settings.HEMICYCLE_RUN_MAX_ATTEMPTS = 2
    run = new_run(strategy, model="scripted:fail")
    with pytest.raises(RunRetry):
        run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED
    assert_services_agree_with_the_log(run, broadcasts)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert_services_agree_with_the_log(run, broadcasts)


def test_a_run_stopped_before_it_began_rebuilds_from_its_events(broadcasts):
    run = new_run("parliament")
    run_stop(run=run, user=run.owner)
    assert_services_agree_with_the_log(run, broadcasts)
    assert run.status == Run.Status.STOPPED
