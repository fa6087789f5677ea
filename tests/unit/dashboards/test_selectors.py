"""The dashboard's aggregates against the hand-computed values of conftest.py's experiment."""

import pytest

from deliberation.dashboards.selectors import (
    bootstrap_ci,
    breakdown,
    experiment_runs,
    group_views,
    paper_tables,
)


def _rows(made):
    (table,) = paper_tables(experiment=made.experiment)
    assert table.judge == "llm"
    return {(row.strategy, row.model): {g["goal"]: g["cells"] for g in row.goals} for row in table.rows}, table


def test_paper_table_pass_rates_means_and_task_counts(made):
    rows, _ = _rows(made)
    two, four, six = rows[("one-shot", "m1")]["simple_majority"]
    assert (two.mean, two.n, two.tasks) == (pytest.approx(2 / 3), 3, 1)  # the failed and running runs count nowhere
    assert (four.mean, four.n, four.tasks) == (1.0, 1, 1)
    assert (six.mean, six.n) == (None, 0)
    rawls_two = rows[("one-shot", "m1")]["rawlsian"][0]
    assert (rawls_two.mean, rawls_two.n) == (4.0, 2)


def test_baselines_come_first_and_are_marked(made):
    rows, table = _rows(made)
    assert [(row.strategy, row.is_baseline) for row in table.rows] == [("greedy", True), ("one-shot", False)]
    assert rows[("greedy", "m1")]["simple_majority"][0].mean == 0.0


def test_cells_link_to_their_runs(made):
    rows, _ = _rows(made)
    cell = rows[("one-shot", "m1")]["simple_majority"][0]
    assert cell.query == {
        "strategy": "one-shot",
        "model": "m1",
        "judge": "llm",
        "goal": "simple_majority",
        "parties": 2,
    }
    runs = experiment_runs(experiment=made.experiment, **cell.query)
    assert runs.count() == 5  # the three finished, the failed and the running one


def test_ci_contains_the_mean_and_pass_rate_ci_stays_in_unit_interval(made):
    rows, _ = _rows(made)
    for goal, cells in rows[("one-shot", "m1")].items():
        for cell in cells:
            if cell.n:
                low, high = cell.ci
                assert low <= cell.mean <= high
                if goal == "simple_majority":
                    assert 0.0 <= low and high <= 1.0
    assert rows[("one-shot", "m1")]["rawlsian"][0].ci[0] >= 3.0
    assert rows[("one-shot", "m1")]["rawlsian"][0].ci[1] <= 5.0


def test_bootstrap_of_a_constant_sample_is_that_constant():
    assert bootstrap_ci([1.0], [7]) == (1.0, 1.0)


def test_bootstrap_of_half_passes_is_centred_and_narrows_with_more_runs():
    low, high = bootstrap_ci([0.0, 1.0], [50, 50])
    wide_low, wide_high = bootstrap_ci([0.0, 1.0], [5, 5])
    assert low < 0.5 < high and 0.35 < low and high < 0.65
    assert high - low < wide_high - wide_low


def test_breakdown_by_topic_and_term(made):
    for by, bucket in (("topic", "agriculture"), ("term", "7th")):
        cells = breakdown(experiment=made.experiment, by=by)
        cell = cells[("one-shot", "m1", "llm", "simple_majority", bucket)]
        assert (cell.mean, cell.n) == (0.75, 4)
        assert cells[("one-shot", "m1", "llm", "rawlsian", bucket)].mean == 4.0


def test_breakdown_by_power_bins_the_largest_seat_share(made):
    cells = breakdown(experiment=made.experiment, by="power")
    majority = cells[("one-shot", "m1", "llm", "simple_majority", "largest 60–70% (a majority alone)")]  # EPP 0.6
    assert (majority.mean, majority.n) == (pytest.approx(2 / 3), 3)
    split = cells[("one-shot", "m1", "llm", "simple_majority", "largest 40–50%")]  # EPP 0.4 of four
    assert (split.mean, split.n) == (1.0, 1)


def test_group_score_against_seat_share(made):
    points = {
        (p["strategy"], p["group"], p["share"]): (p["mean"], p["n"])
        for p in group_views(experiment=made.experiment).by_share
    }
    assert points[("one-shot", "EPP", 0.6)] == (pytest.approx((8 + 6 + 7 + 6 + 5) / 5), 5)
    assert points[("one-shot", "SD", 0.4)] == (pytest.approx((2 + 4 + 3 + 3 + 5) / 5), 5)
    assert points[("one-shot", "GREEN_EFA", 0.1)] == (0.0, 1)
    assert points[("greedy", "EPP", 0.6)] == (9.0, 1)


def test_simulated_support_against_real_vote(made):
    points = {
        (p["strategy"], p["real"]): (p["mean"], p["n"]) for p in group_views(experiment=made.experiment).by_real_vote
    }
    # EPP voted 8 for, SD 3, ALDE 5, GREEN_EFA 0 (tests/factories.py).
    assert points[("one-shot", 8)] == (pytest.approx((8 + 6 + 7 + 9 + 6 + 5) / 6), 6)
    assert points[("one-shot", 3)] == (pytest.approx((2 + 4 + 3 + 1 + 3 + 5) / 6), 6)
    assert points[("one-shot", 0)] == (0.0, 1)
    assert points[("greedy", 3)] == (0.0, 1)


def test_breakdown_intervals_contain_the_mean_and_stay_in_the_goals_range(made):
    for by in ("topic", "term", "power"):
        for (_, _, _, goal, _), cell in breakdown(experiment=made.experiment, by=by).items():
            low, high = cell.ci
            assert low <= cell.mean <= high
            assert 0.0 <= low and high <= (1.0 if goal == "simple_majority" else 9.0)
    single = breakdown(experiment=made.experiment, by="power")[
        ("one-shot", "m1", "llm", "simple_majority", "largest 40–50%")
    ]
    assert single.ci == (1.0, 1.0)  # one run: no spread to speak of


def test_partisan_probe_correlates_each_strategys_scores_with_real_votes_and_seats(made):
    from deliberation.engine.calibration import pearson
    from deliberation.runs.models import RunGroupScore

    probe = {row["strategy"]: row for row in group_views(experiment=made.experiment).partisan}
    rows = list(
        RunGroupScore.objects.filter(experiment=made.experiment, strategy="one-shot").values_list(
            "score", "real_choice", "seat_share"
        )
    )
    assert probe["one-shot"]["n"] == len(rows) > 2
    assert probe["one-shot"]["r_real"] == pytest.approx(pearson([r[0] for r in rows], [r[1] for r in rows]))
    assert probe["one-shot"]["r_share"] == pytest.approx(pearson([r[0] for r in rows], [r[2] for r in rows]))
    assert probe["one-shot"]["r_real"] > 0.5  # the fixture's scores follow the real votes
    assert probe["greedy"]["n"] == 2


def test_the_breakdowns_use_the_paper_tables_bootstrap_one_method_on_the_page(made):
    """Term 7th holds every run: a breakdown cell's interval is the bootstrap of that cell's runs,
    pass goals (the passes of n) and score goals (their values) alike."""
    terms = breakdown(experiment=made.experiment, by="term")
    passing = terms[("one-shot", "m1", "llm", "simple_majority", "7th")]  # 2p: pass, fail, pass; 4p: pass
    assert (passing.n, passing.mean) == (4, 0.75)
    assert passing.ci == bootstrap_ci([0.0, 1.0], [1, 3])
    scored = terms[("one-shot", "m1", "llm", "rawlsian", "7th")]  # 3.0 and 5.0
    assert scored.ci == bootstrap_ci([3.0, 5.0], [1, 1])
    assert scored.ci != (scored.mean, scored.mean)
    power = breakdown(experiment=made.experiment, by="power")
    topic = breakdown(experiment=made.experiment, by="topic")
    assert topic[("one-shot", "m1", "llm", "rawlsian", "agriculture")].ci == scored.ci
    assert all(
        cell.ci == bootstrap_ci([0.0, 1.0], [cell.n - round(cell.mean * cell.n), round(cell.mean * cell.n)])
        for (_, _, _, goal, _), cell in power.items()
        if goal == "simple_majority"
    )
