"""Classroom services: opening, joining, seat tokens, join limits, every action through
classroom_act, agent turns and the timer, and the session's run finishing like a run."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from deliberation.classroom import services
from deliberation.classroom.models import CODE_ALPHABET, ClassSession, Student
from deliberation.classroom.selectors import session_sitting, student_for_token
from deliberation.classroom.services import ClassroomError, ClassroomRefused
from deliberation.registry.models import UserBudget
from deliberation.runs.budgets import BudgetExceeded, run_steps_estimate, spending_for
from deliberation.runs.models import CLASSROOM_STRATEGY, Run, RunEvent
from deliberation.runs.selectors import uncached_steps
from deliberation.runs.services import run_create
from deliberation.scenarios.services import scenario_save
from tests.factories import make_record, make_user, scenario_config
from tests.unit.classroom.conftest import act, open_session, play_agents, teach

pytestmark = pytest.mark.django_db


def types(class_session) -> list[str]:
    return list(class_session.run.events.order_by("seq").values_list("type", flat=True))


def last(class_session) -> dict:
    return class_session.run.events.order_by("-seq").first().data


def refresh(class_session) -> ClassSession:
    return ClassSession.objects.select_related("run", "teacher").get(pk=class_session.pk)


def test_opening_makes_a_lobby_session_with_a_classroom_run_and_a_code_without_look_alikes():
    session = open_session(phase_seconds=90, words_per_second=2.5)
    assert session.status == "lobby" and len(session.code) == 6
    assert set(session.code) <= set(CODE_ALPHABET)
    run = session.run
    assert (run.strategy, run.status, run.owner_id, run.model) == (
        "classroom",
        "queued",
        session.teacher_id,
        "scripted:default",
    )
    assert run.scenario == session.scenario and run.groups == ["EPP", "SD", "ALDE"]
    started = run.events.get()
    assert started.type == "run_started"
    assert started.data["classroom"] is True and started.data["strategy"] == "classroom"
    assert (started.data["phase_seconds"], started.data["words_per_second"]) == (90, 2.5)


def test_the_oracle_judge_becomes_the_llm_judge_since_it_scores_only_the_adopted_text():
    assert open_session(strategy="real-resolution", judge="real-votes").run.judge == "llm"


@pytest.mark.parametrize("seconds, speed", [(5, 1.0), (4000, 1.0), (60, -1.0), (60, 500.0)])
def test_opening_refuses_a_timer_or_reveal_speed_out_of_range(seconds, speed):
    with pytest.raises(ClassroomError):
        open_session(phase_seconds=seconds, words_per_second=speed)


def test_a_student_joins_a_seat_or_watches_and_the_log_says_so():
    session = open_session()
    ada = services.student_join(class_session=session, name="  Ada   Lovelace ", group="SD")
    bob = services.student_join(class_session=session, name="Bob", group=None)
    assert (ada.name, ada.group, bob.group) == ("Ada Lovelace", "SD", "")
    joined = list(session.run.events.filter(type="seat_joined").values_list("data", flat=True))
    assert joined == [
        {"student": ada.pk, "name": "Ada Lovelace", "group": "SD"},
        {"student": bob.pk, "name": "Bob", "group": None},
    ]


@pytest.mark.parametrize(
    "name, group, message",
    [
        ("   ", "SD", "display name"),
        ("x" * 41, "SD", "at most 40"),
        ("Ada", "ECR", "no seat"),
        ("ada", "EPP", "already called"),
    ],
)
def test_join_refuses_bad_names_unknown_seats_and_taken_names(name, group, message):
    session = open_session()
    services.student_join(class_session=session, name="Ada", group="SD")
    with pytest.raises(ClassroomError, match=message):
        services.student_join(class_session=session, name=name, group=group)
    assert Student.objects.count() == 1


def test_control_characters_leave_a_name_and_a_name_of_only_those_is_refused():
    session = open_session()
    assert services.student_join(class_session=session, name="A\x00da\x1b", group=None).name == "Ada"
    with pytest.raises(ClassroomError, match="display name"):
        services.student_join(class_session=session, name="\x00\x07", group=None)


def test_no_one_joins_an_ended_session():
    session = open_session()
    teach(session, "end")
    with pytest.raises(ClassroomError, match="ended"):
        services.student_join(class_session=refresh(session), name="Ada", group="SD")


def test_a_seat_token_names_its_student_and_nothing_else():
    session, other = open_session(), open_session(make_user("other"))
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    token = services.seat_token(student=ada)
    assert student_for_token(class_session=session, token=token) == ada
    assert student_for_token(class_session=other, token=token) is None
    assert student_for_token(class_session=session, token=token[:-2] + "xx") is None
    assert student_for_token(class_session=session, token="") is None
    teach(session, "remove", student=ada.pk)
    assert student_for_token(class_session=session, token=token) is None


def test_only_the_sessions_teacher_controls_it():
    session = open_session()
    with pytest.raises(ClassroomRefused, match="teacher"):
        services.classroom_act(class_session=session, teacher=make_user("mallory"), action="start", payload={})
    with pytest.raises(ClassroomRefused, match="unknown action"):
        teach(session, "explode")
    assert types(session) == ["run_started"]


def test_start_opens_the_first_phase_runs_the_run_and_queues_the_first_agent_turn(
    queued, django_capture_on_commit_callbacks
):
    session = open_session(phase_seconds=60)
    with django_capture_on_commit_callbacks(execute=True):
        teach(session, "start")
    session = refresh(session)
    assert types(session) == ["run_started", "control", "phase"]
    assert session.status == "live" and session.started_at is not None and session.deadline is not None
    assert session.run.status == Run.Status.RUNNING and session.run.started_at is not None
    assert queued["agent"] == [
        {"session_id": session.pk, "turn_key": "opening:speech:EPP", "model": "scripted:default", "countdown": 0.0}
    ]
    assert queued["timer"] == [{"session_id": session.pk, "deadline": last(session)["deadline"]}]


def test_an_agent_turn_is_appended_once_and_a_stale_one_is_dropped():
    session = open_session()
    teach(session, "start")
    services.classroom_agent_turn(session_id=session.pk, turn_key="opening:speech:EPP")
    services.classroom_agent_turn(session_id=session.pk, turn_key="opening:speech:EPP")  # redelivered
    speeches = list(session.run.events.filter(type="speech").values_list("data", flat=True))
    assert [(s["group"], s["by"]) for s in speeches] == [("EPP", "agent")]
    assert speeches[0]["usage"]["completion_tokens"] > 0


def test_an_agent_turn_is_dropped_once_a_student_has_taken_the_seat():
    session = open_session()
    teach(session, "start")
    services.student_join(class_session=session, name="Ada", group="EPP")
    services.classroom_agent_turn(session_id=session.pk, turn_key="opening:speech:EPP")
    assert not session.run.events.filter(type="speech").exists()


def test_the_next_agent_turn_waits_for_the_room_to_read_the_last_agent_text(queued, django_capture_on_commit_callbacks):
    session = open_session(words_per_second=4.0)
    teach(session, "start")
    with django_capture_on_commit_callbacks(execute=True):
        services.classroom_agent_turn(session_id=session.pk, turn_key="opening:speech:EPP")
    words = len(last(session)["text"].split())
    assert queued["agent"][-1]["turn_key"] == "opening:speech:SD"
    assert queued["agent"][-1]["countdown"] == pytest.approx(words / 4.0)
    with django_capture_on_commit_callbacks(execute=True):
        teach(session, "reveal_speed", words_per_second=0)
    assert refresh(session).words_per_second == 0


def test_a_student_speaks_only_for_their_group_in_its_turn():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    teach(session, "start")
    with pytest.raises(ClassroomRefused, match="not SD's turn"):
        act(session, ada, "speak", text="too early")
    play_agents(session)
    act(session, ada, "speak", text="<b>SD</b> wants a fund.")
    speech = last(session)
    assert (speech["group"], speech["by"], speech["student"], speech["text"]) == (
        "SD",
        "students",
        ada.pk,
        "<b>SD</b> wants a fund.",
    )


def test_a_muted_or_removed_student_is_refused_and_unmuting_restores_the_floor():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="EPP")
    teach(session, "start")
    teach(session, "mute", student=ada.pk)
    assert Student.objects.get(pk=ada.pk).muted
    with pytest.raises(ClassroomRefused, match="muted"):
        act(session, ada, "speak", text="hello")
    teach(session, "unmute", student=ada.pk)
    act(session, ada, "speak", text="hello")
    teach(session, "remove", student=ada.pk)
    assert Student.objects.get(pk=ada.pk).removed
    with pytest.raises(ClassroomRefused, match="removed"):
        act(session, ada, "vote", score=3)
    assert [d["action"] for d in session.run.events.filter(type="control").values_list("data", flat=True)] == [
        "started",
        "muted",
        "unmuted",
        "removed",
    ]


def test_a_student_of_another_session_is_refused():
    session, other = open_session(), open_session(make_user("other"))
    eve = services.student_join(class_session=other, name="Eve", group="EPP")
    teach(session, "start")
    with pytest.raises(ClassroomRefused, match="not in this session"):
        act(session, eve, "speak", text="intruding")


def test_a_session_played_to_the_end_finishes_its_run_like_a_run():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    teach(session, "start")
    play_agents(session)
    act(session, ada, "speak", text="SD opens.")
    play_agents(session)
    teach(session, "advance")  # to drafting
    play_agents(session)
    teach(session, "advance")  # to amendments
    play_agents(session)
    act(session, ada, "amend", text="Add a fund for poorer regions.")
    play_agents(session)
    teach(session, "advance")  # to the vote
    play_agents(session)
    act(session, ada, "vote", score=8)
    session = refresh(session)
    assert types(session)[-2:] == ["tally", "outcome"]
    run = session.run
    assert run.status == Run.Status.FINISHED and run.finished_at is not None
    assert run.outcome["scores"]["SD"] == 8 and run.goal_value in (0.0, 1.0)
    assert run.completion_tokens > 0
    assert session.status == "ended" and session.ended_at is not None
    with pytest.raises(ClassroomRefused):
        teach(session, "advance")


def another_session(teacher, name: str) -> ClassSession:
    """open_session's, of a record of its own (open_session makes one record per teacher)."""
    config = scenario_config(make_record(title=f"Regulation {name}"), seat_structure="equal", rounds=0)
    scenario = scenario_save(owner=teacher, name=name, config=config)
    return services.class_session_open(teacher=teacher, scenario=scenario, phase_seconds=None, words_per_second=0.0)


def test_a_class_session_counts_against_the_teachers_budget_like_any_run(queued):
    """Its agents call the model for the teacher: opening one is checked, one in the lobby or live
    counts its estimate, an ended one what its agents spent."""
    teacher = make_user("teacher")
    first = open_session(teacher)  # no budget yet
    run = first.run
    estimate = run_steps_estimate(strategy=CLASSROOM_STRATEGY, party_count=3, judge=run.judge, params=run.params)
    assert estimate > 0
    UserBudget.objects.create(user=teacher, steps_per_day=2 * estimate)
    assert spending_for(user=teacher).steps == estimate  # in the lobby: its estimate
    another_session(teacher, "second")  # fits exactly
    with pytest.raises(ClassroomError, match="budget: this needs up to"):
        another_session(teacher, "third")
    with pytest.raises(BudgetExceeded):
        run_create(owner=teacher, config=scenario_config(make_record(), user=teacher))
    assert ClassSession.objects.filter(teacher=teacher).count() == 2  # the refused one left nothing

    teach(first, "start")
    play_agents(first)  # no students: the agents speak for every group
    teach(first, "end")
    spent = uncached_steps(data.get("usage") for data in run.events.values_list("data", flat=True))
    assert spent > 0
    assert spending_for(user=teacher).steps == spent + estimate  # what it spent, and the other's estimate


def test_ending_early_stops_the_run():
    session = open_session()
    teach(session, "start")
    teach(session, "end")
    session = refresh(session)
    assert session.status == "ended" and session.run.status == Run.Status.STOPPED
    assert session.run.finished_at is not None


def test_the_timer_advances_its_own_phase_only(queued):
    session = open_session(phase_seconds=30)
    teach(session, "start")
    deadline = last(session)["deadline"]
    services.classroom_timer_expired(session_id=session.pk, deadline="2000-01-01T00:00:00+00:00")
    assert session_sitting(class_session=session).phase == "opening"
    services.classroom_timer_expired(session_id=session.pk, deadline=deadline)
    sitting = session_sitting(class_session=session)
    assert sitting.phase == "drafting"  # rounds=0: no negotiation
    skipped = list(session.run.events.filter(type="speech").values_list("data", flat=True))
    assert all(s["skipped"] for s in skipped) and len(skipped) == 3


def test_pause_and_resume_keep_the_timer_and_mirror_it_on_the_session(queued, django_capture_on_commit_callbacks):
    session = open_session(phase_seconds=60)
    teach(session, "start")
    teach(session, "pause")
    session = refresh(session)
    assert (session.status, session.deadline, session.run.status) == ("paused", None, Run.Status.PAUSED)
    assert 55 <= session.remaining <= 60
    with django_capture_on_commit_callbacks(execute=True):
        teach(session, "resume")
    session = refresh(session)
    assert session.status == "live" and session.deadline > timezone.now() + timedelta(seconds=50)
    assert queued["timer"][-1]["deadline"] == datetime.isoformat(session.deadline)
    assert queued["agent"][-1]["turn_key"] == "opening:speech:EPP"  # resuming queues the due agent turn


def test_a_failing_model_leaves_the_turn_due_and_says_why():
    session = open_session(model="scripted:fail")
    teach(session, "start")
    services.classroom_agent_turn(session_id=session.pk, turn_key="opening:speech:EPP")
    error = session.run.events.get(type="error").data
    assert error["turn"] == "opening:speech:EPP" and "EPP" in error["message"]
    assert session_sitting(class_session=session).turn.key == "opening:speech:EPP"
    teach(session, "skip_turn")
    assert session_sitting(class_session=session).turn.key == "opening:speech:SD"


def test_presence_counts_sockets_across_processes_in_the_database():
    session = open_session()
    ada = services.student_join(class_session=session, name="Ada", group="SD")
    services.student_connected(student=ada)
    services.student_connected(student=ada)
    services.student_disconnected(student=ada)
    assert Student.objects.get(pk=ada.pk).connections == 1
    services.student_disconnected(student=ada)
    services.student_disconnected(student=ada)
    assert Student.objects.get(pk=ada.pk).connections == 0


def test_a_nudge_requeues_an_agent_turn_a_lost_task_left_and_fires_a_passed_timer(queued):
    session = open_session(phase_seconds=60)
    teach(session, "start")
    assert services.classroom_nudge(class_session=session) is None  # just queued: not stalled
    RunEvent.objects.filter(run=session.run).update(at=timezone.now() - timedelta(seconds=services.STALLED_S + 1))
    assert services.classroom_nudge(class_session=session) == "agent"
    assert queued["agent"][-1]["turn_key"] == "opening:speech:EPP"
    phase = session.run.events.get(type="phase")  # the timer ran out while the server was down
    phase.data["deadline"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    phase.save()
    assert services.classroom_nudge(class_session=session) == "timer"
    assert session_sitting(class_session=session).phase == "drafting"
