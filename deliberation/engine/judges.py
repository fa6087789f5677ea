"""Judges: how each group's support (0..9) for a text is scored.

- LLMJudge: PoliCon's judge, each group scored alone on the paper's scale and rubric.
- RealVotesJudge: the oracle; scores only the record's adopted resolution, with real choices.
- ScriptedJudge: the deterministic test double.
- CalibratedJudge: another judge's score through a monotone map fitted against real votes.
- EnsembleJudge: the mean or median of several judges, with their spread.
- SimilarityJudge: an offline baseline, sentence embeddings of the stance against the text.
- ExpectedJudge: the same prompt, scored as the expectation over the digits of one call's
  next-token distribution (G-Eval's probability-weighted score; research/judges.md §3).
"""

import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from deliberation.engine.anonymise import group_mentions_mask
from deliberation.engine.models import (
    JUDGE_MARKER,
    REASON_MARKER,
    Message,
    ModelClient,
    NextTokenClient,
    Params,
    gives_next_token,
)
from deliberation.engine.scenario import Scenario
from deliberation.engine.seeding import seed_for

SCALE = (
    "not at all",
    "very poorly",
    "poorly",
    "somewhat poorly",
    "somewhat",
    "moderately",
    "somewhat well",
    "well",
    "very well",
    "perfectly",
)


@dataclass(frozen=True)
class Verdict:
    group: str
    score: float  # 0..9: an integer, except for judges that score an expectation (ExpectedJudge)
    fallback: bool = False  # True when the judge never gave a valid answer and this is its default
    attempts: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    cached: bool = False
    # what a judge keeps beside its score (the digit distribution, ...), stored with the vote
    detail: Mapping | None = None


class JudgeRefused(ValueError):
    """The judge cannot score this text at all (the oracle judge and any text but the real one)."""


class Judge(Protocol):
    name: str

    def score(self, *, scenario: Scenario, group: str, text: str, seed: int) -> Verdict: ...


JUDGE_SYSTEM = "You are a careful assistant who answers with the single most fitting choice number."

JUDGE_TEMPLATE = """Give a score to the statement below, following the scoring guideline and what you know of the group.

Background: '''{background}'''
{sections}
How well does this resolution give specific implementation details that capture the position of {group}? Judge this whether the position supports or opposes the issue.

Scoring guideline:
- 0-3: the statement does not begin with "The European Parliament", or it only restates the positions without concrete implementation details, or its proposals are impractical, or it leaves out key points of the position, or it weakens what a supportive position asks for (for an opposing position: it advances what the group opposes). A text that is not a resolution at all gets 0.
- 4-6: feasible details for part of the position (at least half of its key points), or minor conflicts with the group's interests such as a different method or timeline.
- 7-9: concrete, feasible measures that implement every point of a supportive position in full (for an opposing position: its concerns are resolved), with higher scores for more detailed coverage.

Choices: {choices}
Answer with one number from 0 to 9 and nothing else.
{marker}:"""

JUDGE_REMINDERS = (
    "\nOnly these answers are allowed: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9.",
    "\nAnswer with ONE digit and nothing else, for example: 4. Your answer:",
)


@dataclass(frozen=True)
class PromptVariant:
    """How the judge's prompt is laid out; the default is the paper's. The others exist to measure
    the judge's position and identity bias (research/judges.md §6): the same text, judged with the
    group's position before the statement, or with the group not named."""

    stance_first: bool = False
    anonymous: bool = False

    @property
    def key(self) -> str:
        return (
            "+".join(name for name, on in (("stance-first", self.stance_first), ("anonymous", self.anonymous)) if on)
            or "paper"
        )


PAPER_PROMPT = PromptVariant()
ANONYMOUS_GROUP = "the group"


def judge_messages(
    *, scenario: Scenario, group: str, text: str, attempt: int, variant: PromptVariant = PAPER_PROMPT
) -> list[Message]:
    choices = ", ".join(f"{number} = {label}" for number, label in enumerate(SCALE))
    name = ANONYMOUS_GROUP if variant.anonymous else scenario.name_of(group)  # "S&D", not "SD"
    stance = scenario.group(group).stance
    if variant.anonymous:  # "EPP strongly supports ..." would name it anyway (anonymise.py)
        stance = group_mentions_mask(stance, names=[name for g in scenario.groups for name in (g.code, g.label)])
    statement = f"Statement to score: '''{text}'''"
    position = f"The position of {name}: '''{stance}'''"
    prompt = JUDGE_TEMPLATE.format(
        background=scenario.record.background,
        sections="\n".join((position, statement) if variant.stance_first else (statement, position)),
        group=name,
        choices=choices,
        marker=JUDGE_MARKER,
    )
    # Each retry appends a firmer reminder, as the paper's judge does.
    prompt += "".join(JUDGE_REMINDERS[: min(attempt, len(JUDGE_REMINDERS))])
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}]


_DIGIT = re.compile(r"^\s*([0-9])(?![0-9])")


def parse_score(text: str) -> int | None:
    match = _DIGIT.match(text)
    return int(match.group(1)) if match else None


@dataclass
class LLMJudge:
    """Temperature 0 and 3 output tokens; each invalid answer is retried 0.1 warmer.

    After `max_attempts` invalid answers the score is `fallback_score`, flagged as a fallback.
    """

    client: ModelClient
    max_attempts: int = 10
    fallback_score: int = 4
    name: str = "llm"
    variant: PromptVariant = PAPER_PROMPT

    def _request(self, *, scenario: Scenario, group: str, text: str, seed: int, attempt: int) -> tuple:
        """The (messages, params, seed) of one attempt's call."""
        return (
            judge_messages(scenario=scenario, group=group, text=text, attempt=attempt, variant=self.variant),
            Params(temperature=round(0.1 * attempt, 1), max_tokens=3),
            seed_for(seed, "judge", group, attempt),
        )

    def prefetch(self, *, scenario: Scenario, groups: Sequence[str], text: str, seed: int) -> None:
        """Tell a client that can look ahead (engine.models.PrefetchingClient) the first attempt's call
        of each group's vote on `text`: a cache answers them in one lookup, not one per group."""
        ahead = getattr(self.client, "prefetch", None)
        if ahead is not None:
            ahead([self._request(scenario=scenario, group=group, text=text, seed=seed, attempt=0) for group in groups])

    def score(self, *, scenario: Scenario, group: str, text: str, seed: int) -> Verdict:
        prompt_tokens = completion_tokens = 0
        seconds = 0.0
        all_cached = True
        for attempt in range(self.max_attempts):
            messages, params, call_seed = self._request(
                scenario=scenario, group=group, text=text, seed=seed, attempt=attempt
            )
            completion = self.client.complete(messages, params=params, seed=call_seed)
            prompt_tokens += completion.prompt_tokens
            completion_tokens += completion.completion_tokens
            seconds += completion.seconds
            all_cached = all_cached and completion.cached
            score = parse_score(completion.text)
            if score is not None:
                return Verdict(group, score, False, attempt + 1, prompt_tokens, completion_tokens, seconds, all_cached)
        return Verdict(
            group, self.fallback_score, True, self.max_attempts, prompt_tokens, completion_tokens, seconds, all_cached
        )


def normalised_text(text: str) -> str:
    """Whitespace-insensitive form: two texts that differ only in spacing are the same text."""
    return " ".join(text.split())


@dataclass
class RealVotesJudge:
    """The oracle: the adopted resolution scored with each group's real choice."""

    name: str = "real-votes"

    def score(self, *, scenario: Scenario, group: str, text: str, seed: int) -> Verdict:
        if normalised_text(text) != normalised_text(scenario.record.resolution):
            raise JudgeRefused("the real-votes judge scores only the adopted resolution")
        choice = scenario.group(group).real_choice
        if choice is None:
            raise JudgeRefused(f"{group} has no real vote on this record")
        return Verdict(group, choice)


@dataclass
class ScriptedJudge:
    """Fixed scores per group where given, else a digit derived from (text, group, seed)."""

    scores: Mapping[str, int] = field(default_factory=dict)
    name: str = "scripted"

    def score(self, *, scenario: Scenario, group: str, text: str, seed: int) -> Verdict:
        if group in self.scores:
            return Verdict(group, self.scores[group])
        return Verdict(group, seed_for(seed, "scripted-judge", group, normalised_text(text)) % 10)


DIGITS = tuple(str(digit) for digit in range(10))


@dataclass(frozen=True)
class DigitDistribution:
    probabilities: tuple[float, ...]  # p_0..p_9, renormalised over the digits
    mass: float  # the probability the next token is a digit at all, before renormalising

    @property
    def expected(self) -> float:
        return math.fsum(digit * p for digit, p in enumerate(self.probabilities))

    @property
    def argmax(self) -> int:
        return max(range(10), key=lambda digit: (self.probabilities[digit], -digit))

    @property
    def sd(self) -> float:
        mean = self.expected
        return math.sqrt(math.fsum(p * (digit - mean) ** 2 for digit, p in enumerate(self.probabilities)))

    @property
    def entropy(self) -> float:
        return -math.fsum(p * math.log(p) for p in self.probabilities if p > 0)

    def as_dict(self) -> dict:
        return {
            "probabilities": [round(p, 6) for p in self.probabilities],
            "mass": round(self.mass, 6),
            "expected": round(self.expected, 4),
            "argmax": self.argmax,
            "sd": round(self.sd, 4),
            "entropy": round(self.entropy, 4),
        }


def digit_distribution(top: Sequence[tuple[str, float]]) -> DigitDistribution | None:
    """The distribution over 0..9 from (token, logprob) pairs: variants of a digit ("7", " 7")
    are merged, a digit absent from the list counts 0. None when no token is a digit."""
    per_digit: dict[int, float] = {}
    for token, logprob in top:
        text = token.strip()
        if text in DIGITS:
            per_digit[int(text)] = per_digit.get(int(text), 0.0) + math.exp(logprob)
    mass = math.fsum(per_digit.values())
    if mass <= 0:
        return None
    return DigitDistribution(tuple(per_digit.get(digit, 0.0) / mass for digit in range(10)), min(1.0, mass))


class JudgeUnavailable(ValueError):
    """The judge cannot work with this model at all (the backend lacks a capability it needs)."""


@dataclass
class ExpectedJudge:
    """The paper's prompt, one call, scored as E = sum d * p(d) over the next token's digits.

    When less than `min_mass` of the next token's probability is on digits, the model is not
    answering with a digit: the score then comes from the paper's judge (argmax with retries)
    and the vote says `expected_unavailable`.
    """

    client: NextTokenClient
    top: int = 20
    min_mass: float = 0.5
    name: str = "llm-expected"
    variant: PromptVariant = PAPER_PROMPT

    def __post_init__(self) -> None:
        if not gives_next_token(self.client):
            raise JudgeUnavailable(
                "the llm-expected judge needs next-token log-probabilities, which this model's backend "
                "does not give: use a local: model, an OpenAI-compatible server (hosted_vllm/NAME) or the llm judge"
            )

    def score(self, *, scenario: Scenario, group: str, text: str, seed: int) -> Verdict:
        completion = self.client.next_token(
            judge_messages(scenario=scenario, group=group, text=text, attempt=0, variant=self.variant),
            prefix="",
            top=self.top,
            seed=seed_for(seed, "judge", group, 0),
        )
        top = completion.logprobs[0].top if completion.logprobs else ()
        distribution = digit_distribution(top)
        if distribution is None or distribution.mass < self.min_mass:
            argmax = LLMJudge(self.client, variant=self.variant).score(
                scenario=scenario, group=group, text=text, seed=seed
            )
            detail = {"expected_unavailable": True, "digit_mass": round(distribution.mass if distribution else 0.0, 6)}
            return Verdict(
                group,
                argmax.score,
                argmax.fallback,
                argmax.attempts + 1,
                argmax.prompt_tokens + completion.prompt_tokens,
                argmax.completion_tokens + completion.completion_tokens,
                argmax.seconds + completion.seconds,
                argmax.cached and completion.cached,
                detail,
            )
        return Verdict(
            group,
            round(distribution.expected, 4),
            False,
            1,
            completion.prompt_tokens,
            completion.completion_tokens,
            completion.seconds,
            completion.cached,
            {"distribution": distribution.as_dict()},
        )


@dataclass
class CalibratedJudge:
    """Another judge's score put through a monotone map fitted against real votes (an isotonic
    calibration, engine.calibration.isotonic_fit). A fallback keeps the judge's default unmapped:
    it says the judge never answered, not what it would have scored."""

    inner: Judge
    mapping: Callable[[float], float]
    name: str = "calibrated"

    def score(self, *, scenario: Scenario, group: str, text: str, seed: int) -> Verdict:
        raw = self.inner.score(scenario=scenario, group=group, text=text, seed=seed)
        if raw.fallback:
            return raw
        detail = {**(raw.detail or {}), "raw_score": raw.score}
        return replace(raw, score=round(self.mapping(raw.score), 4), detail=detail)


ENSEMBLE_AGGREGATES = ("mean", "median")


@dataclass
class EnsembleJudge:
    """The mean or median of several judges' scores, with each member's score and their spread
    (population SD) kept. Members that fell back are left out; all of them falling back is a fallback."""

    members: Mapping[str, Judge]  # name -> judge, in a fixed order
    aggregate: str = "mean"
    name: str = "ensemble"

    def __post_init__(self) -> None:
        if self.aggregate not in ENSEMBLE_AGGREGATES:
            raise ValueError(f"unknown aggregate {self.aggregate!r}; choose from {', '.join(ENSEMBLE_AGGREGATES)}")
        if not self.members:
            raise ValueError("an ensemble needs at least one judge")

    def score(self, *, scenario: Scenario, group: str, text: str, seed: int) -> Verdict:
        verdicts = {
            name: judge.score(scenario=scenario, group=group, text=text, seed=seed)
            for name, judge in self.members.items()
        }
        answered = [v.score for v in verdicts.values() if not v.fallback]
        usage = {
            "attempts": sum(v.attempts for v in verdicts.values()),
            "prompt_tokens": sum(v.prompt_tokens for v in verdicts.values()),
            "completion_tokens": sum(v.completion_tokens for v in verdicts.values()),
            "seconds": math.fsum(v.seconds for v in verdicts.values()),
            "cached": all(v.cached for v in verdicts.values()),
        }
        members = {name: v.score for name, v in verdicts.items()}
        if not answered:
            fallback = next(iter(verdicts.values())).score
            return Verdict(group, fallback, True, **usage, detail={"members": members, "spread": 0.0})
        center = statistics.median(answered) if self.aggregate == "median" else math.fsum(answered) / len(answered)
        spread = statistics.pstdev(answered) if len(answered) > 1 else 0.0
        return Verdict(group, round(center, 4), False, **usage, detail={"members": members, "spread": round(spread, 4)})


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...  # L2-normalised vectors


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")


def sentences(text: str) -> list[str]:
    """The text's sentences (split after . ! ? and at line breaks), empty pieces dropped."""
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece and piece.strip()]


def stance_coverage(stance: list[list[float]], text: list[list[float]]) -> float:
    """Mean over the stance's sentences of the best cosine with any sentence of the text."""
    if not stance or not text:
        return 0.0
    best = [max(math.fsum(a * b for a, b in zip(s, t)) for t in text) for s in stance]
    return math.fsum(best) / len(best)


@dataclass
class SimilarityJudge:
    """A cheap offline baseline (research/judges.md §7): how closely the text's sentences echo the
    group's stance, as 9 x the stance coverage. It reads topical overlap, not agreement: a text
    that rejects each point of a stance echoes it as well as one that adopts it. Its raw score is
    on no meaningful scale; calibrate it (judge_calibrate) and use `calibrated:<id>`."""

    embedder: Embedder
    name: str = "similarity"

    def score(self, *, scenario: Scenario, group: str, text: str, seed: int) -> Verdict:
        stance_sentences = sentences(scenario.group(group).stance)
        text_sentences = sentences(text)
        vectors = self.embedder.embed([*stance_sentences, *text_sentences])
        coverage = stance_coverage(vectors[: len(stance_sentences)], vectors[len(stance_sentences) :])
        score = max(0.0, min(9.0, 9 * coverage))
        return Verdict(group, round(score, 4), detail={"coverage": round(coverage, 6)})


# --- the reason check (research/judges.md §5): does the judge's reason support its score? ---

REASONED_TAIL = """First give a one-sentence reason (at most 60 words), then the score, exactly in this form:
Reason: <one sentence>
Score: <one number from 0 to 9>
{marker}:"""

REASON_ONLY_TEMPLATE = """A reviewer read a draft resolution and the position of {group}, and gave this reason for how well the draft captures that position:
Reason: '''{reason}'''

Background: '''{background}'''
The position of {group}: '''{stance}'''
From the reason alone (you do not see the draft), how well does the draft give specific implementation details that capture the position of {group}?

Choices: {choices}
Answer with one number from 0 to 9 and nothing else.
{marker}:"""

_REASONED = re.compile(r"Reason:\s*(?P<reason>.+?)\s*Score:\s*(?P<score>[0-9])(?![0-9])", re.S | re.I)
REASON_ATTEMPTS = 3


def reasoned_messages(*, scenario: Scenario, group: str, text: str) -> list[Message]:
    """The paper's prompt with its answer line replaced by a reason-then-score request."""
    messages = judge_messages(scenario=scenario, group=group, text=text, attempt=0)
    prompt = messages[-1]["content"]
    head = prompt[: prompt.index("Answer with one number")]
    return [*messages[:-1], {"role": "user", "content": head + REASONED_TAIL.format(marker=REASON_MARKER)}]


def reason_only_messages(*, scenario: Scenario, group: str, reason: str, attempt: int) -> list[Message]:
    prompt = REASON_ONLY_TEMPLATE.format(
        group=group,
        reason=reason,
        background=scenario.record.background,
        stance=scenario.group(group).stance,
        choices=", ".join(f"{number} = {label}" for number, label in enumerate(SCALE)),
        marker=JUDGE_MARKER,
    )
    prompt += "".join(JUDGE_REMINDERS[: min(attempt, len(JUDGE_REMINDERS))])
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": prompt}]


def parse_reasoned(text: str) -> tuple[str, int] | None:
    match = _REASONED.search(text)
    return (match.group("reason").strip(), int(match.group("score"))) if match else None


@dataclass(frozen=True)
class ReasonVerdict:
    group: str
    score: int | None  # the reasoned judge's score; None when it gave no reason-and-score answer
    reason: str = ""
    reason_score: int | None = None  # the score a second call gives from the reason alone


@dataclass
class ReasonCheck:
    """One call for a reason and a score, then one call that scores from the reason alone (the
    draft unseen). A judge whose scores its reasons do not support "knows what, not why"."""

    client: ModelClient
    max_tokens: int = 120

    def check(self, *, scenario: Scenario, group: str, text: str, seed: int) -> ReasonVerdict:
        reply = self.client.complete(
            reasoned_messages(scenario=scenario, group=group, text=text),
            params=Params(temperature=0.0, max_tokens=self.max_tokens),
            seed=seed_for(seed, "reason", group),
        )
        parsed = parse_reasoned(reply.text)
        if parsed is None:
            return ReasonVerdict(group, None)
        reason, score = parsed
        for attempt in range(REASON_ATTEMPTS):
            answer = self.client.complete(
                reason_only_messages(scenario=scenario, group=group, reason=reason, attempt=attempt),
                params=Params(temperature=round(0.1 * attempt, 1), max_tokens=3),
                seed=seed_for(seed, "reason-only", group, attempt),
            )
            reason_score = parse_score(answer.text)
            if reason_score is not None:
                return ReasonVerdict(group, score, reason, reason_score)
        return ReasonVerdict(group, score, reason, None)
