"""Events: what a strategy yields, one per step, numbered per run from 1.

Every event is `{"seq": int, "type": str, "data": {...}}`; the event log adds `"at"` (ISO time)
when it stores one. Each type has one shape of `data`: a pydantic model below, registered in
EVENT_DATA. The run service validates every event against it before it writes anything
(`event_validate`, called by runs.services.event_append), for every strategy and the classroom;
the data is stored exactly as given, so validation never changes the log's format.
docs/events.md is generated from these models (`python manage.py events_doc`).

How to declare a new event type
-------------------------------
1. Write the model of its data as a subclass of EventData (unknown keys are then refused)::

       class ForecastData(EventData):
           '''A group's forecast of the vote (the first docstring line goes into docs/events.md).'''

           group: str = Field(description="the group's code")
           probability: float = Field(ge=0, le=1)
           usage: Usage
           round: int = None  # an optional key: may be absent, never null

   A field without a default is a key every event of the type carries; `= None` makes a key
   optional (write `int | None = None` only when the key may also be present as null). Reuse
   Usage for a step's model cost, and keep values JSON (str, int, float, bool, lists, dicts).
2. Register it in EVENT_DATA (`"forecast": ForecastData`); a type the run service writes around
   the strategy (not the strategy itself) also goes into SERVICE_EVENT_TYPES.
3. Run `python manage.py events_doc` to regenerate docs/events.md (a unit test fails while it
   is stale) and add the type to the rebuild in tests if it changes the run's state.
4. Give it a renderer for the run page's transcript: one function in frontend/static/js/events/
   (index.js there says how); without one the page shows a bare "(type)" line.

An event of an unknown type, or whose data does not fit its model, raises EventInvalid naming the
event and the offending key, before anything is stored.
"""

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Classroom sessions (engine/classroom.py): who took a turn, a group's students or its agent.
Actor = Literal["students", "agent"]


class EventData(BaseModel):
    """The base of every event's data: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid")


class RetryData(EventData):
    """A model call that failed, was retried, and then answered."""

    model: str
    attempts: int = Field(description="the calls it took, the one that answered included")
    errors: list[str] = Field(description="why each failed attempt failed")
    waited_s: float = Field(description="backoff slept in between")


class Usage(EventData):
    """What a step's model calls cost (all zero for a step no model took)."""

    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cached: bool
    # Part of the cost of saying it, so a transcript leaves it out with the rest of `usage`.
    retries: list[RetryData] = Field(
        None, description="the step's model calls that answered only after retries (RunContext.retried)"
    )


class StepData(EventData):
    """A strategy's step. A step without `usage` whose model calls needed retries carries them
    at the top level instead (strategies.base.RunContext.step)."""

    retries: list[RetryData] = Field(None, description="model calls of a step without usage that needed retries")


class RunStartedData(StepData):
    """The run's scenario, as the strategy plays it (always event 1)."""

    strategy: str
    goal: str
    veto_group: str | None
    groups: list[str] = Field(description="group codes in the scenario's order")
    seats: dict[str, float] = Field(description="group code -> seat share")
    title: str = Field(description="the record's title")
    classroom: bool = Field(None, description="a classroom session (engine/classroom.py)")
    phase_seconds: int | None = Field(None, description="classroom: each phase's timer (null: untimed)")
    words_per_second: float = Field(None, description="classroom: the reveal speed of agents' texts (0: instant)")


class PhaseData(StepData):
    """A phase begins (strategies.parliament.PHASES)."""

    phase: str
    round: int = Field(None, description="negotiation: the round, from 1")
    seconds: int | None = Field(None, description="classroom: the phase's timer")
    deadline: str | None = Field(None, description="classroom: ISO time the timer runs out")


class ClassroomTurn(StepData):
    """Keys a classroom session adds to the events of a turn."""

    by: Actor = Field(None, description="classroom: who took the turn")
    skipped: bool = Field(None, description="classroom: nobody took the turn before the phase closed")
    student: int = Field(None, description="classroom: the id of the student who wrote it")
    name: str = Field(None, description="classroom: that student's display name")


class SpeechData(ClassroomTurn):
    """A group speaks."""

    group: str
    phase: str
    text: str
    usage: Usage
    round: int = Field(None, description="negotiation: the round, from 1")


class DecodingData(EventData):
    """amulet: the token-level decoding behind a draft (one step, many cached token calls)."""

    tokens: int = Field(description="tokens decoded")
    calls: int = Field(description="next-token calls made, two per token (preference and base context)")
    stopped: Literal["end", "max_tokens"] = Field(description="an end-of-turn token won, or max_tokens ran out")


class DraftData(ClassroomTurn):
    """A version of the resolution; the last draft of a run is the text put to the vote."""

    author: str = Field(description='a group code, "mediator", "drafter", or the baseline\'s name')
    text: str
    usage: Usage = None
    version: int = Field(None, description="1 for the first draft, +1 for each accepted amendment")
    source_group: str = Field(None, description="random / greedy baselines: whose stance became the text")
    example_record: str | None = Field(None, description="one-shot: the record its example came from")
    decoding: DecodingData = Field(None, description="amulet: how the text was decoded")
    agreed_turn: int = Field(None, description="negotiation: the turn whose ACCEPT agreed this text")


class ChatMessage(EventData):
    role: str
    content: str


class TurnData(StepData):
    """negotiation: one side's turn and the judge's feedback on the proposal it leaves on the table."""

    turn: int = Field(description="from 1; side A speaks on odd turns")
    side: Literal["A", "B"]
    groups: list[str] = Field(description="the group codes the speaking agent represents")
    sides: dict[str, list[str]] = Field(description='"A" and "B" -> their group codes (fixed after turn 1)')
    messages: list[ChatMessage] = Field(description="the prompt the agent saw")
    text: str = Field(description="the agent's reply")
    accept: bool = Field(description="the agent accepted the other side's latest proposal")
    proposal: str = Field(description="the text on the table after this turn")
    proposal_hash: str = Field(description="sha256 of the proposal, whitespace-normalised")
    scores_before: dict[str, float] | None = Field(
        description="each group's judged support for the text on the table before (null: none yet)"
    )
    scores_after: dict[str, float]
    support_before: dict[str, float] | None = Field(description="each side's seat-weighted support before")
    support_after: dict[str, float]
    margin_before: float | None = Field(description="the goal margin G before (goals.goal_margin)")
    margin_after: float
    reward: float | None = Field(description="the speaker's reward G_after - G_before (null on the opening turn)")
    judge_calls: int = Field(description="judge verdicts this turn took (in usage with the agent's call)")
    usage: Usage


class AmuletData(StepData):
    """amulet: the closed form's constant and the preference the decoding pushes towards."""

    beta: float = Field(description="(1 + beta) * log p_pref - beta * log p_base is each token's score")
    iterations: int = Field(description="the reference's iterations T per token")
    alpha: float
    lam: float = Field(description="lambda, the KL anchor to the preference distribution")
    eta: float
    top_k: int = Field(description="candidates per token: the preference context's k most likely")
    favoured: list[str] = Field(description="group codes the preference prompt names")
    preference: str = Field(description="the sentence the preference prompt adds to the base prompt")


class AmendmentData(ClassroomTurn):
    """A group tables an amendment (empty text: it declines)."""

    group: str
    text: str
    usage: Usage


class AmendmentDecisionData(ClassroomTurn):
    """The rapporteur accepts or rejects a group's amendment."""

    group: str = Field(description="the group whose amendment is decided")
    accepted: bool
    reason: str
    draft_before: str
    draft_after: str
    usage: Usage


class DigitDistributionData(EventData):
    """The judge's next-token distribution over the digits (llm-expected)."""

    probabilities: list[float] = Field(description="p(0)..p(9), renormalised over the digits")
    mass: float = Field(description="the next token's probability of being a digit at all")
    expected: float
    argmax: int
    sd: float
    entropy: float


class VoteDetail(EventData):
    """What a judge keeps beside its score (judges.Verdict.detail); each judge fills its own keys."""

    distribution: DigitDistributionData = Field(None, description="llm-expected")
    expected_unavailable: bool = Field(None, description="llm-expected fell back to the paper's judge")
    digit_mass: float = None
    raw_score: float = Field(None, description="calibrated: the underlying judge's score before the map")
    members: dict[str, float] = Field(None, description="ensemble: each member judge's score")
    spread: float = Field(None, description="ensemble: the members' standard deviation")
    coverage: float = Field(None, description="similarity: mean best cosine of the stance's sentences")


class VoteData(ClassroomTurn):
    """The judge's (or, in a classroom, the students') score of the final text for one group."""

    group: str
    score: float = Field(description="an integer 0..9, or an expectation for the llm-expected judge")
    position: Literal["for", "abstain", "against"]
    fallback: bool
    attempts: int
    usage: Usage
    detail: VoteDetail = None
    # The judge scores the agents' groups, and the students' groups that did not vote in time.
    by: Literal["students", "judge"] = Field(None, description="classroom: who cast the vote")


class TallyData(StepData):
    """Every group has voted: the seat-weighted total against the goal's threshold."""

    scores: dict[str, float]
    seats: dict[str, float]
    weighted_total: float
    threshold: float | None
    goal: str


class OutcomeData(StepData):
    """The run's result (always its last event when it finishes; scenario.Outcome.as_dict)."""

    scores: dict[str, float]
    seats: dict[str, float]
    weighted_total: float
    goals: dict[str, bool | float] = Field(description="each goal: passed, or its score")
    goal: str
    veto_group: str | None
    fallbacks: list[str] = Field(description="groups whose vote fell back to the judge's default")


class ErrorData(EventData):
    """A step failed (a model error or a bug); `final`: the run gives up."""

    message: str
    attempt: int
    final: bool
    turn: str = Field(None, description="classroom: the key of the agent's turn that failed (it stays due)")


ControlAction = Literal[
    "paused",
    "resumed",
    "stopped",  # runs
    "started",
    "ended",
    "vote_closed",
    "reveal_speed",
    "muted",
    "unmuted",
    "removed",  # classroom
]


class ControlData(EventData):
    """Someone (or the service) changed the run's course: pause, resume, stop; in a classroom
    also start, end, closing the vote, the reveal speed and the students' seats."""

    action: ControlAction
    by: str = Field(None, description="the user name of who did it (classroom: also \"timer\")")
    reason: str = Field(None, description='resumed by a new task after the worker was lost: "worker_lost"')
    attempt: int = Field(None, description="worker_lost: the task attempt that resumed the run")
    remaining: float | None = Field(None, description="classroom paused: seconds left on the phase's timer")
    deadline: str | None = Field(None, description="classroom resumed: ISO time the timer now runs out")
    words_per_second: float = Field(None, description="classroom reveal_speed: the new speed")
    student: int = Field(None, description="classroom muted/unmuted/removed: the student's id")
    name: str = Field(None, description="classroom muted/unmuted/removed: the student's display name")


class SeatJoinedData(EventData):
    """Classroom: a student took a seat (group) or sat down to watch (group null)."""

    student: int
    name: str
    group: str | None


# --- mediator (strategies/mediator.py) ------------------------------------------------------------


class CandidateData(StepData):
    """The mediator drafts one candidate statement (from round 2: a revision after the critiques)."""

    round: int = Field(description="from 1")
    index: int = Field(description="0..K-1 within the round")
    revision: bool = Field(description="a revision of the last winner after the groups' critiques")
    text: str
    order: list[str] = Field(description="the order the opinions (and critiques) were shown in, group codes")
    usage: Usage


class RankingData(StepData):
    """One group's agent ranks the round's candidates (shown in a seeded shuffled order)."""

    round: int
    group: str
    shown: list[int] = Field(description="shown[j]: the candidate behind the j-th letter")
    order: list[int] = Field(description="the candidates, best first")
    answer: str = Field(description="the model's answer, shortened")
    fallback: Literal["partial", "unparsed"] | None = Field(
        description="null: a full ranking; partial: letters not named follow in the order shown; "
        "unparsed: no letter named, the order shown"
    )
    scores: list[float] = Field(
        None, description="ranking=judge: the judge's score of each candidate (the ballot; ties kept)"
    )
    usage: Usage


class SchulzeData(StepData):
    """The Schulze method over the round's rankings; ties broken by TBRC (seeded)."""

    round: int
    weights: dict[str, float] = Field(description="each group's ballot weight: 1, or its seat share")
    pairwise: list[list[float]] = Field(description="d[a][b]: ballot weight preferring candidate a to b")
    paths: list[list[float]] = Field(description="p[a][b]: the strongest path's weakest link from a to b")
    tiers: list[list[int]] = Field(description="the Schulze ranking, best first; a tier holds tied candidates")
    order: list[int] = Field(description="the strict order after tie-breaking")
    winner: int = Field(description="the candidate that wins the round (order[0])")
    tie_broken: bool = Field(description="the first tier held more than one candidate")


class CritiqueData(StepData):
    """A group critiques the last round's winner: what must change for it to support it."""

    round: int
    group: str
    text: str
    usage: Usage


# --- forecast (strategies/forecast.py) ------------------------------------------------------------


class ForecastData(StepData):
    """The drafter forecasts each group's support and red line before it drafts."""

    round: int
    predicted: dict[str, float] = Field(description="group -> forecast support 0..9")
    red_lines: dict[str, str]
    fallback: list[str] = Field(description="groups the answer did not score: their last judged score, else 5")
    answer: str = Field(description="the model's answer, shortened")
    usage: Usage


class PlanData(StepData):
    """The cheapest coalition that meets the goal given the forecasts, seats and veto group."""

    round: int
    coalition: list[str]
    expected: dict[str, float] = Field(description="group -> the score the plan expects")
    lift: float = Field(description="the sum of the coalition's raises from forecast to target")
    feasible: bool | None = Field(description="null for the score goals (Rawlsian, utilitarian)")


class VerificationData(VoteData):
    """The run's judge scores a round's draft for one group, beside the drafter's forecast."""

    round: int
    forecast: float = Field(description="the forecast support of the group")
    expected: float = Field(description="what the plan expected (the target inside the coalition)")


class BeliefUpdateData(StepData):
    """The round's verification against the forecasts; whether the strategy stops."""

    round: int
    margin: float = Field(description="the goal margin G of the round's draft (>= 0 passes a voting goal)")
    passes: bool | None = Field(description="null for the score goals")
    errors: dict[str, float] = Field(description="group -> judged - forecast")
    bias: float = Field(description="the mean error")
    stop: bool
    reason: str = Field(description='"goal met", "gain below 0.25", "last round", or empty')


# --- advisor (strategies/advisor.py) --------------------------------------------------------------


class SignalData(StepData):
    """The advisor's brief to the drafter (arm none: empty; random: drawn from the prior)."""

    arm: Literal["none", "random", "advisor"]
    pivotal: list[str] = Field(description="the groups in some minimal passing coalition (the state)")
    text: str = Field(description="the brief the drafter reads (empty for none)")
    fallback: bool = Field(description="the advisor's answer was empty: the brief names the pivotal groups only")
    model: str | None = Field(None, description="the advisor model (null: the run's model)")
    usage: Usage = None


EVENT_DATA: dict[str, type[EventData]] = {
    "run_started": RunStartedData,
    "phase": PhaseData,
    "speech": SpeechData,
    "draft": DraftData,
    "amulet": AmuletData,
    "turn": TurnData,
    "amendment": AmendmentData,
    "amendment_decision": AmendmentDecisionData,
    "vote": VoteData,
    "tally": TallyData,
    "outcome": OutcomeData,
    "error": ErrorData,
    "control": ControlData,
    "seat_joined": SeatJoinedData,
    "candidate": CandidateData,
    "ranking": RankingData,
    "schulze": SchulzeData,
    "critique": CritiqueData,
    "forecast": ForecastData,
    "plan": PlanData,
    "verification": VerificationData,
    "belief_update": BeliefUpdateData,
    "signal": SignalData,
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


class EventInvalid(ValueError):
    """An event of an unknown type, or whose data does not fit its type's model."""


def make_event(seq: int, type: str, data: dict[str, Any]) -> Event:
    if type not in EVENT_DATA:
        raise EventInvalid(f"unknown event type {type!r}")
    return {"seq": seq, "type": type, "data": data}


def event_validate(event: Event) -> None:
    """Raise EventInvalid unless the event's type is known and its data fits the type's model.
    Validates only: the data is stored as given."""
    shape = EVENT_DATA.get(event["type"])
    if shape is None:
        raise EventInvalid(f"event {event.get('seq')}: unknown event type {event['type']!r}")
    try:
        shape.model_validate(event["data"])
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'data'}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise EventInvalid(f"event {event.get('seq')} ({event['type']}): {problems}") from None
