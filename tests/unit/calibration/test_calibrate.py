"""calibration/services.py and the judge_calibrate command on the sample record set."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from deliberation.calibration.models import Calibration
from deliberation.calibration.services import CalibrationError, calibration_items, calibration_run
from deliberation.engine.judges import judge_messages
from deliberation.engine.seeding import seed_for
from deliberation.engine.strategies.base import judge_seed
from deliberation.records.selectors import record_set_get
from deliberation.records.services import records_import
from deliberation.runs.models import CachedCompletion

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "sample_records"
SAMPLE_PAIRS = 86  # stances on the 13 sample records, all with an adopted resolution


@pytest.fixture
def sample_set():
    records_import(paths=[SAMPLE], name="Sample EP issues")
    return "Sample EP issues"


def test_real_votes_judge_is_the_identity_check(sample_set, tmp_path):
    out = tmp_path / "real.json"
    call_command(
        "judge_calibrate",
        "--record-set",
        sample_set,
        "--judge",
        "real-votes",
        "--out",
        str(out),
        "--resamples",
        "100",
        verbosity=0,
    )
    results = json.loads(out.read_text())
    for key in ("pairs", "pearson", "spearman", "mae", "bias", "bias_by_group", "confusion", "fallbacks"):
        assert key in results
    assert results["pairs"] == SAMPLE_PAIRS and results["fallbacks"] == 0
    assert results["pearson"] == pytest.approx(1.0) and results["spearman"] == pytest.approx(1.0)
    assert results["mae"] == 0 and results["bias"] == 0
    assert all(row["bias"] == 0 for row in results["bias_by_group"].values())
    assert sum(results["confusion"][i][i] for i in range(10)) == SAMPLE_PAIRS
    stored = Calibration.objects.get(pk=results["calibration"])
    assert stored.judge == "real-votes" and stored.judge_model == ""
    assert stored.record_set_version == record_set_get(name=sample_set).current_version
    assert len(stored.pairs) == SAMPLE_PAIRS


def test_scripted_judge_does_not_track_the_real_votes(sample_set):
    calibration = calibration_run(record_set=sample_set, judge="scripted", resamples=100)
    assert abs(calibration.results["pearson"]) < 0.25
    low, high = calibration.results["pearson_ci"]
    assert low < 0 < high  # the interval covers no correlation at all
    assert calibration.results["mae"] > 2


def test_llm_judge_uses_the_runs_prompt_and_seed_and_the_completion_cache(sample_set, monkeypatch):
    first = calibration_run(record_set=sample_set, judge="llm", judge_model="scripted:default", limit=10, resamples=20)
    assert first.results["pairs"] == 10 and first.judge_model == "scripted:default"
    item = calibration_items(record_set=record_set_get(name=sample_set), limit=10)[0][0]
    seed = seed_for(judge_seed(seed_for(0, item.record_hash)), "judge", item.group, 0)
    expected = judge_messages(scenario=item.scenario, group=item.group, text=item.scenario.record.resolution, attempt=0)
    row = CachedCompletion.objects.get(seed=seed, model="scripted:default")
    assert row.messages == [dict(m) for m in expected]
    stored = CachedCompletion.objects.count()

    from worker.models import scripted

    def no_model_call(*args, **kwargs):
        raise AssertionError("a repeated calibration must be answered from the cache")

    monkeypatch.setattr(scripted.ScriptedModelClient, "complete", no_model_call)
    second = calibration_run(record_set=sample_set, judge="llm", judge_model="scripted:default", limit=10, resamples=20)
    assert CachedCompletion.objects.count() == stored
    assert [(p["record"], p["group"], p["predicted"]) for p in second.pairs] == [
        (p["record"], p["group"], p["predicted"]) for p in first.pairs
    ]
    assert all(p["extra"]["usage"]["cached"] for p in second.pairs)
    assert second.results == first.results


def test_fallbacks_are_counted_apart(sample_set):
    calibration = calibration_run(
        record_set=sample_set, judge="llm", judge_model="scripted:bad-judge", limit=4, resamples=10
    )
    assert calibration.results["fallbacks"] == 4 and calibration.results["scored"] == 0
    assert calibration.results["pearson"] is None and calibration.results["isotonic"] is None


def test_limit_takes_whole_records_in_a_seeded_order(sample_set):
    the_set = record_set_get(name=sample_set)
    items, _ = calibration_items(record_set=the_set, limit=12, seed=3)
    again, _ = calibration_items(record_set=the_set, limit=12, seed=3)
    other, _ = calibration_items(record_set=the_set, limit=12, seed=4)
    keys = [(i.scenario.record.key, i.group) for i in items]
    assert len(items) == 12 and keys == [(i.scenario.record.key, i.group) for i in again]
    assert keys != [(i.scenario.record.key, i.group) for i in other]
    records = [key for key, _ in keys]
    assert records == sorted(records, key=records.index)  # a record's groups come together


def test_topic_filter_and_errors(sample_set):
    calibration = calibration_run(record_set=sample_set, judge="real-votes", topic="fisheries", resamples=10)
    assert {pair["topic"] for pair in calibration.pairs} == {"fisheries"}
    with pytest.raises(CalibrationError, match="unknown judge"):
        calibration_run(record_set=sample_set, judge="oracle")
    with pytest.raises(CommandError, match="no record set"):
        call_command("judge_calibrate", "--record-set", "nope", "--judge", "real-votes", verbosity=0)
    with pytest.raises(CommandError, match="nothing|no adopted"):
        call_command(
            "judge_calibrate", "--record-set", sample_set, "--judge", "real-votes", "--topic", "none", verbosity=0
        )


def test_expected_judge_stores_the_distribution_and_reuses_the_cache(sample_set, monkeypatch):
    first = calibration_run(
        record_set=sample_set, judge="llm-expected", judge_model="scripted:default", limit=8, resamples=10
    )
    assert first.results["scored"] == 8
    for pair in first.pairs:
        distribution = pair["extra"]["detail"]["distribution"]
        assert pair["predicted"] == pytest.approx(distribution["expected"], abs=1e-3)
        assert sum(distribution["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert any(pair["predicted"] != int(pair["predicted"]) for pair in first.pairs)  # expectations, not digits

    from worker.models import scripted

    def no_model_call(*args, **kwargs):
        raise AssertionError("a repeated calibration must be answered from the cache")

    monkeypatch.setattr(scripted.ScriptedModelClient, "next_token", no_model_call)
    second = calibration_run(
        record_set=sample_set, judge="llm-expected", judge_model="scripted:default", limit=8, resamples=10
    )
    assert [p["predicted"] for p in second.pairs] == [p["predicted"] for p in first.pairs]


def test_expected_judge_is_refused_for_a_backend_without_logprobs(sample_set):
    with pytest.raises(CalibrationError, match="next-token log-probabilities"):
        calibration_run(record_set=sample_set, judge="llm-expected", judge_model="scripted:no-logprobs", limit=2)


def test_a_calibrated_judge_is_measured_only_on_records_its_map_never_saw(sample_set):
    from deliberation.registry.clients import judge_choices, judge_for

    base = calibration_run(record_set=sample_set, judge="llm", judge_model="scripted:default", resamples=10)
    iso = base.results["isotonic"]
    train, test = set(iso["train_records"]), set(iso["test_records"])
    assert train and test and not train & test  # the split: no record in both
    name = f"calibrated:{base.pk}"
    assert name in judge_choices()

    calibrated = calibration_run(record_set=sample_set, judge=name, resamples=10)
    assert {pair["record"] for pair in calibrated.pairs} == test
    assert calibrated.results["excluded_train_records"] == len(train)
    # every score is the base judge's raw score through the stored map
    from deliberation.engine.calibration import IsotonicMap

    mapping = IsotonicMap.from_dict(iso["map"])
    raw = {(p["record"], p["group"]): p["predicted"] for p in base.pairs}
    for pair in calibrated.pairs:
        assert pair["extra"]["detail"]["raw_score"] == raw[(pair["record"], pair["group"])]
        assert pair["predicted"] == pytest.approx(mapping(pair["extra"]["detail"]["raw_score"]), abs=1e-3)
    # the same test records scored raw and calibrated, as the base calibration reported them
    assert calibrated.results["pairs"] == iso["test_raw"]["pairs"]
    assert calibrated.results["mae"] == pytest.approx(iso["test_calibrated"]["mae"], abs=1e-3)

    with pytest.raises(ValueError, match="no calibration"):
        judge_for("calibrated:999999", model="")


def test_ensemble_judge_calibrates_with_the_spread_of_its_members(sample_set):
    calibration = calibration_run(
        record_set=sample_set, judge="ensemble-mean", judge_model="scripted:default", limit=6, resamples=10
    )
    for pair in calibration.pairs:
        detail = pair["extra"]["detail"]
        assert set(detail["members"]) == {"llm", "llm-expected"}
        assert pair["predicted"] == pytest.approx(sum(detail["members"].values()) / 2, abs=1e-3)
        assert detail["spread"] >= 0


def test_similarity_judge_runs_offline_on_the_bundled_embedder(sample_set):
    calibration = calibration_run(record_set=sample_set, judge="similarity", limit=6, resamples=10)
    assert calibration.judge_model == "" and calibration.results["scored"] == 6
    for pair in calibration.pairs:
        assert pair["predicted"] == pytest.approx(min(9.0, 9 * pair["extra"]["detail"]["coverage"]), abs=1e-3)


def test_bias_probes_judge_the_same_pairs_under_other_layouts(sample_set, client):
    from django.urls import reverse

    from tests.factories import make_user

    calibration = calibration_run(
        record_set=sample_set, judge="llm", judge_model="scripted:default", limit=10, resamples=20, probes=True
    )
    probes = calibration.results["probes"]
    assert set(probes) == {"stance-first", "anonymous"}
    for probe in probes.values():
        assert probe["pairs"] == 10
        # the scripted model's digit hashes the prompt: another layout gives unrelated digits
        assert probe["mean_abs_shift"] > 1 and 0 < probe["flip_rate"] <= 1
    prompts = [row.messages[1]["content"] for row in CachedCompletion.objects.all()]
    assert len(prompts) >= 30  # three layouts x 10 pairs, each its own cached call
    assert sum("The position of the group:" in prompt for prompt in prompts) == 10
    assert sum(prompt.index("The position of") < prompt.index("Statement to score") for prompt in prompts) == 10
    with pytest.raises(CalibrationError, match="probes"):
        calibration_run(record_set=sample_set, judge="real-votes", probes=True)
    client.force_login(make_user("ann"))
    page = client.get(reverse("calibration-detail", args=[calibration.pk])).content.decode()
    assert 'data-testid="probes"' in page and "stance-first" in page


def test_reason_check_is_reported_beside_the_calibration(sample_set, client):
    from django.urls import reverse

    from tests.factories import make_user

    calibration = calibration_run(
        record_set=sample_set, judge="llm", judge_model="scripted:default", limit=12, resamples=10, reason_check=True
    )
    check = calibration.results["reason_check"]
    assert check["items"] == 12 and check["checked"] == 12 and check["no_reason"] == 0
    assert check["dcg"] == pytest.approx(check["d"] - check["c"])
    # the scripted reasoned score is the same hash digit as a paper-judge digit would be: not the same
    # prompt, so D is its own number; the examples are the unsupported ones
    assert all(abs(e["score"] - e["reason_score"]) >= 3 for e in check["examples"])
    client.force_login(make_user("ann"))
    page = client.get(reverse("calibration-detail", args=[calibration.pk])).content.decode()
    assert 'data-testid="reason-check"' in page
    with pytest.raises(CalibrationError, match="reason"):
        calibration_run(record_set=sample_set, judge="real-votes", reason_check=True)
