"""deliberation/runs/budgets.py: what each user may spend, enforced where runs start."""

import json
from types import SimpleNamespace

import pytest
from django.urls import reverse

from deliberation.api.services import api_token_create
from deliberation.registry.models import UserBudget
from deliberation.runs import experiments, services
from deliberation.runs.advance import run_advance
from deliberation.runs.budgets import BudgetExceeded, budget_for, spending_for
from deliberation.runs.experiments import experiment_advance, experiment_start
from deliberation.runs.models import Experiment, Run
from deliberation.runs.services import run_create
from deliberation.scenarios.models import SavedScenario
from tests.factories import builder_form, experiment_grid, make_record, make_user, sample_record_set, scenario_config

pytestmark = pytest.mark.django_db

SET = "Sample EP issues"
# A parliament run of 3 groups, 1 round, the scripted judge: 3*2 speeches + 1 draft + 2 amendments
# and 2 decisions (the rapporteur amends nothing) = 11 steps (engine/costs.py).
PARLIAMENT_STEPS = 11


@pytest.fixture
def queued(monkeypatch):
    runs: list[int] = []
    advances: list[int] = []
    monkeypatch.setattr(services, "run_enqueue", runs.append)
    monkeypatch.setattr(experiments, "_enqueue_advance", advances.append)
    return SimpleNamespace(runs=runs, advances=advances)


@pytest.fixture
def sample_set():
    return sample_record_set(SET)


def test_no_budget_counts_nothing_and_refuses_nothing(queued):
    owner = make_user()
    record = make_record()
    for _ in range(3):
        run_create(owner=owner, config=scenario_config(record, user=owner))
    spending = spending_for(user=owner)
    assert (spending.steps_left, spending.tokens_left, spending.steps) == (None, None, 0)


def test_the_users_budget_overrides_the_settings_field_by_field(settings):
    settings.HEMICYCLE_DAILY_STEPS, settings.HEMICYCLE_DAILY_TOKENS, settings.HEMICYCLE_EXPERIMENT_CAP = 100, 5000, 40
    owner, other = make_user(), make_user("bob")
    UserBudget.objects.create(user=owner, steps_per_day=20)
    assert budget_for(user=owner) == type(budget_for(user=owner))(
        steps_per_day=20, tokens_per_day=5000, experiment_cap=40
    )
    assert budget_for(user=other).steps_per_day == 100


def test_runs_in_flight_count_their_estimate_and_finished_runs_what_they_spent(queued):
    owner = make_user()
    UserBudget.objects.create(user=owner, steps_per_day=3 * PARLIAMENT_STEPS)
    record = make_record()
    first = run_create(owner=owner, config=scenario_config(record, user=owner))
    second = run_create(owner=owner, config=scenario_config(record, user=owner, seed=8))
    assert spending_for(user=owner).steps == 2 * PARLIAMENT_STEPS  # both in flight: their estimates
    run_advance(run_id=first.pk)
    first.refresh_from_db()
    assert first.status == Run.Status.FINISHED and first.uncached_steps == PARLIAMENT_STEPS
    spending = spending_for(user=owner)
    assert spending.steps == 2 * PARLIAMENT_STEPS and spending.tokens > 0
    assert spending.steps_left == PARLIAMENT_STEPS
    run_create(owner=owner, config=scenario_config(record, user=owner, seed=9))  # fits exactly
    with pytest.raises(BudgetExceeded, match="needs up to 11 model steps and 0 of your 33 a day are left"):
        run_create(owner=owner, config=scenario_config(record, user=owner, seed=10))
    assert Run.objects.count() == 3
    # A cached re-run spends nothing.
    Run.objects.filter(pk=second.pk).update(status=Run.Status.STOPPED)
    again = run_create(owner=owner, config=scenario_config(record, user=owner, seed=7))  # first's seed
    run_advance(run_id=again.pk)
    again.refresh_from_db()
    assert again.uncached_steps == 0


def test_spent_tokens_stop_new_runs_and_other_users_are_unaffected(queued):
    owner, other = make_user(), make_user("bob")
    record = make_record()
    run_advance(run_id=run_create(owner=owner, config=scenario_config(record, user=owner)).pk)
    spent = spending_for(user=owner, budget=type(budget_for(user=owner))(None, 10**9, None)).tokens
    UserBudget.objects.create(user=owner, tokens_per_day=spent)
    with pytest.raises(BudgetExceeded, match=f"your {spent} model tokens of the last 24 hours are spent"):
        run_create(owner=owner, config=scenario_config(record, user=owner, seed=1))
    run_create(owner=other, config=scenario_config(record, user=other, seed=1))


def test_the_builder_shows_what_is_left_and_refuses_a_run_that_does_not_fit(client, queued):
    owner = make_user()
    UserBudget.objects.create(user=owner, steps_per_day=PARLIAMENT_STEPS + 5)
    client.force_login(owner)
    record = make_record()
    page = client.get(reverse("scenario-builder")).content.decode()
    assert 'data-testid="budget-steps-left">16<' in page
    data = builder_form(record, groups=["EPP", "SD", "ALDE"])
    assert client.post(reverse("scenario-builder"), data).status_code == 302
    response = client.post(reverse("scenario-builder"), {**data, "seed": 4, "name": "refused"})
    assert response.status_code == 200
    assert not SavedScenario.objects.filter(name="refused").exists()  # nothing stored
    page = response.content.decode()
    assert "this needs up to 11 model steps and 5 of your 16 a day are left" in page
    assert 'data-testid="budget-steps-left">5<' in page
    assert Run.objects.count() == 1


def test_the_api_answers_400_naming_the_budget(client, queued):
    owner = make_user()
    UserBudget.objects.create(user=owner, steps_per_day=5)
    token = api_token_create(user=owner)[1]
    body = {
        "record": make_record().pk,
        "groups": ["EPP", "SD", "ALDE"],
        "seat_structure": "equal",
        "goal": "simple_majority",
        "strategy": "parliament",
        "model": "scripted:default",
        "judge": "scripted",
        "rounds": 1,
    }
    response = client.post(
        "/api/v1/runs", data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 400
    assert response.json() == {"errors": {"budget": ["this needs up to 11 model steps and 5 of your 5 a day are left"]}}
    assert not Run.objects.exists()


def test_the_api_tells_what_is_left(client, queued):
    owner = make_user()
    token = api_token_create(user=owner)[1]
    response = client.get("/api/v1/budget", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json() == {
        "steps_per_day": None,
        "steps_left": None,
        "tokens_per_day": None,
        "tokens_left": None,
        "experiment_cap": None,
    }
    UserBudget.objects.create(user=owner, steps_per_day=30, experiment_cap=9)
    run_create(owner=owner, config=scenario_config(make_record(), user=owner))
    budget = client.get("/api/v1/budget", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert (budget["steps_per_day"], budget["steps_left"], budget["experiment_cap"]) == (30, 30 - PARLIAMENT_STEPS, 9)


def grid(owner, **overrides) -> Experiment:
    """Six one-shot runs: three 2-party tasks x two seeds, one goal."""
    return experiment_grid(owner, **{"goals": ["simple_majority"], "strategies": ["one-shot"], **overrides})


@pytest.mark.django_db(transaction=True)  # the top-ups run on commit
def test_an_experiment_starts_only_the_runs_that_fit_the_budget_and_ends_capped(sample_set, queued):
    owner = make_user()
    # one-shot with the llm judge on 2 groups: 3 steps a run; 10 steps fit three runs of six.
    UserBudget.objects.create(user=owner, steps_per_day=10)
    experiment = grid(owner)
    assert len(experiment_start(experiment=experiment, user=owner)) == 3
    while queued.runs or queued.advances:
        if queued.advances:
            experiment_advance(experiment_id=queued.advances.pop(0))
        else:
            run_advance(run_id=queued.runs.pop(0))
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.CAPPED
    assert experiment.runs.filter(status=Run.Status.FINISHED).count() == 3
    assert spending_for(user=owner).steps == 9


def test_an_experiment_without_a_cap_gets_the_owners_default_cap(sample_set, settings):
    settings.HEMICYCLE_EXPERIMENT_CAP = 50
    owner, other = make_user(), make_user("bob")
    UserBudget.objects.create(user=other, experiment_cap=7)
    assert grid(owner).call_cap == 50
    assert grid(other).call_cap == 7
    assert grid(other, name="mine", call_cap=100).call_cap == 100


def test_the_experiment_form_shows_the_budget_and_the_default_cap(client, sample_set):
    owner = make_user()
    UserBudget.objects.create(user=owner, steps_per_day=40, experiment_cap=12)
    client.force_login(owner)
    page = client.get(reverse("experiment-new")).content.decode()
    assert 'data-testid="budget-steps-left">40<' in page
    assert "empty: your default cap, 12 steps" in page
