"""The run page and its actions: labels not codes, the link back to an experiment, a new seed."""

import re

import pytest
from django.urls import reverse

from deliberation.records.models import PartyGroup
from deliberation.runs import services
from deliberation.runs.models import Experiment, Run
from deliberation.runs.services import run_create
from tests.factories import make_record, make_user, scenario_config

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)


@pytest.fixture
def owner(client):
    user = make_user()
    client.force_login(user)
    return user


@pytest.fixture
def record():
    made = make_record()
    PartyGroup.objects.filter(code="SD").update(short_label="S&D")
    return made


def test_the_run_page_names_the_veto_group_by_its_label(client, owner, record):
    run = run_create(owner=owner, config=scenario_config(record, goal="veto_power", veto_group="SD"))
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "(veto: S&amp;D)" in page and "(veto: SD)" not in page
    listing = client.get(reverse("run-list")).content.decode()
    assert "(veto S&amp;D)" in listing and "(veto SD)" not in listing


def test_a_run_of_an_experiment_links_back_and_shows_its_grid_seed(client, owner, record):
    experiment = Experiment.objects.create(owner=owner, name="pilot study", spec={}, estimate={"runs": 1})
    run = run_create(
        owner=owner,
        config=scenario_config(record, seed=987654),
        experiment=experiment,
        cell="task:1|simple_majority|parliament|scripted:default|scripted|3",
    )
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert reverse("experiment-dashboard", args=[experiment.pk]) in page and "Experiment: pilot study" in page
    assert '<span data-testid="grid-seed">grid seed 3</span> (run seed 987654' in page


def test_a_new_seed_plays_the_same_scenario_again_for_its_owner_only(client, owner, record):
    run = run_create(owner=owner, config=scenario_config(record, seed=7))
    response = client.post(reverse("run-new-seed", args=[run.pk]), {"seed": "4242"})
    fresh = Run.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302 and response.url == reverse("run-detail", args=[fresh.pk])
    assert fresh.seed == 4242 and fresh.experiment_id is None
    assert (fresh.record_id, fresh.groups, fresh.seats, fresh.strategy, fresh.model, fresh.params) == (
        run.record_id,
        run.groups,
        run.seats,
        run.strategy,
        run.model,
        run.params,
    )

    client.force_login(make_user("mallory"))
    assert client.post(reverse("run-new-seed", args=[run.pk]), {"seed": "5"}).status_code == 404
    assert Run.objects.count() == 2


def test_a_finished_run_page_hides_the_controls(client, owner, record):
    run = run_create(owner=owner, config=scenario_config(record))
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert 'data-testid="owner-controls">' in page
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FINISHED)
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert 'data-testid="owner-controls" hidden>' in page
    assert 'data-confirm="Stop this run now?' in page


def test_signing_in_and_up_land_on_your_lab_with_the_next_steps(client, settings):
    settings.HEMICYCLE_OPEN_SIGNUP = True
    make_user("ada")
    client.logout()
    response = client.post(reverse("login"), {"username": "ada", "password": "a-long-test-password"})
    assert response.status_code == 302 and response.url == reverse("my-dashboard")
    page = client.get(reverse("my-dashboard")).content.decode()
    assert 'data-testid="next-steps"' in page and "Start here" in page and 'data-testid="no-recent-runs"' in page
    assert f'href="{reverse("scenario-builder")}" data-testid="next-build"' in page and "scripted:demo" in page
    client.logout()
    response = client.post(
        reverse("signup"), {"username": "bea", "password1": "Hemicycle-unit-pw-9", "password2": "Hemicycle-unit-pw-9"}
    )
    assert response.status_code == 302 and response.url == reverse("my-dashboard")


def test_your_lab_lists_your_latest_single_runs_and_experiments(client, owner, record):
    run = run_create(owner=owner, config=scenario_config(record))
    experiment = Experiment.objects.create(owner=owner, name="pilot study", spec={}, estimate={"runs": 1})
    other = run_create(owner=make_user("bob"), config=scenario_config(record))
    page = client.get(reverse("my-dashboard")).content.decode()
    assert reverse("run-detail", args=[run.pk]) in page and reverse("run-detail", args=[other.pk]) not in page
    assert reverse("experiment-dashboard", args=[experiment.pk]) in page and "Next steps" in page


def test_my_runs_keeps_experiment_runs_apart_filters_and_pages(client, owner, record):
    experiment = Experiment.objects.create(owner=owner, name="pilot study", spec={}, estimate={"runs": 1})
    single = run_create(owner=owner, config=scenario_config(record))
    grid = run_create(
        owner=owner, config=scenario_config(record, strategy="one-shot"), experiment=experiment, cell="c1"
    )
    Run.objects.filter(pk=grid.pk).update(status=Run.Status.FINISHED)
    links = lambda **query: set(
        map(int, re.findall(r'data-run="(\d+)"', client.get(reverse("run-list"), query).content.decode()))
    )  # noqa: E731
    assert links() == {single.pk}
    assert links(experiment="all") == {single.pk, grid.pk}
    assert links(experiment=str(experiment.pk)) == {grid.pk}
    assert links(experiment="all", status="finished") == {grid.pk}
    assert links(experiment="all", strategy="parliament") == {single.pk}
    for _ in range(55):
        run_create(owner=owner, config=scenario_config(record))
    first = client.get(reverse("run-list")).content.decode()
    assert first.count('data-testid="run-link"') == 50 and "page 1 of 2" in first
    second = client.get(reverse("run-list"), {"page": 2}).content.decode()
    assert second.count('data-testid="run-link"') == 6


def test_the_run_page_names_the_parliaments_rounds_with_the_engines_default(client, owner, record):
    one = run_create(owner=owner, config=scenario_config(record))
    page = client.get(reverse("run-detail", args=[one.pk])).content.decode()
    assert '<span data-testid="run-rounds">1 negotiation round</span>' in page
    # A run stored without the parameter (before the parameters were completed at creation)
    # plays the engine's default, ParliamentSettings.rounds: the heading and the page's data say so.
    legacy = run_create(owner=owner, config=scenario_config(record))
    Run.objects.filter(pk=legacy.pk).update(params={})
    page = client.get(reverse("run-detail", args=[legacy.pk])).content.decode()
    assert '<span data-testid="run-rounds">2 negotiation rounds</span>' in page
    assert '"rounds": 2' in page
