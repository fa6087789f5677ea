"""Decision rules beyond PoliCon's five goals.

- Borda and Schulze choose among competing drafts: each group is a voter whose ballot is its
  judged support (0..9) for every draft, weighted by its seat share; equal scores are ties.
- The EU Council's double majority passes a single text when the groups voting for it are at
  least 55% of the groups and hold at least 65% of the seats (a rule with two quotas). A group
  votes for a text when its support reaches 6, the level goals.vote_position calls "for".

Weights are exact (Fractions), so a tie on paper is a tie here, whatever floats the seats were.
"""

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from deliberation.engine.goals import GOALS, Tally, vote_position
from deliberation.engine.power import DOUBLE_MAJORITY_GROUPS, DOUBLE_MAJORITY_SEATS, exact_share

EXACT_BAND = 1e-9


class RuleError(ValueError):
    """Ballots a rule cannot count: the message says why."""


@dataclass(frozen=True)
class Ballot:
    scores: Mapping[str, float]  # candidate -> support; higher is preferred, equal is a tie
    weight: float | Fraction = 1  # the voter's seat share


@dataclass(frozen=True)
class RankedResult:
    winners: tuple[str, ...]  # more than one on a tie
    ranking: tuple[tuple[str, ...], ...]  # tiers, best first; a tier holds tied candidates
    points: Mapping[str, Fraction]  # Borda points, or Schulze's count of candidates beaten

    def as_dict(self) -> dict:
        return {
            "winners": list(self.winners),
            "ranking": [list(tier) for tier in self.ranking],
            "points": {candidate: float(value) for candidate, value in self.points.items()},
        }


def _check(ballots: Sequence[Ballot], candidates: Sequence[str]) -> list[Fraction]:
    if len(candidates) < 1:
        raise RuleError("no candidates")
    if len(set(candidates)) != len(candidates):
        raise RuleError("a candidate appears twice")
    if not ballots:
        raise RuleError("no ballots")
    for ballot in ballots:
        missing = [c for c in candidates if c not in ballot.scores]
        if missing:
            raise RuleError(f"a ballot does not score {', '.join(missing)}")
    weights = [exact_share(ballot.weight) for ballot in ballots]
    if any(weight < 0 for weight in weights):
        raise RuleError("a ballot has a negative weight")
    return weights


def _tiers(candidates: Sequence[str], beats) -> tuple[tuple[str, ...], ...]:
    """Tiers of a transitive 'beats' relation: each tier is what nothing left beats."""
    left = list(candidates)
    tiers = []
    while left:
        tier = tuple(c for c in left if not any(beats(other, c) for other in left if other != c))
        if not tier:  # cannot happen for a transitive relation; never loop forever
            tier = tuple(left)
        tiers.append(tier)
        left = [c for c in left if c not in tier]
    return tuple(tiers)


def borda(ballots: Sequence[Ballot], candidates: Sequence[str]) -> RankedResult:
    """Weighted Borda count: one point per candidate ranked below, half a point per tie."""
    weights = _check(ballots, candidates)
    points = {c: Fraction(0) for c in candidates}
    for ballot, weight in zip(ballots, weights):
        for c in candidates:
            below = sum(1 for o in candidates if o != c and ballot.scores[o] < ballot.scores[c])
            tied = sum(1 for o in candidates if o != c and ballot.scores[o] == ballot.scores[c])
            points[c] += weight * (below + Fraction(tied, 2))
    ranking = _tiers(candidates, lambda a, b: points[a] > points[b])
    return RankedResult(winners=ranking[0], ranking=ranking, points=points)


def schulze_paths(
    ballots: Sequence[Ballot], candidates: Sequence[str]
) -> tuple[dict[str, dict[str, Fraction]], dict[str, dict[str, Fraction]]]:
    """Schulze's two matrices, winning votes: d[a][b] is the weight that prefers a strictly to b;
    a link a->b has strength d[a][b] when d[a][b] > d[b][a], else none; p[a][b] is the strongest
    path's weakest link (Floyd-Warshall)."""
    weights = _check(ballots, candidates)
    d = {a: {b: Fraction(0) for b in candidates} for a in candidates}
    for ballot, weight in zip(ballots, weights):
        for a in candidates:
            for b in candidates:
                if a != b and ballot.scores[a] > ballot.scores[b]:
                    d[a][b] += weight
    p = {a: {b: (d[a][b] if a != b and d[a][b] > d[b][a] else Fraction(0)) for b in candidates} for a in candidates}
    for k in candidates:
        for a in candidates:
            if a == k:
                continue
            for b in candidates:
                if b in (a, k):
                    continue
                p[a][b] = max(p[a][b], min(p[a][k], p[k][b]))
    return d, p


def schulze(ballots: Sequence[Ballot], candidates: Sequence[str]) -> RankedResult:
    """The Schulze method over schulze_paths: a ranks above b when p[a][b] > p[b][a]; this order
    is transitive, so tiers are well defined, and candidates in one tier are tied (the caller
    breaks ties, e.g. by its own order or by schulze_tie_break)."""
    _, p = schulze_paths(ballots, candidates)
    ranking = _tiers(candidates, lambda a, b: p[a][b] > p[b][a])
    beaten = {a: Fraction(sum(1 for b in candidates if b != a and p[a][b] > p[b][a])) for a in candidates}
    return RankedResult(winners=ranking[0], ranking=ranking, points=beaten)


def _consecutive(ranks: Mapping[str, Fraction | float | int]) -> dict[str, int]:
    """Dense ranks 0, 1, 2, ... keeping ties (lower is better)."""
    levels = {value: index for index, value in enumerate(sorted(set(ranks.values())))}
    return {candidate: levels[value] for candidate, value in ranks.items()}


def schulze_tie_break(
    ranking: Sequence[Sequence[str]], ballots: Sequence[Ballot], rng: random.Random
) -> tuple[str, ...]:
    """A strict order from Schulze tiers by Tie-Breaking Ranking of Candidates (TBRC), as the
    Habermas Machine does: the ballots, in a seeded random order, refine the tied ranks one at a
    time (r <- norm(norm(r) * K + norm(ballot))) until no tie is left; a random permutation
    settles whatever the ballots leave tied."""
    ranks = {candidate: tier for tier, members in enumerate(ranking) for candidate in members}
    size = len(ranks)

    def refine(by: Mapping[str, int]) -> None:
        ordered = _consecutive(by)
        base = _consecutive(ranks)
        ranks.update(_consecutive({c: base[c] * size + ordered[c] for c in ranks}))

    order = list(ballots)
    rng.shuffle(order)
    for ballot in order:
        if len(set(ranks.values())) == size:
            break
        refine({c: -ballot.scores[c] for c in ranks})  # a higher score is the better rank
    if len(set(ranks.values())) < size:
        permutation = list(ranks)
        rng.shuffle(permutation)
        refine({c: position for position, c in enumerate(permutation)})
    return tuple(sorted(ranks, key=ranks.__getitem__))


def double_majority(
    scores: Mapping[str, int],
    seats: Mapping[str, float],
    *,
    groups_share: Fraction = DOUBLE_MAJORITY_GROUPS,
    seats_share: Fraction = DOUBLE_MAJORITY_SEATS,
) -> bool:
    """Passes when the groups for the text are >= groups_share of groups and >= seats_share of seats."""
    if set(scores) != set(seats):
        raise RuleError("scores and seats must name the same groups")
    backers = [code for code, score in scores.items() if vote_position(score) == "for"]
    if Fraction(len(backers), len(scores)) < groups_share:
        return False
    # Floats decide unless the share lies within a hair of the quota; exact fractions decide there.
    share = math.fsum(seats[code] for code in backers) / math.fsum(seats.values())
    if abs(share - float(seats_share)) > EXACT_BAND:
        return share > seats_share
    shares = {code: exact_share(value) for code, value in seats.items()}
    return sum(shares[code] for code in backers) >= seats_share * sum(shares.values())


# --- every rule over one tally or over competing drafts ------------------------------------------


@dataclass(frozen=True)
class Rule:
    key: str
    label: str
    kind: str  # "pass" (one text passes or not), "score" (a welfare score), "ranked" (drafts compete)


RULES: dict[str, Rule] = {
    rule.key: rule
    for rule in (
        *(Rule(key, goal.label, goal.kind) for key, goal in GOALS.items()),
        Rule("double_majority", "Double majority (55% of groups, 65% of seats)", "pass"),
        Rule("borda", "Borda count over competing drafts", "ranked"),
        Rule("schulze", "Schulze method over competing drafts", "ranked"),
    )
}
RULE_KEYS: tuple[str, ...] = tuple(RULES)


def tally_rules(scores: Mapping[str, int], seats: Mapping[str, float], *, veto_group: str | None) -> dict:
    """One text's verdict under every single-text rule: the five goals and the double majority."""
    tally = Tally(scores=scores, seats=seats, veto_group=veto_group)
    verdicts: dict[str, bool | float | None] = {
        key: (goal.evaluate(tally) if key != "veto_power" or veto_group else None) for key, goal in GOALS.items()
    }
    verdicts["double_majority"] = double_majority(scores, seats)
    return verdicts


def rank_drafts(drafts: Mapping[str, Mapping[str, int]], seats: Mapping[str, float], *, rule: str) -> RankedResult:
    """Borda or Schulze over drafts (draft key -> group code -> support), groups weighted by seats."""
    if rule not in ("borda", "schulze"):
        raise RuleError(f"rule: {rule} does not rank drafts")
    candidates = list(drafts)
    ballots = [
        Ballot(scores={key: drafts[key][code] for key in candidates}, weight=share) for code, share in seats.items()
    ]
    return (borda if rule == "borda" else schulze)(ballots, candidates)
