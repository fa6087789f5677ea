"""engine/strategies (base, one_shot, baselines) and engine/events: what each strategy yields,
in which order, how a resumed run replays its log, and the shape of every event."""

import json

import pytest

from deliberation.engine.events import event_validate, make_event
from deliberation.engine.goals import goal_requirement, outcome_from_scores
from deliberation.engine.judges import LLMJudge, RealVotesJudge, ScriptedJudge
from deliberation.engine.models import ScriptedModelClient
from deliberation.engine.strategies import STRATEGIES, RunContext, outcome_of, strategy_named
from deliberation.engine.strategies.base import ReplayMismatch
from deliberation.engine.strategies.baselines import Greedy, RandomStance, RealResolution
from deliberation.engine.strategies.one_shot import OneShot, draft_messages, pick_example

SEATS = {"SD": 0.3, "EPP": 0.5, "GREEN_EFA": 0.2}
CHOICES = {"EPP": 9, "SD": 6, "GREEN_EFA": 1}
SEAT_ORDER = ["EPP", "SD", "GREEN_EFA"]
ONE_SHOT_LIKE = [OneShot(), RandomStance(), Greedy(), RealResolution()]


@pytest.fixture
def scenario(make_scenario):
    return make_scenario(seats=SEATS, choices=CHOICES, goal="veto_power", veto_group="SD")


def run_all(strategy, scenario, **ctx):
    ctx.setdefault("judge", ScriptedJudge())
    ctx.setdefault("seed", 11)
    ctx.setdefault("model", ScriptedModelClient())
    return list(strategy.run(scenario, RunContext(**ctx)))


def event_types(events) -> list[str]:
    return [event["type"] for event in events]


def without_timings(events):
    """Events with model seconds zeroed: wall-clock time is the one thing a replay cannot repeat."""
    events = json.loads(json.dumps(events))
    for event in events:
        if "usage" in event["data"]:
            event["data"]["usage"]["seconds"] = 0.0
    return events


# --- one-shot: the example resolution -----------------------------------------------------------


def test_example_is_never_the_target_nor_a_record_with_the_same_resolution(make_record, make_scenario):
    target = make_record(key="t", topic="fisheries")
    scenario = make_scenario(record=target)
    pool = [
        target,
        make_record(key="twin", topic="fisheries"),  # the same issue filed twice
        make_record(
            key="spaced", topic="fisheries", resolution="  " + target.resolution.replace(" ", "\u00a0 \n") + "\n"
        ),
        make_record(key="other", topic="fisheries", resolution="The European Parliament bans trawling."),
    ]
    assert {pick_example(scenario, pool, seed).key for seed in range(30)} == {"other"}


def test_example_prefers_the_same_topic(make_record, make_scenario):
    scenario = make_scenario(record=make_record(key="t", topic="fisheries"))
    pool = [make_record(key=f"x{i}", topic="budget", resolution=f"The European Parliament {i}.") for i in range(5)]
    pool.append(make_record(key="same", topic="fisheries", resolution="The European Parliament fishes."))
    assert {pick_example(scenario, pool, seed).key for seed in range(30)} == {"same"}


def test_example_falls_back_to_another_topic(make_record, make_scenario):
    scenario = make_scenario(record=make_record(key="t", topic="fisheries"))
    pool = [make_record(key=f"x{i}", topic="budget", resolution=f"The European Parliament {i}.") for i in range(5)]
    picked = {pick_example(scenario, pool, seed).key for seed in range(40)}
    assert picked <= {f"x{i}" for i in range(5)} and len(picked) > 1
    # deterministic per seed, whatever the pool's order
    assert pick_example(scenario, pool, 3) == pick_example(scenario, list(reversed(pool)), 3)


def test_example_is_none_when_the_pool_has_nothing_else(make_record, make_scenario):
    target = make_record(key="t")
    scenario = make_scenario(record=target)
    pool = [target, make_record(key="twin"), make_record(key="blank", resolution="  ")]
    assert pick_example(scenario, pool, 0) is None
    assert pick_example(scenario, [], 0) is None


def test_one_shot_draft_records_its_example(make_record, make_scenario):
    example = make_record(key="ex", resolution="The European Parliament sets quotas.")
    scenario = make_scenario()
    model = ScriptedModelClient()
    events = run_all(OneShot(), scenario, model=model, examples=[scenario.record, example])
    assert events[1]["data"]["example_record"] == "ex"
    assert "The European Parliament sets quotas." in model.calls[0][0][-1]["content"]
    assert run_all(OneShot(), scenario)[1]["data"]["example_record"] is None


# --- one-shot: the drafting prompt --------------------------------------------------------------


def prompt_for(scenario, example=None):
    return draft_messages(scenario, example)[-1]["content"]


@pytest.mark.parametrize("goal", ["simple_majority", "two_thirds_majority", "veto_power"])
def test_prompt_for_voting_goals_has_stances_title_and_seat_shares(make_scenario, goal):
    scenario = make_scenario(seats=SEATS, goal=goal, veto_group="SD")
    prompt = prompt_for(scenario)
    for group in scenario.groups:
        assert group.stance in prompt
    assert scenario.record.title in prompt and scenario.record.background in prompt
    assert "A group of 3 political groups" in prompt
    assert "Group EPP's seat share is 50%." in prompt
    assert "Group SD's seat share is 30%." in prompt
    assert "Group GREEN_EFA's seat share is 20%." in prompt
    assert "Begin with 'The European Parliament'" in prompt


@pytest.mark.parametrize("goal", ["rawlsian", "utilitarian"])
def test_prompt_for_welfare_goals_has_no_seat_shares(make_scenario, goal):
    scenario = make_scenario(seats=SEATS, goal=goal)
    prompt = prompt_for(scenario)
    assert "seat share" not in prompt and "50%" not in prompt
    assert all(group.stance in prompt for group in scenario.groups)
    assert goal_requirement(goal, veto_group=None) in prompt


def test_prompt_for_veto_power_names_the_veto_group(make_scenario):
    prompt = prompt_for(make_scenario(seats=SEATS, goal="veto_power", veto_group="GREEN_EFA"))
    assert "GREEN_EFA holds a veto" in prompt
    other = prompt_for(make_scenario(seats=SEATS, goal="simple_majority"))
    assert "veto" not in other


def test_prompt_shows_the_example_only_when_given(make_record, make_scenario):
    scenario = make_scenario()
    example = make_record(key="ex", resolution="The European Parliament sets quotas.")
    assert "The European Parliament sets quotas." in prompt_for(scenario, example)
    assert "An example of such a resolution" not in prompt_for(scenario)


def test_one_shot_asks_the_model_with_the_run_params_and_a_derived_seed(scenario):
    model = ScriptedModelClient()
    ctx = RunContext(model=model, judge=ScriptedJudge(), seed=5, params={"temperature": 0.7, "max_tokens": 123})
    events = list(OneShot().run(scenario, ctx))
    ((messages, params, seed),) = model.calls
    assert (params.temperature, params.max_tokens) == (0.7, 123)
    assert seed == ctx.child_seed("draft")
    assert events[1]["data"]["text"].startswith("The European Parliament")
    assert events[1]["data"]["author"] == "drafter"


# --- baselines ----------------------------------------------------------------------------------


def test_random_stance_is_a_groups_stance_chosen_by_the_seed(scenario):
    picks = {}
    for seed in range(30):
        draft = run_all(RandomStance(), scenario, seed=seed, model=None)[1]["data"]
        assert draft["text"] == scenario.group(draft["source_group"]).stance
        again = run_all(RandomStance(), scenario, seed=seed, model=None)[1]["data"]
        assert again == draft
        picks[seed] = draft["source_group"]
    assert set(picks.values()) == set(SEATS)


def test_greedy_takes_the_largest_groups_stance(scenario):
    draft = run_all(Greedy(), scenario, model=None)[1]["data"]
    assert (draft["source_group"], draft["text"]) == ("EPP", scenario.group("EPP").stance)


def test_greedy_on_tied_seats_takes_the_first_group(make_scenario):
    scenario = make_scenario(seats={"SD": 0.4, "EPP": 0.4, "ECR": 0.2})
    assert run_all(Greedy(), scenario, model=None)[1]["data"]["source_group"] == "SD"


def test_real_resolution_with_real_votes_reproduces_the_real_outcome(scenario):
    events = run_all(RealResolution(), scenario, judge=RealVotesJudge(), model=None)
    assert events[1]["data"]["text"] == scenario.record.resolution
    votes = {e["data"]["group"]: e["data"] for e in events if e["type"] == "vote"}
    assert {code: v["score"] for code, v in votes.items()} == CHOICES
    assert {code: v["position"] for code, v in votes.items()} == {"EPP": "for", "SD": "for", "GREEN_EFA": "against"}
    outcome = outcome_of(events)
    # u = 0.5*9 + 0.3*6 + 0.2*1 = 4.5 + 1.8 + 0.2 = 6.5; veto group SD at 6
    assert outcome.weighted_total == pytest.approx(6.5)
    assert outcome.goals == {
        "simple_majority": True,
        "two_thirds_majority": False,
        "veto_power": True,
        "rawlsian": 1.0,
        "utilitarian": 16 / 3,
    }
    assert outcome == outcome_from_scores(CHOICES, seats=SEATS, goal="veto_power", veto_group="SD")


# --- the event sequence -------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ONE_SHOT_LIKE, ids=lambda s: s.name)
def test_event_sequence_and_numbering(scenario, strategy):
    judge = RealVotesJudge() if strategy.name == "real-resolution" else ScriptedJudge()
    events = run_all(strategy, scenario, judge=judge)
    assert [e["type"] for e in events] == ["run_started", "draft", "vote", "vote", "vote", "tally", "outcome"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["data"]["group"] for e in events if e["type"] == "vote"] == SEAT_ORDER
    started = events[0]["data"]
    assert started == {
        "strategy": strategy.name,
        "goal": "veto_power",
        "veto_group": "SD",
        "groups": list(SEATS),
        "seats": SEATS,
        "title": scenario.record.title,
    }
    tally, outcome = events[-2]["data"], events[-1]["data"]
    scores = {e["data"]["group"]: e["data"]["score"] for e in events if e["type"] == "vote"}
    assert tally["scores"] == outcome["scores"] == scores
    assert tally["threshold"] == 5.0 and tally["goal"] == "veto_power"


def test_fallback_votes_are_listed_in_the_outcome(scenario):
    judge = LLMJudge(ScriptedModelClient(responder=lambda m, p, s: "n/a"), max_attempts=2)
    events = run_all(Greedy(), scenario, judge=judge, model=None)
    outcome = outcome_of(events)
    assert outcome.scores == {"EPP": 4, "SD": 4, "GREEN_EFA": 4}
    assert set(outcome.fallbacks) == set(SEATS)
    assert all(e["data"]["fallback"] and e["data"]["attempts"] == 2 for e in events if e["type"] == "vote")


def test_outcome_of_is_none_before_the_outcome(scenario):
    assert outcome_of(run_all(Greedy(), scenario, model=None)[:-1]) is None


# --- replay -------------------------------------------------------------------------------------


def run_one_shot(scenario, recorded=()):
    drafter = ScriptedModelClient()
    judge_model = ScriptedModelClient()
    ctx = RunContext(model=drafter, judge=LLMJudge(judge_model), seed=21, recorded=recorded)
    return list(OneShot().run(scenario, ctx)), drafter, judge_model


def test_replay_returns_stored_events_without_model_calls(scenario):
    first, drafter, judge_model = run_one_shot(scenario)
    assert len(drafter.calls) == 1 and len(judge_model.calls) == 3

    resumed, drafter, judge_model = run_one_shot(scenario, recorded=first[:2])
    assert drafter.calls == []  # the draft came from the log
    assert len(judge_model.calls) == 3  # the votes were not stored yet
    assert resumed[0] is first[0] and resumed[1] is first[1]
    assert without_timings(resumed) == without_timings(first)

    replayed, drafter, judge_model = run_one_shot(scenario, recorded=first)
    assert drafter.calls == [] and judge_model.calls == []
    assert all(a is b for a, b in zip(replayed, first))


@pytest.mark.parametrize("cut", range(0, 8))
def test_resuming_after_any_event_ends_identically(scenario, cut):
    first, _, _ = run_one_shot(scenario)
    resumed, _, judge_model = run_one_shot(scenario, recorded=first[:cut])
    assert without_timings(resumed) == without_timings(first)
    assert len(judge_model.calls) == max(0, min(3, 5 - cut))


def test_replayed_votes_decide_the_outcome(scenario):
    first, _, _ = run_one_shot(scenario)
    edited = json.loads(json.dumps(first[:5]))
    for event in edited[2:5]:
        event["data"]["score"] = 9
    resumed, _, judge_model = run_one_shot(scenario, recorded=edited)
    assert judge_model.calls == []
    assert outcome_of(resumed).scores == {"EPP": 9, "SD": 9, "GREEN_EFA": 9}


def test_replay_of_a_different_step_raises(scenario):
    first, _, _ = run_one_shot(scenario)
    wrong = [first[0], make_event(2, "vote", first[2]["data"])]
    with pytest.raises(ReplayMismatch):
        run_one_shot(scenario, recorded=wrong)


# --- event shapes (the models themselves: test_events.py) -----------------------------------------


@pytest.mark.parametrize("strategy", ONE_SHOT_LIKE, ids=lambda s: s.name)
def test_every_event_fits_the_model_of_its_type(scenario, strategy):
    judge = RealVotesJudge() if strategy.name == "real-resolution" else ScriptedJudge()
    for event in run_all(strategy, scenario, judge=judge):
        event_validate(event)


@pytest.mark.parametrize("strategy", ONE_SHOT_LIKE, ids=lambda s: s.name)
def test_strategy_events_survive_a_json_round_trip(scenario, strategy):
    judge = RealVotesJudge() if strategy.name == "real-resolution" else ScriptedJudge()
    events = run_all(strategy, scenario, judge=judge)
    again = json.loads(json.dumps(events))
    assert again == events
    assert outcome_of(again) == outcome_of(events)


# --- the registry -------------------------------------------------------------------------------


def test_strategies_are_found_by_name():
    for name in ("one-shot", "random", "greedy", "real-resolution"):
        assert strategy_named(name).name == name
        assert STRATEGIES[name].name == name
    with pytest.raises(ValueError, match="unknown strategy"):
        strategy_named("filibuster")


def test_only_one_shot_needs_a_model():
    assert OneShot().needs_model is True
    assert not any(s.needs_model for s in (RandomStance(), Greedy(), RealResolution()))


def test_run_context_child_seeds_are_stable_and_distinct():
    ctx = RunContext(model=None, judge=ScriptedJudge(), seed=9)
    assert ctx.child_seed("judge") == RunContext(model=None, judge=ScriptedJudge(), seed=9).child_seed("judge")
    assert ctx.child_seed("judge") != ctx.child_seed("draft")
    assert ctx.child_seed("judge") != RunContext(model=None, judge=ScriptedJudge(), seed=10).child_seed("judge")


def test_expected_judge_votes_carry_the_distribution_and_a_fractional_score(scenario):
    from deliberation.engine.judges import ExpectedJudge

    events = run_all(OneShot(), scenario, judge=ExpectedJudge(ScriptedModelClient()))
    votes = [e for e in events if e["type"] == "vote"]
    for vote in votes:
        event_validate(vote)
    for vote in votes:
        distribution = vote["data"]["detail"]["distribution"]
        assert vote["data"]["score"] == distribution["expected"] and 0 <= vote["data"]["score"] <= 9
    json.loads(json.dumps(events))  # stored as JSON like every event
    outcome = outcome_of(events)
    assert outcome.scores == {v["data"]["group"]: v["data"]["score"] for v in votes}
