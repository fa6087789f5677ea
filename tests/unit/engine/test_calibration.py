"""engine/calibration.py against tiny tables computed by hand."""

import pytest

from deliberation.engine.calibration import (
    IsotonicMap,
    Pair,
    as_level,
    bias,
    bias_by,
    bootstrap_ci,
    calibration_metrics,
    confusion,
    isotonic_calibration,
    isotonic_fit,
    mae,
    pearson,
    position_agreement,
    ranks,
    spearman,
    split_records,
)


def pairs_of(rows):
    """(record, group, real, predicted[, fallback]) tuples into pairs."""
    return [
        Pair(
            record=r[0],
            group=r[1],
            real=r[2],
            predicted=r[3],
            fallback=r[4] if len(r) > 4 else False,
            term="9th",
            topic="fisheries",
        )
        for r in rows
    ]


def test_pearson_on_a_hand_computed_table():
    # dx = -1.5 -.5 .5 1.5, dy = -1.5 .5 -.5 1.5: sxy = 4, sxx = syy = 5, r = 0.8
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_pearson_is_undefined_for_a_constant_side_or_one_pair():
    assert pearson([4, 4, 4], [1, 2, 3]) is None
    assert pearson([1], [1]) is None


def test_ranks_share_ties_and_spearman_uses_them():
    assert ranks([10, 10, 20, 5]) == [2.5, 2.5, 4.0, 1.0]
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # monotone but not linear: Spearman 1, Pearson below 1
    assert spearman([1, 2, 3, 4], [1, 2, 3, 100]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [1, 2, 3, 100]) < 0.9


def test_mae_and_bias_on_a_hand_computed_table():
    table = pairs_of([("a", "EPP", 0, 1), ("a", "SD", 5, 5), ("b", "EPP", 9, 7)])
    assert mae(table) == pytest.approx(1.0)  # errors 1, 0, 2
    assert bias(table) == pytest.approx(-1 / 3)  # +1, 0, -2
    by_group = bias_by(table, lambda p: p.group)
    assert by_group["EPP"] == {"n": 2, "bias": pytest.approx(-0.5), "mae": pytest.approx(1.5)}
    assert by_group["SD"] == {"n": 1, "bias": 0.0, "mae": 0.0}


def test_confusion_rows_are_real_columns_are_rounded_judge_scores():
    table = pairs_of([("a", "EPP", 0, 1), ("a", "SD", 5, 4.5), ("b", "EPP", 9, 9.4), ("b", "SD", 9, 7)])
    matrix = confusion(table)
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    assert matrix[0][1] == 1 and matrix[5][5] == 1 and matrix[9][9] == 1 and matrix[9][7] == 1
    assert sum(map(sum, matrix)) == 4
    assert as_level(-0.3) == 0 and as_level(4.49) == 4 and as_level(12) == 9


def test_position_agreement_counts_for_abstain_against():
    # real for (7) judged for (6): agree; real against (1) judged abstain (4): disagree;
    # real abstain (5) judged abstain (4.6 -> 5): agree
    result = position_agreement(pairs_of([("a", "EPP", 7, 6), ("a", "SD", 1, 4), ("b", "EPP", 5, 4.6)]))
    assert result["rate"] == pytest.approx(2 / 3)
    assert result["table"]["against"]["abstain"] == 1 and result["table"]["for"]["for"] == 1


def test_fallbacks_are_counted_apart_and_left_out_of_the_metrics():
    table = pairs_of([("a", "EPP", 0, 0), ("a", "SD", 9, 9), ("b", "EPP", 2, 4, True)])
    metrics = calibration_metrics(table, resamples=50)
    assert (metrics["pairs"], metrics["scored"], metrics["fallbacks"]) == (3, 2, 1)
    assert metrics["mae"] == 0.0 and metrics["bias"] == 0.0
    assert metrics["pearson"] == pytest.approx(1.0)


def test_perfect_judge_has_r_one_and_mae_zero_with_a_degenerate_interval():
    table = pairs_of(
        [
            (f"r{i}", g, real, real)
            for i, (g, real) in enumerate([("EPP", 0), ("SD", 3), ("EPP", 7), ("SD", 9), ("ECR", 5), ("ECR", 1)])
        ]
    )
    metrics = calibration_metrics(table, seed=3, resamples=200)
    assert metrics["pearson"] == pytest.approx(1.0) and metrics["spearman"] == pytest.approx(1.0)
    assert metrics["mae"] == 0.0 and metrics["exact"] == 1.0 and metrics["positions"]["rate"] == 1.0
    low, high = metrics["pearson_ci"]
    assert low == pytest.approx(1.0) and high == pytest.approx(1.0)
    assert sum(metrics["confusion"][i][i] for i in range(10)) == 6


def test_bootstrap_is_seeded_and_resamples_whole_records():
    table = pairs_of([(f"r{i % 5}", f"G{i}", i % 10, (i * 7) % 10) for i in range(30)])
    first = bootstrap_ci(table, lambda ps: mae(ps), seed=1, resamples=100)
    assert first == bootstrap_ci(table, lambda ps: mae(ps), seed=1, resamples=100)
    assert first != bootstrap_ci(table, lambda ps: mae(ps), seed=2, resamples=100)
    seen_sizes = set()

    def size(ps):
        seen_sizes.add(len(ps))
        return float(len(ps))

    bootstrap_ci(table, size, seed=0, resamples=20)
    assert seen_sizes == {30}  # 5 records of 6 pairs each: every resample has 5 whole records


def test_isotonic_fit_pools_adjacent_violators():
    mapping = isotonic_fit([1, 2, 3, 4], [1, 3, 2, 4])
    assert mapping == IsotonicMap((1, 2, 3, 4), (1, 2.5, 2.5, 4))
    assert mapping(1.5) == pytest.approx(1.75)
    assert mapping(0) == 1 and mapping(10) == 4  # clipped outside the fitted range
    # values are kept inside 0..9 and never decrease
    steep = isotonic_fit([0, 1, 2, 3], [9, 0, 9, 0])
    assert all(a <= b for a, b in zip(steep.ys, steep.ys[1:]))
    assert all(0 <= y <= 9 for y in steep.ys)


def test_split_keeps_no_record_in_both_parts_and_is_seeded():
    records = [f"r{i}" for i in range(20)]
    train, test = split_records(records, seed=5)
    assert not train & test and train | test == set(records) and len(train) == 10
    assert split_records(records, seed=5) == (train, test)
    assert split_records(records, seed=6) != (train, test)


def test_isotonic_calibration_fits_on_train_and_reports_on_test_only():
    # a judge that scores everything 3 points too low: the map learns the shift
    table = pairs_of(
        [
            (f"r{i}", g, real, max(0, real - 3))
            for i in range(20)
            for g, real in (("EPP", 3 + i % 7), ("SD", 3 + (i * 3) % 7))
        ]
    )
    report = isotonic_calibration(table, seed=1, resamples=50)
    assert not set(report["train_records"]) & set(report["test_records"])
    test_pairs = 2 * len(report["test_records"])
    assert report["test_raw"]["pairs"] == report["test_calibrated"]["pairs"] == test_pairs
    assert report["train"]["pairs"] + test_pairs == len(table)
    assert report["test_raw"]["bias"] == pytest.approx(-3.0)
    assert abs(report["test_calibrated"]["bias"]) < 0.5 and report["test_calibrated"]["mae"] < 0.5


def test_paired_shift_matches_items_and_counts_flips():
    from deliberation.engine.calibration import paired_shift

    base = pairs_of([("a", "EPP", 7, 6), ("a", "SD", 1, 2), ("b", "EPP", 5, 5), ("b", "SD", 0, 4, True)])
    variant = pairs_of([("a", "EPP", 7, 8), ("a", "SD", 1, 2), ("b", "EPP", 5, 2), ("b", "SD", 0, 1)])
    report = paired_shift(base, variant, seed=0, resamples=50)
    # matched: a/EPP +2, a/SD 0, b/EPP -3 (b/SD fell back in the base: left out)
    assert report["pairs"] == 3
    assert report["mean_shift"] == pytest.approx(-1 / 3)
    assert report["mean_abs_shift"] == pytest.approx(5 / 3)
    assert report["flip_rate"] == pytest.approx(2 / 3)
    low, high = report["mean_shift_ci"]
    assert low <= report["mean_shift"] <= high


def test_pearson_from_sums_equals_pearson():
    from deliberation.engine.calibration import pearson_from_sums

    xs, ys = [1, 2, 3, 4, 7], [2, 1, 4, 3, 9]
    sums = dict(
        n=len(xs),
        sx=sum(xs),
        sy=sum(ys),
        sxx=sum(x * x for x in xs),
        syy=sum(y * y for y in ys),
        sxy=sum(x * y for x, y in zip(xs, ys)),
    )
    assert pearson_from_sums(**sums) == pytest.approx(pearson(xs, ys))
    assert pearson_from_sums(n=3, sx=3, sy=6, sxx=3, syy=14, sxy=6) is None  # x constant


def test_reason_metrics_on_a_hand_computed_table():
    from deliberation.engine.calibration import reason_metrics

    rows = [("a", 0, 1, 1), ("a", 9, 8, 2), ("b", 5, 5, 5), ("b", 3, None, None), ("c", 7, 6, None)]
    metrics = reason_metrics(rows)
    assert (metrics["items"], metrics["checked"], metrics["no_reason"], metrics["no_reason_score"]) == (5, 3, 1, 1)
    assert metrics["d"] == pytest.approx(pearson([1, 8, 5], [0, 9, 5]))
    assert metrics["c"] == pytest.approx(pearson([1, 2, 5], [0, 9, 5]))
    assert metrics["dcg"] == pytest.approx(metrics["d"] - metrics["c"])
    assert metrics["agree_within_one"] == pytest.approx(2 / 3) and metrics["unsupported"] == pytest.approx(1 / 3)
