"""The mediator strategy: the Habermas Machine (Tessler, Bakker et al., Science 2024).

Round 1: the mediator drafts K candidate statements from the groups' stances (the stances in a
fresh seeded order for every call); each group's agent ranks all K candidates (shown in a fresh
seeded order, answered as letters "C > A > D > B"); the Schulze method aggregates the rankings,
ties broken by TBRC with a seeded generator (rules.schulze_tie_break); the winner is untied rank 0.
Rounds 2..R: each group critiques the last winner, the mediator revises it into K new candidates
(the critiques in a fresh order per call), and they are ranked and aggregated again. The last
winner goes to the vote.

With `ranking=judge` the run's judge scores every candidate for each group instead (one ranking
step of K verdicts; equal scores tie on the ballot, which Schulze allows).

Events, in order: per round [critique x n (from round 2)], candidate x K, ranking x n, schulze;
then the final draft and the vote (base.vote_on). Model steps: R*K candidates + R*n rankings +
(R-1)*n critiques, plus the judge's. A ranking the model garbles falls back deterministically
(letters it did name first, then the rest in the order shown) and says so in `fallback`.
"""

import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar, Literal

from pydantic import Field

from deliberation.engine.costs import JUDGE_TOKENS, RunCost, vote_cost
from deliberation.engine.events import Event
from deliberation.engine.goals import goal_requirement
from deliberation.engine.models import RANKING_MARKER, Message, Params
from deliberation.engine.power import exact_share
from deliberation.engine.rules import Ballot, schulze, schulze_paths, schulze_tie_break
from deliberation.engine.scenario import Group, Scenario
from deliberation.engine.strategies.base import (
    RunContext,
    judge_seed,
    run_started,
    usage_sum,
    verdict_data,
    vote_on,
)
from deliberation.engine.strategies.params import StrategyParams, params_validate
from deliberation.engine.strategies.parliament import (
    GROUP_PERSONA,
    MEDIATOR_PERSONA,
    RESOLUTION_RULES,
    shortened,
)

LETTERS = "ABCDEFGH"
RANKING_TOKENS = 40
RANKING_TEMPERATURE = 0.0
RAW_ANSWER_WORDS = 60  # how much of a ranking's raw answer its event keeps


class MediatorParams(StrategyParams):
    candidates: int = Field(
        4,
        ge=2,
        le=len(LETTERS),
        title="Candidate statements",
        description="Statements the mediator drafts each round (K; the reference code's default is 16, its notebook's 4, sized for a CPU).",
    )
    rounds: int = Field(
        2,
        ge=1,
        le=4,
        title="Rounds",
        description="The opinion round and the critique rounds after it (2: one critique and revision, as in the paper).",
    )
    ranking: Literal["llm", "judge"] = Field(
        "llm",
        title="Rankings by",
        description="llm: each group's agent ranks the candidates in one call (the reference); judge: the run's judge "
        "scores every candidate for each group (K verdicts a ranking, equal scores tie).",
        json_schema_extra={"labels": {"llm": "Each group's agent (one call)", "judge": "The run's judge (K verdicts)"}},
    )
    weighting: Literal["none", "seats"] = Field(
        "none",
        title="Ballot weights",
        description="How much each group's ranking counts in the Schulze count.",
        json_schema_extra={"labels": {"none": "One ballot per group (the reference)", "seats": "By seat share"}},
    )
    temperature: float = Field(
        0.7,
        ge=0,
        le=2,
        title="Temperature",
        description="Sampling temperature of the candidates and critiques (rankings use 0).",
    )
    draft_tokens: int = Field(
        300, ge=64, le=2048, title="Candidate tokens", description="The most tokens a candidate statement may take."
    )
    critique_tokens: int = Field(
        120, ge=16, le=1024, title="Critique tokens", description="The most tokens a critique may take."
    )


# --- prompts ---------------------------------------------------------------------------------

ISSUE = "Issue: {title}\nBackground: {background}\nGoal: {goal}"
CANDIDATE_ASK = (
    "The groups' opinions, in no particular order:\n{opinions}\n\n"
    "Write one joint statement that all these groups can support: it must not conflict with "
    "what matters most to any of them. " + RESOLUTION_RULES + "\nNow write the statement:"
)
REVISION_ASK = (
    "The groups' opinions, in no particular order:\n{opinions}\n\n"
    "The statement the groups preferred last round:\n'''{winner}'''\n\n"
    "Their critiques of it, in no particular order:\n{critiques}\n\n"
    "Revise the statement so that it answers the critiques while keeping what the groups "
    "already support. " + RESOLUTION_RULES + "\nNow write the revised statement:"
)
RANKING_ASK = (
    "Candidate statements:\n{candidates}\n\n"
    "Rank all {count} candidates from the one {name} prefers most to the one it prefers least.\n"
    + RANKING_MARKER
    + " {letters}\n"
    "Answer with the letters only, best first, separated by '>', for example: {example}\nRanking:"
)
CRITIQUE_ASK = (
    "The mediation's current statement:\n'''{winner}'''\n\n"
    "What must change for {name} to support it? Name the changes concretely, at most three "
    "sentences."
)


def issue_text(scenario: Scenario) -> str:
    return ISSUE.format(
        title=scenario.record.title,
        background=scenario.record.background,
        goal=goal_requirement(scenario.goal, veto_group=scenario.name_of(scenario.veto_group)),
    )


def mediator_messages(scenario: Scenario, ask: str) -> list[Message]:
    return [
        {"role": "system", "content": f"{MEDIATOR_PERSONA}\n\n{issue_text(scenario)}"},
        {"role": "user", "content": ask},
    ]


def group_messages(scenario: Scenario, group: Group, ask: str) -> list[Message]:
    persona = GROUP_PERSONA.format(code=group.name, stance=group.stance)
    return [{"role": "system", "content": f"{persona}\n\n{issue_text(scenario)}"}, {"role": "user", "content": ask}]


def quoted_lines(scenario: Scenario, order: Sequence[str], texts: Mapping[str, str]) -> str:
    return "\n".join(f"{scenario.name_of(code)}: '''{texts[code]}'''" for code in order)


# --- reading rankings ------------------------------------------------------------------------

_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.IGNORECASE | re.DOTALL)


def parse_ranking(raw: str, letters: Sequence[str]) -> tuple[list[str], str | None]:
    """(letters best first, fallback) from a ranking answer (inside <answer> after the reasoning's
    <sep> when there is one). The longest "C > A > B" chain leads; then standalone capitals in
    order of first mention. fallback is None for a full ranking, "partial" when the letters named
    lead and the others follow in the order shown, "unparsed" when none was named (the order shown)."""
    text = raw
    answer = _ANSWER.search(text)
    if answer:
        text = answer.group(1).rsplit("<sep>", 1)[-1]
    allowed = set(letters)
    chains = [m.group(0) for m in re.finditer(r"(?<![A-Za-z])[A-Z](?:\s*>\s*[A-Z](?![A-Za-z]))+", text)]
    longest = max(chains, key=len, default="")
    named: list[str] = []
    for token in [*re.findall(r"[A-Z]", longest), *re.findall(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])", text)]:
        if token in allowed and token not in named:
            named.append(token)
    if len(named) == len(letters):
        return named, None
    rest = [letter for letter in letters if letter not in named]
    return named + rest, ("partial" if named else "unparsed")


# --- the strategy ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mediator:
    name: str = "mediator"
    needs_model: bool = True
    summary: ClassVar[str] = (
        "The Habermas Machine (Tessler, Bakker et al., Science 2024): K candidate statements, each "
        "group's ranking, the Schulze winner, critiques and a revision round."
    )
    params_model: ClassVar[type[MediatorParams]] = MediatorParams

    def estimated_cost(self, *, groups: int, params: MediatorParams, judge_uses_model: bool) -> RunCost:
        """Per round K candidates and a ranking per group, a critique per group from round 2,
        then the vote."""
        r, k = params.rounds, params.candidates
        # a judged ranking is one step of K verdicts (no model call with a judge that calls none)
        ranking_tokens = RANKING_TOKENS if params.ranking == "llm" else k * JUDGE_TOKENS
        rankings = r * groups if params.ranking == "llm" or judge_uses_model else 0
        own = RunCost(
            r * k + rankings + (r - 1) * groups,
            r * k * params.draft_tokens + rankings * ranking_tokens + (r - 1) * groups * params.critique_tokens,
        )
        return own + vote_cost(groups=groups, judge_uses_model=judge_uses_model)

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        settings = params_validate(self.params_model, ctx.params, strategy=self.name)
        yield run_started(scenario, ctx, self.name)
        winner: str | None = None
        critiques: dict[str, str] = {}
        for round_number in range(1, settings.rounds + 1):
            if winner is not None:
                critiques = {}
                for group in scenario.groups:
                    event = ctx.step(
                        "critique", lambda: self._critique(scenario, ctx, settings, group, winner, round_number)
                    )
                    critiques[group.code] = event["data"]["text"]
                    yield event
            candidates: list[str] = []
            for index in range(settings.candidates):
                event = ctx.step(
                    "candidate",
                    lambda: self._candidate(scenario, ctx, settings, round_number, index, winner, critiques),
                )
                candidates.append(event["data"]["text"])
                yield event
            ballots: dict[str, list[float]] = {}
            rank = self._judged_ranking if settings.ranking == "judge" else self._ranking
            for group in scenario.groups:
                event = ctx.step("ranking", lambda: rank(scenario, ctx, group, round_number, candidates))
                ballots[group.code] = ballot_scores(event["data"])
                yield event
            event = ctx.step(
                "schulze",
                lambda: schulze_data(
                    scenario,
                    ballots,
                    weighting=settings.weighting,
                    rng=ctx.rng("mediator", "tie-break", round_number),
                    round_number=round_number,
                ),
            )
            yield event
            winner = candidates[event["data"]["winner"]]
        yield ctx.step("draft", lambda: {"author": "mediator", "text": winner, "version": settings.rounds})
        yield from vote_on(scenario, ctx, winner)

    def _candidate(
        self,
        scenario: Scenario,
        ctx: RunContext,
        settings: MediatorParams,
        round_number: int,
        index: int,
        winner: str | None,
        critiques: Mapping[str, str],
    ) -> dict[str, Any]:
        order = list(scenario.codes)
        ctx.rng("mediator", "opinions", round_number, index).shuffle(order)
        opinions = quoted_lines(scenario, order, {g.code: g.stance for g in scenario.groups})
        if winner is None:
            ask = CANDIDATE_ASK.format(opinions=opinions)
        else:
            ask = REVISION_ASK.format(
                opinions=opinions, winner=winner, critiques=quoted_lines(scenario, order, critiques)
            )
        completion = ctx.model.complete(
            mediator_messages(scenario, ask),
            params=Params(temperature=settings.temperature, max_tokens=settings.draft_tokens),
            seed=ctx.child_seed("mediator", "candidate", round_number, index),
        )
        return {
            "round": round_number,
            "index": index,
            "revision": winner is not None,
            "text": completion.text.strip(),
            "order": order,
            "usage": completion.usage(),
        }

    def _ranking(
        self, scenario: Scenario, ctx: RunContext, group: Group, round_number: int, candidates: Sequence[str]
    ) -> dict[str, Any]:
        shown = list(range(len(candidates)))
        ctx.rng("mediator", "shown", round_number, group.code).shuffle(shown)
        letters = list(LETTERS[: len(candidates)])
        example = list(reversed(letters))
        ctx.rng("mediator", "example", round_number, group.code).shuffle(example)
        ask = RANKING_ASK.format(
            candidates="\n".join(f"{letter}: '''{candidates[i]}'''" for letter, i in zip(letters, shown)),
            count=len(candidates),
            name=group.name,
            letters=", ".join(letters),
            example=" > ".join(example),
        )
        completion = ctx.model.complete(
            group_messages(scenario, group, ask),
            params=Params(temperature=RANKING_TEMPERATURE, max_tokens=RANKING_TOKENS),
            seed=ctx.child_seed("mediator", "ranking", round_number, group.code),
        )
        ranked, fallback = parse_ranking(completion.text, letters)
        return {
            "round": round_number,
            "group": group.code,
            "shown": shown,  # shown[j]: the candidate behind letter j
            "order": [shown[letters.index(letter)] for letter in ranked],  # candidates, best first
            "answer": shortened(" ".join(completion.text.split()), RAW_ANSWER_WORDS),
            "fallback": fallback,
            "usage": completion.usage(),
        }

    def _judged_ranking(
        self, scenario: Scenario, ctx: RunContext, group: Group, round_number: int, candidates: Sequence[str]
    ) -> dict[str, Any]:
        """The run's judge scores every candidate for the group (the vote's seed: a caching backend
        answers the winner's vote from these); equal scores stay tied on the ballot."""
        verdicts = [
            verdict_data(scenario=scenario, judge=ctx.judge, seed=judge_seed(ctx.seed), group=group.code, text=text)
            for text in candidates
        ]
        scores = [verdict["score"] for verdict in verdicts]
        return {
            "round": round_number,
            "group": group.code,
            "shown": list(range(len(candidates))),
            "order": sorted(range(len(candidates)), key=lambda i: (-scores[i], i)),
            "answer": ", ".join(f"#{i + 1}: {score:g}" for i, score in enumerate(scores)),
            "fallback": None,
            "scores": scores,
            "usage": usage_sum([verdict["usage"] for verdict in verdicts]),
        }

    def _critique(
        self,
        scenario: Scenario,
        ctx: RunContext,
        settings: MediatorParams,
        group: Group,
        winner: str,
        round_number: int,
    ) -> dict[str, Any]:
        completion = ctx.model.complete(
            group_messages(scenario, group, CRITIQUE_ASK.format(winner=winner, name=group.name)),
            params=Params(temperature=settings.temperature, max_tokens=settings.critique_tokens),
            seed=ctx.child_seed("mediator", "critique", round_number, group.code),
        )
        return {
            "round": round_number,
            "group": group.code,
            "text": completion.text.strip() or "(no critique)",
            "usage": completion.usage(),
        }


def ballot_scores(ranking: Mapping[str, Any]) -> list[float]:
    """A ranking event's ballot, one score per candidate (higher is better): the judge's scores
    (ties kept), else from the strict order (K for the first, down to 1)."""
    if "scores" in ranking:
        return [float(score) for score in ranking["scores"]]
    order = ranking["order"]
    scores = [0.0] * len(order)
    for position, candidate in enumerate(order):
        scores[candidate] = float(len(order) - position)
    return scores


def schulze_data(
    scenario: Scenario,
    ballots: Mapping[str, Sequence[float]],
    *,
    weighting: str,
    rng: random.Random,
    round_number: int,
) -> dict[str, Any]:
    """The `schulze` event: each group's ballot (weighted by seat share or one each), the pairwise
    matrix d, the strongest paths p, the tiers and the TBRC order; the winner is the order's first
    candidate."""
    names = [str(i) for i in range(len(next(iter(ballots.values()))))]
    weights = {code: (exact_share(scenario.seats[code]) if weighting == "seats" else Fraction(1)) for code in ballots}
    counted = [Ballot(scores=dict(zip(names, scores)), weight=weights[code]) for code, scores in ballots.items()]
    d, p = schulze_paths(counted, names)
    tiers = schulze(counted, names).ranking
    order = schulze_tie_break(tiers, counted, rng)
    return {
        "round": round_number,
        "weights": {code: float(weight) for code, weight in weights.items()},
        "pairwise": [[float(d[a][b]) for b in names] for a in names],
        "paths": [[float(p[a][b]) for b in names] for a in names],
        "tiers": [[int(c) for c in tier] for tier in tiers],
        "order": [int(c) for c in order],
        "winner": int(order[0]),
        "tie_broken": len(tiers[0]) > 1,
    }
