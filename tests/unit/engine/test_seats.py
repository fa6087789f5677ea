"""engine/seats.py: PoliCon's seat weights and party selection, draw for draw, and our structures."""

import itertools
import json
import math
import random
import statistics
from pathlib import Path

import pytest

from deliberation.engine.scenario import ScenarioError
from deliberation.engine.seats import (
    custom_shares,
    equal_shares,
    random_tenths,
    real_shares,
    seat_shares,
    select_max_variance,
)

# Task sets in the EuroCon release's layout, made by this project with PoliCon's procedure
# (fixtures/make_sample_tasks.py); the tests never read the release itself.
FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"
TASK_SETS = (FIXTURES / "sample_records", FIXTURES / "eurocon_subset")


# The benchmark's own generators (enrico956/EuroCon utils/allocate_weights.py and
# utils/find_diverse_party.py), restated on the global `random` the way the benchmark ran them.


def reference_allocate_weights(n: int, seed: int) -> list[float]:
    random.seed(seed)
    weights, remaining = [], 10
    for i in range(n - 1):
        weight = random.randint(1, remaining - (n - i - 1))
        weights.append(weight)
        remaining -= weight
    weights.append(remaining)
    weights = [w / 10 for w in weights]
    random.shuffle(weights)
    return weights


def reference_max_variance_parties(stances: list[dict], k: int, seed: int) -> list[dict]:
    random.seed(seed)
    max_variance, best = -1, []
    for combination in itertools.combinations(stances, k):
        var = statistics.variance([stance["choice"] for stance in combination])
        if var > max_variance:
            max_variance = var
    for combination in itertools.combinations(stances, k):
        if statistics.variance([stance["choice"] for stance in combination]) == max_variance:
            best.append(combination)
    return list(random.choice(best))


# --- random tenths ------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3, 4, 5, 6])
def test_random_tenths_reproduces_reference_draw_for_draw(count):
    state = random.getstate()
    try:
        for seed in range(300):
            assert random_tenths(count, random.Random(seed)) == reference_allocate_weights(count, seed)
    finally:
        random.setstate(state)


@pytest.mark.parametrize("count", range(1, 11))
def test_random_tenths_are_tenths_of_at_least_one_tenth_summing_to_one(count):
    for seed in range(100):
        weights = random_tenths(count, random.Random(seed))
        assert len(weights) == count
        assert abs(math.fsum(weights) - 1.0) <= 1e-9
        assert all(weight >= 0.1 for weight in weights)
        assert all(abs(weight * 10 - round(weight * 10)) < 1e-9 for weight in weights)


def test_random_tenths_vary_with_the_seed():
    assert len({tuple(random_tenths(4, random.Random(seed))) for seed in range(50)}) > 10


@pytest.mark.parametrize("count", [0, 11, -1])
def test_random_tenths_rejects_counts_outside_one_to_ten(count):
    with pytest.raises(ScenarioError):
        random_tenths(count, random.Random(0))


# --- max-variance selection ---------------------------------------------------------------------

CHOICES = [("EPP", 8), ("SD", 8), ("GREEN_EFA", 0), ("GUE_NGL", 0), ("ECR", 5)]


def test_select_max_variance_pairs_the_most_opposed_groups():
    # Only the (8, 0) pairs reach the largest variance, 32.
    allowed = {("EPP", "GREEN_EFA"), ("EPP", "GUE_NGL"), ("SD", "GREEN_EFA"), ("SD", "GUE_NGL")}
    picked = {tuple(select_max_variance(CHOICES, 2, random.Random(seed))) for seed in range(40)}
    assert picked <= allowed
    assert len(picked) > 1  # the tie is broken by the RNG, not always the first pair


def test_select_max_variance_four_of_five_leaves_out_the_middle_group():
    # Leaving out ECR gives 8,8,0,0: variance 64/3 = 21.3; leaving out any other group gives at
    # most 46.75/3 = 15.6 (drop an 8) or 42.75/3 = 14.25 (drop a 0). One best subset, input order.
    for seed in range(10):
        assert select_max_variance(CHOICES, 4, random.Random(seed)) == ["EPP", "SD", "GREEN_EFA", "GUE_NGL"]


def test_select_max_variance_all_groups_when_k_is_n():
    assert select_max_variance(CHOICES, 5, random.Random(0)) == [code for code, _ in CHOICES]


def test_select_max_variance_breaks_ties_like_reference():
    state = random.getstate()
    try:
        generator = random.Random(2024)
        for _case in range(300):
            n = generator.randint(2, 8)
            codes = generator.sample(["EPP", "SD", "ECR", "RENEW", "GREEN_EFA", "GUE_NGL", "ID", "NI"], n)
            # few distinct values, so ties are common
            choices = [(code, generator.choice([0, 1, 5, 8, 9])) for code in codes]
            k = generator.randint(2, n)
            seed = generator.randrange(10**6)
            stances = [{"party_name": code, "choice": choice} for code, choice in choices]
            expected = [s["party_name"] for s in reference_max_variance_parties(stances, k, seed)]
            assert select_max_variance(choices, k, random.Random(seed)) == expected, (choices, k, seed)
    finally:
        random.setstate(state)


@pytest.mark.parametrize("k", [0, 1])
def test_select_max_variance_rejects_fewer_than_two(k):
    with pytest.raises(ScenarioError):
        select_max_variance(CHOICES, k, random.Random(0))


def test_select_max_variance_rejects_more_than_available():
    with pytest.raises(ScenarioError):
        select_max_variance(CHOICES, 6, random.Random(0))


# --- other power structures ---------------------------------------------------------------------


def test_real_shares_renormalise_over_participating_groups():
    counts = {"EPP": 265, "SD": 184, "ECR": 56, "GREEN_EFA": 57}
    shares = real_shares(["EPP", "SD"], counts)
    assert shares == {"EPP": 265 / 449, "SD": 184 / 449}
    assert math.isclose(math.fsum(shares.values()), 1.0)


def test_real_shares_missing_count_raises():
    with pytest.raises(ScenarioError, match="ID"):
        real_shares(["EPP", "ID"], {"EPP": 187})


def test_real_shares_zero_count_raises():
    with pytest.raises(ScenarioError):
        real_shares(["EPP", "ID"], {"EPP": 187, "ID": 0})


def test_equal_shares_split_evenly():
    assert equal_shares(["A", "B", "C", "D"]) == {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}


def test_custom_shares_rejects_total_of_ninety_nine_percent():
    with pytest.raises(ScenarioError, match="100%"):
        custom_shares({"A": 0.5, "B": 0.49})


def test_custom_shares_accepts_rounded_thirds():
    shares = {"A": 0.3333333, "B": 0.3333333, "C": 0.3333334}
    assert custom_shares(shares) == shares


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_custom_shares_rejects_non_positive_share(bad):
    with pytest.raises(ScenarioError, match="positive"):
        custom_shares({"A": 1.0 - bad, "B": bad})


def test_seat_shares_random_tenths_aligns_weights_with_codes():
    codes = ["EPP", "SD", "ECR"]
    assert seat_shares("random_tenths", codes, rng=random.Random(7)) == dict(
        zip(codes, random_tenths(3, random.Random(7)))
    )


def test_seat_shares_random_tenths_needs_rng():
    with pytest.raises(ScenarioError, match="seed"):
        seat_shares("random_tenths", ["EPP", "SD"])


def test_seat_shares_dispatches_real_equal_and_custom():
    assert seat_shares("real", ["EPP", "SD"], seat_counts={"EPP": 265, "SD": 184}) == {
        "EPP": 265 / 449,
        "SD": 184 / 449,
    }
    assert seat_shares("equal", ["EPP", "SD"]) == {"EPP": 0.5, "SD": 0.5}
    assert seat_shares("custom", ["EPP", "SD"], custom={"SD": 0.4, "EPP": 0.6}) == {"EPP": 0.6, "SD": 0.4}


def test_seat_shares_real_without_counts_raises():
    with pytest.raises(ScenarioError):
        seat_shares("real", ["EPP", "SD"])


def test_seat_shares_custom_must_name_every_group():
    with pytest.raises(ScenarioError, match="every participating group"):
        seat_shares("custom", ["EPP", "SD"], custom={"EPP": 1.0})
    with pytest.raises(ScenarioError, match="every participating group"):
        seat_shares("custom", ["EPP", "SD"], custom={"EPP": 0.5, "SD": 0.3, "ECR": 0.2})
    with pytest.raises(ScenarioError):
        seat_shares("custom", ["EPP", "SD"])


def test_seat_shares_unknown_structure_raises():
    with pytest.raises(ScenarioError, match="unknown seat structure"):
        seat_shares("lottery", ["EPP", "SD"], rng=random.Random(0))


# --- task sets in the benchmark's layout --------------------------------------------------------


def sample_tasks(size: int):
    """Every task of the fixtures' topic files, each joined to its full record in topic_datas
    (on the texts, as ids may be renumbered between a release's topic and task files)."""
    topic_files = [path for folder in TASK_SETS for path in sorted((folder / "topic_datas").glob("*.json"))]
    assert len(topic_files) >= 5, topic_files
    for topic_file in topic_files:
        records = json.loads(topic_file.read_text(encoding="utf-8"))
        by_text = {(r["title"], r["background"], r["resolution"]): r for r in records}
        task_file = topic_file.parents[1] / "task_datas" / str(size) / topic_file.name
        if not task_file.exists():  # no record of the topic has that many groups
            continue
        tasks = json.loads(task_file.read_text(encoding="utf-8"))
        assert tasks
        for task in tasks:
            yield task, by_text[(task["title"], task["background"], task["resolution"])]


@pytest.mark.parametrize("size", [2, 4, 6])
def test_released_seat_weights_are_valid_tenths(size):
    for task, _ in sample_tasks(size):
        weights = task["seat_weights"]
        assert len(weights) == len(task["stances"]) == size
        assert abs(math.fsum(weights) - 1.0) <= 1e-9
        assert all(w >= 0.1 and abs(w * 10 - round(w * 10)) < 1e-9 for w in weights)


@pytest.mark.parametrize("size", [2, 4, 6])
def test_released_groups_are_a_max_variance_subset_of_the_record(size):
    checked = 0
    for task, record in sample_tasks(size):
        full = [(s["party_name"], s["choice"]) for s in record["stances"]]
        picked = [(s["party_name"], s["choice"]) for s in task["stances"]]
        variances = {combo: statistics.variance([c for _, c in combo]) for combo in itertools.combinations(full, size)}
        best = max(variances.values())
        assert statistics.variance([c for _, c in picked]) == best, task["title"]
        # a combination of the record's groups, in the record's order, like ours returns
        assert tuple(picked) in variances
        ours = select_max_variance(full, size, random.Random(checked))
        assert variances[tuple(g for g in full if g[0] in ours)] == best
        assert task["veto_party_name"] in {code for code, _ in picked}
        checked += 1
    assert checked >= 8  # every task of the fixtures, a few per topic
