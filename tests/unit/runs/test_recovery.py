"""Runs whose worker was lost are found by their heartbeat and queued again at once; model calls
that answered after retries show in the run's events (issue 19, section 4)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from deliberation.engine.events import SERVICE_EVENT_TYPES
from deliberation.runs import services
from deliberation.runs.advance import run_advance
from deliberation.runs.models import Run, RunEvent
from deliberation.runs.recovery import runs_heartbeat, runs_reclaim_lost, runs_waiting_heartbeat
from deliberation.runs.selectors import run_transcript
from deliberation.runs.services import WORKER_LOST, RunRetry, run_create, run_pause, run_resume
from tests.factories import make_record, make_user, scenario_config
from worker import heartbeat

pytestmark = pytest.mark.django_db


def strategy_transcript(run: Run) -> list[tuple[str, dict]]:
    """What the strategy said and decided, in order, without the service's events around it."""
    return [(type_, data) for _, type_, data in run_transcript(run=run) if type_ not in SERVICE_EVENT_TYPES]


def interrupted_run(owner, record, *, events: int, silent_s: float) -> Run:
    """A run whose worker died after `events` events, its last heartbeat `silent_s` ago: the
    uninterrupted run's first events, then nothing."""
    reference = run_create(owner=owner, config=scenario_config(record))
    run_advance(run_id=reference.pk)
    run = run_create(owner=owner, config=scenario_config(record))
    RunEvent.objects.bulk_create(
        RunEvent(run=run, seq=event.seq, type=event.type, data=event.data)
        for event in reference.events.order_by("seq")[:events]
    )
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RUNNING,
        attempts=1,
        started_at=timezone.now(),
        heartbeat_at=timezone.now() - timedelta(seconds=silent_s),
    )
    return run


def test_a_running_run_whose_heartbeat_stopped_is_queued_again_with_an_event_and_finishes_as_if_uninterrupted(
    enqueued, django_capture_on_commit_callbacks
):
    owner, record = make_user(), make_record()
    reference = run_create(owner=owner, config=scenario_config(record))
    run_advance(run_id=reference.pk)
    lost = interrupted_run(owner, record, events=5, silent_s=45)
    alive = interrupted_run(owner, record, events=5, silent_s=5)
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert runs_reclaim_lost(lost_after_s=30) == [lost.pk]
    assert enqueued == [lost.pk]  # once committed
    lost.refresh_from_db()
    assert lost.status == Run.Status.QUEUED
    resumed = lost.events.order_by("seq").last()
    assert (resumed.seq, resumed.type, resumed.data) == (
        6,
        "control",
        {"action": "resumed", "reason": WORKER_LOST, "attempt": 2},
    )
    assert Run.objects.get(pk=alive.pk).status == Run.Status.RUNNING  # its worker still beats
    assert runs_reclaim_lost(lost_after_s=30) == []  # queued now: not taken twice

    run_advance(run_id=lost.pk)  # the task the reclaim enqueued
    lost.refresh_from_db()
    assert lost.status == Run.Status.FINISHED and lost.attempts == 2
    assert strategy_transcript(lost) == strategy_transcript(reference)
    assert [e.data.get("reason") for e in lost.events.filter(type="control")] == [WORKER_LOST]


def test_a_task_that_finds_its_run_still_running_announces_the_lost_worker(enqueued):
    """The broker's own redelivery (after its visibility timeout) or the stuck-run sweep reach a
    run its dead worker left running: the new task says so before it continues."""
    owner, record = make_user(), make_record()
    run = interrupted_run(owner, record, events=3, silent_s=3600)
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    control = run.events.get(type="control")
    assert (control.seq, control.data) == (4, {"action": "resumed", "reason": WORKER_LOST, "attempt": 2})


def test_classroom_runs_and_runs_in_other_states_are_never_reclaimed(enqueued):
    owner, record = make_user(), make_record()
    for status in (Run.Status.PAUSED, Run.Status.FINISHED, Run.Status.FAILED, Run.Status.STOPPED):
        run = run_create(owner=owner, config=scenario_config(record))
        Run.objects.filter(pk=run.pk).update(status=status, heartbeat_at=timezone.now() - timedelta(hours=1))
    waiting = run_create(owner=owner, config=scenario_config(record))  # in the broker's queue: no holder, no stamp
    Run.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(hours=1))
    classroom = run_create(owner=owner, config=scenario_config(record))
    Run.objects.filter(pk=classroom.pk).update(
        status=Run.Status.RUNNING,
        strategy=services.CLASSROOM_STRATEGY,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    assert runs_reclaim_lost(lost_after_s=30) == []


def test_a_queued_run_whose_receiving_worker_died_is_queued_again_and_one_waiting_in_the_queue_is_not(
    enqueued, django_capture_on_commit_callbacks
):
    """A worker received the run's task and died before starting it: prefetched, or holding a
    retry's countdown. Its stamps stop; the run comes back in seconds, not the broker's 2 hours."""
    owner, record = make_user(), make_record()
    reference = run_create(owner=owner, config=scenario_config(record))
    run_advance(run_id=reference.pk)
    retrying = interrupted_run(owner, record, events=4, silent_s=45)  # its worker held the retry's countdown
    Run.objects.filter(pk=retrying.pk).update(status=Run.Status.QUEUED)
    prefetched = run_create(owner=owner, config=scenario_config(record))  # received, never started
    held = run_create(owner=owner, config=scenario_config(record))  # received by a worker that still beats
    waiting = run_create(owner=owner, config=scenario_config(record))  # still in the broker's queue
    Run.objects.filter(pk=prefetched.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=45))
    Run.objects.filter(pk=held.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=5))
    started = run_create(owner=owner, config=scenario_config(record))  # taken, its worker died before any event
    Run.objects.filter(pk=started.pk).update(
        status=Run.Status.RUNNING, attempts=1, heartbeat_at=timezone.now() - timedelta(seconds=45)
    )
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert sorted(runs_reclaim_lost(lost_after_s=30)) == [retrying.pk, prefetched.pk, started.pk]
    assert sorted(enqueued) == [retrying.pk, prefetched.pk, started.pk]
    assert [e.data["reason"] for e in started.events.all()] == [WORKER_LOST]  # a taken run says it resumes
    for run in (retrying, prefetched):
        run.refresh_from_db()
        assert (run.status, run.heartbeat_at) == (Run.Status.QUEUED, None)  # waiting again, unheld
    assert retrying.events.order_by("seq").last().data == {"action": "resumed", "reason": WORKER_LOST, "attempt": 2}
    assert not prefetched.events.exists()  # it never started: nothing to resume, the strategy starts at seq 1
    assert Run.objects.get(pk=held.pk).heartbeat_at is not None and Run.objects.get(pk=waiting.pk).heartbeat_at is None
    assert runs_reclaim_lost(lost_after_s=30) == []  # queued again: not taken twice

    for run in (retrying, prefetched):
        run_advance(run_id=run.pk)  # the tasks the reclaim enqueued
        run.refresh_from_db()
        assert run.status == Run.Status.FINISHED
        assert strategy_transcript(run) == strategy_transcript(reference)


def test_every_way_back_to_queued_leaves_no_old_stamp_behind(enqueued, settings):
    """A stamp on a queued run means a worker holds its task; one left from an earlier holder
    would make a run that only waits in the queue look lost."""
    owner, record = make_user(), make_record()
    paused = run_create(owner=owner, config=scenario_config(record))
    Run.objects.filter(pk=paused.pk).update(status=Run.Status.RUNNING, heartbeat_at=timezone.now())
    run_pause(run=paused, user=owner)
    run_resume(run=paused, user=owner)
    assert Run.objects.get(pk=paused.pk).heartbeat_at is None

    settings.HEMICYCLE_RUN_MAX_ATTEMPTS = 3
    failing = run_create(owner=owner, config=scenario_config(record, model="scripted:fail"))
    with pytest.raises(RunRetry):  # the task retries after a countdown
        run_advance(run_id=failing.pk)
    failing.refresh_from_db()
    assert (failing.status, failing.heartbeat_at) == (Run.Status.QUEUED, None)

    before = timezone.now()
    played_at_once = run_create(owner=owner, config=scenario_config(record), enqueue=False)  # its creator plays it
    assert played_at_once.heartbeat_at >= before


def test_the_waiting_stamp_marks_queued_runs_and_the_running_stamp_running_runs(enqueued):
    owner, record = make_user(), make_record()
    queued = run_create(owner=owner, config=scenario_config(record))
    running = interrupted_run(owner, record, events=2, silent_s=600)
    assert runs_waiting_heartbeat(run_ids=[queued.pk, running.pk]) == 1
    assert Run.objects.get(pk=queued.pk).heartbeat_at is not None
    assert runs_heartbeat(run_ids=[queued.pk, running.pk]) == 1
    assert Run.objects.get(pk=running.pk).heartbeat_at > timezone.now() - timedelta(seconds=60)


def test_a_received_task_holds_its_run_from_its_arrival_until_it_starts(settings):
    settings.HEMICYCLE_RUN_HEARTBEAT_S = 3600
    heartbeat.heartbeat_hold(task_id="t-1", run_id=51, stamp=runs_waiting_heartbeat)
    heartbeat.heartbeat_hold(task_id="t-1", run_id=51, stamp=runs_waiting_heartbeat)  # one arrival, one hold
    heartbeat.heartbeat_hold(task_id="t-2", run_id=52, stamp=runs_waiting_heartbeat)
    assert sorted(heartbeat.runs_held(runs_waiting_heartbeat)) == [51, 52]
    assert heartbeat.runs_held(runs_heartbeat) == []
    heartbeat.heartbeat_release(task_id="t-1")
    heartbeat.heartbeat_release(task_id="t-1")
    assert heartbeat.runs_held(runs_waiting_heartbeat) == [52]
    heartbeat.heartbeat_release(task_id="t-2")
    assert heartbeat.runs_held() == []
    settings.HEMICYCLE_RUN_HEARTBEAT_S = 0  # the embedded worker's setting: nothing held
    heartbeat.heartbeat_hold(task_id="t-3", run_id=53, stamp=runs_waiting_heartbeat)
    assert heartbeat.runs_held() == []


def test_the_task_stamps_the_run_when_it_takes_it_and_the_heartbeat_stamps_running_runs_only(enqueued):
    owner, record = make_user(), make_record()
    run = run_create(owner=owner, config=scenario_config(record))
    before = timezone.now()
    run_advance(run_id=run.pk)
    assert Run.objects.get(pk=run.pk).heartbeat_at >= before

    running = interrupted_run(owner, record, events=2, silent_s=600)
    finished = Run.objects.get(pk=run.pk)
    assert runs_heartbeat(run_ids=[running.pk, finished.pk]) == 1
    assert Run.objects.get(pk=running.pk).heartbeat_at >= before
    assert Run.objects.get(pk=finished.pk).heartbeat_at == finished.heartbeat_at


def test_a_worker_process_holds_each_run_while_a_task_advances_it(settings):
    settings.HEMICYCLE_RUN_HEARTBEAT_S = 3600  # the thread starts, and sleeps through the test
    with heartbeat.run_heartbeat(run_id=41, stamp=runs_heartbeat):
        with heartbeat.run_heartbeat(run_id=41, stamp=runs_heartbeat):  # a duplicate task of the same run
            assert heartbeat.runs_held() == [41]
        assert heartbeat.runs_held() == [41]
    assert heartbeat.runs_held() == []
    settings.HEMICYCLE_RUN_HEARTBEAT_S = 0  # the embedded worker: no thread, nothing held
    with heartbeat.run_heartbeat(run_id=42, stamp=runs_heartbeat):
        assert heartbeat.runs_held() == []


def test_a_second_task_leaves_a_run_alone_while_its_worker_beats(enqueued):
    """Two tasks of one run (a reclaim's and the broker's redelivery, say): only one advances it."""
    owner, record = make_user(), make_record()
    run = interrupted_run(owner, record, events=3, silent_s=5)  # its worker stamped it 5 s ago
    run_advance(run_id=run.pk)
    after = Run.objects.get(pk=run.pk)
    assert (after.status, after.attempts, after.events.count()) == (Run.Status.RUNNING, 1, 3)


# --- model retries in the run's events -------------------------------------------------------------


def retries_of(run: Run) -> list[tuple[int, str, list]]:
    return [
        (event.seq, event.type, event.data["usage"]["retries"])
        for event in run.events.order_by("seq")
        if (event.data.get("usage") or {}).get("retries")
    ]


def test_model_calls_that_answered_after_a_retry_show_in_their_steps_events_and_the_rest_is_unchanged(enqueued):
    owner, record = make_user(), make_record()
    reference = run_create(owner=owner, config=scenario_config(record))
    run_advance(run_id=reference.pk)
    flaky = run_create(owner=owner, config=scenario_config(record, model="scripted:flaky"))
    run_advance(run_id=flaky.pk)

    flaky.refresh_from_db()
    assert flaky.status == Run.Status.FINISHED
    retried = retries_of(flaky)
    model_steps = sum(
        1
        for event in flaky.events.filter(type__in=["speech", "draft", "amendment", "amendment_decision"])
        if "usage" in event.data  # a draft that an accepted amendment made calls no model
    )
    # Every call of the drafting model needed two attempts; the scripted judge calls none.
    assert len(retried) == model_steps > 0
    assert {type_ for _, type_, _ in retried} <= {"speech", "draft", "amendment", "amendment_decision"}
    assert retried[0][2] == [
        {
            "model": "scripted:flaky",
            "attempts": 2,
            "errors": ["TimeoutError: scripted:flaky times out on a first attempt"],
            "waited_s": 0.01,
        }
    ]
    # What was said and decided, with the same numbers: retries are part of the cost of saying it.
    assert run_transcript(run=flaky) == run_transcript(run=reference)


def test_a_resumed_run_replays_the_steps_that_needed_retries(enqueued):
    owner, record = make_user(), make_record()
    whole = run_create(owner=owner, config=scenario_config(record, model="scripted:flaky"))
    run_advance(run_id=whole.pk)
    cut_after = retries_of(whole)[1][0]
    cut = run_create(owner=owner, config=scenario_config(record, model="scripted:flaky"))
    RunEvent.objects.bulk_create(
        RunEvent(run=cut, seq=e.seq, type=e.type, data=e.data) for e in whole.events.filter(seq__lte=cut_after)
    )
    Run.objects.filter(pk=cut.pk).update(status=Run.Status.QUEUED, attempts=1)  # say, reclaimed

    run_advance(run_id=cut.pk)  # its later calls come from the cache: no retries after the cut
    cut.refresh_from_db()
    assert cut.status == Run.Status.FINISHED
    assert run_transcript(run=cut) == run_transcript(run=whole)
    assert retries_of(cut) == [retry for retry in retries_of(whole) if retry[0] <= cut_after]
