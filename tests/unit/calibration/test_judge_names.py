"""One rule for a judge's name (registry.clients.judge_name_check) wherever one is named: the
commands' --judge, the experiment service and form, the scenario validator, the API's estimate;
and one rule for whether a judge calls a model (judge_uses_model), which budgets and estimates use."""

import pytest
from django.core.management import CommandError, call_command

from deliberation.calibration import judges as calibrated
from deliberation.calibration.models import Calibration
from deliberation.calibration.services import calibration_run
from deliberation.dashboards.forms import JudgesField
from deliberation.registry.clients import judge_choices, judge_model_for, judge_name_check, judge_uses_model
from deliberation.runs.budgets import run_steps_estimate
from deliberation.runs.calibration_cells import calibration_cells
from deliberation.runs.experiments import ExperimentError, experiment_create
from deliberation.runs.models import Experiment
from deliberation.scenarios.services import ScenarioInvalid
from tests.factories import make_record, make_user, sample_record_set, scenario_config

pytestmark = pytest.mark.django_db

SET = "Sample EP issues"


@pytest.fixture
def sample_set():
    return sample_record_set(SET)


@pytest.fixture
def llm_calibration(sample_set) -> Calibration:
    """A calibration of the llm judge on the scripted model, with its isotonic map, that the forms
    do not offer (they offer none here): only the one rule lets it be named."""
    calibration = calibration_run(record_set=SET, judge="llm", judge_model="scripted:default", resamples=10)
    assert calibration.results.get("isotonic")
    return calibration


@pytest.fixture
def unoffered(monkeypatch):
    monkeypatch.setattr(calibrated, "CALIBRATED_CHOICES", 0)  # the forms offer no calibrated judge


def mapless(sample_set) -> Calibration:
    calibration = calibration_run(record_set=SET, judge="scripted", resamples=10)
    calibration.results = {key: value for key, value in calibration.results.items() if key != "isotonic"}
    calibration.save(update_fields=["results"])
    return calibration


BAD_NAMES = [
    ("gpt-judge", r"unknown judge 'gpt-judge'; choose from llm, .* or calibrated:<calibration id>"),
    ("calibrated:999999", r"judge 'calibrated:999999': there is no calibration 999999"),
    ("calibrated:seven", r"judge 'calibrated:seven': write calibrated:<calibration id>, the id a number"),
]


def test_the_rule_names_what_is_wrong(sample_set):
    for name, message in BAD_NAMES:
        with pytest.raises(ValueError, match=message):
            judge_name_check(name)
    without = mapless(sample_set)
    with pytest.raises(ValueError, match=rf"calibration {without.pk} has no isotonic map"):
        judge_name_check(f"calibrated:{without.pk}")
    for name in ("llm", "llm-expected", "ensemble-median", "similarity", "real-votes", "scripted"):
        judge_name_check(name)


@pytest.mark.parametrize(
    "command, more",
    [
        ("evaluate", ["--record-set", SET, "--strategy", "one-shot"]),
        ("judge_calibrate", ["--record-set", SET]),
        ("experiment", None),
    ],
)
def test_each_command_refuses_a_bad_judge_naming_the_problem(sample_set, command, more):
    without = mapless(sample_set).pk
    names = [
        *BAD_NAMES,
        (f"calibrated:{without}", rf"judge 'calibrated:{without}': calibration {without} has no isotonic map"),
    ]
    for name, message in names:
        if command == "experiment":
            args = ["experiment", "create", "--name", "x", "--record-set", SET, "--strategies", "one-shot"]
            args += ["--judges", "scripted", name]
        else:
            args = [command, *more, "--judge", name]
        with pytest.raises(CommandError, match=r"--judges?: " + message):
            call_command(*args, verbosity=0)
    assert not Experiment.objects.exists()


@pytest.mark.django_db(transaction=True)  # evaluate plays its runs through the (eager) run tasks
def test_each_command_takes_a_calibrated_judge_the_forms_do_not_offer(llm_calibration, unoffered, eager_worker, capsys):
    name = f"calibrated:{llm_calibration.pk}"
    assert name not in judge_choices()

    call_command("judge_calibrate", "--record-set", SET, "--judge", name, "--resamples", "10", verbosity=0)
    measured = Calibration.objects.get(judge=name)
    assert measured.judge_model == "scripted:default"  # the model it calls: its calibration's
    call_command(
        "experiment", "create", "--name", "cli", "--record-set", SET, "--parties", "2", "--sample", "1",
        "--goals", "simple_majority", "--strategies", "one-shot", "--models", "scripted:default",
        "--judges", name, "scripted",
    )  # fmt: skip
    assert Experiment.objects.get(name="cli").spec["judges"] == [name, "scripted"]
    call_command(
        "evaluate", "--record-set", SET, "--parties", "2", "--goals", "simple_majority", "--strategy", "one-shot",
        "--model", "scripted:default", "--judge", name, "--limit", "1", "-v0",
    )  # fmt: skip
    assert "Simple majority" in capsys.readouterr().out
    assert Experiment.objects.exclude(name="cli").get().runs.get().judge == name


def test_the_service_form_scenario_and_api_share_the_rule(llm_calibration, unoffered, client):
    owner = make_user()
    name = f"calibrated:{llm_calibration.pk}"
    grid = {
        "owner": owner, "record_set": SET, "parties": [2], "limit": 1, "goals": ["simple_majority"],
        "strategies": ["one-shot"], "models": ["scripted:default"], "seeds": [0],
    }  # fmt: skip
    assert experiment_create(name="old calibration", judges=[name], **grid).spec["judges"] == [name]
    with pytest.raises(ExperimentError, match="judges: judge 'calibrated:999999': there is no calibration"):
        experiment_create(name="gone", judges=["calibrated:999999"], **grid)

    field = JudgesField(choices=[("llm", "llm")])
    assert field.clean([name]) == [name]
    with pytest.raises(Exception, match="unknown judge 'oracle'"):
        field.clean(["oracle"])

    record = make_record()
    assert scenario_config(record, user=owner, judge=name).judge == name
    with pytest.raises(ScenarioInvalid) as refused:
        scenario_config(record, user=owner, judge="calibrated:999999")
    assert refused.value.errors["judge"] == ["Judge 'calibrated:999999': there is no calibration 999999."]

    client.force_login(owner)
    estimate = "/api/v1/strategies/one-shot/estimate"
    assert client.get(estimate, {"groups": 2, "judge": name}).json()["steps"] == 3  # a draft and two verdicts
    refusal = client.get(estimate, {"groups": 2, "judge": "oracle"})
    assert refusal.status_code == 400 and "unknown judge 'oracle'" in refusal.json()["errors"]["judge"][0]


def test_judges_that_call_a_model_are_budgeted_as_calling_one(llm_calibration):
    scripted = calibration_run(record_set=SET, judge="scripted", resamples=10)
    calls = ("llm", "llm-expected", "ensemble-mean", "ensemble-median", f"calibrated:{llm_calibration.pk}")
    for judge in calls:
        assert judge_uses_model(judge), judge
    for judge in ("scripted", "real-votes", "similarity", f"calibrated:{scripted.pk}"):
        assert not judge_uses_model(judge), judge
    assert judge_model_for(f"calibrated:{scripted.pk}", model="m") == ""
    assert judge_model_for(f"calibrated:{llm_calibration.pk}", model="m") == "scripted:default"
    assert judge_uses_model("calibrated:999999")  # a deleted calibration errs on the side of the budget
    # an experiment's calibration grid: a calibrated judge calls its own model, so one cell
    grid = {"judges": ["llm", f"calibrated:{llm_calibration.pk}"], "judge_models": ["a", "b"]}
    assert [cell[1:] for cell in calibration_cells({"calibration": grid})] == [
        ("llm", "a"), ("llm", "b"), (f"calibrated:{llm_calibration.pk}", ""),
    ]  # fmt: skip

    def steps(judge: str) -> int:
        return run_steps_estimate(strategy="one-shot", party_count=4, judge=judge, params={})

    assert {steps(judge) for judge in calls} == {1 + 4}  # the draft and a verdict per group
    assert steps("scripted") == steps(f"calibrated:{scripted.pk}") == 1

    owner = make_user()
    estimate = experiment_create(
        owner=owner, name="budgeted", record_set=SET, parties=[2], limit=1, goals=["simple_majority"],
        strategies=["one-shot"], models=["scripted:default"], seeds=[0],
        judges=[*calls, "scripted", f"calibrated:{scripted.pk}"],
    ).estimate  # fmt: skip
    assert estimate["runs"] == 7 and estimate["steps"] == 5 * 3 + 2 * 1


def test_a_run_whose_judge_calls_a_model_is_budgeted_with_its_verdicts(llm_calibration, monkeypatch):
    from deliberation.registry.models import UserBudget
    from deliberation.runs import services
    from deliberation.runs.budgets import BudgetExceeded, spending_for
    from deliberation.runs.services import run_create

    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)
    owner = make_user()
    # A parliament of 3 groups, 1 round: 11 steps of its own (runs/test_budgets.py), 3 verdicts more.
    UserBudget.objects.create(user=owner, steps_per_day=11 + 2)
    record = make_record()
    for judge in ("llm-expected", "ensemble-mean", f"calibrated:{llm_calibration.pk}"):
        with pytest.raises(BudgetExceeded, match="this needs up to 14 model steps and 13 of your 13"):
            run_create(owner=owner, config=scenario_config(record, user=owner, judge=judge))
    run_create(owner=owner, config=scenario_config(record, user=owner, judge="scripted"))
    assert spending_for(user=owner).steps == 11


def test_a_run_whose_calibration_is_gone_fails_naming_the_judge_not_a_model(llm_calibration, monkeypatch):
    from deliberation.runs import services
    from deliberation.runs.advance import run_advance
    from deliberation.runs.models import Run
    from deliberation.runs.services import run_create

    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)
    number = llm_calibration.pk
    name = f"calibrated:{number}"
    owner = make_user()
    run = run_create(owner=owner, config=scenario_config(make_record(), user=owner, judge=name))
    llm_calibration.delete()
    run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error == f"judge {name}: ValueError: judge '{name}': there is no calibration {number}"
