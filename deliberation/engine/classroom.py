"""A classroom sitting: the parliament strategy played by students and agents together.

A strategy generates its whole run; a sitting is moved from outside, one event at a time: the
teacher starts it and advances the phases, students type their group's turns, a task computes the
agents' turns. Everything here is a pure function of the session's stored events (docs/classroom.md):

- `sitting_state(scenario, settings, events)`: the state (`Sitting`), with the `turn` that is due;
- `start`, `advance`, `skip_turn`, `pause`, `resume`, `end`, `reveal_speed`, `seat_control`,
  `timer_expired`: the teacher's actions (and the timer's), as the events they append;
- `student_act`: a student's speech, draft, amendment, decision or vote, checked against the turn;
- `agent_turn_event`: an agent's turn, from the same prompts as the parliament strategy;
- `closing_events`: the tally and the outcome once every group has voted.

Each returns the new events as (type, data) pairs or raises SittingRefused with a message for the
person who asked; the caller stores them with their sequence numbers.
"""

from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from deliberation.engine.events import Event
from deliberation.engine.goals import vote_position
from deliberation.engine.judges import Judge
from deliberation.engine.models import ModelClient
from deliberation.engine.scenario import Group, Scenario
from deliberation.engine.strategies.base import judge_seed, run_started_data, tally_and_outcome, verdict_data
from deliberation.engine.strategies.parliament import (
    NO_STATEMENT,
    ParliamentAgents,
    ParliamentSettings,
    phase_after,
    phase_data,
)

CLASSROOM = "classroom"
DEFAULT_ROUNDS = 1
TEXT_LIMIT = 2000
MAX_WORDS_PER_SECOND = 100.0
STATUSES = ("lobby", "live", "paused", "ended")
STUDENTS, AGENT = "students", "agent"
NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0, "cached": False}
NO_DECISION = "no decision before the phase ended"

NewEvent = tuple[str, dict[str, Any]]


class SittingRefused(ValueError):
    """The action is not allowed now; the message says why, for the person who asked."""


@dataclass(frozen=True)
class Turn:
    """The turn that is due. `key` names it stably (phase, round, kind, group), so that a task
    computing an agent's turn can tell whether that turn is still the one due when it is done."""

    key: str
    kind: str  # speech | draft | amendment | decision | vote
    group: str  # who acts: a group code, or "mediator"
    by: str  # STUDENTS | AGENT
    about: str | None = None  # a decision: the group whose amendment is decided

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "group": self.group, "by": self.by, "about": self.about}


@dataclass(frozen=True)
class Seat:
    """A student as the log knows them. `group` None: a watcher."""

    id: int
    name: str
    group: str | None
    muted: bool = False
    removed: bool = False


def classroom_settings(params: Mapping[str, Any]) -> ParliamentSettings:
    """The parliament's settings from a scenario's parameters; one negotiation round by default."""
    return ParliamentSettings.from_params({"rounds": DEFAULT_ROUNDS, **params})


def opening_data(scenario: Scenario, *, phase_seconds: int | None, words_per_second: float) -> dict[str, Any]:
    """The `run_started` event of a session."""
    return {
        **run_started_data(scenario, CLASSROOM),
        "classroom": True,
        "phase_seconds": phase_seconds,
        "words_per_second": words_per_second,
    }


def _words(text: str) -> int:
    return len(text.split())


@dataclass
class Sitting:
    scenario: Scenario
    settings: ParliamentSettings
    status: str = "lobby"
    phase: str | None = None
    round: int | None = None
    seconds: int | None = None  # the current phase's timer
    deadline: str | None = None  # ISO time the timer runs out; None while paused or untimed
    remaining: float | None = None  # seconds left on the timer, while paused
    phase_seconds: int | None = None
    words_per_second: float = 0.0
    seats: dict[int, Seat] = field(default_factory=dict)
    spoken: set[str] = field(default_factory=set)  # groups that spoke in this phase (and round)
    draft: str | None = None
    version: int = 0
    amendments: dict[str, str] = field(default_factory=dict)
    amended_by_students: set[str] = field(default_factory=set)  # groups whose amendment students wrote
    kept: list[str] = field(default_factory=list)  # accepted student amendments, kept in every later draft
    decided: set[str] = field(default_factory=set)
    votes: dict[str, int] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    vote_closed: bool = False
    outcome: dict[str, Any] | None = None
    last_seq: int = 0
    reading_words: int = 0  # words of the last text if an agent wrote it (the room reads it)

    # --- reading the log ---

    def apply(self, event: Event) -> None:
        kind, data = event["type"], event["data"]
        self.last_seq = max(self.last_seq, event["seq"])
        if kind == "run_started":
            self.phase_seconds = data.get("phase_seconds")
            self.words_per_second = float(data.get("words_per_second", 0.0))
        elif kind == "seat_joined":
            self.seats[data["student"]] = Seat(data["student"], data["name"], data["group"])
        elif kind == "control":
            self._control(data)
        elif kind == "phase":
            self.phase, self.round = data["phase"], data.get("round")
            self.seconds, self.deadline, self.remaining = data.get("seconds"), data.get("deadline"), None
            self.spoken = set()
        elif kind == "speech":
            self.spoken.add(data["group"])
            self._read(data, data["text"])
        elif kind == "draft":
            self.draft, self.version = data["text"], data.get("version", 1)
            self._read(data, data["text"])
        elif kind == "amendment":
            self.amendments[data["group"]] = data["text"]
            if data.get("by") == STUDENTS:
                self.amended_by_students.add(data["group"])
            self._read(data, data["text"])
        elif kind == "amendment_decision":
            self.decided.add(data["group"])
            if data["accepted"] and data["group"] in self.amended_by_students:
                self.kept.append(self.amendments.get(data["group"], ""))
            if data["draft_after"] != self.draft:
                self.draft, self.version = data["draft_after"], self.version + 1
            self._read(data, data["reason"])
        elif kind == "vote":
            self.votes[data["group"]] = data["score"]
            if data.get("fallback"):
                self.fallbacks.append(data["group"])
            self.reading_words = 0
        elif kind == "outcome":
            self.outcome = data
            self.status, self.deadline = "ended", None

    def _control(self, data: Mapping[str, Any]) -> None:
        action = data["action"]
        if action == "started":
            self.status = "live"
        elif action == "paused":
            self.status, self.remaining, self.deadline = "paused", data.get("remaining"), None
        elif action == "resumed":
            self.status, self.remaining, self.deadline = "live", None, data.get("deadline")
        elif action == "ended":
            self.status, self.deadline = "ended", None
        elif action == "vote_closed":
            self.vote_closed = True
        elif action == "reveal_speed":
            self.words_per_second = float(data["words_per_second"])
        elif action in ("muted", "unmuted", "removed") and data["student"] in self.seats:
            seat = self.seats[data["student"]]
            self.seats[seat.id] = Seat(
                seat.id,
                seat.name,
                seat.group,
                muted=seat.muted if action == "removed" else action == "muted",
                removed=seat.removed or action == "removed",
            )

    def _read(self, data: Mapping[str, Any], text: str) -> None:
        self.reading_words = _words(text) if data.get("by") == AGENT else 0

    def after(self, new: Sequence[NewEvent]) -> "Sitting":
        """A copy of the sitting with `new` applied (numbered after the last stored event)."""
        copy = deepcopy(self, {id(self.scenario): self.scenario, id(self.settings): self.settings})
        for type_, data in new:
            copy.apply({"seq": copy.last_seq + 1, "type": type_, "data": data})
        return copy

    # --- derived ---

    @property
    def speakers(self) -> tuple[Group, ...]:
        return self.scenario.by_seats()

    @property
    def rapporteur(self) -> Group | None:
        return self.speakers[0] if self.settings.rapporteur == "largest" else None

    @property
    def author(self) -> str:
        return self.rapporteur.code if self.rapporteur else "mediator"

    @property
    def held(self) -> frozenset[str]:
        """Groups with at least one student in their seat: those are played by students."""
        return frozenset(s.group for s in self.seats.values() if s.group and not s.removed)

    def holder(self, group: str) -> str:
        return STUDENTS if group in self.held else AGENT

    @property
    def reading_seconds(self) -> float:
        """How long the room needs to read the last agent text at the reveal speed."""
        if not self.words_per_second:
            return 0.0
        return self.reading_words / self.words_per_second

    def _turn(self, kind: str, group: str, *, about: str | None = None, by: str | None = None) -> Turn:
        stage = f"{self.phase}{self.round or ''}"
        return Turn(f"{stage}:{kind}:{about or group}", kind, group, by or self.holder(group), about)

    @property
    def turn(self) -> Turn | None:
        if self.status == "ended" or self.phase is None:
            return None
        if self.phase in ("opening", "negotiation"):
            for group in self.speakers:
                if group.code not in self.spoken:
                    return self._turn("speech", group.code)
        elif self.phase == "drafting":
            if self.draft is None:
                return self._turn("draft", self.author)
        elif self.phase == "amendments":
            for group in self.speakers:
                if group is self.rapporteur:
                    continue
                if group.code not in self.amendments:
                    return self._turn("amendment", group.code)
                if self.amendments[group.code] and group.code not in self.decided:
                    return self._turn("decision", self.author, about=group.code)
        elif self.phase == "vote":
            pending = [g.code for g in self.speakers if g.code not in self.votes]
            # The judge scores the agents' groups (and, once the vote is closed, every group that
            # has not cast) while students still decide theirs.
            for code in pending:
                if self.vote_closed or self.holder(code) == AGENT:
                    return self._turn("vote", code, by=AGENT)
            if pending:
                return self._turn("vote", pending[0])
        return None

    def next_phase(self) -> tuple[str, int | None] | None:
        return phase_after(self.phase, self.round, rounds=self.settings.rounds)

    def advance_refusal(self) -> str | None:
        """Why `advance` is refused now, or None when it is allowed."""
        if self.status == "lobby":
            return "the session has not started"
        if self.status == "ended":
            return "the session has ended"
        if self.phase == "drafting" and self.draft is None:
            return "the draft must exist before the amendments"
        if self.phase == "vote" and self.vote_closed:
            return "the vote is closed; the judge is scoring the groups that did not vote"
        return None

    @property
    def can_advance(self) -> bool:
        return self.advance_refusal() is None


def sitting_state(scenario: Scenario, settings: ParliamentSettings, events: Iterable[Event]) -> Sitting:
    sitting = Sitting(scenario=scenario, settings=settings)
    for event in events:
        sitting.apply(event)
    return sitting


# --- the teacher's actions ---------------------------------------------------------------------


def _deadline(seconds: float | None, now: datetime) -> str | None:
    return None if seconds is None else (now + timedelta(seconds=seconds)).isoformat()


def _phase_event(sitting: Sitting, phase: str, round_number: int | None, now: datetime) -> NewEvent:
    seconds = sitting.phase_seconds
    return "phase", {**phase_data(phase, round_number), "seconds": seconds, "deadline": _deadline(seconds, now)}


def start(sitting: Sitting, *, by: str, now: datetime) -> list[NewEvent]:
    if sitting.status != "lobby":
        raise SittingRefused("the session has already started")
    return [("control", {"action": "started", "by": by}), _phase_event(sitting, "opening", None, now)]


def pause(sitting: Sitting, *, by: str, now: datetime) -> list[NewEvent]:
    if sitting.status != "live":
        raise SittingRefused(f"a {sitting.status} session cannot be paused")
    remaining = None
    if sitting.deadline is not None:
        remaining = max(0.0, (datetime.fromisoformat(sitting.deadline) - now).total_seconds())
    return [("control", {"action": "paused", "by": by, "remaining": remaining})]


def resume(sitting: Sitting, *, by: str, now: datetime) -> list[NewEvent]:
    if sitting.status != "paused":
        raise SittingRefused(f"a {sitting.status} session cannot be resumed")
    return [("control", {"action": "resumed", "by": by, "deadline": _deadline(sitting.remaining, now)})]


def end(sitting: Sitting, *, by: str) -> list[NewEvent]:
    if sitting.status == "ended":
        raise SittingRefused("the session has already ended")
    return [("control", {"action": "ended", "by": by})]


def reveal_speed(sitting: Sitting, *, by: str, words_per_second: object) -> list[NewEvent]:
    if isinstance(words_per_second, bool) or not isinstance(words_per_second, (int, float)):
        raise SittingRefused("reveal speed: a number of words per second (0 = instant)")
    if not 0 <= words_per_second <= MAX_WORDS_PER_SECOND:
        raise SittingRefused(f"reveal speed: between 0 and {MAX_WORDS_PER_SECOND:g} words per second")
    return [("control", {"action": "reveal_speed", "by": by, "words_per_second": float(words_per_second)})]


def seat_control(sitting: Sitting, *, by: str, action: str, student: int) -> list[NewEvent]:
    """Mute, unmute or remove a student (`action`: mute | unmute | remove)."""
    done = {"mute": "muted", "unmute": "unmuted", "remove": "removed"}[action]
    seat = sitting.seats.get(student)
    if seat is None or seat.removed:
        raise SittingRefused("no such student in this session")
    return [("control", {"action": done, "by": by, "student": seat.id, "name": seat.name})]


def _speech(sitting: Sitting, group: str, text: str, **extra: Any) -> dict[str, Any]:
    data = {"group": group, "phase": sitting.phase, "text": text, **extra}
    if sitting.phase == "negotiation":
        data["round"] = sitting.round
    return data


def _skipped(sitting: Sitting, turn: Turn) -> NewEvent:
    """The event that closes a due turn nobody took."""
    by = {"by": turn.by, "skipped": True, "usage": NO_USAGE}
    if turn.kind == "speech":
        return "speech", _speech(sitting, turn.group, NO_STATEMENT, **by)
    if turn.kind == "amendment":
        return "amendment", {"group": turn.group, "text": "", **by}
    if turn.kind == "decision":
        return "amendment_decision", {
            "group": turn.about,
            "accepted": False,
            "reason": NO_DECISION,
            "draft_before": sitting.draft,
            "draft_after": sitting.draft,
            **by,
        }
    raise SittingRefused(
        "the draft cannot be skipped: write it or let the agent write it"
        if turn.kind == "draft"
        else "votes are not skipped: advance closes the vote and the judge scores the rest"
    )


def skip_turn(sitting: Sitting, *, by: str) -> list[NewEvent]:
    if sitting.status not in ("live", "paused"):
        raise SittingRefused("the session is not running")
    turn = sitting.turn
    if turn is None:
        raise SittingRefused("no turn is due")
    return [_skipped(sitting, turn)]


def advance(sitting: Sitting, *, by: str, now: datetime) -> list[NewEvent]:
    """Close the phase: due turns are skipped, an amended draft is restated, the next phase
    begins. In the vote, the vote closes instead: the judge scores the groups that did not cast."""
    refusal = sitting.advance_refusal()
    if refusal:
        raise SittingRefused(refusal)
    if sitting.phase == "vote":
        return [("control", {"action": "vote_closed", "by": by})]
    new: list[NewEvent] = []
    state = sitting
    while (turn := state.turn) is not None:
        new.append(_skipped(state, turn))
        state = sitting.after(new)
    if sitting.phase == "amendments" and state.version > 1:
        new.append(
            (
                "draft",
                {
                    "author": state.author,
                    "text": state.draft,
                    "version": state.version,
                    "by": state.holder(state.author),
                },
            )
        )
    phase, round_number = sitting.next_phase()
    new.append(_phase_event(sitting, phase, round_number, now))
    return new


def timer_expired(sitting: Sitting, *, deadline: str, now: datetime) -> list[NewEvent]:
    """What the timer does at `deadline`: advance, if that deadline is still the phase's."""
    if sitting.status != "live" or sitting.deadline != deadline or not sitting.can_advance:
        return []
    return advance(sitting, by="timer", now=now)


# --- students ---------------------------------------------------------------------------------


def printable(text: str) -> str:
    """The text without control characters other than line breaks and tabs (a NUL cannot even
    be stored in PostgreSQL's JSON)."""
    return "".join(c for c in text if c.isprintable() or c in "\n\t")


def _text(payload: Mapping[str, Any], key: str = "text", *, required: bool = True) -> str:
    value = payload.get(key, "")
    if not isinstance(value, str):
        raise SittingRefused(f"{key}: text, please")
    value = printable(value).strip()
    if required and not value:
        raise SittingRefused("write something first")
    if len(value) > TEXT_LIMIT:
        raise SittingRefused(f"at most {TEXT_LIMIT:,} characters, please ({len(value):,} now)")
    return value


STUDENT_ACTIONS = ("speak", "draft", "amend", "decide", "vote")
_TURN_OF_ACTION = {"speak": "speech", "draft": "draft", "amend": "amendment", "decide": "decision"}


def student_act(sitting: Sitting, *, seat: Seat, action: str, payload: Mapping[str, Any]) -> list[NewEvent]:
    """A student's action for their group, allowed only when it is that group's turn."""
    if action not in STUDENT_ACTIONS:
        raise SittingRefused(f"unknown action {action!r}")
    if seat.removed:
        raise SittingRefused("you were removed from this session")
    if seat.group is None:
        raise SittingRefused("watchers do not take part; join a seat to speak")
    if seat.muted:
        raise SittingRefused("the teacher has muted you")
    if sitting.status != "live":
        raise SittingRefused(
            {"lobby": "the session has not started", "paused": "the session is paused"}.get(
                sitting.status, "the session has ended"
            )
        )
    who = {"by": STUDENTS, "student": seat.id, "name": seat.name, "usage": NO_USAGE}

    if action == "vote":
        if sitting.phase != "vote":
            raise SittingRefused("the vote has not begun")
        if sitting.vote_closed:
            raise SittingRefused("the vote is closed")
        if seat.group in sitting.votes:
            raise SittingRefused(f"{seat.group} has already voted")
        score = payload.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 9:
            raise SittingRefused("score: a whole number from 0 to 9")
        return [
            (
                "vote",
                {
                    "group": seat.group,
                    "score": score,
                    "position": vote_position(score),
                    "fallback": False,
                    "attempts": 0,
                    **who,
                },
            )
        ]

    turn = sitting.turn
    if turn is None or turn.kind != _TURN_OF_ACTION[action] or turn.group != seat.group or turn.by != STUDENTS:
        raise SittingRefused(f"it is not {seat.group}'s turn to {action}")
    if action == "speak":
        return [("speech", _speech(sitting, seat.group, _text(payload), **who))]
    if action == "draft":
        return [("draft", {"author": seat.group, "text": _text(payload), "version": 1, **who})]
    if action == "amend":
        return [("amendment", {"group": seat.group, "text": _text(payload, required=False), **who})]
    accept = payload.get("accept")
    if not isinstance(accept, bool):
        raise SittingRefused("accept: true or false")
    reason = _text(payload, "reason", required=False) or ("accepted" if accept else "rejected")
    draft_after = sitting.draft
    if accept:
        draft_after = _text(payload)
        if draft_after == sitting.draft:  # accepted, but the draft left as it was
            draft_after = with_amendment(draft_after, sitting.amendments.get(turn.about, ""))
    return [
        (
            "amendment_decision",
            {
                "group": turn.about,
                "accepted": accept,
                "reason": reason,
                "draft_before": sitting.draft,
                "draft_after": draft_after,
                **who,
            },
        )
    ]


# --- agents -----------------------------------------------------------------------------------


def agent_turn_event(
    sitting: Sitting, turn: Turn, events: Sequence[Event], *, model: ModelClient | None, judge: Judge, seed: int
) -> NewEvent:
    """The agent's (or the judge's) event for `turn`, built with the parliament's prompts and
    seeds from the transcript in `events`. Calls the model: do not hold a lock meanwhile."""
    if turn.kind == "vote":
        data = verdict_data(
            scenario=sitting.scenario, judge=judge, seed=judge_seed(seed), group=turn.group, text=sitting.draft or ""
        )
        return "vote", {**data, "by": "judge"}
    agents = ParliamentAgents(sitting.scenario, sitting.settings, model, seed)
    if turn.kind == "speech":
        group = sitting.scenario.group(turn.group)
        return "speech", {**agents.speech(group, sitting.phase, sitting.round or 0, events), "by": AGENT}
    if turn.kind == "draft":
        return "draft", {**agents.first_draft(events), "by": AGENT}
    if turn.kind == "amendment":
        return "amendment", {**agents.amendment(sitting.scenario.group(turn.group), events), "by": AGENT}
    # A decision: the amendment is quoted in the ask, so the transcript leaves it out.
    history = [e for e in events if not (e["type"] == "amendment" and e["data"]["group"] == turn.about)]
    amendment = sitting.amendments[turn.about]
    data = agents.decision(sitting.scenario.group(turn.about), amendment, sitting.draft or "", history)
    if data["accepted"]:
        # Students see their accepted amendments in the new draft, whatever the model rewrote.
        kept = [*sitting.kept, *([amendment] if turn.about in sitting.amended_by_students else [])]
        draft_after = data["draft_after"]
        for text in kept:
            draft_after = with_amendment(draft_after, text)
        data = {**data, "draft_after": draft_after}
    return "amendment_decision", {**data, "by": AGENT}


def with_amendment(draft: str, amendment: str) -> str:
    """`draft` with an accepted amendment's text in it: as it is when the draft already holds
    it (spacing aside), else appended as the draft's last paragraph."""
    wanted = " ".join(amendment.split())
    if not wanted or wanted in " ".join(draft.split()):
        return draft
    return f"{draft.rstrip()}\n\n{amendment.strip()}" if draft.strip() else amendment.strip()


def closing_events(sitting: Sitting) -> list[NewEvent]:
    """The tally and the outcome, once every group has voted (and not yet tallied)."""
    if sitting.phase != "vote" or sitting.outcome is not None:
        return []
    if any(group.code not in sitting.votes for group in sitting.speakers):
        return []
    tally, outcome = tally_and_outcome(sitting.scenario, sitting.votes, sitting.fallbacks)
    return [("tally", tally), ("outcome", outcome)]
