"""The parliament strategy: party agents debate, a rapporteur drafts, groups amend, the chamber votes.

Phases, each announced by a `phase` event:
1. opening      every group speaks once, largest first (Scenario.by_seats)
2. negotiation  `rounds` rounds; each group answers the others, offering or asking concessions
3. drafting     the rapporteur writes draft version 1
4. amendments   every group but the rapporteur may table one amendment (empty text: declined);
                the rapporteur accepts or rejects each tabled one, and writes an accepted one into
                the draft (amendment_decision.draft_after)
5. vote         the judge scores the final text (base.vote_on)

The last `draft` event always holds the text put to the vote: when amendments changed the text, a
closing draft (the new version, no model call) ends the amendments phase.

Each group agent knows its own stance and the facts (issue, seat shares, goal); what the others
want it learns only from the debate, which every prompt carries. Earlier speeches are cut to a
word budget in prompts (never in events) so that the bundled 8k-context model fits.
"""

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from deliberation.engine.costs import RunCost, vote_cost
from deliberation.engine.events import Event
from deliberation.engine.goals import goal_requirement
from deliberation.engine.models import Completion, Message, ModelClient, Params
from deliberation.engine.scenario import Group, Scenario
from deliberation.engine.seeding import seed_for
from deliberation.engine.strategies.base import RunContext, run_started, usage_sum, vote_on
from deliberation.engine.strategies.one_shot import seat_lines
from deliberation.engine.strategies.params import StrategyParams, params_validate

PHASES = ("opening", "negotiation", "drafting", "amendments", "vote")
MAX_ROUNDS = 5
DRAFT_TEMPERATURE = 0.3  # drafts and decisions: steadier than the speeches
DECISION_TOKENS = 80
NO_STATEMENT = "(no statement)"

# Prompt budget: each earlier speech or amendment gets at most SPEECH_WORDS words, fewer when the
# debate is long, so that six groups over five rounds stay well inside an 8k context.
SPEECH_WORDS = 120
DEBATE_WORDS = 2400
MIN_SPEECH_WORDS = 30
ELLIPSIS = " [...]"


def phase_order(rounds: int) -> tuple[tuple[str, int | None], ...]:
    """The sitting's phases in order, each with its round (negotiation 1..rounds, else None).
    The one definition of the order: the strategy plays it, a classroom (engine/classroom.py)
    advances through it."""
    return tuple(
        (phase, number) for phase in PHASES for number in (range(1, rounds + 1) if phase == "negotiation" else (None,))
    )


def phase_after(phase: str | None, round_number: int | None, *, rounds: int) -> tuple[str, int | None] | None:
    """The phase (and round) that follows `phase`: the first for None, None after the vote."""
    order = phase_order(rounds)
    if phase is None:
        return order[0]
    index = order.index((phase, round_number if phase == "negotiation" else None))
    return order[index + 1] if index + 1 < len(order) else None


def phase_data(phase: str, round_number: int | None) -> dict[str, Any]:
    """The data of the `phase` event that opens a phase (a classroom adds its timer)."""
    return {"phase": phase} if round_number is None else {"phase": phase, "round": round_number}


class ParliamentSettings(StrategyParams):
    """The parliament's parameters (a classroom session plays with them too)."""

    rounds: int = Field(
        2,
        ge=0,
        le=MAX_ROUNDS,
        title="Negotiation rounds",
        description="Rounds in which every group answers the others after the opening statements (0 skips the negotiation).",
    )
    rapporteur: Literal["largest", "mediator"] = Field(
        "largest",
        title="Rapporteur",
        description="Who drafts the resolution and decides on the amendments.",
        json_schema_extra={"labels": {"largest": "The largest group", "mediator": "A neutral mediator"}},
    )
    temperature: float = Field(
        0.7,
        ge=0,
        le=2,
        title="Speech temperature",
        description="Sampling temperature of the speeches and amendments (drafts and decisions use 0.3).",
    )
    speech_tokens: int = Field(
        160, ge=16, le=1024, title="Speech tokens", description="The most tokens a speech or an amendment may take."
    )
    draft_tokens: int = Field(
        400, ge=64, le=2048, title="Draft tokens", description="The most tokens a draft or a revision may take."
    )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "ParliamentSettings":
        """The parliament's parameters among a scenario's (a classroom session plays a saved
        scenario of any strategy, so other names are left aside); ParamsError names the field."""
        return params_validate(
            cls, {key: value for key, value in params.items() if key in cls.model_fields}, strategy="parliament"
        )


# --- prompts ---------------------------------------------------------------------------------

MEDIATOR_PERSONA = (
    "You are a neutral mediator in the European Parliament. You speak for no group; you help the "
    "groups agree on one resolution that the chamber can adopt."
)
GROUP_PERSONA = (
    "You are the delegation of the {code} group in the European Parliament and speak for {code} "
    "only, briefly and concretely.\nThe stance of {code}: {stance}"
)
FACTS = "Issue: {title}\nBackground: {background}\n{seats}\nGoal: {goal}"

OPENING_ASK = (
    "Give the opening statement of {code}: what {code} wants the resolution to say and what it "
    "cannot accept. At most five sentences."
)
NEGOTIATION_ASK = (
    "Negotiation round {round} of {rounds}. Answer the other groups by name: say where {code} "
    "agrees, which concession {code} offers and what it asks in return. At most five sentences."
)
RESOLUTION_RULES = (
    "Write it as one continuous paragraph beginning 'The European Parliament', with concrete "
    "measures; give solutions for the concerns of opposing groups and limits for demands that "
    "need moderating. Leave out procedure such as votes and amendments."
)
DRAFT_ASK = {
    "largest": "As rapporteur, {code} now writes the resolution in its own voice but for the "
    "whole chamber, building on the debate so that it meets the goal. "
    + RESOLUTION_RULES
    + "\nNow write the resolution:",
    "mediator": "Write the resolution for the whole chamber, building on the debate so that it "
    "meets the goal. " + RESOLUTION_RULES + "\nNow write the resolution:",
}
AMENDMENT_ASK = (
    "Table ONE amendment that would make the current draft acceptable to {code}: one or two "
    "sentences saying exactly what to add, change or remove. If {code} accepts the draft as it "
    "stands, answer only: NO AMENDMENT."
)
DECISION_ASK = (
    "{group} tables this amendment:\n'''{amendment}'''\nAs rapporteur, decide whether to accept "
    "it: accept it when it helps the resolution meet the goal without losing other groups. "
    "Answer on one line: ACCEPT or REJECT, then the reason in one sentence."
)
REVISION_ASK = (
    "You accepted this amendment by {group}:\n'''{amendment}'''\nRewrite the current draft so "
    "that it includes the amendment. " + RESOLUTION_RULES + "\nNow write the revised resolution:"
)


def shortened(text: str, words: int) -> str:
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words]) + ELLIPSIS


def persona(scenario: Scenario, speaker: Group | None) -> str:
    who = MEDIATOR_PERSONA if speaker is None else GROUP_PERSONA.format(code=speaker.name, stance=speaker.stance)
    facts = FACTS.format(
        title=scenario.record.title,
        background=scenario.record.background,
        seats=seat_lines(scenario),
        goal=goal_requirement(scenario.goal, veto_group=scenario.name_of(scenario.veto_group)),
    )
    return f"{who}\n\n{facts}"


def transcript_text(events: Sequence[Event], *, name_of: Callable[[str], str] = str) -> str:
    """The debate, the amendments with their decisions, and the current draft, as prompt text
    (groups by `name_of(code)`: models read "S&D", not "SD")."""
    spoken = [e for e in events if e["type"] in ("speech", "amendment")]
    words = max(MIN_SPEECH_WORDS, min(SPEECH_WORDS, DEBATE_WORDS // max(1, len(spoken))))
    lines: list[str] = []
    draft = None
    for event in events:
        data = event["data"]
        if event["type"] == "phase" and data["phase"] == "opening":
            lines.append("Opening statements:")
        elif event["type"] == "phase" and data["phase"] == "negotiation":
            lines.append(f"Negotiation round {data['round']}:")
        elif event["type"] == "phase" and data["phase"] == "amendments":
            lines.append("Amendments so far:")
        elif event["type"] == "speech":
            lines.append(f"[{name_of(data['group'])}] {shortened(data['text'], words)}")
        elif event["type"] == "amendment":
            lines.append(f"[{name_of(data['group'])}] {shortened(data['text'], words) or 'no amendment'}")
        elif event["type"] == "amendment_decision":
            verdict = "accepted" if data["accepted"] else "rejected"
            lines.append(f"  -> {verdict}: {data['reason']}")
            draft = data["draft_after"]
        elif event["type"] == "draft":
            draft = data["text"]
    if lines and lines[-1] == "Amendments so far:":
        lines[-1] += " none yet."
    if draft is not None:
        lines.append(f"Current draft:\n{draft}")
    return "\n".join(lines)


def agent_messages(scenario: Scenario, speaker: Group | None, events: Sequence[Event], ask: str) -> list[Message]:
    transcript = transcript_text(events, name_of=scenario.name_of)
    return [
        {"role": "system", "content": persona(scenario, speaker)},
        {"role": "user", "content": f"{transcript}\n\n{ask}" if transcript else ask},
    ]


# --- reading model text ----------------------------------------------------------------------

_DECLINED = re.compile(r"^[\W_]*no\s+amendment", re.IGNORECASE)
_LEADING_DECISION = re.compile(r"^[\W_]*(?:decision\W*)?(accept|reject)\w*[\W_]*", re.IGNORECASE)
_ANY_DECISION = re.compile(r"\b(accept|reject)", re.IGNORECASE)
_NEGATION = re.compile(r"\b(no|not|cannot|never)\b|n't\b", re.IGNORECASE)


def amendment_text(raw: str) -> str:
    """The amendment as tabled; empty when the group declines."""
    text = raw.strip()
    return "" if _DECLINED.match(text) else text


def parse_decision(raw: str) -> tuple[bool, str] | None:
    """(accepted, reason) from a rapporteur's answer, or None when it says neither clearly.

    The answer should start with ACCEPT or REJECT; small models wrap it in markup, a
    "Decision:" label or a sentence, so a lone accept/reject anywhere also counts unless the
    text negates something ("I cannot accept" is ambiguous enough to be left unparsed).
    """
    text = " ".join(raw.split())
    lead = _LEADING_DECISION.match(text)
    if lead:
        accepted = lead.group(1).lower() == "accept"
        return accepted, text[lead.end() :] or "no reason given"
    kinds = {match.group(1).lower() for match in _ANY_DECISION.finditer(text)}
    if len(kinds) == 1 and not _NEGATION.search(text):
        return kinds.pop() == "accept", text
    return None


def usage_of(*completions: Completion) -> dict[str, Any]:
    return usage_sum([completion.usage() for completion in completions])


# --- the strategy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParliamentAgents:
    """The agents' side of a sitting: each turn's model call and the data of its event.

    Every method takes the transcript so far (`events`) and builds its prompts from it, so the
    parliament strategy and a classroom session (engine/classroom.py) ask exactly the same."""

    scenario: Scenario
    settings: ParliamentSettings
    model: ModelClient
    seed: int

    @property
    def rapporteur(self) -> Group | None:
        return self.scenario.by_seats()[0] if self.settings.rapporteur == "largest" else None

    @property
    def author(self) -> str:
        rapporteur = self.rapporteur
        return rapporteur.code if rapporteur else "mediator"

    def complete(
        self, speaker: Group | None, ask: str, params: Params, events: Sequence[Event], *seed: object
    ) -> Completion:
        messages = agent_messages(self.scenario, speaker, events, ask)
        return self.model.complete(messages, params=params, seed=seed_for(self.seed, *seed))

    @property
    def speech_params(self) -> Params:
        return Params(temperature=self.settings.temperature, max_tokens=self.settings.speech_tokens)

    @property
    def draft_params(self) -> Params:
        return Params(temperature=DRAFT_TEMPERATURE, max_tokens=self.settings.draft_tokens)

    def speech(self, group: Group, phase: str, round_number: int, events: Sequence[Event]) -> dict[str, Any]:
        if phase == "opening":
            ask = OPENING_ASK.format(code=group.name)
        else:
            ask = NEGOTIATION_ASK.format(round=round_number, rounds=self.settings.rounds, code=group.name)
        completion = self.complete(group, ask, self.speech_params, events, "speech", phase, round_number, group.code)
        data = {
            "group": group.code,
            "phase": phase,
            "text": completion.text.strip() or NO_STATEMENT,
            "usage": completion.usage(),
        }
        return {**data, "round": round_number} if phase == "negotiation" else data

    def first_draft(self, events: Sequence[Event]) -> dict[str, Any]:
        ask = DRAFT_ASK[self.settings.rapporteur].format(code=self.scenario.name_of(self.author))
        completion = self.complete(self.rapporteur, ask, self.draft_params, events, "draft", self.author)
        return {
            "author": self.author,
            "text": completion.text.strip(),
            "version": 1,
            "usage": completion.usage(),
        }

    def amendment(self, group: Group, events: Sequence[Event]) -> dict[str, Any]:
        ask = AMENDMENT_ASK.format(code=group.name)
        completion = self.complete(group, ask, self.speech_params, events, "amendment", group.code)
        return {
            "group": group.code,
            "text": amendment_text(completion.text),
            "usage": completion.usage(),
        }

    def decision(self, group: Group, amendment: str, draft: str, events: Sequence[Event]) -> dict[str, Any]:
        """The rapporteur's decision on `group`'s amendment. `events` is the transcript without
        the amendment under decision: the ask quotes it in full, the transcript need not again."""
        ask = DECISION_ASK.format(group=group.name, amendment=amendment)
        params = Params(temperature=DRAFT_TEMPERATURE, max_tokens=DECISION_TOKENS)
        answer = self.complete(self.rapporteur, ask, params, events, "decision", group.code)
        completions = [answer]
        parsed = parse_decision(answer.text)
        if parsed is None:
            said = shortened(" ".join(answer.text.split()), 40) or "(empty answer)"
            accepted, reason = False, f"could not parse the decision: {said}"
        else:
            accepted, reason = parsed
        draft_after = draft
        if accepted:
            ask = REVISION_ASK.format(group=group.name, amendment=amendment)
            revision = self.complete(self.rapporteur, ask, self.draft_params, events, "revision", group.code)
            completions.append(revision)
            draft_after = revision.text.strip()
            if not draft_after:
                draft_after = draft
                reason += " (the revised text came back empty; the draft is unchanged)"
        return {
            "group": group.code,
            "accepted": accepted,
            "reason": reason,
            "draft_before": draft,
            "draft_after": draft_after,
            "usage": usage_of(*completions),
        }


class _Sitting:
    """One run of the parliament. `events` is the transcript so far: replayed or new, every
    prompt is built from it, so a resumed run asks exactly what the first attempt asked."""

    def __init__(self, name: str, scenario: Scenario, ctx: RunContext, settings: ParliamentSettings):
        self.name = name
        self.scenario = scenario
        self.ctx = ctx
        self.settings = settings
        self.events: list[Event] = []
        self.speakers = scenario.by_seats()
        self.agents = ParliamentAgents(scenario, settings, ctx.model, ctx.seed)
        self.rapporteur = self.agents.rapporteur
        self.author = self.agents.author
        self.text = ""  # the draft as it stands: written in drafting, amended in amendments

    def step(self, type: str, produce: Callable[[], dict[str, Any]]) -> Event:
        event = self.ctx.step(type, produce)
        self.events.append(event)
        return event

    def run(self) -> Iterator[Event]:
        event = run_started(self.scenario, self.ctx, self.name)
        self.events.append(event)
        yield event
        turns = {
            "opening": self.speeches,
            "negotiation": self.speeches,
            "drafting": self.drafting,
            "amendments": self.amendments,
            "vote": self.vote,
        }
        for phase, number in phase_order(self.settings.rounds):
            yield self.step("phase", lambda: phase_data(phase, number))
            yield from turns[phase](phase, number)

    def speeches(self, phase: str, number: int | None) -> Iterator[Event]:
        for group in self.speakers:
            yield self.step("speech", lambda: self.agents.speech(group, phase, number or 0, self.events))

    def drafting(self, phase: str, number: None) -> Iterator[Event]:
        draft = self.step("draft", lambda: self.agents.first_draft(self.events))
        yield draft
        self.text = draft["data"]["text"]

    def amendments(self, phase: str, number: None) -> Iterator[Event]:
        text, version = self.text, 1
        for group in self.speakers:
            if group is self.rapporteur:
                continue
            amendment = self.step("amendment", lambda: self.agents.amendment(group, self.events))
            yield amendment
            if not amendment["data"]["text"]:
                continue
            decision = self.step(
                "amendment_decision",
                lambda: self.agents.decision(group, amendment["data"]["text"], text, self.events[:-1]),
            )
            yield decision
            if decision["data"]["draft_after"] != text:
                text, version = decision["data"]["draft_after"], version + 1
        if version > 1:
            yield self.step("draft", lambda: {"author": self.author, "text": text, "version": version})
        self.text = text

    def vote(self, phase: str, number: None) -> Iterator[Event]:
        for event in vote_on(self.scenario, self.ctx, self.text):
            self.events.append(event)
            yield event


@dataclass(frozen=True)
class Parliament:
    name: str = "parliament"
    summary: ClassVar[str] = (
        "Party agents give opening statements, negotiate, a rapporteur drafts, groups table amendments, the chamber votes."
    )
    needs_model: bool = True
    params_model: ClassVar[type[ParliamentSettings]] = ParliamentSettings

    def estimated_cost(self, *, groups: int, params: ParliamentSettings, judge_uses_model: bool) -> RunCost:
        """k*(1+rounds) speeches, one draft, an amendment and a decision per group but the
        rapporteur (an accepted amendment's revision comes on top), then the vote."""
        speeches = groups * (1 + params.rounds)
        amenders = groups - 1 if params.rapporteur == "largest" else groups
        own = RunCost(
            speeches + 1 + 2 * amenders,
            speeches * params.speech_tokens
            + params.draft_tokens
            + amenders * (params.speech_tokens + DECISION_TOKENS + params.draft_tokens),
        )
        return own + vote_cost(groups=groups, judge_uses_model=judge_uses_model)

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        settings = params_validate(self.params_model, ctx.params, strategy=self.name)
        yield from _Sitting(self.name, scenario, ctx, settings).run()
