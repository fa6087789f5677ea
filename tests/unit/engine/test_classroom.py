"""engine/classroom.py: a sitting's state from its events, the due turn, the teacher's and the
students' actions, agent turns with the parliament's prompts, and the closing tally."""

from datetime import UTC, datetime, timedelta

import pytest

from deliberation.engine import classroom
from deliberation.engine.classroom import Seat, SittingRefused, classroom_settings, sitting_state
from deliberation.engine.events import event_validate
from deliberation.engine.judges import ScriptedJudge
from deliberation.engine.models import ScriptedModelClient
from deliberation.engine.strategies import RunContext, strategy_named
from deliberation.engine.strategies.parliament import phase_order
from tests.unit.engine.conftest import build_scenario

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SEATS = {"EPP": 0.5, "SD": 0.3, "GREEN_EFA": 0.2}  # seat order EPP, SD, GREEN_EFA; EPP is rapporteur


class Play:
    """A session's log in memory: the actions append their events as the service would."""

    def __init__(self, *, rounds=1, phase_seconds=None, words_per_second=0.0, seed=3, **params):
        self.scenario = build_scenario(seats=SEATS)
        self.settings = classroom_settings({"rounds": rounds, **params})
        self.model = ScriptedModelClient()
        self.judge = ScriptedJudge()
        self.seed = seed
        self.events = []
        self.add(
            [
                (
                    "run_started",
                    classroom.opening_data(
                        self.scenario, phase_seconds=phase_seconds, words_per_second=words_per_second
                    ),
                )
            ]
        )

    @property
    def state(self):
        return sitting_state(self.scenario, self.settings, self.events)

    def add(self, new):
        for type_, data in new:
            self.append(type_, data)
        self.events_closing()
        return new

    def append(self, type_, data):
        event = {"seq": len(self.events) + 1, "type": type_, "data": data}
        event_validate(event)  # as event_append does: every classroom event fits its model
        self.events.append(event)

    def events_closing(self):
        for type_, data in classroom.closing_events(sitting_state(self.scenario, self.settings, self.events)):
            self.append(type_, data)

    def join(self, student, group, name=None):
        return self.add([("seat_joined", {"student": student, "name": name or f"s{student}", "group": group})])

    def seat(self, student):
        return self.state.seats[student]

    def start(self, now=NOW):
        return self.add(classroom.start(self.state, by="teacher", now=now))

    def advance(self, now=NOW):
        return self.add(classroom.advance(self.state, by="teacher", now=now))

    def act(self, student, action, **payload):
        return self.add(classroom.student_act(self.state, seat=self.seat(student), action=action, payload=payload))

    def agent(self):
        state = self.state
        turn = state.turn
        assert turn is not None and turn.by == "agent", turn
        return self.add(
            [classroom.agent_turn_event(state, turn, self.events, model=self.model, judge=self.judge, seed=self.seed)]
        )

    def agents_until_students(self):
        while (turn := self.state.turn) is not None and turn.by == "agent":
            self.agent()

    def types(self):
        return [e["type"] for e in self.events]


def test_a_sitting_played_by_agents_alone_says_exactly_what_the_parliament_strategy_says():
    play = Play(rounds=1)
    play.start()
    while play.state.outcome is None:
        play.agents_until_students()
        if play.state.outcome is None:
            play.advance()
    ctx = RunContext(model=ScriptedModelClient(), judge=ScriptedJudge(), seed=3, params={"rounds": 1})
    parliament = list(strategy_named("parliament").run(play.scenario, ctx))

    def said(events):
        keep = ("speech", "draft", "amendment", "amendment_decision", "vote", "tally", "outcome")
        return [
            (e["type"], {k: v for k, v in e["data"].items() if k not in ("by", "usage")})
            for e in events
            if e["type"] in keep
        ]

    assert said(play.events) == said(parliament)
    assert play.state.status == "ended"


def test_turns_follow_seat_order_and_a_seated_group_is_played_by_its_students():
    play = Play()
    play.join(1, "SD")
    play.start()
    turn = play.state.turn
    assert (turn.kind, turn.group, turn.by, turn.key) == ("speech", "EPP", "agent", "opening:speech:EPP")
    play.agent()
    turn = play.state.turn
    assert (turn.group, turn.by) == ("SD", "students")
    with pytest.raises(AssertionError):
        play.agent()
    play.act(1, "speak", text="  SD wants a fund.  ")
    speech = play.events[-1]["data"]
    assert speech == {
        "group": "SD",
        "phase": "opening",
        "text": "SD wants a fund.",
        "by": "students",
        "student": 1,
        "name": "s1",
        "usage": classroom.NO_USAGE,
    }
    assert play.state.turn.group == "GREEN_EFA"


def test_turn_keys_are_stable_and_name_the_round():
    play = Play(rounds=2)
    play.start()
    play.agents_until_students()
    play.advance()
    assert play.state.turn.key == "negotiation1:speech:EPP"
    assert play.state.turn == play.state.turn  # rebuilt from the log, the same turn
    play.agents_until_students()
    play.advance()
    assert play.state.turn.key == "negotiation2:speech:EPP"


def test_a_student_cannot_speak_for_another_group_or_out_of_turn():
    play = Play()
    play.join(1, "SD")
    play.join(2, "GREEN_EFA")
    play.start()
    with pytest.raises(SittingRefused, match="not SD's turn"):
        play.act(1, "speak", text="too early")
    play.agent()
    with pytest.raises(SittingRefused, match="not GREEN_EFA's turn"):
        play.act(2, "speak", text="I am not SD")
    with pytest.raises(SittingRefused, match="not SD's turn to amend"):
        play.act(1, "amend", text="wrong kind")


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: p.add([("control", {"action": "muted", "by": "t", "student": 1, "name": "s1"})]), "muted"),
        (lambda p: p.add([("control", {"action": "removed", "by": "t", "student": 1, "name": "s1"})]), "removed"),
        (lambda p: p.add([("control", {"action": "paused", "by": "t", "remaining": None})]), "paused"),
        (lambda p: p.add([("control", {"action": "ended", "by": "t"})]), "ended"),
    ],
    ids=["muted", "removed", "paused", "ended"],
)
def test_muted_removed_or_a_session_not_live_refuses_the_student(setup, message):
    play = Play()
    play.join(1, "EPP")
    play.start()
    setup(play)
    with pytest.raises(SittingRefused, match=message):
        play.act(1, "speak", text="hello")


def test_unmuting_gives_the_floor_back_and_a_watcher_never_acts():
    play = Play()
    play.join(1, "EPP")
    play.join(2, None)
    play.start()
    play.add([("control", {"action": "muted", "by": "t", "student": 1, "name": "s1"})])
    play.add([("control", {"action": "unmuted", "by": "t", "student": 1, "name": "s1"})])
    play.act(1, "speak", text="back")
    with pytest.raises(SittingRefused, match="watchers"):
        play.act(2, "speak", text="me too")


def test_text_is_limited_and_an_empty_speech_is_refused():
    play = Play()
    play.join(1, "EPP")
    play.start()
    with pytest.raises(SittingRefused, match="write something"):
        play.act(1, "speak", text="   ")
    with pytest.raises(SittingRefused, match="2,000"):
        play.act(1, "speak", text="x" * 2001)
    play.act(1, "speak", text="x" * 2000)


def test_removing_the_last_student_hands_the_group_back_to_its_agent():
    play = Play()
    play.join(1, "EPP")
    play.join(2, "EPP")
    play.start()
    play.add(classroom.seat_control(play.state, by="t", action="remove", student=1))
    assert play.state.turn.by == "students"
    play.add(classroom.seat_control(play.state, by="t", action="remove", student=2))
    assert play.state.turn.by == "agent"
    with pytest.raises(SittingRefused, match="no such student"):
        classroom.seat_control(play.state, by="t", action="mute", student=2)


def test_advance_skips_the_due_speeches_and_opens_the_next_phase():
    play = Play(rounds=0, phase_seconds=60)
    play.join(1, "SD")
    play.start()
    play.agent()
    new = play.advance(now=NOW + timedelta(seconds=5))
    assert [(t, d.get("group"), d.get("skipped")) for t, d in new] == [
        ("speech", "SD", True),
        ("speech", "GREEN_EFA", True),
        ("phase", None, None),
    ]
    assert new[0][1]["text"] == "(no statement)" and new[0][1]["by"] == "students"
    assert new[1][1]["by"] == "agent"
    assert new[-1][1] == {"phase": "drafting", "seconds": 60, "deadline": (NOW + timedelta(seconds=65)).isoformat()}


@pytest.mark.parametrize("rounds", [0, 1, 3])
def test_advancing_goes_through_the_parliament_phase_order(rounds):
    play = Play(rounds=rounds)
    play.start()
    while play.state.phase != "vote":
        play.agents_until_students()
        play.advance()
    phases = [(e["data"]["phase"], e["data"].get("round")) for e in play.events if e["type"] == "phase"]
    assert phases == list(phase_order(rounds))


def test_drafting_cannot_end_before_the_draft_and_students_of_the_rapporteur_write_it():
    play = Play(rounds=0)
    play.join(1, "EPP")
    play.start()
    play.act(1, "speak", text="EPP opens.")
    play.agents_until_students()
    play.advance()
    assert play.state.turn.kind == "draft" and play.state.turn.by == "students"
    assert not play.state.can_advance
    with pytest.raises(SittingRefused, match="draft must exist"):
        play.advance()
    with pytest.raises(SittingRefused, match="cannot be skipped"):
        classroom.skip_turn(play.state, by="t")
    play.act(1, "draft", text="The European Parliament agrees.")
    assert play.state.draft == "The European Parliament agrees." and play.state.can_advance


def to_amendments(play):
    play.start()
    while play.state.phase != "amendments":
        play.agents_until_students()
        play.advance()


def to_decision() -> Play:
    """Students hold EPP (the rapporteur: student 1) and SD (student 2); SD has tabled an amendment."""
    play = Play(rounds=0)
    play.join(1, "EPP")
    play.join(2, "SD")
    play.start()
    play.act(1, "speak", text="EPP opens.")
    play.act(2, "speak", text="SD opens.")
    play.agents_until_students()
    play.advance()
    play.act(1, "draft", text="Draft one.")
    play.advance()
    play.act(2, "amend", text="Add a fund.")
    return play


def test_a_student_rapporteur_decides_amendments_and_an_accepted_one_is_restated_before_the_vote():
    play = to_decision()
    turn = play.state.turn
    assert (turn.kind, turn.group, turn.about, turn.key) == ("decision", "EPP", "SD", "amendments:decision:SD")
    with pytest.raises(SittingRefused, match="not SD's turn to decide"):
        play.act(2, "decide", accept=True, text="mine")
    with pytest.raises(SittingRefused, match="write something"):
        play.act(1, "decide", accept=True, reason="fine")
    play.act(1, "decide", accept=True, reason="fair", text="Draft two, with a fund.")
    assert play.state.version == 2
    new = play.advance()
    types = [t for t, _ in new]
    assert types[-2:] == ["draft", "phase"]
    assert new[-2][1] == {"author": "EPP", "text": "Draft two, with a fund.", "version": 2, "by": "students"}


def test_advance_in_amendments_declines_the_missing_ones_and_rejects_the_undecided():
    play = to_decision()
    new = play.advance()
    assert [(t, d["group"]) for t, d in new[:-1]] == [("amendment_decision", "SD"), ("amendment", "GREEN_EFA")]
    decision = new[0][1]
    assert decision["accepted"] is False and decision["skipped"] and decision["draft_after"] == "Draft one."
    assert new[1][1]["text"] == "" and new[1][1]["skipped"]
    assert new[-1] == ("phase", {"phase": "vote", "seconds": None, "deadline": None})


def test_a_declined_amendment_needs_no_decision():
    play = Play(rounds=0)
    play.join(2, "SD")
    to_amendments(play)
    play.act(2, "amend", text="")
    assert play.state.turn.key == "amendments:amendment:GREEN_EFA"


def test_students_vote_in_any_order_once_and_agents_are_scored_by_the_judge():
    play = Play(rounds=0)
    play.join(1, "SD")
    play.join(2, "GREEN_EFA")
    to_amendments(play)
    play.advance()
    assert play.state.phase == "vote"
    with pytest.raises(SittingRefused, match="whole number"):
        play.act(2, "vote", score=10)
    play.act(2, "vote", score=7)
    with pytest.raises(SittingRefused, match="already voted"):
        play.act(2, "vote", score=1)
    play.agents_until_students()  # the judge scores EPP
    assert play.events[-1]["data"]["by"] == "judge"
    turn = play.state.turn
    assert (turn.kind, turn.group, turn.by) == ("vote", "SD", "students")
    play.act(1, "vote", score=2)
    vote = [e for e in play.events if e["type"] == "vote" and e["data"]["group"] == "SD"][0]["data"]
    assert (vote["position"], vote["by"], vote["student"]) == ("against", "students", 1)
    assert play.types()[-2:] == ["tally", "outcome"]
    state = play.state
    assert state.status == "ended" and state.turn is None
    assert state.outcome["scores"]["GREEN_EFA"] == 7 and state.outcome["scores"]["SD"] == 2


def test_closing_the_vote_lets_the_judge_score_the_groups_that_did_not_cast():
    play = Play(rounds=0)
    play.join(1, "SD")
    to_amendments(play)
    play.advance()
    play.agents_until_students()
    assert play.state.turn.by == "students"
    assert play.advance() == [("control", {"action": "vote_closed", "by": "teacher"})]
    assert play.state.turn.by == "agent" and not play.state.can_advance
    with pytest.raises(SittingRefused, match="vote is closed"):
        play.act(1, "vote", score=5)
    play.agents_until_students()
    assert play.state.outcome is not None


def test_skip_turn_closes_only_the_due_turn():
    play = Play()
    play.start()
    new = play.add(classroom.skip_turn(play.state, by="teacher"))
    assert [(t, d["group"], d["skipped"]) for t, d in new] == [("speech", "EPP", True)]
    assert play.state.turn.group == "SD"


def test_pause_keeps_the_remaining_seconds_and_resume_sets_a_new_deadline():
    play = Play(phase_seconds=100)
    play.start(now=NOW)
    assert play.state.deadline == (NOW + timedelta(seconds=100)).isoformat()
    play.add(classroom.pause(play.state, by="t", now=NOW + timedelta(seconds=30)))
    assert (play.state.status, play.state.remaining, play.state.deadline) == ("paused", 70.0, None)
    with pytest.raises(SittingRefused):
        classroom.pause(play.state, by="t", now=NOW)
    play.add(classroom.resume(play.state, by="t", now=NOW + timedelta(seconds=500)))
    assert play.state.deadline == (NOW + timedelta(seconds=570)).isoformat()


def test_the_timer_advances_only_its_own_phase_deadline_while_live():
    play = Play(phase_seconds=10)
    play.start(now=NOW)
    deadline = play.state.deadline
    assert classroom.timer_expired(play.state, deadline="2000-01-01T00:00:00+00:00", now=NOW) == []
    play.add(classroom.pause(play.state, by="t", now=NOW))
    assert classroom.timer_expired(play.state, deadline=deadline, now=NOW) == []
    play.add(classroom.resume(play.state, by="t", now=NOW))
    new = play.add(classroom.timer_expired(play.state, deadline=play.state.deadline, now=NOW))
    assert new[-1][1]["phase"] == "negotiation" and play.state.phase == "negotiation"


def test_reading_seconds_follow_the_last_agent_text_and_the_reveal_speed():
    play = Play(words_per_second=2.0)
    play.join(1, "SD")
    play.start()
    play.agent()
    words = len(play.events[-1]["data"]["text"].split())
    assert play.state.reading_seconds == pytest.approx(words / 2)
    play.add(classroom.reveal_speed(play.state, by="t", words_per_second=0))
    assert play.state.reading_seconds == 0
    play.add(classroom.reveal_speed(play.state, by="t", words_per_second=4))
    play.act(1, "speak", text="students are read as they type")
    assert play.state.reading_seconds == 0
    with pytest.raises(SittingRefused):
        classroom.reveal_speed(play.state, by="t", words_per_second=-1)


def test_start_happens_once_and_lobby_cannot_advance():
    play = Play()
    with pytest.raises(SittingRefused, match="not started"):
        play.advance()
    play.start()
    with pytest.raises(SittingRefused, match="already started"):
        play.start()


def test_a_mediator_rapporteur_is_always_an_agent_and_every_group_may_amend():
    play = Play(rounds=0, rapporteur="mediator")
    for student, group in enumerate(("EPP", "SD", "GREEN_EFA"), 1):
        play.join(student, group)
    play.start()
    for student in (1, 2, 3):
        play.act(student, "speak", text="hello")
    play.advance()
    assert (play.state.turn.group, play.state.turn.by) == ("mediator", "agent")
    play.agent()
    play.advance()
    assert play.state.turn.key == "amendments:amendment:EPP"


def test_seat_joined_events_are_service_events_the_seat_is_read_back():
    play = Play()
    play.join(5, None, name="Ada")
    assert play.state.seats[5] == Seat(5, "Ada", None)
    assert play.state.held == frozenset()


def test_control_characters_are_dropped_from_student_text_but_line_breaks_stay():
    play = Play()
    play.join(1, "EPP")
    play.start()
    play.act(1, "speak", text="first\x00 line\nsecond\tline\x1b[31m")
    assert play.events[-1]["data"]["text"] == "first line\nsecond\tline[31m"


def test_an_accepted_student_amendment_is_in_the_new_draft_when_the_rapporteur_left_the_text_as_it_was():
    play = to_decision()
    play.act(1, "decide", accept=True, reason="fair", text="Draft one.")
    assert play.state.draft == "Draft one.\n\nAdd a fund." and play.state.version == 2
    decision = play.events[-1]["data"]
    assert (decision["accepted"], decision["draft_before"], decision["draft_after"]) == (
        True,
        "Draft one.",
        "Draft one.\n\nAdd a fund.",
    )


def test_a_rapporteur_who_wrote_the_amendment_in_keeps_the_draft_as_written():
    play = to_decision()
    play.act(1, "decide", accept=True, reason="fair", text="Draft one. Add a  fund.")
    assert play.state.draft == "Draft one. Add a  fund."


def test_an_agent_rapporteur_that_accepts_a_student_amendment_puts_it_in_the_new_draft():
    play = Play(rounds=0)
    play.join(2, "SD")  # EPP, the rapporteur, is an agent: the scripted model writes its texts
    play.model = ScriptedModelClient(
        responder=lambda messages, params, seed: (
            "ACCEPT: it brings votes."
            if "ACCEPT or REJECT" in messages[-1]["content"]
            else "The European Parliament agrees on a water plan."
        )
    )
    play.start()
    play.agents_until_students()
    play.act(2, "speak", text="SD opens.")
    while play.state.phase != "amendments":
        play.agents_until_students()
        play.advance()
    play.agents_until_students()
    play.act(2, "amend", text="Add a fund for poorer regions.")
    play.agents_until_students()
    decision = next(e["data"] for e in play.events if e["type"] == "amendment_decision" and e["data"]["group"] == "SD")
    assert decision["accepted"] and decision["by"] == "agent"
    assert decision["draft_after"].endswith("\n\nAdd a fund for poorer regions.")
    # A later revision by the model (the Greens' amendment, accepted) keeps it too.
    later = [e["data"] for e in play.events if e["type"] == "amendment_decision" and e["data"]["group"] == "GREEN_EFA"]
    assert later and later[0]["accepted"] and "Add a fund for poorer regions." in later[0]["draft_after"]
    assert "Add a fund for poorer regions." in play.state.draft
