"""amulet: test-time preference decoding (Amulet, arXiv 2502.19148; research/strategies.md §4).

Two contexts of the same model and the same drafting task: the base prompt (one-shot's) and a
preference prompt, the base plus one sentence from the goal (`preference_sentence`). At each
token the reference solves a small online optimisation over T iterations; every step of it is
affine in the log-probabilities, so its result is exactly

    log_softmax((1 + beta) * L_pref - beta * L_base)

with one scalar beta computed once from (T, alpha, lambda, eta) (`amulet_beta`; 4.649 for the
defaults). Decoding is greedy on that score over the preference context's top-k tokens, a
plausibility mask; a candidate the base top-k lacks gets the smallest base logprob returned (an
upper bound on its real one, so its boost is never overstated). `amulet_iterate` is the
reference's per-token iteration, kept to show in tests that both agree.

The decoded text is one `draft` step: its token steps are model calls of their own, each cached
(one completion-cache row per token and context), so a re-run with the same seed calls no model.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import Field

from deliberation.engine.costs import RunCost, vote_cost
from deliberation.engine.events import Event
from deliberation.engine.goals import GOALS
from deliberation.engine.models import Message, TokenLogprob, gives_token_ids
from deliberation.engine.scenario import Scenario
from deliberation.engine.strategies.base import RunContext, run_started, vote_on
from deliberation.engine.strategies.one_shot import DRAFT_SYSTEM, draft_messages
from deliberation.engine.strategies.params import StrategyParams, params_validate

# What a backend must offer; the run and experiment forms show it when they refuse amulet.
NEEDS = (
    "amulet needs next-token log-probabilities by token id (the local llama-cpp backend or an "
    "OpenAI-compatible vLLM server); this model's backend has none"
)


class AmuletParams(StrategyParams):
    iterations: int = Field(
        60,
        ge=1,
        le=1000,
        title="Iterations T",
        description="The reference's optimisation steps per token (only beta depends on them).",
    )
    alpha: float = Field(2.0, gt=0, le=10, title="Alpha", description="Weight of the preference utility.")
    lam: float = Field(2.0, gt=0, le=10, title="Lambda", description="KL anchor to the preference distribution.")
    eta: float = Field(10.0, gt=0, le=1000, title="Eta", description="Step size of the proximal KL term.")
    top_k: int = Field(
        20,
        ge=2,
        le=100,
        title="Candidates k",
        description="Tokens considered per step: the preference prompt's k most likely (servers cap k, often at 20).",
    )
    max_tokens: int = Field(
        400, ge=8, le=2048, title="Draft tokens", description="The most tokens the resolution may take."
    )


def amulet_beta(*, iterations: int, alpha: float, lam: float, eta: float) -> float:
    """The scalar of the closed form: b_0 = 0, b_t = [(alpha/t) sum_{s<t} (1 + b_s) + b_{t-1}/(eta t)]
    / (lam + 1/(eta t)), beta = b_T (research/strategies.md §4, Derived)."""
    previous, total = 0.0, 1.0  # b_{t-1}; sum_{s<t} (1 + b_s)
    for t in range(1, iterations + 1):
        c = 1.0 / (eta * t)
        current = ((alpha / t) * total + c * previous) / (lam + c)
        total += 1.0 + current
        previous = current
    return previous


def log_softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    norm = top + math.log(math.fsum(math.exp(v - top) for v in values))
    return [v - norm for v in values]


def amulet_iterate(
    pref: Sequence[float], base: Sequence[float], *, iterations: int, alpha: float, lam: float, eta: float
) -> list[float]:
    """The reference's per-token iteration (zowiezhang/Amulet@ba0fd1e, `amulet_game`) on two
    logit vectors over the same tokens; returns z_T."""
    anchor, reference = log_softmax(pref), log_softmax(base)
    current = list(anchor)
    q_sum = [0.0] * len(anchor)
    z = list(anchor)
    for t in range(1, iterations + 1):
        q_sum = [s + alpha * (c - r) for s, c, r in zip(q_sum, current, reference)]
        c_t = 1.0 / (eta * t)
        z = [(lam * a + s / t + c_t * c) / (lam + c_t) for a, s, c in zip(anchor, q_sum, current)]
        current = log_softmax(z)
    return z


def amulet_scores(pref: Sequence[float], base: Sequence[float], *, beta: float) -> list[float]:
    """The closed form: (1 + beta) L_pref - beta L_base (z_T up to a constant)."""
    return [(1 + beta) * p - beta * b for p, b in zip(log_softmax(pref), log_softmax(base))]


@dataclass(frozen=True)
class Choice:
    id: int
    score: float
    pref_logprob: float
    base_logprob: float


def amulet_choice(pref: TokenLogprob, base: TokenLogprob, *, beta: float) -> Choice:
    """The greedy token over the preference's candidates (ties: the lowest id); a candidate the
    base list lacks gets the base list's smallest logprob."""
    base_logprobs = dict(zip(base.top_ids, (lp for _, lp in base.top)))
    floor = min(base_logprobs.values())
    best: Choice | None = None
    for token_id, (_, logprob) in zip(pref.top_ids, pref.top):
        base_logprob = base_logprobs.get(token_id, floor)
        score = (1 + beta) * logprob - beta * base_logprob
        if best is None or score > best.score or (score == best.score and token_id < best.id):
            best = Choice(token_id, score, logprob, base_logprob)
    if best is None:
        raise ValueError("the preference context gave no candidate tokens")
    return best


def favoured_groups(scenario: Scenario) -> list[str]:
    """Whom the preference prompt names. Voting goals: the largest groups until their seats alone,
    at full support, reach the goal's threshold; veto power: the veto group; Rawlsian: the
    smallest group (before any draft nobody's support is known, so the weakest voice in the
    chamber stands for the least served); utilitarian: every group."""
    goal = GOALS[scenario.goal]
    if scenario.goal == "veto_power":
        return [scenario.veto_group]
    if scenario.goal == "rawlsian":
        return [scenario.by_seats()[-1].code]
    if goal.kind == "score":
        return list(scenario.codes)
    needed, share = [], 0.0
    for group in scenario.by_seats():
        needed.append(group.code)
        share += scenario.seats[group.code]
        if share * 9 >= goal.threshold - 1e-9:
            break
    return needed


def names(scenario: Scenario, codes: Sequence[str]) -> str:
    named = [scenario.name_of(code) for code in codes]
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def preference_sentence(scenario: Scenario) -> str:
    """The one sentence the preference prompt adds (research/strategies.md §4, Proposed 1)."""
    favoured = favoured_groups(scenario)
    if scenario.goal == "veto_power":
        return f"{names(scenario, favoured)} must be able to accept it."
    if scenario.goal == "rawlsian":
        return f"Give priority to {names(scenario, favoured)}, the group whose position is weakest."
    if scenario.goal == "utilitarian":
        return "It must be acceptable to every group at once."
    return f"Write it so that {names(scenario, favoured)} can vote for it."


def amulet_contexts(scenario: Scenario) -> tuple[list[Message], list[Message]]:
    """(base, preference) messages: one-shot's prompt without an example, and the same with the
    preference in the system prompt, where the reference puts it."""
    base = draft_messages(scenario, None)
    preference = [{"role": "system", "content": f"{DRAFT_SYSTEM} {preference_sentence(scenario)}"}, *base[1:]]
    return base, preference


@dataclass
class Decoded:
    ids: list[int] = field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0
    cached: bool = True
    stopped: str = "max_tokens"


def amulet_decode(
    client, base: Sequence[Message], preference: Sequence[Message], *, beta: float, top: int, max_tokens: int, seed: int
) -> Decoded:
    """Greedy decoding of the closed form, one next_token_ids call per context and token."""
    decoded = Decoded()
    ends = client.end_ids()
    for _ in range(max_tokens):
        answers = [
            client.next_token_ids(messages, prefix_ids=decoded.ids, top=top, seed=seed)
            for messages in (preference, base)
        ]
        for answer in answers:
            decoded.calls += 1
            decoded.seconds += answer.seconds
            decoded.cached = decoded.cached and answer.cached
            if not decoded.ids:
                decoded.prompt_tokens += answer.prompt_tokens
        choice = amulet_choice(answers[0].logprobs[0], answers[1].logprobs[0], beta=beta)
        if choice.id in ends:
            decoded.stopped = "end"
            break
        decoded.ids.append(choice.id)
    return decoded


@dataclass(frozen=True)
class Amulet:
    name: str = "amulet"
    needs_model: bool = True
    needs_token_ids: bool = True
    params_model: ClassVar[type[AmuletParams]] = AmuletParams

    def estimated_cost(self, *, groups: int, params: AmuletParams, judge_uses_model: bool) -> RunCost:
        """One draft step (2 token calls per token, up to max_tokens), then the vote."""
        return RunCost(1, params.max_tokens) + vote_cost(groups=groups, judge_uses_model=judge_uses_model)

    def run(self, scenario: Scenario, ctx: RunContext) -> Iterator[Event]:
        settings = params_validate(self.params_model, ctx.params, strategy=self.name)
        yield run_started(scenario, ctx, self.name)
        base, preference = amulet_contexts(scenario)
        beta = amulet_beta(iterations=settings.iterations, alpha=settings.alpha, lam=settings.lam, eta=settings.eta)
        yield ctx.step(
            "amulet",
            lambda: {
                "beta": beta,
                "iterations": settings.iterations,
                "alpha": settings.alpha,
                "lam": settings.lam,
                "eta": settings.eta,
                "top_k": settings.top_k,
                "favoured": favoured_groups(scenario),
                "preference": preference_sentence(scenario),
            },
        )

        def draft() -> dict:
            if not gives_token_ids(ctx.model):
                raise ValueError(NEEDS)
            decoded = amulet_decode(
                ctx.model,
                base,
                preference,
                beta=beta,
                top=settings.top_k,
                max_tokens=settings.max_tokens,
                seed=ctx.child_seed("amulet"),
            )
            return {
                "author": "amulet",
                "text": ctx.model.decode_ids(decoded.ids).strip(),
                "usage": {
                    "prompt_tokens": decoded.prompt_tokens,
                    "completion_tokens": len(decoded.ids),
                    "seconds": round(decoded.seconds, 4),
                    "cached": decoded.cached,
                },
                "decoding": {"tokens": len(decoded.ids), "calls": decoded.calls, "stopped": decoded.stopped},
            }

        event = ctx.step("draft", draft)
        yield event
        yield from vote_on(scenario, ctx, event["data"]["text"])
