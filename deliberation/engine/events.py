"""Events: what a strategy yields, one per step, numbered per run from 1.

Every event is `{"seq": int, "type": str, "data": {...}}`; the event log adds `"at"` (ISO time)
when it stores one. Each type has one documented shape of `data`, below.
"""

from typing import Any, Literal, NotRequired, TypedDict


class RetryData(TypedDict):
    """A model call that failed, was retried, and then answered."""

    model: str
    attempts: int  # the calls it took, the one that answered included
    errors: list[str]  # why each failed attempt failed
    waited_s: float  # backoff slept in between


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cached: bool
    # The step's model calls that answered only after retries (RunContext.retried). Part of the
    # cost of saying it, so a transcript leaves it out with the rest of `usage`.
    retries: NotRequired[list[RetryData]]


class RunStartedData(TypedDict):
    strategy: str
    goal: str
    veto_group: str | None
    groups: list[str]  # in the scenario's order
    seats: dict[str, float]
    title: str
    classroom: NotRequired[bool]  # a classroom session (engine/classroom.py)
    phase_seconds: NotRequired[int | None]
    words_per_second: NotRequired[float]


class PhaseData(TypedDict):
    phase: str  # see strategies.parliament.PHASES
    round: NotRequired[int]
    seconds: NotRequired[int | None]  # classroom: the phase's timer
    deadline: NotRequired[str | None]  # classroom: ISO time the timer runs out


class SpeechData(TypedDict):
    group: str
    phase: str
    text: str
    usage: Usage
    round: NotRequired[int]


class DraftData(TypedDict):
    author: str  # a group code, "mediator", "drafter", or the baseline's name
    text: str
    usage: NotRequired[Usage]
    version: NotRequired[int]  # 1 for the first draft, +1 for each accepted amendment
    source_group: NotRequired[str]  # random / greedy baselines: whose stance became the text
    example_record: NotRequired[str | None]  # one-shot: the record its example came from


class AmendmentData(TypedDict):
    group: str
    text: str
    usage: Usage


class AmendmentDecisionData(TypedDict):
    group: str
    accepted: bool
    reason: str
    draft_before: str
    draft_after: str
    usage: Usage


class DigitDistributionData(TypedDict):
    probabilities: list[float]  # p(0)..p(9), renormalised over the digits
    mass: float  # the next token's probability of being a digit at all
    expected: float
    argmax: int
    sd: float
    entropy: float


class VoteDetail(TypedDict):
    """What a judge keeps beside its score (judges.Verdict.detail); each judge fills its own keys."""

    distribution: NotRequired[DigitDistributionData]  # llm-expected
    expected_unavailable: NotRequired[bool]  # llm-expected fell back to the paper's judge
    digit_mass: NotRequired[float]
    raw_score: NotRequired[float]  # calibrated: the underlying judge's score before the map
    members: NotRequired[dict[str, float]]  # ensemble: each member judge's score
    spread: NotRequired[float]  # ensemble: the members' standard deviation
    coverage: NotRequired[float]  # similarity: mean best cosine of the stance's sentences


class VoteData(TypedDict):
    group: str
    score: float  # an integer 0..9, or an expectation for the llm-expected judge
    position: Literal["for", "abstain", "against"]
    fallback: bool
    attempts: int
    usage: Usage
    detail: NotRequired[VoteDetail]


class TallyData(TypedDict):
    scores: dict[str, int]
    seats: dict[str, float]
    weighted_total: float
    threshold: float | None
    goal: str


class OutcomeData(TypedDict):
    scores: dict[str, int]
    seats: dict[str, float]
    weighted_total: float
    goals: dict[str, bool | float]
    goal: str
    veto_group: str | None
    fallbacks: list[str]


class ErrorData(TypedDict):
    message: str
    attempt: int
    final: bool


class ControlData(TypedDict):
    # runs: paused, resumed, stopped; classroom sessions (engine/classroom.py) also: started,
    # ended, vote_closed, reveal_speed (words_per_second), muted, unmuted, removed (student, name)
    action: str
    by: NotRequired[str]
    # resumed by a new task after the worker that advanced the run was lost ("worker_lost")
    reason: NotRequired[str]
    attempt: NotRequired[int]


class SeatJoinedData(TypedDict):
    """Classroom: a student took a seat (group) or sat down to watch (group None)."""

    student: int
    name: str
    group: str | None


EVENT_DATA: dict[str, type] = {
    "run_started": RunStartedData,
    "phase": PhaseData,
    "speech": SpeechData,
    "draft": DraftData,
    "amendment": AmendmentData,
    "amendment_decision": AmendmentDecisionData,
    "vote": VoteData,
    "tally": TallyData,
    "outcome": OutcomeData,
    "error": ErrorData,
    "control": ControlData,
    "seat_joined": SeatJoinedData,
}
# Appended by the run service around the strategy, never by a strategy: a resumed strategy skips
# them when it replays the log.
SERVICE_EVENT_TYPES = frozenset({"error", "control", "seat_joined"})
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_DATA)


class Event(TypedDict):
    seq: int
    type: str
    data: dict[str, Any]
    at: NotRequired[str]


def make_event(seq: int, type: str, data: dict[str, Any]) -> Event:
    if type not in EVENT_DATA:
        raise ValueError(f"unknown event type {type!r}")
    return {"seq": seq, "type": type, "data": data}


def event_keys_missing(event: Event) -> set[str]:
    """The data keys an event of its type must carry but lacks (empty when well formed)."""
    shape = EVENT_DATA[event["type"]]
    required = getattr(shape, "__required_keys__", frozenset())
    return set(required) - set(event["data"])
