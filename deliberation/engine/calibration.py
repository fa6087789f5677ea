"""Judge calibration: how well a judge's scores track the groups' real votes.

Pure arithmetic on plain pairs (one per record and group): correlations with bootstrap intervals
that resample whole records (a record's groups are not independent), errors and biases, the 10x10
confusion matrix, agreement on the vote's position, and an isotonic map from raw scores to real
choices fitted on one split of records and evaluated on the other. research/judges.md §4.
"""

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from deliberation.engine.goals import vote_position
from deliberation.engine.seeding import seed_for

SCORE_LEVELS = 10  # the scale 0..9
DEFAULT_RESAMPLES = 1000
# The paper's figure, from a secondary summary only (judges.md §2): shown, never used.
REPORTED_PAPER_R = 0.83


@dataclass(frozen=True)
class Pair:
    """One (record, group) item: the judge's score of the adopted resolution and the real vote."""

    record: str
    group: str
    real: int  # the real choice, 0..9
    predicted: float  # the judge's score, 0..9 (a float for expected-score judges)
    term: str = ""
    topic: str = ""
    fallback: bool = False  # the judge never answered and `predicted` is its default
    extra: Mapping = field(default_factory=dict)  # what the judge stored beside its score

    def as_dict(self) -> dict:
        return {**asdict(self), "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Pair":
        return cls(**{**data, "extra": dict(data.get("extra") or {})})


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r; None when fewer than two pairs or either side is constant (r is undefined)."""
    if len(xs) != len(ys):
        raise ValueError("pearson needs two sequences of the same length")
    if len(xs) < 2:
        return None
    mx, my = _mean(xs), _mean(ys)
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of their positions (as Spearman's rho needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            result[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    return pearson(ranks(xs), ranks(ys))


def mae(pairs: Sequence[Pair]) -> float | None:
    return _mean([abs(p.predicted - p.real) for p in pairs])


def bias(pairs: Sequence[Pair]) -> float | None:
    """Mean signed error, judge minus real: positive when the judge scores too high."""
    return _mean([p.predicted - p.real for p in pairs])


def bias_by(pairs: Sequence[Pair], key: Callable[[Pair], str]) -> dict[str, dict]:
    """Bias, MAE and count per value of `key` (group, term, topic), keys sorted."""
    buckets: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        buckets[key(pair)].append(pair)
    return {name: {"n": len(items), "bias": bias(items), "mae": mae(items)} for name, items in sorted(buckets.items())}


def as_level(score: float) -> int:
    """The 0..9 level a (possibly fractional) score falls in: rounded half up, clipped."""
    return max(0, min(SCORE_LEVELS - 1, math.floor(score + 0.5)))


def confusion(pairs: Sequence[Pair]) -> list[list[int]]:
    """10x10 counts: rows are the real choice, columns the judge's score (rounded)."""
    matrix = [[0] * SCORE_LEVELS for _ in range(SCORE_LEVELS)]
    for pair in pairs:
        matrix[pair.real][as_level(pair.predicted)] += 1
    return matrix


def position_agreement(pairs: Sequence[Pair]) -> dict:
    """How often the judge puts a group in its real position (for >= 6, abstain 4-5, against <= 3)."""
    positions = ("for", "abstain", "against")
    table = {real: {judged: 0 for judged in positions} for real in positions}
    for pair in pairs:
        table[vote_position(pair.real)][vote_position(as_level(pair.predicted))] += 1
    agreed = sum(table[p][p] for p in positions)
    return {"rate": agreed / len(pairs) if pairs else None, "table": table}


def bootstrap_ci(
    pairs: Sequence[Pair],
    statistic: Callable[[Sequence[Pair]], float | None],
    *,
    seed: int,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile interval over resamples of whole records (seeded, so reproducible)."""
    by_record: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_record[pair.record].append(pair)
    records = sorted(by_record)
    if len(records) < 2 or resamples < 1:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        sample = [pair for _ in records for pair in by_record[rng.choice(records)]]
        value = statistic(sample)
        if value is not None:
            values.append(value)
    if not values:
        return None
    values.sort()
    tail = (1 - level) / 2
    low = values[min(len(values) - 1, int(math.floor(tail * len(values))))]
    high = values[min(len(values) - 1, int(math.ceil((1 - tail) * len(values))) - 1)]
    return (low, high)


def _pearson_of(pairs: Sequence[Pair]) -> float | None:
    return pearson([p.predicted for p in pairs], [p.real for p in pairs])


def _spearman_of(pairs: Sequence[Pair]) -> float | None:
    return spearman([p.predicted for p in pairs], [p.real for p in pairs])


def calibration_metrics(pairs: Sequence[Pair], *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES) -> dict:
    """Every metric of a calibration, as JSON-ready data.

    Fallback scores are counted apart and left out of the metrics: a judge that never answered
    tells nothing about how it reads a text, and its default 4 would drag r towards zero.
    """
    scored = [p for p in pairs if not p.fallback]
    return {
        "pairs": len(pairs),
        "scored": len(scored),
        "fallbacks": len(pairs) - len(scored),
        "records": len({p.record for p in scored}),
        "pearson": _pearson_of(scored),
        "pearson_ci": bootstrap_ci(scored, _pearson_of, seed=seed_for(seed, "pearson"), resamples=resamples),
        "spearman": _spearman_of(scored),
        "spearman_ci": bootstrap_ci(scored, _spearman_of, seed=seed_for(seed, "spearman"), resamples=resamples),
        "mae": mae(scored),
        "bias": bias(scored),
        "exact": _mean([float(as_level(p.predicted) == p.real) for p in scored]),
        "within_one": _mean([float(abs(p.predicted - p.real) <= 1) for p in scored]),
        "bias_by_group": bias_by(scored, lambda p: p.group),
        "bias_by_term": bias_by(scored, lambda p: p.term),
        "bias_by_topic": bias_by(scored, lambda p: p.topic),
        "confusion": confusion(scored),
        "positions": position_agreement(scored),
        "mean_real": _mean([float(p.real) for p in scored]),
        "mean_predicted": _mean([p.predicted for p in scored]),
    }


# ---------------------------------------------------------------------------------------------
# Isotonic calibration on a split of records


def split_records(records: Iterable[str], *, seed: int, train_share: float = 0.5) -> tuple[frozenset, frozenset]:
    """Records into (train, test), disjoint, by a seeded shuffle: a record's groups stay together."""
    if not 0 < train_share < 1:
        raise ValueError("train_share must lie strictly between 0 and 1")
    ordered = sorted(set(records))
    random.Random(seed).shuffle(ordered)
    cut = round(len(ordered) * train_share)
    if len(ordered) >= 2:
        cut = min(max(cut, 1), len(ordered) - 1)  # both parts non-empty
    return frozenset(ordered[:cut]), frozenset(ordered[cut:])


@dataclass(frozen=True)
class IsotonicMap:
    """A non-decreasing step function from raw scores to 0..9: at each knot x its value y;
    between knots linear, outside them clipped (scikit-learn's out_of_bounds="clip")."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __call__(self, x: float) -> float:
        if not self.xs:
            raise ValueError("an empty isotonic map")
        if x <= self.xs[0]:
            return self.ys[0]
        if x >= self.xs[-1]:
            return self.ys[-1]
        for index in range(1, len(self.xs)):
            if x <= self.xs[index]:
                x0, x1 = self.xs[index - 1], self.xs[index]
                y0, y1 = self.ys[index - 1], self.ys[index]
                return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        return self.ys[-1]

    def as_dict(self) -> dict:
        return {"xs": list(self.xs), "ys": list(self.ys)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "IsotonicMap":
        return cls(tuple(data["xs"]), tuple(data["ys"]))


def isotonic_fit(xs: Sequence[float], ys: Sequence[float]) -> IsotonicMap:
    """Pool-adjacent-violators: the least-squares non-decreasing fit of y on x, values in 0..9."""
    if len(xs) != len(ys) or not xs:
        raise ValueError("isotonic_fit needs pairs")
    sums: dict[float, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for x, y in zip(xs, ys):
        sums[x][0] += y
        sums[x][1] += 1
    # Blocks: [sum of y, weight, first x, last x], merged while a block's mean exceeds the next's.
    blocks: list[list[float]] = []
    for x in sorted(sums):
        blocks.append([sums[x][0], sums[x][1], x, x])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
            blocks[-1][3] = last[3]
    knots_x: list[float] = []
    knots_y: list[float] = []
    for total, weight, first, last in blocks:
        value = max(0.0, min(float(SCORE_LEVELS - 1), total / weight))
        for x in (first, last) if last != first else (first,):
            knots_x.append(x)
            knots_y.append(value)
    return IsotonicMap(tuple(knots_x), tuple(knots_y))


def isotonic_calibration(
    pairs: Sequence[Pair], *, seed: int, train_share: float = 0.5, resamples: int = DEFAULT_RESAMPLES
) -> dict:
    """Fit on the train records, report raw and calibrated metrics on the test records."""
    scored = [p for p in pairs if not p.fallback]
    train, test = split_records((p.record for p in scored), seed=seed, train_share=train_share)
    train_pairs = [p for p in scored if p.record in train]
    test_pairs = [p for p in scored if p.record in test]
    if not train_pairs or not test_pairs:
        raise ValueError("isotonic calibration needs scored pairs on at least two records")
    mapping = isotonic_fit([p.predicted for p in train_pairs], [float(p.real) for p in train_pairs])
    calibrated = [Pair(**{**p.as_dict(), "predicted": mapping(p.predicted)}) for p in test_pairs]
    return {
        "split_seed": seed,
        "train_share": train_share,
        "train_records": sorted(train),
        "test_records": sorted(test),
        "map": mapping.as_dict(),
        "train": {"pairs": len(train_pairs), "pearson": _pearson_of(train_pairs), "mae": mae(train_pairs)},
        "test_raw": calibration_metrics(test_pairs, seed=seed, resamples=resamples),
        "test_calibrated": calibration_metrics(calibrated, seed=seed, resamples=resamples),
    }


# ---------------------------------------------------------------------------------------------
# Bias probes: the same items judged under another prompt layout


FLIP_SHIFT = 2  # a score that moves this much or more under a layout change "flips"


def paired_shift(
    base: Sequence[Pair], variant: Sequence[Pair], *, seed: int, resamples: int = DEFAULT_RESAMPLES
) -> dict:
    """How a judge's scores move from `base` to `variant` on the same items (matched by record
    and group, fallbacks on either side left out): mean shift with a record-bootstrap interval,
    mean absolute shift, flip rate (|shift| >= FLIP_SHIFT), and the variant's own r and MAE."""
    before = {(p.record, p.group): p for p in base if not p.fallback}
    matched = [(before[(p.record, p.group)], p) for p in variant if not p.fallback and (p.record, p.group) in before]
    # a shift as a Pair (predicted = variant - base, real = 0) so the record bootstrap applies
    shifts = [Pair(record=v.record, group=v.group, real=0, predicted=v.predicted - b.predicted) for b, v in matched]
    variant_pairs = [v for _, v in matched]
    return {
        "pairs": len(matched),
        "mean_shift": bias(shifts),
        "mean_shift_ci": bootstrap_ci(shifts, bias, seed=seed, resamples=resamples),
        "mean_abs_shift": mae(shifts),
        "flip_rate": _mean([float(abs(s.predicted) >= FLIP_SHIFT) for s in shifts]),
        "pearson": _pearson_of(variant_pairs),
        "base_pearson": _pearson_of([b for b, _ in matched]),
        "mae": mae(variant_pairs),
    }


def pearson_from_sums(*, n: float, sx: float, sy: float, sxx: float, syy: float, sxy: float) -> float | None:
    """Pearson's r from running sums (what a GROUP BY returns); None where it is undefined."""
    if n < 2:
        return None
    cxx, cyy, cxy = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
    if cxx <= 1e-12 * max(1.0, sxx) or cyy <= 1e-12 * max(1.0, syy):
        return None
    return max(-1.0, min(1.0, cxy / math.sqrt(cxx * cyy)))


# ---------------------------------------------------------------------------------------------
# The reason check (VUM / ValueDCG adapted, research/judges.md §5)

REASON_DISAGREES = 3  # |score - reason-only score| at least this: "reason does not support score"


def reason_metrics(rows: Sequence[tuple[str, int, int | None, int | None]]) -> dict:
    """rows: (record, real, score, reason_score). D = r(score, real), C = r(reason-only score,
    real), K = r(score, reason-only score) and their agreement within 1; DCG = D - C. Rows where
    either call gave no usable answer are counted apart."""
    complete = [(real, s, sr) for _, real, s, sr in rows if s is not None and sr is not None]
    d = pearson([s for _, s, _ in complete], [real for real, _, _ in complete])
    c = pearson([sr for _, _, sr in complete], [real for real, _, _ in complete])
    return {
        "items": len(rows),
        "checked": len(complete),
        "no_reason": sum(1 for row in rows if row[2] is None),
        "no_reason_score": sum(1 for row in rows if row[2] is not None and row[3] is None),
        "d": d,
        "c": c,
        "dcg": None if d is None or c is None else d - c,
        "k": pearson([s for _, s, _ in complete], [sr for _, _, sr in complete]),
        "agree_within_one": _mean([float(abs(s - sr) <= 1) for _, s, sr in complete]),
        "unsupported": _mean([float(abs(s - sr) >= REASON_DISAGREES) for _, s, sr in complete]),
    }
