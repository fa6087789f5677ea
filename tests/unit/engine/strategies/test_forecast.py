"""The forecast strategy (ProAgent): the coalition plan against hand-computed seat cases, the
forecast / plan / draft / verify / correct loop, stopping, replay, parameters and cost."""

import json

import pytest

from deliberation.engine.events import event_validate
from deliberation.engine.goals import goal_margin
from deliberation.engine.judges import LLMJudge, ScriptedJudge, Verdict
from deliberation.engine.models import (
    FORECAST_MARKER,
    ScriptedModelClient,
    scripted_reply,
)
from deliberation.engine.strategies import (
    ParamsError,
    run_cost,
    strategy_params,
)
from deliberation.engine.strategies.base import usage_totals
from deliberation.engine.strategies.forecast import (
    Forecast,
    coalition_plan,
    parse_forecast,
)
from tests.unit.engine.test_strategies import event_types, run_all

SEATS = {"A": 0.5, "B": 0.3, "C": 0.2}


def plan(forecast, goal="simple_majority", veto=None, target=7, margin=0.3, seats=SEATS):
    return coalition_plan(forecast=forecast, seats=seats, goal=goal, veto_group=veto, target=target, margin=margin)


# --- the coalition plan, by hand ----------------------------------------------------------------


def test_simple_majority_lifts_the_largest_group_when_it_is_cheapest():
    # Forecast u = .5*2 + .3*6 + .2*6 = 4.0; needed 5.3. {A} to 7: +2.5 -> 6.5, lift 5.
    # {B}: +.3, {C}: +.2, {B, C}: +.5 -> 4.5, all short. Cheapest feasible: {A}.
    result = plan({"A": 2, "B": 6, "C": 6})
    assert (result.coalition, result.lift, result.feasible) == (("A",), 5.0, True)
    assert result.expected == {"A": 7.0, "B": 6.0, "C": 6.0}


def test_two_smaller_groups_win_over_the_largest_when_their_lift_is_smaller():
    # Target 9: {A} lift 7 (+3.5 -> 7.5); {B, C} lift 3 + 3 = 6 (+.9 + .6 -> 5.5 >= 5.3): cheaper.
    result = plan({"A": 2, "B": 6, "C": 6}, target=9)
    assert (result.coalition, result.lift, result.feasible) == (("B", "C"), 6.0, True)


def test_veto_power_puts_the_veto_group_in_the_coalition():
    # Veto C: {C} alone +.2 -> 4.2 short; {B, C} +.5 -> 4.5 short; {A, C} lift 6, +2.7 -> 6.7 passes.
    result = plan({"A": 2, "B": 6, "C": 6}, goal="veto_power", veto="C")
    assert (result.coalition, result.lift) == (("A", "C"), 6.0)


def test_equal_lifts_go_to_the_larger_seat_share():
    # Target 6 from A 5, B 4, C 4 (u = 2.5 + 1.2 + .8 = 4.5, needed 5.3): {A} lift 1 +.5 short;
    # {B} lift 2 +.6 short; {A, B} lift 3 +.8 -> 5.3 passes; {A, C} lift 3 +.7 short; {B, C} lift 4.
    result = plan({"A": 5, "B": 4, "C": 4}, target=6)
    assert (result.coalition, result.lift) == (("A", "B"), 3.0)
    # Lift 2 at target 6 from A 4, B 4, C 9 (u = 2 + 1.2 + 1.8 = 5.0): {A} +1.0 and {B} +.6 both pass;
    # C, already above the target, joins either for free: {A, C} (70%) beats {B, C} (50%) and {A} (50%).
    assert plan({"A": 4, "B": 4, "C": 9}, target=6).coalition == ("A", "C")
    # Without a free rider, at target 9 from A 4, B 4, C 0 (u = 3.2, needed 5.3): {A} lift 5 +2.5
    # passes, {B} at the same lift +1.5 falls short, anything with C lifts 9 more.
    assert plan({"A": 4, "B": 4, "C": 0}, target=9).coalition == ("A",)


def test_a_passing_forecast_needs_no_coalition():
    result = plan({"A": 6, "B": 6, "C": 6})
    assert (result.coalition, result.lift, result.feasible) == ((), 0.0, True)


def test_an_unreachable_goal_takes_every_group_and_says_it_is_not_feasible():
    # Two-thirds: needed 6.967; even every group at target 6 gives 6.0.
    result = plan({"A": 1, "B": 1, "C": 1}, goal="two_thirds_majority", target=6)
    assert (result.coalition, result.feasible) == (("A", "B", "C"), False)


def test_rawlsian_raises_everyone_lowest_first_and_utilitarian_the_roomiest_half():
    rawls = plan({"A": 5, "B": 2, "C": 4}, goal="rawlsian")
    assert rawls.coalition == ("B", "C", "A") and rawls.feasible is None and rawls.lift == 5 + 3 + 2
    util = plan({"A": 5, "B": 2, "C": 4}, goal="utilitarian")
    assert util.coalition == ("B", "C")  # headroom 7 and 5 beat 4; ceil(3 / 2) = 2 groups


def test_goal_margin():
    scores, seats = {"A": 6, "B": 4, "C": 2}, SEATS  # u = 3 + 1.2 + .4 = 4.6
    assert goal_margin(scores, seats=seats, goal="simple_majority", veto_group=None) == pytest.approx(-0.4)
    assert goal_margin(scores, seats=seats, goal="two_thirds_majority", veto_group=None) == pytest.approx(4.6 - 20 / 3)
    assert goal_margin(scores, seats=seats, goal="veto_power", veto_group="B") == pytest.approx(-2)
    assert goal_margin(scores, seats=seats, goal="rawlsian", veto_group=None) == 2
    assert goal_margin(scores, seats=seats, goal="utilitarian", veto_group=None) == 4


# --- reading forecasts --------------------------------------------------------------------------


def test_parse_forecast_reads_names_codes_and_messy_lines():
    names = {"EPP": "EPP", "SD": "S&D", "GREEN_EFA": "Greens/EFA"}
    raw = (
        "Here are my forecasts:\n- **S&D**: 6 | a minimum wage floor\nEPP - score 4; no new taxes\n"
        "Greens/EFA: seven | climate\nSD: 2 | ignored, S&D already scored"
    )
    assert parse_forecast(raw, names) == {"SD": (6, "a minimum wage floor"), "EPP": (4, "no new taxes")}


# --- the loop -----------------------------------------------------------------------------------


@pytest.fixture
def scenario(make_scenario):
    return make_scenario(seats={"EPP": 0.5, "SD": 0.3, "GREEN_EFA": 0.2}, goal="simple_majority")


class FixedJudge:
    """Scores per round: the n-th draft it sees gets the n-th row of scores."""

    name = "fixed"

    def __init__(self, rows):
        self.rows, self.texts = rows, []

    def score(self, *, scenario, group, text, seed):
        if text not in self.texts:
            self.texts.append(text)
        row = self.rows[min(self.texts.index(text), len(self.rows) - 1)]
        return Verdict(group, row[group])


def run(scenario, *, seed=4, params=None, **ctx):
    return run_all(Forecast(), scenario, seed=seed, params=params or {}, **ctx)


ROUND = ["forecast", "plan", "draft", "verification", "verification", "verification", "belief_update"]
VOTE = ["vote", "vote", "vote", "tally", "outcome"]


def test_a_passing_first_draft_stops_after_one_round(scenario):
    events = run(scenario, judge=ScriptedJudge(scores={"EPP": 7, "SD": 5, "GREEN_EFA": 2}))
    assert event_types(events) == ["run_started", *ROUND, *VOTE]
    update = events[-6]["data"]
    assert update["passes"] is True and update["stop"] is True and update["reason"] == "goal met"
    assert update["margin"] == pytest.approx(0.5 * 7 + 0.3 * 5 + 0.2 * 2 - 5)
    for event in events:
        event_validate(event)


def test_a_failing_goal_runs_every_round_and_votes_on_the_best_draft(scenario):
    judge = FixedJudge(
        [{"EPP": 2, "SD": 2, "GREEN_EFA": 2}, {"EPP": 4, "SD": 4, "GREEN_EFA": 4}, {"EPP": 3, "SD": 3, "GREEN_EFA": 3}]
    )
    events = run(scenario, judge=judge)
    assert event_types(events) == ["run_started", *ROUND * 3, "draft", *VOTE]
    drafts = [e["data"] for e in events if e["type"] == "draft"]
    assert drafts[-1] == {"author": "drafter", "text": drafts[1]["text"], "version": 2}  # round 2 was best
    assert [e["data"]["reason"] for e in events if e["type"] == "belief_update"] == ["", "", "last round"]
    assert events[-1]["data"]["scores"] == {"EPP": 4, "SD": 4, "GREEN_EFA": 4}


def test_forecasts_plan_and_verification_line_up(scenario):
    judge = FixedJudge([{"EPP": 2, "SD": 6, "GREEN_EFA": 3}, {"EPP": 7, "SD": 6, "GREEN_EFA": 3}])
    model = ScriptedModelClient()
    events = run(scenario, model=model, judge=judge)
    forecasts = [e["data"] for e in events if e["type"] == "forecast"]
    plans = [e["data"] for e in events if e["type"] == "plan"]
    verified = [e["data"] for e in events if e["type"] == "verification"]
    assert len(forecasts) == 2  # round 2's draft passes: .5*7 + .3*6 + .2*3 = 5.9
    for f, p in zip(forecasts, plans):
        assert p == {
            "round": f["round"],
            **coalition_plan(
                forecast=f["predicted"],
                seats=scenario.seats,
                goal="simple_majority",
                veto_group=None,
                target=7,
                margin=0.3,
            ).as_dict(),
        }
    for v in verified:
        f = forecasts[v["round"] - 1]
        assert v["forecast"] == f["predicted"][v["group"]]
    update = [e["data"] for e in events if e["type"] == "belief_update"][0]
    assert update["errors"] == {v["group"]: v["score"] - v["forecast"] for v in verified if v["round"] == 1}
    # Round 2 is told what round 1 forecast and what the judge said.
    forecast_asks = [call[0][-1]["content"] for call in model.calls if FORECAST_MARKER in call[0][-1]["content"]]
    assert "round | group | forecast | judged" not in forecast_asks[0]
    assert f"1 | EPP | {forecasts[0]['predicted']['EPP']} | 2" in forecast_asks[1]
    draft_asks = [
        call[0][-1]["content"] for call in model.calls if "Now write the resolution" in call[0][-1]["content"]
    ]
    assert "Plan: to meet the goal" in draft_asks[0] and "Your previous draft" not in draft_asks[0]
    assert "How the judge scored it: EPP 2" in draft_asks[1]


def test_unscored_groups_keep_their_last_judged_score_and_are_listed(scenario):
    def responder(messages, params, seed):
        if FORECAST_MARKER in messages[-1]["content"]:
            return "EPP: 8 | subsidies"
        return scripted_reply(messages, params, seed)

    judge = FixedJudge([{"EPP": 1, "SD": 3, "GREEN_EFA": 2}, {"EPP": 1, "SD": 3, "GREEN_EFA": 2}])
    events = run(scenario, model=ScriptedModelClient(responder=responder), judge=judge, params={"rounds": 2})
    first, second = [e["data"] for e in events if e["type"] == "forecast"]
    assert first["answer"] == "EPP: 8 | subsidies"
    assert first["predicted"] == {"EPP": 8, "SD": 5, "GREEN_EFA": 5} and first["fallback"] == ["SD", "GREEN_EFA"]
    assert second["predicted"] == {"EPP": 8, "SD": 3, "GREEN_EFA": 2}
    assert first["red_lines"] == {"EPP": "subsidies"}


def test_score_goals_stop_when_a_round_gains_too_little(make_scenario):
    scenario = make_scenario(goal="rawlsian")
    judge = FixedJudge([{"EPP": 2, "SD": 3, "GREEN_EFA": 4}, {"EPP": 2, "SD": 5, "GREEN_EFA": 4}])
    events = run(scenario, judge=judge, params={"rounds": 3})
    updates = [e["data"] for e in events if e["type"] == "belief_update"]
    assert [(u["margin"], u["passes"], u["reason"]) for u in updates] == [(2, None, ""), (2, None, "gain below 0.25")]


def test_same_seed_same_run_and_a_resumed_run_replays(scenario):
    first = run(scenario, judge=LLMJudge(ScriptedModelClient()))
    assert json.dumps(first) != json.dumps(run(scenario, seed=5, judge=LLMJudge(ScriptedModelClient())))
    for cut in (0, 2, 5, len(first) - 3, len(first)):
        model = ScriptedModelClient()
        resumed = run(scenario, model=model, judge=LLMJudge(ScriptedModelClient()), recorded=first[:cut])
        strip = lambda events: [{**e, "data": {k: v for k, v in e["data"].items() if k != "usage"}} for e in events]
        assert strip(resumed) == strip(first)
        assert len(model.calls) == sum(
            1 for e in first[cut:] if e["type"] in ("forecast",) or (e["type"] == "draft" and "usage" in e["data"])
        )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"rounds": 0}, "rounds: between 1 and 5, not 0"),
        ({"target": 5}, "target: between 6 and 9, not 5"),
        ({"margin": -1}, "margin: between 0 and 2, not -1"),
        ({"draft_tokens": "many"}, "draft_tokens: a whole number, not 'many'"),
    ],
)
def test_parameters_are_checked(params, message):
    with pytest.raises(ParamsError, match=message):
        strategy_params("forecast", params)


@pytest.mark.parametrize("rounds", [1, 2, 3])
def test_the_cost_estimate_is_the_model_calls_of_a_run_that_uses_every_round(scenario, rounds):
    model, judge_model = ScriptedModelClient(), ScriptedModelClient()

    def failing(messages, params, seed):  # the LLM judge says 0: the goal never passes
        return "0"

    judge_model.responder = failing
    events = run(scenario, model=model, judge=LLMJudge(judge_model), params={"rounds": rounds})
    assert usage_totals(events)["calls"] == len(model.calls) + len(judge_model.calls)
    cost = run_cost(strategy="forecast", party_count=3, judge_uses_model=True, params={"rounds": rounds})
    assert cost.steps == len(model.calls) + len(judge_model.calls) == rounds * (2 + 3) + 3
    assert (
        run_cost(strategy="forecast", party_count=3, judge_uses_model=False, params={"rounds": rounds}).steps
        == 2 * rounds
    )


def test_a_forecast_that_copies_the_prompts_example_keeps_no_red_line(scenario):
    model = ScriptedModelClient()
    run(scenario, model=model, judge=ScriptedJudge(scores={"EPP": 9, "SD": 9, "GREEN_EFA": 9}))
    ask = model.calls[0][0][-1]["content"]
    example = ask.split("For example:\n", 1)[1].split("\nYour forecast:")[0]
    assert example == "EPP: 5 | (the red line of EPP, in a few words)\nSD: 5 | (the red line of SD, in a few words)"

    copied = ScriptedModelClient(
        responder=lambda messages, params, seed: (
            example if FORECAST_MARKER in messages[-1]["content"] else scripted_reply(messages, params, seed)
        )
    )
    events = run(scenario, model=copied, judge=ScriptedJudge(scores={"EPP": 9, "SD": 9, "GREEN_EFA": 9}))
    forecast = next(e["data"] for e in events if e["type"] == "forecast")
    assert forecast["predicted"] == {"EPP": 5, "SD": 5, "GREEN_EFA": 5} and forecast["red_lines"] == {}
    assert forecast["fallback"] == ["GREEN_EFA"]
