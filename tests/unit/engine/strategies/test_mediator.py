"""The mediator strategy (Habermas Machine): candidates, shuffled rankings, Schulze, critiques,
revisions; seeds, replay, parameters and the cost estimate."""

import re

import pytest

from deliberation.engine.events import event_validate
from deliberation.engine.judges import LLMJudge, ScriptedJudge, Verdict
from deliberation.engine.models import (
    RANKING_MARKER,
    ScriptedModelClient,
    scripted_reply,
)
from deliberation.engine.strategies import (
    STRATEGIES,
    ParamsError,
    run_cost,
    strategy_params,
)
from deliberation.engine.strategies.base import judge_seed, usage_totals
from deliberation.engine.strategies.mediator import (
    Mediator,
    parse_ranking,
)
from tests.unit.engine.test_strategies import event_types, run_all, without_timings

SEATS = {"EPP": 0.5, "SD": 0.3, "GREEN_EFA": 0.2}


@pytest.fixture
def scenario(make_scenario):
    return make_scenario(seats=SEATS, goal="simple_majority")


def run(scenario, *, seed=5, params=None, **ctx):
    return run_all(Mediator(), scenario, seed=seed, params=params or {}, **ctx)


def test_events_come_in_the_habermas_order(scenario):
    events = run(scenario, params={"candidates": 3, "rounds": 2})
    n = len(SEATS)
    round_one = ["candidate"] * 3 + ["ranking"] * n + ["schulze"]
    round_two = ["critique"] * n + ["candidate"] * 3 + ["ranking"] * n + ["schulze"]
    assert event_types(events) == [
        "run_started",
        *round_one,
        *round_two,
        "draft",
        "vote",
        "vote",
        "vote",
        "tally",
        "outcome",
    ]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for event in events:
        event_validate(event)
    candidates = [e["data"] for e in events if e["type"] == "candidate"]
    assert [(c["round"], c["index"], c["revision"]) for c in candidates] == [
        (1, 0, False),
        (1, 1, False),
        (1, 2, False),
        (2, 0, True),
        (2, 1, True),
        (2, 2, True),
    ]
    assert all(sorted(c["order"]) == sorted(SEATS) for c in candidates)


def test_the_last_rounds_schulze_winner_is_the_text_put_to_the_vote(scenario):
    events = run(scenario)
    last_schulze = [e for e in events if e["type"] == "schulze"][-1]["data"]
    last_round = [e["data"]["text"] for e in events if e["type"] == "candidate" and e["data"]["round"] == 2]
    draft = next(e for e in events if e["type"] == "draft")["data"]
    assert draft == {"author": "mediator", "text": last_round[last_schulze["winner"]], "version": 2}
    assert last_schulze["winner"] == last_schulze["order"][0]
    assert last_schulze["order"][0] in last_schulze["tiers"][0]


class Voters:
    """Replies as a chamber would: rankings from fixed preferences over candidates (found by their
    text), candidates numbered by call, critiques named by group."""

    def __init__(self, preferences):
        self.preferences = preferences  # group -> candidate numbers, best first
        self.candidates = 0
        self.asks = []

    def __call__(self, messages, params, seed):
        ask = messages[-1]["content"]
        self.asks.append(ask)
        if RANKING_MARKER in ask:
            group = re.match(r"You are the delegation of the (\w+) group", messages[0]["content"]).group(1)
            shown = re.findall(r"^([A-H]): '''The European Parliament, candidate (\d+)\.'''", ask, re.MULTILINE)
            letter_of = {int(number) % len(shown): letter for letter, number in shown}  # by index in its round
            return " > ".join(letter_of[n] for n in self.preferences[group]) if shown else "?"
        if "Now write the" in ask:
            self.candidates += 1
            return f"The European Parliament, candidate {self.candidates - 1}."
        return f"Critique {seed}"


def test_rankings_are_mapped_back_through_the_shuffle_and_aggregated_by_schulze(scenario):
    # Candidate 2 is everyone's first choice: it must win however the letters were shuffled.
    voters = Voters({"EPP": [2, 0, 1, 3], "SD": [2, 1, 0, 3], "GREEN_EFA": [2, 3, 1, 0]})
    events = run(scenario, model=ScriptedModelClient(responder=voters), params={"rounds": 1})
    rankings = {e["data"]["group"]: e["data"] for e in events if e["type"] == "ranking"}
    for group, data in rankings.items():
        assert data["order"] == voters.preferences[group] and data["fallback"] is None
        assert sorted(data["shown"]) == [0, 1, 2, 3]
    shuffles = {tuple(data["shown"]) for data in rankings.values()}
    assert len(shuffles) > 1  # each group saw its own order
    result = next(e for e in events if e["type"] == "schulze")["data"]
    assert result["winner"] == 2 and result["tiers"][0] == [2] and result["tie_broken"] is False
    # d[2][x] = 3 for every other x: all three groups put 2 first
    assert [result["pairwise"][2][x] for x in (0, 1, 3)] == [3.0, 3.0, 3.0]
    assert result["pairwise"][0][1] == 1.0 and result["pairwise"][1][0] == 2.0  # EPP alone puts 0 before 1


def test_seat_weighting_lets_the_largest_group_decide_a_duel(scenario):
    # EPP (50%) prefers 0, SD + GREEN_EFA (50%) prefer 1: one ballot each, 1 wins 2:1; by seats a tie.
    prefs = {"EPP": [0, 1], "SD": [1, 0], "GREEN_EFA": [1, 0]}
    plain = run(scenario, model=ScriptedModelClient(responder=Voters(prefs)), params={"rounds": 1, "candidates": 2})
    by_seats = run(
        scenario,
        model=ScriptedModelClient(responder=Voters(prefs)),
        params={"rounds": 1, "candidates": 2, "weighting": "seats"},
    )
    plain_result = next(e for e in plain if e["type"] == "schulze")["data"]
    seats_result = next(e for e in by_seats if e["type"] == "schulze")["data"]
    assert plain_result["winner"] == 1 and plain_result["pairwise"] == [[0.0, 1.0], [2.0, 0.0]]
    assert seats_result["weights"] == SEATS and seats_result["pairwise"] == [[0.0, 0.5], [0.5, 0.0]]
    assert seats_result["tiers"] == [[0, 1]] and seats_result["tie_broken"] is True


def test_revisions_see_the_last_winner_and_every_critique(scenario):
    voters = Voters({"EPP": [1, 0], "SD": [1, 0], "GREEN_EFA": [0, 1]})
    events = run(scenario, model=ScriptedModelClient(responder=voters), params={"rounds": 2, "candidates": 2})
    critiques = [e["data"] for e in events if e["type"] == "critique"]
    assert [c["group"] for c in critiques] == list(SEATS) and all(c["round"] == 2 for c in critiques)
    revision_asks = [ask for ask in voters.asks if "Now write the revised statement" in ask]
    assert len(revision_asks) == 2
    for ask in revision_asks:
        assert "'''The European Parliament, candidate 1.'''" in ask  # round 1's winner
        assert all(c["text"] in ask for c in critiques)
    critique_asks = [ask for ask in voters.asks if "What must change" in ask]
    assert len(critique_asks) == 3 and all("candidate 1." in ask for ask in critique_asks)


def test_a_garbled_ranking_falls_back_to_the_order_shown_and_says_so(scenario):
    def responder(messages, params, seed):
        if RANKING_MARKER in messages[-1]["content"]:
            return "I like them all."
        return scripted_reply(messages, params, seed)

    events = run(scenario, model=ScriptedModelClient(responder=responder), params={"rounds": 1})
    for ranking in (e["data"] for e in events if e["type"] == "ranking"):
        assert ranking["fallback"] == "unparsed" and ranking["order"] == ranking["shown"]
        assert ranking["answer"] == "I like them all."


@pytest.mark.parametrize(
    "raw, expected, fallback",
    [
        ("C > A > D > B", list("CADB"), None),
        ("<answer> B reads best, D misses funding <sep> D > B > C > A </answer>", list("DBCA"), None),
        ("A good statement is C > B > D > A.", list("CBDA"), None),  # the chain wins over the article
        ("Ranking: B, D, A, C.", list("BDAC"), None),
        ("I prefer B, then A", list("BACD"), "partial"),
        ("", list("ABCD"), "unparsed"),
        ("E > F > G", list("ABCD"), "unparsed"),  # letters beyond the candidates do not count
    ],
)
def test_parse_ranking(raw, expected, fallback):
    assert parse_ranking(raw, list("ABCD")) == (expected, fallback)


def test_the_same_seed_gives_the_same_run_and_another_seed_another_shuffle(scenario):
    first, again, other = run(scenario, seed=8), run(scenario, seed=8), run(scenario, seed=9)
    assert without_timings(first) == without_timings(again)
    shown = lambda events: [e["data"]["shown"] for e in events if e["type"] == "ranking"]
    assert shown(first) != shown(other)


def test_a_resumed_run_replays_the_log_and_continues_identically(scenario):
    judge_model = ScriptedModelClient()
    first = run(scenario, judge=LLMJudge(judge_model))
    for cut in (0, 3, 9, len(first) - 4, len(first)):
        model = ScriptedModelClient()
        resumed = run(scenario, model=model, judge=LLMJudge(ScriptedModelClient()), recorded=first[:cut])
        assert without_timings(resumed) == without_timings(first)
        made = sum(1 for e in first[cut:] if e["type"] in ("candidate", "ranking", "critique"))
        assert len(model.calls) == made


@pytest.mark.parametrize(
    "params, message",
    [
        ({"candidates": 1}, "candidates: between 2 and 8, not 1"),
        ({"candidates": 9}, "candidates: between 2 and 8, not 9"),
        ({"candidates": "four"}, "candidates: a whole number, not 'four'"),
        ({"rounds": 0}, "rounds: between 1 and 4, not 0"),
        ({"rounds": 1.5}, "rounds: a whole number, not 1.5"),
        ({"weighting": "votes"}, "weighting: one of none, seats, not 'votes'"),
        ({"temperature": 3}, "temperature: between 0 and 2, not 3"),
        ({"candidate": 3}, "candidate: mediator has no such parameter"),
    ],
)
def test_parameters_are_checked_with_a_message_that_names_them(params, message):
    with pytest.raises(ParamsError, match=message):
        strategy_params("mediator", params)


@pytest.mark.parametrize("params", [{}, {"candidates": 2, "rounds": 1}, {"candidates": 5, "rounds": 3}])
@pytest.mark.parametrize("llm_judge", [False, True])
def test_the_cost_estimate_is_the_model_calls_made(scenario, params, llm_judge):
    model, judge_model = ScriptedModelClient(), ScriptedModelClient()
    events = run(scenario, model=model, judge=LLMJudge(judge_model) if llm_judge else ScriptedJudge(), params=params)
    steps = usage_totals(events)["calls"]  # events that carry a model call's usage
    cost = run_cost(strategy="mediator", party_count=len(SEATS), judge_uses_model=llm_judge, params=params)
    assert cost.steps == steps == len(model.calls) + len(judge_model.calls)


def test_the_mediator_is_registered():
    assert STRATEGIES["mediator"].needs_model is True


# --- rankings by the run's judge -----------------------------------------------------------------


class CandidateJudge:
    """Scores by candidate number (found in the text) per group; records what it was asked."""

    name = "candidate-judge"

    def __init__(self, scores):
        self.scores, self.asked = scores, []

    def score(self, *, scenario, group, text, seed):
        self.asked.append((group, text, seed))
        number = int(re.search(r"candidate (\d+)", text).group(1)) % 3
        return Verdict(group, self.scores[group][number])


def test_judged_rankings_score_every_candidate_and_keep_ties_on_the_ballot(scenario):
    # Round 1's candidates 0, 1, 2. EPP: 2 > 1 = 0; SD: 1 > 2 > 0; GREEN_EFA: all equal (no preference).
    judge = CandidateJudge({"EPP": [4, 4, 8], "SD": [1, 7, 5], "GREEN_EFA": [6, 6, 6]})
    events = run(
        scenario,
        model=ScriptedModelClient(responder=Voters({})),
        judge=judge,
        params={"ranking": "judge", "rounds": 1, "candidates": 3},
    )
    rankings = {e["data"]["group"]: e["data"] for e in events if e["type"] == "ranking"}
    assert rankings["EPP"]["scores"] == [4, 4, 8] and rankings["EPP"]["order"] == [2, 0, 1]
    assert rankings["GREEN_EFA"]["order"] == [0, 1, 2] and rankings["SD"]["order"] == [1, 2, 0]
    result = next(e for e in events if e["type"] == "schulze")["data"]
    # d[2][0] = EPP + SD = 2; d[0][1] = 0 (EPP ties them, SD prefers 1); GREEN_EFA adds nothing anywhere.
    assert result["pairwise"] == [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]
    # 2 beats 0 (2:0) and 1 beats 0 (1:0); 1 and 2 split 1:1, so they share the first tier, broken by TBRC.
    assert result["tiers"] == [[1, 2], [0]] and result["tie_broken"] is True and result["winner"] in (1, 2)
    # 3 groups x 3 candidates judged, then the vote on the winner with the same judge seed.
    assert len(judge.asked) == 9 + 3 and {seed for _, _, seed in judge.asked} == {judge_seed(5)}
    for event in events:
        event_validate(event)


def test_judged_rankings_cost_one_step_each_with_a_model_judge(scenario):
    model, judge_model = ScriptedModelClient(), ScriptedModelClient()
    params = {"ranking": "judge", "candidates": 3}
    events = run(scenario, model=model, judge=LLMJudge(judge_model), params=params)
    steps = usage_totals(events)["calls"]
    assert steps == run_cost(strategy="mediator", party_count=3, judge_uses_model=True, params=params).steps
    assert steps == 2 * 3 + 2 * 3 + 3 + 3  # candidates, judged rankings, critiques, votes
    assert len(model.calls) == 2 * 3 + 3 and len(judge_model.calls) == 2 * 3 * 3 + 3
    assert run_cost(strategy="mediator", party_count=3, judge_uses_model=False, params=params).steps == 2 * 3 + 3
