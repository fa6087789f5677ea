"""The parliament strategy: phases, prompts that carry the debate, amendments, replay."""

import re
from dataclasses import dataclass, field

import pytest

from deliberation.engine.events import event_validate
from deliberation.engine.judges import ScriptedJudge, Verdict
from deliberation.engine.models import ScriptedModelClient
from deliberation.engine.scenario import Group, RecordView, Scenario
from deliberation.engine.strategies import RunContext, strategy_named
from deliberation.engine.strategies.parliament import Parliament, parse_decision, phase_after, phase_order

RECORD = RecordView(
    key="42",
    title="Water resilience",
    background="Droughts are spreading across Europe.",
    resolution="The European Parliament adopted something.",
    topic="environment",
    term="9th",
)
# Scenario order differs from seat order, so tests see which one the strategy follows.
SCENARIO = Scenario(
    record=RECORD,
    groups=(
        Group("SD", "SD wants a water fund for poorer regions."),
        Group("EPP", "EPP wants farmers protected and little red tape."),
        Group("ECR", "ECR opposes new EU powers over water."),
    ),
    seats={"EPP": 0.5, "SD": 0.3, "ECR": 0.2},
    goal="simple_majority",
)
BY_SEATS = ["EPP", "SD", "ECR"]

ASK_KINDS = (  # a phrase of each instruction -> the kind of call; the revision is checked first
    ("revised resolution", "revision"),
    ("Now write the resolution", "draft"),
    ("opening statement", "opening"),
    ("Negotiation round", "negotiation"),
    ("Table ONE amendment", "amendment"),
    ("ACCEPT or REJECT", "decision"),
)


def ask_of(messages) -> str:
    return messages[-1]["content"].rsplit("\n\n", 1)[-1]


def kind_of(messages) -> str:
    ask = ask_of(messages)
    return next(kind for phrase, kind in ASK_KINDS if phrase in ask)


def speaker_of(messages) -> str:
    match = re.match(r"You are the delegation of the (\w+) group", messages[0]["content"])
    return match.group(1) if match else "mediator"


def amending_group(messages) -> str:
    match = re.search(r"(\w+) tables this amendment|amendment by (\w+)", ask_of(messages))
    return match.group(1) or match.group(2)


@dataclass
class Chamber:
    """Scripted replies that name their speaker, kind and seed; amendments and decisions as set."""

    amendments: dict[str, str] = field(default_factory=dict)  # group -> its amendment reply
    decisions: dict[str, str] = field(default_factory=dict)  # amending group -> rapporteur's reply
    speeches: dict[str, str] = field(default_factory=dict)  # group -> every speech reply

    def __call__(self, messages, params, seed) -> str:
        kind, speaker = kind_of(messages), speaker_of(messages)
        if kind in ("opening", "negotiation"):
            return self.speeches.get(speaker, f"  {speaker} speaks in {kind} ({seed}).  ")
        if kind == "draft":
            return f"The European Parliament, drafted by {speaker} ({seed})."
        if kind == "amendment":
            return self.amendments.get(speaker, f"{speaker} asks to add clause {seed}.")
        if kind == "decision":
            return self.decisions.get(amending_group(messages), "REJECT: it would split the majority.")
        return f"The European Parliament, revised for {amending_group(messages)} ({seed})."


@dataclass
class RecordingJudge:
    texts: list[str] = field(default_factory=list)
    name: str = "recording"

    def score(self, *, scenario, group, text, seed) -> Verdict:
        self.texts.append(text)
        return Verdict(group, 6)


def run(chamber=None, judge=None, recorded=(), model=None, seed=7, **params):
    model = model or ScriptedModelClient(responder=chamber or Chamber())
    ctx = RunContext(model=model, judge=judge or ScriptedJudge(), seed=seed, params=params, recorded=recorded)
    return list(Parliament().run(SCENARIO, ctx)), model


def shape(events) -> list[tuple]:
    """Each event as (type, phase-or-group-or-author[, round]) for comparing sequences."""
    rows = []
    for event in events:
        data = event["data"]
        who = data["phase"] if event["type"] == "phase" else data.get("group", data.get("author", ""))
        rows.append((event["type"], who, data["round"]) if "round" in data else (event["type"], who))
    return rows


def without_timing(events) -> list[dict]:
    """Events less the seconds each model call took, which differ between any two runs."""
    return [
        {**e, "data": {**e["data"], "usage": {**e["data"]["usage"], "seconds": None}}} if "usage" in e["data"] else e
        for e in events
    ]


def calls_of(model, kind, speaker=None):
    return [
        messages
        for messages, _params, _seed in model.calls
        if kind_of(messages) == kind and (speaker is None or speaker_of(messages) == speaker)
    ]


def prompt(messages) -> str:
    return "\n".join(m["content"] for m in messages)


def texts(events, type, **match):
    return [
        e["data"]["text"] for e in events if e["type"] == type and all(e["data"].get(k) == v for k, v in match.items())
    ]


VOTE_TAIL = [
    ("phase", "vote"),
    ("vote", "EPP"),
    ("vote", "SD"),
    ("vote", "ECR"),
    ("tally", ""),
    ("outcome", ""),
]
DEBATE_TWO_ROUNDS = [
    ("run_started", ""),
    ("phase", "opening"),
    ("speech", "EPP"),
    ("speech", "SD"),
    ("speech", "ECR"),
    ("phase", "negotiation", 1),
    ("speech", "EPP", 1),
    ("speech", "SD", 1),
    ("speech", "ECR", 1),
    ("phase", "negotiation", 2),
    ("speech", "EPP", 2),
    ("speech", "SD", 2),
    ("speech", "ECR", 2),
    ("phase", "drafting"),
]


def test_largest_group_drafts_and_the_others_amend_in_this_event_order():
    events, _ = run(Chamber(decisions={"ECR": "ACCEPT: it reassures ECR."}), rounds=2)

    assert (
        shape(events)
        == DEBATE_TWO_ROUNDS
        + [
            ("draft", "EPP"),
            ("phase", "amendments"),
            ("amendment", "SD"),
            ("amendment_decision", "SD"),
            ("amendment", "ECR"),
            ("amendment_decision", "ECR"),
            ("draft", "EPP"),  # the closing draft: the amended text goes to the vote
        ]
        + VOTE_TAIL
    )


def test_mediator_drafts_and_every_group_amends_in_this_event_order():
    events, _ = run(rounds=2, rapporteur="mediator")

    assert (
        shape(events)
        == DEBATE_TWO_ROUNDS
        + [
            ("draft", "mediator"),
            ("phase", "amendments"),
            ("amendment", "EPP"),
            ("amendment_decision", "EPP"),
            ("amendment", "SD"),
            ("amendment_decision", "SD"),
            ("amendment", "ECR"),
            ("amendment_decision", "ECR"),
        ]
        + VOTE_TAIL
    )


def test_mediator_decides_on_amendments_in_its_own_voice():
    _, model = run(rounds=0, rapporteur="mediator")

    assert {speaker_of(m) for m in calls_of(model, "draft") + calls_of(model, "decision")} == {"mediator"}


def test_zero_rounds_skip_the_negotiation_phase():
    events, _ = run(rounds=0)

    assert [e["data"]["phase"] for e in events if e["type"] == "phase"] == ["opening", "drafting", "amendments", "vote"]


def test_default_is_two_negotiation_rounds():
    events, _ = run()

    assert [e["data"].get("round") for e in events if e["type"] == "phase"] == [None, 1, 2, None, None, None]


def test_opening_speeches_follow_seat_order_not_scenario_order():
    events, model = run(rounds=0)

    assert [e["data"]["group"] for e in events if e["type"] == "speech"] == BY_SEATS
    assert [speaker_of(m) for m in calls_of(model, "opening")] == BY_SEATS


def test_each_agent_is_told_its_own_stance_seat_shares_and_goal_but_not_others_stances():
    _, model = run(rounds=0)
    system = calls_of(model, "opening", "SD")[0][0]["content"]

    assert "SD wants a water fund for poorer regions." in system
    assert "ECR opposes new EU powers" not in system
    assert "Group EPP's seat share is 50%." in system
    assert "more than 50% of the members" in system
    assert RECORD.background in system


def test_negotiation_prompts_carry_every_opening_statement():
    events, model = run(rounds=1)
    openings = texts(events, "speech", phase="opening")

    for messages in calls_of(model, "negotiation"):
        for opening in openings:
            assert opening.strip() in prompt(messages)


def test_second_round_prompts_carry_the_first_round():
    events, model = run(rounds=2)
    first_round = texts(events, "speech", round=1)
    sd_second = [m for m in calls_of(model, "negotiation", "SD") if "round 2 of 2" in ask_of(m)]

    assert len(sd_second) == 1
    for speech in first_round:
        assert speech in prompt(sd_second[0])


def test_drafting_prompt_carries_the_negotiation_speeches():
    events, model = run(rounds=2)
    [draft_call] = calls_of(model, "draft")

    for speech in texts(events, "speech", phase="negotiation"):
        assert speech in prompt(draft_call)


def test_amendment_prompts_carry_the_current_draft_and_earlier_amendments():
    chamber = Chamber(decisions={"SD": "ACCEPT: funds help."})
    events, model = run(chamber, rounds=0)
    first_draft = texts(events, "draft")[0]
    [sd_call] = calls_of(model, "amendment", "SD")
    [ecr_call] = calls_of(model, "amendment", "ECR")
    sd_decision = next(e["data"] for e in events if e["type"] == "amendment_decision")

    assert first_draft in prompt(sd_call)
    assert sd_decision["draft_after"] in prompt(ecr_call)  # ECR amends the revised draft
    assert first_draft not in prompt(ecr_call)
    assert texts(events, "amendment", group="SD")[0] in prompt(ecr_call)
    assert "accepted: funds help." in prompt(ecr_call)


def test_accepted_amendment_rewrites_the_draft_and_the_vote_scores_the_new_text():
    judge = RecordingJudge()
    chamber = Chamber(decisions={"SD": "ACCEPT - it keeps the majority together."})
    events, model = run(chamber, judge=judge, rounds=0)
    decisions = {e["data"]["group"]: e["data"] for e in events if e["type"] == "amendment_decision"}
    drafts = [e["data"] for e in events if e["type"] == "draft"]

    sd = decisions["SD"]
    assert sd["accepted"] is True
    assert sd["reason"] == "it keeps the majority together."
    assert sd["draft_after"] != sd["draft_before"]
    revision_seed = model.calls[[kind_of(m) for m, _, _ in model.calls].index("revision")][2]
    assert sd["draft_after"] == f"The European Parliament, revised for SD ({revision_seed})."
    assert decisions["ECR"]["draft_before"] == sd["draft_after"]
    assert drafts[-1]["text"] == sd["draft_after"] and drafts[-1]["version"] == 2
    assert set(judge.texts) == {sd["draft_after"]}


def test_rejected_amendment_leaves_the_draft_unchanged_and_asks_for_no_revision():
    judge = RecordingJudge()
    events, model = run(Chamber(), judge=judge, rounds=0)  # the chamber rejects by default
    first_draft = texts(events, "draft")
    decisions = [e["data"] for e in events if e["type"] == "amendment_decision"]

    assert len(first_draft) == 1  # no closing draft when nothing changed
    assert [d["accepted"] for d in decisions] == [False, False]
    assert all(d["draft_after"] == d["draft_before"] == first_draft[0] for d in decisions)
    assert decisions[0]["reason"] == "it would split the majority."
    assert calls_of(model, "revision") == []
    assert set(judge.texts) == set(first_draft)


def test_accepted_amendment_with_an_empty_revision_keeps_the_draft_and_says_so():
    chamber = Chamber(decisions={"SD": "ACCEPT: fair."})

    def empty_revision(messages, params, seed):
        return "" if kind_of(messages) == "revision" else chamber(messages, params, seed)

    events, _ = run(model=ScriptedModelClient(responder=empty_revision), rounds=0)
    sd = next(e["data"] for e in events if e["type"] == "amendment_decision")

    assert sd["accepted"] is True
    assert sd["draft_after"] == sd["draft_before"]
    assert sd["reason"] == "fair. (the revised text came back empty; the draft is unchanged)"
    assert len(texts(events, "draft")) == 1


def test_unparsable_decision_is_a_rejection_that_shows_what_the_rapporteur_said():
    chamber = Chamber(decisions={"SD": "Well, this is an interesting proposal to think about."})
    events, model = run(chamber, rounds=0)
    sd = next(e["data"] for e in events if e["type"] == "amendment_decision")

    assert sd["accepted"] is False
    assert sd["reason"] == ("could not parse the decision: Well, this is an interesting proposal to think about.")
    assert sd["draft_after"] == sd["draft_before"]
    assert calls_of(model, "revision") == []


def test_empty_decision_is_a_rejection_with_a_visible_reason():
    events, _ = run(Chamber(decisions={"SD": "   "}), rounds=0)
    sd = next(e["data"] for e in events if e["type"] == "amendment_decision")

    assert (sd["accepted"], sd["reason"]) == (False, "could not parse the decision: (empty answer)")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("ACCEPT: it helps farmers.", (True, "it helps farmers.")),
        ("REJECT - too costly", (False, "too costly")),
        ("**Reject.** It splits the chamber.", (False, "It splits the chamber.")),
        ("Decision: accepted, because it is fair", (True, "because it is fair")),
        ("accept", (True, "no reason given")),
        ("I accept this amendment as it is fair.", (True, "I accept this amendment as it is fair.")),
        ("I cannot accept this.", None),
        ("I accept part of it but reject the rest.", None),
        ("Interesting idea.", None),
        ("", None),
    ],
)
def test_parse_decision_reads_messy_answers_and_gives_up_on_ambiguous_ones(answer, expected):
    assert parse_decision(answer) == expected


def test_amendment_under_decision_is_quoted_once_in_the_rapporteurs_prompt():
    events, model = run(rounds=0)
    sd_amendment = texts(events, "amendment", group="SD")[0]
    [sd_decision_call] = [m for m in calls_of(model, "decision") if amending_group(m) == "SD"]

    assert prompt(sd_decision_call).count(sd_amendment) == 1


def test_speeches_are_stored_without_surrounding_whitespace():
    events, _ = run(rounds=1)  # the chamber pads every speech with spaces

    assert all(text == text.strip() for text in texts(events, "speech"))


def test_declined_amendment_is_recorded_empty_and_needs_no_decision():
    chamber = Chamber(amendments={"SD": "NO AMENDMENT. The draft is fine.", "ECR": ""})
    events, model = run(chamber, rounds=0)

    assert [(e["data"]["group"], e["data"]["text"]) for e in events if e["type"] == "amendment"] == [
        ("SD", ""),
        ("ECR", ""),
    ]
    assert not any(e["type"] == "amendment_decision" for e in events)
    assert calls_of(model, "decision") == []


def test_declined_amendment_shows_as_no_amendment_in_later_prompts():
    events, model = run(Chamber(amendments={"SD": "no amendment"}), rounds=0)
    [ecr_call] = calls_of(model, "amendment", "ECR")

    assert "[SD] no amendment" in prompt(ecr_call)


def test_empty_speech_is_recorded_as_no_statement():
    events, _ = run(Chamber(speeches={"SD": "   "}), rounds=1)

    assert texts(events, "speech", group="SD") == ["(no statement)", "(no statement)"]


def test_long_speeches_are_cut_in_prompts_with_a_visible_ellipsis_but_kept_whole_in_events():
    long_speech = " ".join(f"word{i}" for i in range(300))
    events, model = run(Chamber(speeches={"EPP": long_speech}), rounds=1)
    [sd_negotiation] = calls_of(model, "negotiation", "SD")

    assert texts(events, "speech", group="EPP")[0] == long_speech
    assert "word119 [...]" in prompt(sd_negotiation)
    assert "word120" not in prompt(sd_negotiation)


def test_prompts_stay_compact_with_six_groups_and_five_rounds():
    long_speech = " ".join(["concession"] * 300)
    groups = tuple(Group(code, f"{code} stance.") for code in ("A", "B", "C", "D", "E", "F"))
    scenario = Scenario(RECORD, groups, {g.code: 1 / 6 for g in groups}, "utilitarian")
    model = ScriptedModelClient(responder=lambda m, p, s: long_speech)
    ctx = RunContext(model=model, judge=ScriptedJudge(), seed=1, params={"rounds": 5})
    list(Parliament().run(scenario, ctx))

    # ~1.3 tokens a word; 6,000 tokens of prompt leave room for the answer in an 8k context
    assert max(len(prompt(messages).split()) for messages, _, _ in model.calls) < 4600


def test_speech_and_draft_parameters_come_from_params():
    _, model = run(
        Chamber(decisions={"SD": "ACCEPT: yes"}),
        rounds=1,
        temperature=0.9,
        speech_tokens=100,
        draft_tokens=300,
    )
    by_kind = {}
    for messages, params, _seed in model.calls:
        by_kind.setdefault(kind_of(messages), set()).add((params.temperature, params.max_tokens))

    assert by_kind["opening"] == by_kind["negotiation"] == by_kind["amendment"] == {(0.9, 100)}
    assert by_kind["draft"] == by_kind["revision"] == {(0.3, 300)}
    assert by_kind["decision"] == {(0.3, 80)}


def test_default_parameters_are_warm_speeches_and_cool_drafts():
    _, model = run(rounds=0)
    speech_params = {(p.temperature, p.max_tokens) for m, p, _ in model.calls if kind_of(m) == "opening"}
    draft_params = {(p.temperature, p.max_tokens) for m, p, _ in model.calls if kind_of(m) == "draft"}

    assert (speech_params, draft_params) == ({(0.7, 160)}, {(0.3, 400)})


def test_every_call_has_its_own_seed_derived_from_the_run_seed():
    _, first = run(Chamber(decisions={"SD": "ACCEPT: yes"}), rounds=2, seed=7)
    _, again = run(Chamber(decisions={"SD": "ACCEPT: yes"}), rounds=2, seed=7)
    _, other = run(Chamber(decisions={"SD": "ACCEPT: yes"}), rounds=2, seed=8)
    seeds = [seed for _, _, seed in first.calls]

    assert len(set(seeds)) == len(seeds)
    assert first.calls == again.calls
    assert seeds != [seed for _, _, seed in other.calls]


@pytest.mark.parametrize("rapporteur", ["largest", "mediator"])
def test_every_event_fits_the_model_of_its_type(rapporteur):
    chamber = Chamber(decisions={"SD": "ACCEPT: yes"}, amendments={"ECR": "NO AMENDMENT"})
    events, _ = run(chamber, rounds=1, rapporteur=rapporteur)

    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for event in events:
        event_validate(event)
    first_draft = next(e for e in events if e["type"] == "draft")
    assert "usage" in first_draft["data"]  # optional for drafts in general, made by a model here
    assert all("round" in e["data"] for e in events if e["data"].get("phase") == "negotiation")


@pytest.mark.parametrize("rapporteur", ["largest", "mediator"])
def test_resumed_run_replays_stored_events_without_model_calls_and_ends_identically(rapporteur):
    chamber = Chamber(decisions={"SD": "ACCEPT: yes", "EPP": "ACCEPT: fine"})
    model = ScriptedModelClient(responder=chamber)
    ctx = RunContext(
        model=model,
        judge=ScriptedJudge(),
        seed=3,
        params={"rounds": 1, "rapporteur": rapporteur},
    )
    first, calls_after = [], []  # calls_after[i]: model calls made once event i+1 existed
    for event in Parliament().run(SCENARIO, ctx):
        first.append(event)
        calls_after.append(len(model.calls))

    for k in range(1, len(first) + 1):
        resumed_model = ScriptedModelClient(responder=chamber)
        resumed, _ = run(model=resumed_model, recorded=first[:k], seed=3, rounds=1, rapporteur=rapporteur)
        assert without_timing(resumed) == without_timing(first), f"resumed after {k} events"
        # exactly the calls the first attempt made after event k: none for the replayed steps
        assert resumed_model.calls == model.calls[calls_after[k - 1] :], f"resumed after {k} events"


def test_fully_recorded_run_never_calls_the_model():
    first, _ = run(Chamber(decisions={"SD": "ACCEPT: yes"}), rounds=1)

    def no_calls(messages, params, seed):
        raise AssertionError("the model was called during replay")

    replayed, _ = run(model=ScriptedModelClient(responder=no_calls), recorded=first, rounds=1)
    assert replayed == first


def test_bad_parameters_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="rounds"):
        run(rounds=6)
    with pytest.raises(ValueError, match="rapporteur"):
        run(rapporteur="speaker")
    with pytest.raises(ValueError, match="speech_tokens: a whole number"):
        run(speech_tokens="many")


def test_parliament_is_registered():
    assert isinstance(strategy_named("parliament"), Parliament)


def test_models_read_group_labels_not_codes():
    """A group with a label is named by it everywhere a model reads: persona, asks, transcript,
    seat lines, the veto rule and the judge's prompt ("S&D", never the code "SD")."""
    from deliberation.engine.judges import judge_messages

    labelled = Scenario(
        record=RECORD,
        groups=(
            Group("SD", "Wants a water fund for poorer regions.", label="S&D"),
            Group("EPP", "Wants farmers protected and little red tape.", label="EPP"),
            Group("GREEN_EFA", "Wants binding water targets.", label="Greens/EFA"),
        ),
        seats={"EPP": 0.5, "SD": 0.3, "GREEN_EFA": 0.2},
        goal="veto_power",
        veto_group="SD",
    )
    model = ScriptedModelClient(responder=lambda messages, params, seed: "ACCEPT: it helps. I propose more funds.")
    ctx = RunContext(model=model, judge=ScriptedJudge(), seed=3, params={"rounds": 1}, recorded=())
    events = list(Parliament().run(labelled, ctx))
    assert [e["data"]["group"] for e in events if e["type"] == "speech"][:3] == [
        "EPP",
        "SD",
        "GREEN_EFA",
    ]  # data keeps codes
    prompts = [prompt(messages) for messages, _params, _seed in model.calls]
    prompts.append(prompt(judge_messages(scenario=labelled, group="SD", text="The European Parliament ...", attempt=0)))
    everything = "\n".join(prompts)
    assert "S&D" in everything and "Greens/EFA" in everything
    assert re.search(r"\bSD\b", everything) is None
    assert "GREEN_EFA" not in everything
    assert "delegation of the S&D group" in everything
    assert "[Greens/EFA]" in everything  # the transcript as the next speaker reads it
    assert "Group S&D's seat share is 30%." in everything
    assert "tables this amendment" in everything and "S&D tables this amendment" in everything


# --- the phase order (one definition: the strategy plays it, a classroom advances through it) ---


def test_phase_order_has_one_negotiation_phase_per_round():
    assert phase_order(0) == (("opening", None), ("drafting", None), ("amendments", None), ("vote", None))
    assert phase_order(2) == (
        ("opening", None),
        ("negotiation", 1),
        ("negotiation", 2),
        ("drafting", None),
        ("amendments", None),
        ("vote", None),
    )


def test_phase_after_walks_the_order_and_ends_after_the_vote():
    walked, current = [], phase_after(None, None, rounds=2)
    while current is not None:
        walked.append(current)
        current = phase_after(*current, rounds=2)
    assert tuple(walked) == phase_order(2)


@pytest.mark.parametrize("rounds", [0, 2])
def test_the_strategy_announces_the_phases_in_the_order(rounds):
    events, _ = run(Chamber(), rounds=rounds)
    assert [(e["data"]["phase"], e["data"].get("round")) for e in events if e["type"] == "phase"] == list(
        phase_order(rounds)
    )
