"""Dashboard pages: only the owner sees them, and they show the table's values."""

from django.urls import reverse

from deliberation.runs.models import Experiment
from tests.factories import make_user


def test_list_shows_the_owners_experiments_only(client, made, owner):
    other = make_user("bob")
    Experiment.objects.create(owner=other, name="bobs", spec={}, estimate={"runs": 1})
    client.force_login(owner)
    page = client.get(reverse("experiment-list")).content.decode()
    assert "pilot" in page and "bobs" not in page
    assert "<progress" in page


def test_dashboard_renders_the_table_values_and_cell_links(client, made, owner):
    client.force_login(owner)
    response = client.get(reverse("experiment-dashboard", args=[made.experiment.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "0.67" in page and "4.00" in page  # one-shot simple majority, 2 parties; Rawlsian
    assert "3 runs, 1 task" in page
    link = reverse("experiment-runs", args=[made.experiment.pk]) + "?strategy=one-shot&amp;model=m1&amp;judge=llm&amp;goal=simple_majority&amp;parties=2"
    assert link in page
    assert "vendor/plotly/plotly.min.js" in page and 'id="dominant"' in page


def test_cell_runs_page_lists_its_runs_with_transcript_links(client, made, owner):
    client.force_login(owner)
    url = reverse("experiment-runs", args=[made.experiment.pk])
    page = client.get(url, {"strategy": "greedy", "parties": 2, "goal": "simple_majority"}).content.decode()
    greedy = made.experiment.runs.get(strategy="greedy")
    assert page.count('data-testid="run-link"') == 1
    assert reverse("run-detail", args=[greedy.pk]) in page


def test_only_the_owner_sees_the_dashboard(client, made):
    client.force_login(make_user("bob"))
    for name in ("experiment-dashboard", "experiment-runs"):
        assert client.get(reverse(name, args=[made.experiment.pk])).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, made):
    response = client.get(reverse("experiment-dashboard", args=[made.experiment.pk]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_new_experiment_form_renders(client, owner):
    client.force_login(owner)
    response = client.get(reverse("experiment-new"))
    assert response.status_code == 200 and 'data-testid="experiment-form"' in response.content.decode()


def test_new_experiment_form_creates_a_draft_over_the_record_sets_tasks(client, made, owner):
    client.force_login(owner)
    response = client.post(reverse("experiment-new"), {
        "name": "from the browser", "record_set": made.record.record_set.name, "parties": ["2"],
        "goals": ["simple_majority"], "strategies": ["greedy"], "models": "scripted:default",
        "judges": ["llm"], "seeds": "0 1",
    })
    experiment = Experiment.objects.get(owner=owner, name="from the browser")
    assert response.status_code == 302 and response["Location"] == reverse("experiment-dashboard", args=[experiment.pk])
    assert experiment.status == Experiment.Status.DRAFT
    assert experiment.spec["source"]["ids"] == [made.tasks[2].pk]
    assert experiment.estimate["runs"] == 2  # one task x two seeds


def test_new_experiment_form_shows_the_services_error(client, made, owner):
    client.force_login(owner)
    response = client.post(reverse("experiment-new"), {
        "name": "pilot", "record_set": made.record.record_set.name, "parties": ["2"], "goals": ["simple_majority"],
        "strategies": ["greedy"], "models": "scripted:default", "judges": ["llm"], "seeds": "0",
    })
    assert response.status_code == 200
    assert "already have an experiment named" in response.content.decode()


def test_new_experiment_form_can_start_it_at_once(client, made, owner):
    client.force_login(owner)
    client.post(reverse("experiment-new"), {
        "name": "started", "record_set": made.record.record_set.name, "parties": ["2"], "goals": ["simple_majority"],
        "strategies": ["greedy"], "models": "scripted:default", "judges": ["llm"], "seeds": "0", "start": "on",
    })
    experiment = Experiment.objects.get(owner=owner, name="started")
    assert experiment.status == Experiment.Status.RUNNING
    assert list(experiment.runs.values_list("strategy", "task_id")) == [("greedy", made.tasks[2].pk)]
