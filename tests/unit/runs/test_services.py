import pytest
from django.db import transaction

from deliberation.engine.events import EventInvalid
from deliberation.engine.models import ModelError, Params
from deliberation.engine.strategies.parliament import ParliamentAgents
from deliberation.errors import Forbidden
from deliberation.runs import services, steps
from deliberation.runs.advance import run_advance
from deliberation.runs.models import CachedCompletion, Run
from deliberation.runs.selectors import run_transcript
from deliberation.runs.services import (
    RunControlError,
    RunRetry,
    event_append,
    run_create,
    run_pause,
    run_resume,
    run_stop,
)
from tests.factories import completion_row, make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db(transaction=True)


def started_run(**overrides) -> Run:
    owner = make_user()
    return run_create(owner=owner, config=scenario_config(make_record(), **overrides))


def test_run_create_enqueues_the_run_id_only_after_commit(enqueued):
    owner = make_user()
    config = scenario_config(make_record())
    with transaction.atomic():
        run = run_create(owner=owner, config=config)
        assert enqueued == []
    assert enqueued == [run.pk]


def test_run_advance_stores_every_event_and_finishes_with_outcome(enqueued, broadcasts):
    run = started_run()
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    types = list(run.events.values_list("type", flat=True))
    assert run.status == Run.Status.FINISHED
    assert types[0] == "run_started" and types[-1] == "outcome"
    assert list(run.events.values_list("seq", flat=True)) == list(range(1, len(types) + 1))
    assert run.outcome == run.events.last().data
    assert run.prompt_tokens > 0 and run.completion_tokens > 0
    assert [message["seq"] for message in broadcasts] == list(range(1, len(types) + 1))


def test_event_append_is_idempotent_by_sequence(enqueued, broadcasts):
    run = started_run()
    event = {"seq": 1, "type": "phase", "data": {"phase": "opening"}}
    event_append(run=run, event=event)
    event_append(run=run, event=event)
    assert run.events.count() == 1
    assert len(broadcasts) == 1


@pytest.mark.parametrize(
    "event",
    [
        {"seq": 1, "type": "applause", "data": {}},
        {"seq": 1, "type": "phase", "data": {"phase": "opening", "applause": True}},
        {"seq": 1, "type": "vote", "data": {"group": "EPP", "score": 7}},
    ],
    ids=["unknown type", "unknown key", "missing keys"],
)
def test_event_append_refuses_an_event_that_does_not_fit_its_type_and_writes_nothing(enqueued, broadcasts, event):
    run = started_run()
    with pytest.raises(EventInvalid, match=r"event 1"):
        event_append(run=run, event=event)
    assert run.events.count() == 0
    assert broadcasts == []


def test_a_batch_with_one_bad_event_writes_none_of_them(enqueued, broadcasts):
    run = started_run()
    good = {"seq": 1, "type": "phase", "data": {"phase": "opening"}}
    bad = {"seq": 2, "type": "phase", "data": {"phase": "opening", "round": "first"}}
    with pytest.raises(EventInvalid, match=r"event 2 \(phase\): round"):
        services.events_store(run=run, events=[good, bad])
    assert run.events.count() == 0


def test_a_strategy_step_that_does_not_fit_its_type_fails_the_run_after_the_steps_before_it(
    enqueued,
    broadcasts,
    settings,
    monkeypatch,
):
    settings.HEMICYCLE_RUN_MAX_ATTEMPTS = 1
    real_amendment = ParliamentAgents.amendment
    monkeypatch.setattr(ParliamentAgents, "amendment", lambda *a: {**real_amendment(*a), "applause": True})
    run = started_run()
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "EventInvalid" in run.error and "(amendment): applause: Extra inputs are not permitted" in run.error
    types = list(run.events.order_by("seq").values_list("type", flat=True))
    assert "amendment" not in types and types[-3:] == ["draft", "phase", "error"]


def test_a_retried_run_continues_after_its_last_event_without_redoing_it(enqueued, broadcasts):
    reference = started_run()
    run_advance(run_id=reference.pk)
    run = run_create(owner=reference.owner, config=scenario_config(reference.record))
    # A first attempt that died after six events: the log keeps them.
    for event in reference.events.all()[:6]:
        event_append(run=run, event={"seq": event.seq, "type": event.type, "data": event.data})
    run_advance(run_id=run.pk)
    assert run_transcript(run=run) == run_transcript(run=reference)


def test_model_errors_become_error_events_then_the_run_fails_after_bounded_attempts(enqueued, broadcasts, settings):
    settings.HEMICYCLE_RUN_MAX_ATTEMPTS = 2
    run = started_run(model="scripted:fail")
    with pytest.raises(RunRetry):
        run_advance(run_id=run.pk)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    errors = list(run.events.filter(type="error").values_list("data", flat=True))
    assert [error["final"] for error in errors] == [False, True]
    assert run.status == Run.Status.FAILED
    assert run.error


def test_a_run_past_its_attempts_ends_failed_with_the_reason(enqueued, broadcasts, settings):
    settings.HEMICYCLE_RUN_MAX_ATTEMPTS = 1
    run = started_run()
    Run.objects.filter(pk=run.pk).update(attempts=1)  # a worker already died once
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "attempts" in run.error
    assert run.events.last().type == "error"


def test_pause_stops_the_task_and_resume_continues_to_the_same_transcript(enqueued, broadcasts, monkeypatch):
    reference = started_run()
    run_advance(run_id=reference.pk)
    expected = [(type_, data) for _, type_, data in run_transcript(run=reference)]

    run = run_create(owner=reference.owner, config=scenario_config(reference.record))
    real_store = steps.events_store

    def store_then_pause(*, run, events, completions=()):
        status = real_store(run=run, events=events, completions=completions)
        if any(event["seq"] == 5 for event in events):
            run_pause(run=run, user=run.owner)
        return status

    # The run reads its status with each write: a pause that lands just after that read is seen at
    # the next one. Each step is a model call here (the cache is emptied), so each is a write.
    CachedCompletion.objects.all().delete()
    monkeypatch.setattr(steps, "events_store", store_then_pause)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.PAUSED
    assert run.events.last().data == {"action": "paused", "by": run.owner.username}

    monkeypatch.setattr(steps, "events_store", real_store)
    run_resume(run=run, user=run.owner)
    assert enqueued[-1] == run.pk
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    strategy_events = [(type_, data) for _, type_, data in run_transcript(run=run) if type_ != "control"]
    assert strategy_events == expected
    assert list(run.events.filter(type="control").values_list("data__action", flat=True)) == ["paused", "resumed"]


def test_only_the_owner_controls_a_run_and_finished_runs_cannot_be_stopped(enqueued, broadcasts):
    run = started_run()
    intruder = make_user("mallory")
    with pytest.raises(Forbidden):
        run_pause(run=run, user=intruder)
    run_advance(run_id=run.pk)
    with pytest.raises(RunControlError):
        run_stop(run=run, user=run.owner)


def test_stopping_a_paused_run_records_the_stop(enqueued, broadcasts):
    run = started_run()
    run_pause(run=run, user=run.owner)
    run_stop(run=run, user=run.owner)
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED
    assert run.events.last().type == "control" and run.events.last().data["action"] == "stopped"
    run_advance(run_id=run.pk)  # a late task does nothing to a stopped run
    assert run.events.filter(type="run_started").count() == 0


def test_model_error_type_is_what_the_backend_raises():
    # The run service retries on ModelError; the scripted failing backend must raise exactly that.
    from worker.models import model_client

    with pytest.raises(ModelError):
        model_client("scripted:fail", cache=False).complete(
            [{"role": "user", "content": "hi"}], params=Params(), seed=1
        )


def test_an_unexpected_error_is_retried_then_fails_the_run_with_its_reason(enqueued, broadcasts, settings, monkeypatch):
    settings.HEMICYCLE_RUN_MAX_ATTEMPTS = 2
    run = started_run()

    class Broken:
        name = "parliament"
        needs_model = True

        def run(self, scenario, ctx):
            raise RuntimeError("the strategy broke")
            yield  # a generator, like every strategy

    monkeypatch.setattr(steps, "strategy_named", lambda name: Broken())
    with pytest.raises(RunRetry):
        run_advance(run_id=run.pk)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error == "internal error: RuntimeError: the strategy broke"
    assert [e["final"] for e in run.events.filter(type="error").values_list("data", flat=True)] == [False, True]


def test_a_cached_rerun_writes_its_events_in_one_statement_with_the_same_transcript(enqueued, broadcasts, monkeypatch):
    reference = started_run()
    run_advance(run_id=reference.pk)
    writes: list[list[int]] = []
    real_store = steps.events_store

    def counted(*, run, events, completions=()):
        writes.append([event["seq"] for event in events])
        return real_store(run=run, events=events, completions=completions)

    monkeypatch.setattr(steps, "events_store", counted)
    finishes: list[list[int]] = []
    real_finish = steps.run_finish

    def finishing(**kwargs):
        finishes.append([event["seq"] for event in kwargs["unwritten"]])
        return real_finish(**kwargs)

    monkeypatch.setattr(steps, "run_finish", finishing)
    broadcasts.clear()
    layer_messages: list[int] = []
    record = services.broadcast_events
    monkeypatch.setattr(
        services, "broadcast_events", lambda **kw: (layer_messages.append(len(kw["messages"])), record(**kw))
    )
    again = run_create(owner=reference.owner, config=scenario_config(reference.record))
    run_advance(run_id=again.pk)
    again.refresh_from_db()
    assert again.status == Run.Status.FINISHED and again.uncached_steps == 0
    assert run_transcript(run=again) == run_transcript(run=reference)
    # No write before the finish: the whole transcript goes with it (one statement on PostgreSQL).
    assert writes == [] and finishes == [list(range(1, again.events.count() + 1))]
    assert [message["seq"] for message in broadcasts] == finishes[0]  # written, then each broadcast in order
    assert layer_messages == [len(finishes[0])]  # as one message on the channel layer


def test_a_pause_during_cached_steps_takes_effect_before_the_next_model_call(enqueued, broadcasts, monkeypatch):
    from deliberation.engine.models import ScriptedModelClient

    reference = started_run()
    run_advance(run_id=reference.pk)
    CachedCompletion.objects.order_by("-pk").first().delete()  # the last step is not cached any more
    calls = []
    real_complete = ScriptedModelClient.complete
    monkeypatch.setattr(
        ScriptedModelClient,
        "complete",
        lambda self, messages, **kwargs: calls.append(1) or real_complete(self, messages, **kwargs),
    )
    run = run_create(owner=reference.owner, config=scenario_config(reference.record))
    real_store = steps.events_store

    def pause_then_store(*, run, events, completions=()):
        run_pause(run=run, user=run.owner)  # lands while the run held its cached steps
        return real_store(run=run, events=events, completions=completions)

    monkeypatch.setattr(steps, "events_store", pause_then_store)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.PAUSED and calls == []
    assert run.events.last().data == {"action": "paused", "by": run.owner.username}
    monkeypatch.setattr(steps, "events_store", real_store)
    run_resume(run=run, user=run.owner)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED and len(calls) == 1


# A run whose model or judge cannot be built fails at once, with an error event that says why:
# never a "running" run without events that holds an experiment's slot.


def assert_failed_at_once(run: Run, *, reason: str) -> None:
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert reason in run.error
    error = run.events.get(type="error")
    assert error.data["final"] is True and reason in error.data["message"]
    assert run.finished_at is not None


def test_a_run_whose_model_left_the_registry_fails_at_once_naming_it(enqueued, broadcasts):
    from deliberation.registry.models import ModelEntry

    run = started_run(model="scripted:slow")
    ModelEntry.objects.filter(name="scripted:slow").delete()
    run_advance(run_id=run.pk)  # no exception: the task does not retry what cannot mend
    assert_failed_at_once(
        run, reason="drafting model scripted:slow: 'scripted:slow' is no longer in the model registry"
    )
    assert run.attempts == 1


def test_a_run_whose_model_string_became_invalid_fails_at_once(enqueued, broadcasts):
    run = started_run()
    Run.objects.filter(pk=run.pk).update(model="scripted:nope")
    run_advance(run_id=run.pk)
    assert_failed_at_once(
        run, reason="drafting model scripted:nope: 'scripted:nope' is no longer in the model registry"
    )


def test_a_registry_entry_whose_backend_is_unknown_fails_the_run_at_once(enqueued, broadcasts):
    from deliberation.registry.models import ModelEntry

    run = started_run(model="scripted:slow")
    ModelEntry.objects.filter(name="scripted:slow").update(model="scripted:nope")
    run_advance(run_id=run.pk)
    assert_failed_at_once(run, reason="drafting model scripted:slow: unknown scripted model 'nope'")


def test_a_disabled_judge_model_fails_the_run_at_once_naming_the_judge(enqueued, broadcasts):
    from deliberation.registry.models import ModelEntry

    run = started_run(judge="llm", judge_model="scripted:bad-judge")
    ModelEntry.objects.filter(name="scripted:bad-judge").update(enabled=False)
    run_advance(run_id=run.pk)
    assert_failed_at_once(
        run, reason="judge model scripted:bad-judge: 'scripted:bad-judge' is disabled in the model registry"
    )


def test_a_missing_key_fails_the_run_at_once_naming_the_variable_never_a_key(enqueued, broadcasts, monkeypatch):
    from deliberation.registry.models import ModelEntry

    monkeypatch.delenv("HEMICYCLE_TEST_GPU_KEY", raising=False)
    ModelEntry.objects.create(
        name="qwen@gpu1",
        model="hosted_vllm/Qwen/Qwen2.5-7B-Instruct",
        api_base="http://127.0.0.1:9/v1",
        api_key_env="HEMICYCLE_TEST_GPU_KEY",
    )
    run = started_run(model="qwen@gpu1")
    run_advance(run_id=run.pk)
    assert_failed_at_once(
        run,
        reason="drafting model qwen@gpu1: the key of hosted_vllm/Qwen/Qwen2.5-7B-Instruct is missing: "
        "environment variable HEMICYCLE_TEST_GPU_KEY is not set on this worker",
    )


def test_an_advisor_run_briefs_with_its_advisor_model_and_drafts_with_the_runs_model(enqueued, broadcasts):
    import dataclasses

    config = scenario_config(make_record(), strategy="advisor")
    run = run_create(owner=make_user(), config=dataclasses.replace(config, params={"advisor_model": "scripted:slow"}))
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    assert run.events.get(type="signal").data["model"] == "scripted:slow"
    assert CachedCompletion.objects.filter(model="scripted:slow").count() == 1  # the brief
    assert CachedCompletion.objects.filter(model="scripted:default").count() == 1  # the draft


def test_an_advisor_model_that_cannot_run_fails_the_run_naming_it(enqueued, broadcasts):
    import dataclasses

    config = scenario_config(make_record(), strategy="advisor")
    run = run_create(owner=make_user(), config=dataclasses.replace(config, params={"advisor_model": "nope:gone"}))
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "advisor_model nope:gone" in run.error


@pytest.mark.parametrize("strategy", ["amulet", "negotiation"])
def test_a_strategy_from_alignment_research_runs_through_the_service_and_reruns_from_the_cache(
    enqueued, broadcasts, forbid_model_calls, strategy
):
    reference = started_run(strategy=strategy, judge="llm")
    run_advance(run_id=reference.pk)
    reference.refresh_from_db()
    assert reference.status == Run.Status.FINISHED, reference.error
    assert reference.uncached_steps > 0 and reference.completion_tokens > 0
    forbid_model_calls()
    again = run_create(owner=reference.owner, config=scenario_config(reference.record, strategy=strategy, judge="llm"))
    run_advance(run_id=again.pk)
    again.refresh_from_db()
    assert again.status == Run.Status.FINISHED and again.uncached_steps == 0
    assert run_transcript(run=again) == run_transcript(run=reference)


@pytest.mark.parametrize("count", [1, 2])
def test_events_store_writes_the_completions_of_its_calls_with_the_events(enqueued, broadcasts, count):
    run = started_run()
    CachedCompletion.objects.create(**{**completion_row("stored-before", "old"), "hits": 0})
    events = [{"seq": seq, "type": "phase", "data": {"phase": "opening"}} for seq in range(1, count + 1)]
    status = services.events_store(
        run=run, events=events, completions=[completion_row("new"), completion_row("stored-before", "new")]
    )
    assert status == Run.Status.QUEUED and run.events.count() == count
    assert dict(CachedCompletion.objects.values_list("key", "text")) == {"new": "7", "stored-before": "old"}


def test_the_calls_of_a_step_that_failed_are_kept_for_its_retry(enqueued, broadcasts, monkeypatch):
    from deliberation.engine.models import Completion

    def broken(self):
        raise RuntimeError("a bug after the call")

    monkeypatch.setattr(Completion, "usage", broken)  # the draft's step fails once its call answered
    run = started_run(strategy="one-shot", judge="llm")
    with pytest.raises(RunRetry):
        run_advance(run_id=run.pk)
    assert run.events.filter(type="draft").count() == 0 and CachedCompletion.objects.count() == 1
    monkeypatch.undo()
    calls: list[int] = []
    from deliberation.engine.models import ScriptedModelClient

    real_complete = ScriptedModelClient.complete
    monkeypatch.setattr(
        ScriptedModelClient, "complete", lambda self, m, **kw: calls.append(1) or real_complete(self, m, **kw)
    )
    run_advance(run_id=run.pk)  # the retry: the draft from the cache, the votes from the model
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED and run.events.get(type="draft").data["usage"]["cached"] is True
    assert len(calls) == run.events.filter(type="vote").count()  # only the votes asked the model
