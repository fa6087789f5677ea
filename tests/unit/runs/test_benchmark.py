import json

import pytest
from django.core.management import CommandError, call_command

from deliberation.runs.benchmark import EVALUATE_OWNER, BenchmarkError, benchmark_evaluate
from deliberation.runs.models import CachedCompletion, Experiment, Run
from tests.factories import migrated_rows_load, sample_record_set

# The runs are an experiment's, played by the run tasks: committed, as a worker sees them.
pytestmark = pytest.mark.django_db(transaction=True)

ALL_GOALS = ["simple_majority", "two_thirds_majority", "veto_power", "rawlsian", "utilitarian"]


@pytest.fixture(autouse=True)
def eager(eager_worker):
    """The evaluation plays its experiment as `experiment run --wait` does (tests/conftest.py)."""


def evaluate(record_set: str, *options: str) -> None:
    """`manage.py evaluate --record-set RECORD_SET *OPTIONS`, quietly."""
    call_command("evaluate", "--record-set", record_set, *options, "-v0")


def param_options(params: list[str]) -> list[str]:
    """["rounds=2", ...] as evaluate's repeated --param options."""
    return [option for param in params for option in ("--param", param)]


@pytest.fixture
def sample_set():
    migrated_rows_load()
    return sample_record_set("Sample EP issues")


def test_oracle_table_scores_every_task_with_real_votes(sample_set):
    result = benchmark_evaluate(
        record_set=sample_set,
        party_counts=[2, 4, 6],
        goals=ALL_GOALS,
        strategy="real-resolution",
        model="scripted:default",
        judge="real-votes",
    )
    assert {k: row["tasks"] for k, row in result.table.items()} == {"2": 13, "4": 13, "6": 11}
    assert result.failures == []
    assert result.runs == 37 * len(ALL_GOALS)
    for row in result.table.values():
        assert 0 <= row["simple_majority"] <= 1 and 0 <= row["rawlsian"] <= row["utilitarian"] <= 9


def test_real_votes_judge_refuses_any_strategy_but_the_real_resolution(sample_set):
    with pytest.raises(BenchmarkError, match="real-resolution"):
        benchmark_evaluate(
            record_set=sample_set,
            party_counts=[2],
            goals=["simple_majority"],
            strategy="greedy",
            model="scripted:default",
            judge="real-votes",
        )


def test_a_second_one_shot_evaluation_is_served_from_the_completion_cache(sample_set, forbid_model_calls):
    options = dict(
        record_set=sample_set,
        party_counts=[2],
        goals=["simple_majority", "rawlsian"],
        strategy="one-shot",
        model="scripted:default",
        judge="llm",
        limit=3,
    )
    first = benchmark_evaluate(**options)
    stored = CachedCompletion.objects.count()
    assert stored > 0
    forbid_model_calls()
    second = benchmark_evaluate(**options)
    assert second.failures == [] and second.table == first.table
    assert CachedCompletion.objects.count() == stored


def test_evaluate_command_writes_the_papers_table_as_json(sample_set, tmp_path, capsys):
    out = tmp_path / "table.json"
    evaluate(
        sample_set,
        "--parties",
        "2",
        "4",
        "--goals",
        "all",
        "--strategy",
        "greedy",
        "--judge",
        "scripted",
        "--out",
        str(out),
    )
    table = json.loads(out.read_text())
    assert set(table) == {"2", "4"}
    assert set(table["2"]) == {*ALL_GOALS, "tasks"}
    printed = capsys.readouterr().out
    assert "Two-thirds majority" in printed and "tasks" in printed
    experiment = Experiment.objects.get(owner__username=EVALUATE_OWNER)
    assert f"runs stored as experiment {experiment.name!r}" in printed
    assert experiment.runs.filter(status=Run.Status.FINISHED).count() == (13 + 13) * len(ALL_GOALS)


def test_evaluate_command_names_an_unknown_record_set(sample_set):
    with pytest.raises(CommandError, match="no record set named"):
        evaluate("Nope", "--strategy", "greedy", "--judge", "scripted")


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("--model", "scripted:nope", "--model: unknown scripted model 'nope'"),
        ("--judge-model", "nosuchprovider/x", "--judge-model: no litellm provider"),
    ],
)
def test_evaluate_command_refuses_a_model_that_could_not_run_before_playing_anything(sample_set, option, value, error):
    with pytest.raises(CommandError, match=error):
        evaluate(
            sample_set,
            "--strategy",
            "one-shot",
            "--judge",
            "llm",
            "--model",
            "scripted:default",
            option,
            value,
        )
    assert not CachedCompletion.objects.exists()


def test_evaluate_command_refuses_a_disabled_registry_model(sample_set):
    from deliberation.registry.models import ModelEntry

    ModelEntry.objects.filter(name="scripted:slow").update(enabled=False)
    with pytest.raises(CommandError, match="--model: 'scripted:slow' is disabled"):
        evaluate(
            sample_set,
            "--strategy",
            "greedy",
            "--judge",
            "scripted",
            "--model",
            "scripted:slow",
        )


def test_evaluate_command_plays_a_registry_models_backend_string(sample_set):
    from deliberation.registry.models import ModelEntry

    ModelEntry.objects.create(name="drafter", model="scripted:default")
    result = benchmark_evaluate(
        record_set=sample_set,
        party_counts=[2],
        goals=["simple_majority"],
        strategy="one-shot",
        model="drafter",
        judge="llm",
        limit=1,
    )
    assert result.failures == [] and result.usage["calls"] > 0
    assert set(CachedCompletion.objects.values_list("model", flat=True)) == {"scripted:default"}


@pytest.mark.parametrize(
    "strategy, params",
    [
        ("mediator", ["candidates=2", "rounds=1"]),
        ("forecast", ["rounds=2", "target=8"]),
        ("advisor", ["advisor_model=scripted:slow"]),
        ("advisor-random", []),
        ("advisor-none", ["draft_tokens=200"]),
    ],
)
def test_evaluate_command_plays_each_new_strategy_with_its_params(sample_set, capsys, strategy, params):
    evaluate(
        sample_set,
        "--parties",
        "2",
        "--goals",
        "simple_majority",
        "--strategy",
        strategy,
        "--model",
        "scripted:default",
        "--judge",
        "llm",
        "--limit",
        "1",
        *param_options(params),
    )
    assert "Simple majority" in capsys.readouterr().out
    if "advisor_model=scripted:slow" in params:  # the advisor's calls went to its own model
        assert CachedCompletion.objects.filter(model="scripted:slow").count() == 1  # the one run's brief
    if strategy == "mediator":  # one run: 2 candidates + 2 rankings, then the judge's 2 verdicts
        assert CachedCompletion.objects.count() == 2 + 2 + 2


@pytest.mark.parametrize(
    "param, error",
    [
        ("candidates=20", "--param candidates: between 2 and 8, not 20"),
        ("speed=3", "--param speed: mediator has no such parameter"),
        ("candidates", "give NAME=VALUE"),
    ],
)
def test_evaluate_command_refuses_a_bad_param_before_playing_anything(sample_set, param, error):
    with pytest.raises(CommandError, match=error):
        evaluate(
            sample_set,
            "--strategy",
            "mediator",
            "--judge",
            "llm",
            "--model",
            "scripted:default",
            "--param",
            param,
        )
    assert not CachedCompletion.objects.exists()


def test_evaluate_command_refuses_an_advisor_model_that_could_not_run(sample_set):
    with pytest.raises(CommandError, match="--param advisor_model: unknown scripted model 'nope'"):
        evaluate(
            sample_set,
            "--strategy",
            "advisor",
            "--judge",
            "scripted",
            "--param",
            "advisor_model=scripted:nope",
        )


@pytest.mark.parametrize(
    "strategy, params",
    [
        ("mediator", {"candidates": 2}),
        ("forecast", {"rounds": 2}),
        ("advisor", {"advisor_model": "scripted:slow"}),
    ],
)
def test_a_second_evaluation_of_a_consensus_strategy_makes_no_model_call(
    sample_set, forbid_model_calls, strategy, params
):
    options = dict(
        record_set=sample_set,
        party_counts=[2],
        goals=["simple_majority", "rawlsian"],
        strategy=strategy,
        model="scripted:default",
        judge="llm",
        limit=2,
        params=params,
    )
    first = benchmark_evaluate(**options)
    assert first.failures == [] and first.usage["calls"] > 0
    stored = CachedCompletion.objects.count()
    forbid_model_calls()
    second = benchmark_evaluate(**options)
    assert second.failures == [] and second.table == first.table and second.usage["calls"] == first.usage["calls"]
    assert CachedCompletion.objects.count() == stored


def test_an_evaluation_is_an_experiment_whose_runs_played_through_the_run_tasks(sample_set):
    result = benchmark_evaluate(
        record_set=sample_set,
        party_counts=[2, 4],
        goals=["simple_majority", "rawlsian"],
        strategy="greedy",
        model="scripted:default",
        judge="scripted",
        limit=2,
        seed=3,
    )
    experiment = Experiment.objects.get(owner__username=EVALUATE_OWNER)
    assert experiment.status == Experiment.Status.FINISHED
    assert experiment.spec["source"]["limit"] == 2 and experiment.spec["seeds"] == [3]
    runs = list(experiment.runs.all())
    assert len(runs) == result.runs == 2 * 2 * 2
    assert {run.status for run in runs} == {Run.Status.FINISHED}
    assert {run.cell.split("|")[1] for run in runs} == {"simple_majority", "rawlsian"}
    two = [run for run in runs if run.task.party_count == 2 and run.goal == "rawlsian"]
    assert result.table["2"]["rawlsian"] == pytest.approx(sum(run.outcome["goals"]["rawlsian"] for run in two) / 2)


def test_the_judge_model_reaches_every_run_of_the_evaluation(sample_set):
    benchmark_evaluate(
        record_set=sample_set,
        party_counts=[2],
        goals=["simple_majority"],
        strategy="one-shot",
        model="scripted:default",
        judge="llm",
        judge_model="scripted:slow",
        limit=1,
    )
    assert set(Run.objects.values_list("judge_model", flat=True)) == {"scripted:slow"}


@pytest.mark.parametrize(("strategy", "params"), [("amulet", ["max_tokens=8"]), ("negotiation", ["max_turns=2"])])
def test_evaluate_plays_a_strategy_with_its_params_and_a_rerun_calls_no_model(
    sample_set, capsys, forbid_model_calls, strategy, params
):
    options = ["--parties", "2", "--goals", "simple_majority", "--limit", "1", "--strategy", strategy]
    options += ["--model", "scripted:default", "--judge", "llm", *param_options(params)]
    evaluate(sample_set, *options)
    first = capsys.readouterr().out
    assert "1 runs" in first and "0 model steps" not in first
    forbid_model_calls()
    evaluate(sample_set, *options)
    assert "failed" not in capsys.readouterr().err


def test_evaluate_param_is_validated_against_the_strategy(sample_set):
    base = ["--strategy", "negotiation", "--judge", "scripted"]
    with pytest.raises(CommandError, match="--param max_turns: between 2 and 12, not 99"):
        evaluate(sample_set, *base, "--param", "max_turns=99")
    with pytest.raises(CommandError, match="negotiation has no such parameter"):
        evaluate(sample_set, *base, "--param", "rounds=2")
    with pytest.raises(CommandError, match="NAME=VALUE"):
        evaluate(sample_set, *base, "--param", "max_turns")


def test_evaluate_refuses_amulet_on_a_model_without_token_ids(sample_set):
    with pytest.raises(CommandError, match="--model: amulet decodes token by token"):
        evaluate(
            sample_set,
            "--strategy",
            "amulet",
            "--judge",
            "scripted",
            "--model",
            "scripted:no-logprobs",
        )
