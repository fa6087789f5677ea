"""What every strategy shares: the run context, replay of stored events, and the vote."""

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from deliberation.engine.costs import RunCost
from deliberation.engine.events import SERVICE_EVENT_TYPES, Event, event_validate, make_event
from deliberation.engine.goals import GOALS, outcome_from_scores, vote_position
from deliberation.engine.judges import Judge
from deliberation.engine.models import ModelClient
from deliberation.engine.outcome import Outcome
from deliberation.engine.scenario import RecordView, Scenario
from deliberation.engine.seeding import seed_for
from deliberation.engine.strategies.params import StrategyParams


class ReplayMismatch(RuntimeError):
    """A stored event does not match what the strategy does at that step (code changed mid-run)."""


@dataclass
class RunContext:
    """What a strategy needs from outside: a model, a judge, a seed, its parameters.

    `recorded` holds the events an earlier attempt of the same run already stored. A step whose
    sequence number is among them returns the stored event instead of calling the model, so a
    resumed run rebuilds its state from the log and continues after the last stored event.
    Events the run service put in between (errors, pause/resume) keep their numbers and are skipped.
    """

    model: ModelClient | None
    judge: Judge
    seed: int
    params: Mapping[str, Any] = field(default_factory=dict)
    examples: Sequence[RecordView] = ()
    recorded: Sequence[Event] = ()
    # Further model clients, by the parameter that names them (Strategy.model_params: advisor's
    # "advisor_model"); the run service builds them as it builds `model`.
    models: Mapping[str, ModelClient] = field(default_factory=dict)
    _next_seq: int = field(default=1, init=False)
    _stored: dict[int, Event] = field(default_factory=dict, init=False)
    _retries: list[dict[str, Any]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._stored = {event["seq"]: event for event in self.recorded}

    def retried(self, retry: dict[str, Any]) -> None:
        """A model call of the current step answered only after retries (events.RetryData; the
        run service passes on what the model clients report). The step's event carries it in
        `usage["retries"]`: no event of its own, so the numbering stays that of the strategy
        alone and two tasks that ever step the same run still write the same events."""
        self._retries.append(retry)

    def step(self, type: str, produce: Callable[[], dict[str, Any]]) -> Event:
        while self._stored.get(self._next_seq, {}).get("type") in SERVICE_EVENT_TYPES:
            self._next_seq += 1
        seq = self._next_seq
        self._next_seq += 1
        stored = self._stored.get(seq)
        if stored is not None:
            if stored["type"] != type:
                raise ReplayMismatch(f"event {seq} is a {stored['type']}, the strategy made a {type}")
            return stored
        data = produce()  # retries reported before it (a call made ahead of its step) count too
        if self._retries:
            retries, self._retries = self._retries, []
            usage = data.get("usage")
            data = (
                {**data, "usage": {**usage, "retries": retries}}
                if isinstance(usage, dict)
                else {**data, "retries": retries}
            )
        event = make_event(seq, type, data)
        # Checked here too, not only where it is stored: the strategy stops at the step that made
        # it, and the steps before it are still written (a batch with a bad event is refused whole).
        event_validate(event)
        return event

    def replaying(self) -> bool:
        """The next step comes from the stored events (no call will be made for it)."""
        return self._next_seq in self._stored

    def child_seed(self, *parts: object) -> int:
        return seed_for(self.seed, *parts)

    def rng(self, *parts: object) -> random.Random:
        """A generator seeded by a child seed: shuffles and draws that replay alike."""
        return random.Random(self.child_seed(*parts))


class Strategy(Protocol):
    """A way to reach a resolution. `params_model` declares its parameters (params.py; the run
    gets them validated as `ctx.params`' dict); `estimated_cost` counts the model steps of one run
    of `groups` groups, the vote included (docs/strategies.md)."""

    name: str
    needs_model: bool
    params_model: type[StrategyParams]

    def estimated_cost(self, *, groups: int, params: StrategyParams, judge_uses_model: bool) -> RunCost: ...

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]: ...


def model_params_of(strategy: Strategy) -> tuple[str, ...]:
    """The parameters whose value names a further model the strategy calls (a registry name;
    absent or empty: the run's own model). A strategy declares them as `model_params`."""
    return tuple(getattr(strategy, "model_params", ()))


def run_started_data(scenario: Scenario, strategy: str) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "goal": scenario.goal,
        "veto_group": scenario.veto_group,
        "groups": list(scenario.codes),
        "seats": dict(scenario.seats),
        "title": scenario.record.title,
    }


def run_started(scenario: Scenario, ctx: RunContext, strategy: str) -> Event:
    return ctx.step("run_started", lambda: run_started_data(scenario, strategy))


def judge_seed(run_seed: int) -> int:
    return seed_for(run_seed, "judge")


def verdict_data(*, scenario: Scenario, judge: Judge, seed: int, group: str, text: str) -> dict[str, Any]:
    """One group's vote on `text` as the judge scores it (`seed`: the run's judge_seed)."""
    v = judge.score(scenario=scenario, group=group, text=text, seed=seed)
    data = {
        "group": group,
        "score": v.score,
        "position": vote_position(v.score),
        "fallback": v.fallback,
        "attempts": v.attempts,
        "usage": {
            "prompt_tokens": v.prompt_tokens,
            "completion_tokens": v.completion_tokens,
            "seconds": round(v.seconds, 4),
            "cached": v.cached,
        },
    }
    if v.detail:
        data["detail"] = dict(v.detail)
    return data


def tally_and_outcome(
    scenario: Scenario, scores: Mapping[str, int], fallbacks: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data of the `tally` and `outcome` events once every group has voted."""
    outcome = outcome_from_scores(
        scores,
        seats=scenario.seats,
        goal=scenario.goal,
        veto_group=scenario.veto_group,
        fallbacks=tuple(fallbacks),
    )
    tally = {
        "scores": dict(outcome.scores),
        "seats": dict(outcome.seats),
        "weighted_total": outcome.weighted_total,
        "threshold": GOALS[scenario.goal].threshold,
        "goal": scenario.goal,
    }
    return tally, outcome.as_dict()


def vote_on(scenario: Scenario, ctx: RunContext, text: str) -> Iterator[Event]:
    """The vote: the judge scores each group alone, then the tally and the outcome."""
    scores: dict[str, int] = {}
    fallbacks: list[str] = []
    seed = judge_seed(ctx.seed)
    prefetch = getattr(ctx.judge, "prefetch", None)  # a judge that can look its calls up together
    if prefetch is not None and not ctx.replaying():
        prefetch(scenario=scenario, groups=[group.code for group in scenario.by_seats()], text=text, seed=seed)

    for group in scenario.by_seats():
        event = ctx.step(
            "vote",
            lambda code=group.code: verdict_data(scenario=scenario, judge=ctx.judge, seed=seed, group=code, text=text),
        )
        scores[event["data"]["group"]] = event["data"]["score"]
        if event["data"]["fallback"]:
            fallbacks.append(event["data"]["group"])
        yield event

    tally, outcome = tally_and_outcome(scenario, scores, fallbacks)
    yield ctx.step("tally", lambda: tally)
    yield ctx.step("outcome", lambda: outcome)


def outcome_of(events: Sequence[Event]) -> Outcome | None:
    for event in reversed(events):
        if event["type"] == "outcome":
            return Outcome.from_dict(event["data"])
    return None


def usage_sum(usages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One step's usage from its model calls' usages (a step may take several calls)."""
    return {
        "prompt_tokens": sum(u["prompt_tokens"] for u in usages),
        "completion_tokens": sum(u["completion_tokens"] for u in usages),
        "seconds": round(sum(u["seconds"] for u in usages), 4),
        "cached": all(u["cached"] for u in usages),
    }


def usage_totals(events: Sequence[Event]) -> dict[str, float]:
    """Tokens and model seconds spent over a run's events (cached calls cost no seconds)."""
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0, "calls": 0}
    for event in events:
        usage = event["data"].get("usage")
        # The oracle judge and the baselines spend nothing: only real model calls count.
        if usage and (usage["prompt_tokens"] or usage["completion_tokens"]):
            totals["prompt_tokens"] += usage["prompt_tokens"]
            totals["completion_tokens"] += usage["completion_tokens"]
            totals["seconds"] += 0.0 if usage["cached"] else usage["seconds"]
            totals["calls"] += 1
    return totals
