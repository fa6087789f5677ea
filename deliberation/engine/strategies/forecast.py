"""The forecast strategy: ProAgent's predict, plan, verify, correct (arXiv 2308.11339) in a parliament.

Round r = 1..R:
1. forecast  one call (temperature 0): each group's expected support 0..9 for a draft written like
             the current one (round 1: a plain compromise) and its red line; a group the answer
             does not score keeps its last judged score (else 5), and the event says so.
2. plan      no call (coalition_plan): the cheapest coalition that meets the goal given the seats
             and the veto group, the others left at their forecast.
3. draft     one call: the drafting prompt plus the plan, the previous draft and the judge's scores.
4. verify    the run's judge scores the draft for every group (one `verification` event each).
5. correct   no call (`belief_update`): the goal margin G, each group's forecast error (judged -
             forecast); the next forecast prompt carries the table of forecasts and scores.
Stops when the goal passes (Rawlsian/utilitarian: when a round gains less than 0.25) or after R
rounds; the draft with the best G goes to the vote (base.vote_on, same judge seed as the
verification, so a caching backend answers the vote from the cache).

The reference's explainer step is left out: the run's judge gives a score, no reason, and an
explainer call per group would double the cost; the table of forecasts and scores is the feedback.
"""

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from deliberation.engine.costs import RunCost, vote_cost
from deliberation.engine.events import Event
from deliberation.engine.goals import (
    GOALS,
    VETO_MIN,
    goal_margin,
    goal_requirement,
    reaches,
    weighted_support,
)
from deliberation.engine.models import FORECAST_MARKER, Message, Params
from deliberation.engine.scenario import Scenario
from deliberation.engine.strategies.base import (
    RunContext,
    judge_seed,
    run_started,
    verdict_data,
    vote_on,
)
from deliberation.engine.strategies.one_shot import draft_messages_with
from deliberation.engine.strategies.params import StrategyParams, params_validate
from deliberation.engine.strategies.parliament import shortened

NEUTRAL_FORECAST = 5
FORECAST_TOKENS = 200
EXAMPLE_RED_LINE = "(the red line of "
ANSWER_WORDS = 80  # how much of a forecast's raw answer its event keeps
SCORE_GAIN_STOP = 0.25  # Rawlsian / utilitarian: stop when a round gains less than this
NO_DRAFT = "No draft yet: forecast for a plain compromise resolution on the issue."
RUBRIC = (
    "The judge scores each group alone, 0..9: how well the text gives specific, feasible "
    "implementation details that capture the group's stance (0-3: misses key points or works "
    "against the group; 4-6: covers about half; 7-9: covers every point concretely)."
)


class ForecastParams(StrategyParams):
    rounds: int = Field(
        3,
        ge=1,
        le=5,
        title="Rounds",
        description="The most forecast-plan-draft-verify rounds; it stops early once the goal is met.",
    )
    target: int = Field(
        7,
        ge=VETO_MIN,
        le=9,
        title="Target score",
        description="The support the plan aims at for each group of the chosen coalition.",
    )
    margin: float = Field(
        0.3,
        ge=0,
        le=2,
        title="Safety margin",
        description="How far above the goal's threshold the plan's expected total must be.",
    )
    temperature: float = Field(
        0.3, ge=0, le=2, title="Draft temperature", description="Sampling temperature of the drafts (forecasts use 0)."
    )
    draft_tokens: int = Field(
        400, ge=64, le=2048, title="Draft tokens", description="The most tokens a draft may take."
    )


# --- the plan (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class CoalitionPlan:
    coalition: tuple[str, ...]  # in the order given, except Rawlsian: lowest forecast first
    expected: dict[str, float]  # per group: max(target, forecast) inside, the forecast outside
    lift: float  # sum over the coalition of max(0, target - forecast)
    feasible: bool | None  # None for the score goals, which have no pass line

    def as_dict(self) -> dict[str, Any]:
        return {
            "coalition": list(self.coalition),
            "expected": dict(self.expected),
            "lift": self.lift,
            "feasible": self.feasible,
        }


def coalition_feasible(
    coalition: Sequence[str],
    *,
    forecast: Mapping[str, float],
    seats: Mapping[str, float],
    goal: str,
    veto_group: str | None,
    target: float,
    margin: float,
) -> bool:
    """Whether lifting `coalition` to `target` (the rest at their forecast) clears the voting goal's
    threshold plus `margin`; veto power also needs the veto group in the coalition."""
    if goal == "veto_power" and veto_group not in coalition:
        return False
    lifted = {code: (max(target, value) if code in coalition else value) for code, value in forecast.items()}
    return reaches(weighted_support(lifted, seats), GOALS[goal].threshold + margin)


def coalition_plan(
    *,
    forecast: Mapping[str, float],
    seats: Mapping[str, float],
    goal: str,
    veto_group: str | None,
    target: float,
    margin: float,
) -> CoalitionPlan:
    """Voting goals: of every coalition (n <= 6: at most 64) the feasible one with the smallest
    lift, ties to the larger seat share, then the fewer groups, then the groups' order; when none
    is feasible, every group (feasible False). Rawlsian: every group, lowest forecast first.
    Utilitarian: the half of the groups (rounded up) with the most headroom 9 - forecast."""
    codes = list(forecast)

    def plan(coalition: Sequence[str], feasible: bool | None) -> CoalitionPlan:
        expected = {c: float(max(target, forecast[c]) if c in coalition else forecast[c]) for c in codes}
        lift = math.fsum(max(0.0, target - forecast[c]) for c in coalition)
        return CoalitionPlan(tuple(coalition), expected, round(lift, 6), feasible)

    if goal == "rawlsian":
        return plan(sorted(codes, key=lambda c: (forecast[c], codes.index(c))), None)
    if goal == "utilitarian":
        roomiest = sorted(codes, key=lambda c: (forecast[c], -seats[c], codes.index(c)))
        return plan(sorted(roomiest[: math.ceil(len(codes) / 2)], key=codes.index), None)

    def key(coalition: tuple[str, ...]) -> tuple:
        lift = math.fsum(max(0.0, target - forecast[c]) for c in coalition)
        return (
            round(lift, 9),
            -round(math.fsum(seats[c] for c in coalition), 9),
            len(coalition),
            [codes.index(c) for c in coalition],
        )

    feasible = [
        coalition
        for size in range(len(codes) + 1)
        for coalition in itertools.combinations(codes, size)
        if coalition_feasible(
            coalition, forecast=forecast, seats=seats, goal=goal, veto_group=veto_group, target=target, margin=margin
        )
    ]
    if not feasible:
        return plan(codes, False)
    return plan(min(feasible, key=key), True)


# --- prompts and parsing ---------------------------------------------------------------------

FORECAST_SYSTEM = (
    "You are a careful analyst of the European Parliament who forecasts how each political group "
    "will judge a resolution."
)
FORECAST_ASK = """Issue: {title}
Background: {background}
The groups, their seat shares and stances:
{groups}
Goal: {goal} {rule}
{rubric}

{draft}
{table}
Forecast the judge's score (0..9) of a draft like this one for each group, and name the group's main red line.
{marker} {names}
Answer one line per group in this form: GROUP: score | red line
For example:
{example}
Your forecast:"""

GOAL_RULES = {
    "simple_majority": "(Passes when the seat-weighted mean score is at least 5.)",
    "two_thirds_majority": "(Passes when the seat-weighted mean score is at least 6.67.)",
    "veto_power": "(Passes when the seat-weighted mean score is at least 5 and {veto} scores at least 6.)",
    "rawlsian": "(Scored by the lowest group's score.)",
    "utilitarian": "(Scored by the mean of the groups' scores.)",
}


def table_text(scenario: Scenario, rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return ""
    lines = ["Your forecasts so far and the judge's scores:", "round | group | forecast | judged"]
    lines += [f"{row['round']} | {scenario.name_of(row['group'])} | {row['forecast']} | {row['score']}" for row in rows]
    return "\n".join(lines) + "\n"


def forecast_messages(scenario: Scenario, draft: str | None, rows: Sequence[Mapping[str, Any]]) -> list[Message]:
    groups = "\n".join(
        f"- {g.name} ({scenario.seats[g.code] * 100:.0f}% of seats): '''{g.stance}'''" for g in scenario.groups
    )
    ask = FORECAST_ASK.format(
        title=scenario.record.title,
        background=scenario.record.background,
        groups=groups,
        goal=goal_requirement(scenario.goal, veto_group=scenario.name_of(scenario.veto_group)),
        rule=GOAL_RULES[scenario.goal].format(veto=scenario.name_of(scenario.veto_group)),
        rubric=RUBRIC,
        draft=f"Current draft: '''{draft}'''" if draft else NO_DRAFT,
        table=table_text(scenario, rows),
        marker=FORECAST_MARKER,
        names=", ".join(g.name for g in scenario.groups),
        # The shape only: a neutral score and no red line to copy, so that copying it biases nothing.
        example="\n".join(f"{g.name}: 5 | {EXAMPLE_RED_LINE}{g.name}, in a few words)" for g in scenario.groups[:2]),
    )
    return [{"role": "system", "content": FORECAST_SYSTEM}, {"role": "user", "content": ask}]


def parse_forecast(raw: str, names: Mapping[str, str]) -> dict[str, tuple[int, str]]:
    """{code: (score, red line)} for the groups a forecast answer scores: a line naming the group
    (by name or code) followed by a digit 0..9, the red line after a '|' or ';'. The first such
    line per group counts; groups without one are left out."""
    found: dict[str, tuple[int, str]] = {}
    for line in raw.splitlines():
        for code, name in names.items():
            if code in found:
                continue
            labels = "|".join(re.escape(label) for label in sorted({name, code}, key=len, reverse=True))
            match = re.match(
                rf"^[\W_]*(?:group\s+)?(?:{labels})(?![\w&])[^0-9\n]{{0,12}}?\b([0-9])\b(.*)$",
                line.strip(),
                re.IGNORECASE,
            )
            if match:
                rest = re.split(r"[|;]", match.group(2), maxsplit=1)
                red_line = rest[1].strip() if len(rest) > 1 else ""
                found[code] = (int(match.group(1)), red_line)
    return found


PLAN_BLOCK = """
Plan: to meet the goal, win the support of {members} ({share:.0f}% of the seats together): give each of them concrete measures that meet its red line.
{targets}{others}{previous}"""


def plan_text(
    scenario: Scenario,
    plan: Mapping[str, Any],
    forecast: Mapping[str, Any],
    previous: str | None,
    scored: Sequence[Mapping[str, Any]],
) -> str:
    coalition = plan["coalition"]
    red_lines = forecast["red_lines"]
    targets = "".join(
        f"- {scenario.name_of(c)} (forecast {forecast['predicted'][c]} of 9)"
        + (f": red line: {red_lines[c]}" if red_lines.get(c) else "")
        + "\n"
        for c in coalition
    )
    outside = [c for c in scenario.codes if c not in coalition]
    others = (
        "Offer the other groups something they can live with: "
        + ", ".join(f"{scenario.name_of(c)} (forecast {forecast['predicted'][c]} of 9)" for c in outside)
        + ".\n"
        if outside
        else ""
    )
    previous_text = ""
    if previous:
        scores = ", ".join(
            f"{scenario.name_of(row['group'])} {row['score']} (forecast {row['forecast']})" for row in scored
        )
        previous_text = f"Your previous draft: '''{previous}'''\nHow the judge scored it: {scores}. Improve on it.\n"
    return PLAN_BLOCK.format(
        members=", ".join(scenario.name_of(c) for c in coalition) or "no group in particular",
        share=100 * math.fsum(scenario.seats[c] for c in coalition),
        targets=targets,
        others=others,
        previous=previous_text,
    )


# --- the strategy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    name: str = "forecast"
    needs_model: bool = True
    summary: ClassVar[str] = (
        "ProAgent (arXiv 2308.11339): forecast each group's support, draft for the cheapest "
        "coalition that meets the goal, verify with the judge, correct the forecasts."
    )
    params_model: ClassVar[type[ForecastParams]] = ForecastParams

    def estimated_cost(self, *, groups: int, params: ForecastParams, judge_uses_model: bool) -> RunCost:
        """At most: per round a forecast, a draft and the judge's verdict per group, then the vote
        (an upper bound: it stops once the goal is met; with a caching backend the vote repeats
        the best round's verdicts from the cache)."""
        verdicts = vote_cost(groups=groups, judge_uses_model=judge_uses_model)
        per_round = RunCost(2, FORECAST_TOKENS + params.draft_tokens) + verdicts
        return RunCost(params.rounds * per_round.steps, params.rounds * per_round.completion_tokens) + verdicts

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        settings = params_validate(self.params_model, ctx.params, strategy=self.name)
        yield run_started(scenario, ctx, self.name)
        rows: list[dict[str, Any]] = []  # the belief table: round, group, forecast, score
        last_scores: dict[str, float] = {}
        drafts: list[tuple[float, int, str]] = []  # (G, round, text)
        draft: str | None = None
        for round_number in range(1, settings.rounds + 1):
            forecast = ctx.step(
                "forecast", lambda: self._forecast(scenario, ctx, draft, rows, last_scores, round_number)
            )
            yield forecast
            plan = ctx.step(
                "plan",
                lambda: {
                    "round": round_number,
                    **coalition_plan(
                        forecast=forecast["data"]["predicted"],
                        seats=scenario.seats,
                        goal=scenario.goal,
                        veto_group=scenario.veto_group,
                        target=settings.target,
                        margin=settings.margin,
                    ).as_dict(),
                },
            )
            yield plan
            scored = [row for row in rows if row["round"] == round_number - 1]
            block = plan_text(scenario, plan["data"], forecast["data"], draft, scored)
            event = ctx.step("draft", lambda: self._draft(scenario, ctx, settings, block, round_number))
            yield event
            draft = event["data"]["text"]
            for group in scenario.by_seats():
                event = ctx.step(
                    "verification",
                    lambda code=group.code: {
                        **verdict_data(
                            scenario=scenario, judge=ctx.judge, seed=judge_seed(ctx.seed), group=code, text=draft
                        ),
                        "round": round_number,
                        "forecast": forecast["data"]["predicted"][code],
                        "expected": plan["data"]["expected"][code],
                    },
                )
                rows.append({key: event["data"][key] for key in ("round", "group", "forecast", "score")})
                last_scores[event["data"]["group"]] = event["data"]["score"]
                yield event
            margin = goal_margin(last_scores, seats=scenario.seats, goal=scenario.goal, veto_group=scenario.veto_group)
            best_before = max((g for g, _, _ in drafts), default=None)
            drafts.append((margin, round_number, draft))
            update = ctx.step(
                "belief_update",
                lambda: belief_update_data(
                    scenario,
                    rows,
                    round_number=round_number,
                    margin=margin,
                    best_before=best_before,
                    last_round=round_number == settings.rounds,
                ),
            )
            yield update
            if update["data"]["stop"]:
                break
        _, best_round, best_text = max(drafts, key=lambda item: (item[0], -item[1]))
        if best_round != drafts[-1][1]:
            yield ctx.step("draft", lambda: {"author": "drafter", "text": best_text, "version": best_round})
        yield from vote_on(scenario, ctx, best_text)

    def _forecast(
        self,
        scenario: Scenario,
        ctx: RunContext,
        draft: str | None,
        rows: Sequence[Mapping[str, Any]],
        last_scores: Mapping[str, float],
        round_number: int,
    ) -> dict[str, Any]:
        completion = ctx.model.complete(
            forecast_messages(scenario, draft, rows),
            params=Params(temperature=0.0, max_tokens=FORECAST_TOKENS),
            seed=ctx.child_seed("forecast", "forecast", round_number),
        )
        found = parse_forecast(completion.text, {g.code: g.name for g in scenario.groups})
        fallback = [code for code in scenario.codes if code not in found]
        return {
            "round": round_number,
            "predicted": {
                code: found[code][0] if code in found else last_scores.get(code, NEUTRAL_FORECAST)
                for code in scenario.codes
            },
            # A red line copied from the prompt's example says nothing: left out.
            "red_lines": {
                code: found[code][1]
                for code in scenario.codes
                if code in found and found[code][1] and not found[code][1].startswith(EXAMPLE_RED_LINE)
            },
            "fallback": fallback,
            "answer": shortened(" ".join(completion.text.split()), ANSWER_WORDS),
            "usage": completion.usage(),
        }

    def _draft(
        self, scenario: Scenario, ctx: RunContext, settings: ForecastParams, block: str, round_number: int
    ) -> dict[str, Any]:
        completion = ctx.model.complete(
            draft_messages_with(scenario, block),
            params=Params(temperature=settings.temperature, max_tokens=settings.draft_tokens),
            seed=ctx.child_seed("forecast", "draft", round_number),
        )
        return {
            "author": "drafter",
            "text": completion.text.strip(),
            "version": round_number,
            "usage": completion.usage(),
        }


def belief_update_data(
    scenario: Scenario,
    rows: Sequence[Mapping[str, Any]],
    *,
    round_number: int,
    margin: float,
    best_before: float | None,
    last_round: bool,
) -> dict[str, Any]:
    """The round's goal margin, each group's forecast error (judged - forecast) and their mean
    (the bias), and whether to stop: goal met, too small a gain (score goals), or the last round."""
    errors = {row["group"]: row["score"] - row["forecast"] for row in rows if row["round"] == round_number}
    if GOALS[scenario.goal].kind == "pass":
        passes: bool | None = margin >= -1e-9
        reason = "goal met" if passes else ("last round" if last_round else "")
    else:
        passes = None
        small_gain = best_before is not None and margin - best_before < SCORE_GAIN_STOP
        reason = "gain below 0.25" if small_gain else ("last round" if last_round else "")
    return {
        "round": round_number,
        "margin": round(margin, 6),
        "passes": passes,
        "errors": errors,
        "bias": round(math.fsum(errors.values()) / len(errors), 6) if errors else 0.0,
        "stop": bool(reason),
        "reason": reason,
    }
