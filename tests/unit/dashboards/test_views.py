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
    link = (
        reverse("experiment-runs", args=[made.experiment.pk])
        + "?strategy=one-shot&amp;model=m1&amp;judge=llm&amp;goal=simple_majority&amp;parties=2"
    )
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


def _form(record_set: str, **extra) -> dict:
    """The new-experiment form as posted: one greedy run a task and seed, `extra` in its place."""
    return {
        "name": "grid",
        "record_set": record_set,
        "parties": ["2"],
        "goals": ["simple_majority"],
        "strategies": ["greedy"],
        "models": "scripted:default",
        "judges": ["llm"],
        "seeds": "0",
        **extra,
    }


def test_new_experiment_form_renders(client, owner):
    client.force_login(owner)
    response = client.get(reverse("experiment-new"))
    assert response.status_code == 200 and 'data-testid="experiment-form"' in response.content.decode()


def test_new_experiment_form_creates_a_draft_over_the_record_sets_tasks(client, made, owner):
    client.force_login(owner)
    response = client.post(
        reverse("experiment-new"), _form(made.record.record_set.name, name="from the browser", seeds="0 1")
    )
    experiment = Experiment.objects.get(owner=owner, name="from the browser")
    assert response.status_code == 302 and response["Location"] == reverse("experiment-dashboard", args=[experiment.pk])
    assert experiment.status == Experiment.Status.DRAFT
    assert experiment.spec["source"]["ids"] == [made.tasks[2].pk]
    assert experiment.estimate["runs"] == 2  # one task x two seeds


def test_new_experiment_form_shows_the_services_error(client, made, owner):
    client.force_login(owner)
    response = client.post(reverse("experiment-new"), _form(made.record.record_set.name, name="pilot"))
    assert response.status_code == 200
    assert "already have an experiment named" in response.content.decode()


def test_new_experiment_form_can_start_it_at_once(client, made, owner):
    client.force_login(owner)
    client.post(reverse("experiment-new"), _form(made.record.record_set.name, name="started", start="on"))
    experiment = Experiment.objects.get(owner=owner, name="started")
    assert experiment.status == Experiment.Status.RUNNING
    assert list(experiment.runs.values_list("strategy", "task_id")) == [("greedy", made.tasks[2].pk)]


def test_dashboard_has_the_live_progress_the_controls_and_the_estimate(client, made, owner):
    client.force_login(owner)
    page = client.get(reverse("experiment-dashboard", args=[made.experiment.pk])).content.decode()
    assert f'data-socket-path="/ws/experiments/{made.experiment.pk}/"' in page
    assert 'data-results-url="' + reverse("experiment-results", args=[made.experiment.pk]) + '"' in page
    assert 'data-testid="progress-done">7<' in page and 'data-testid="progress-failed">1<' in page
    for control in ("start", "pause", "cancel"):
        assert f'data-testid="experiment-{control}"' in page
    assert 'data-settled="8"' in page  # 7 finished + 1 failed when the results were read


def test_controls_answer_the_progress_as_json(client, made, owner):
    client.force_login(owner)
    url = reverse("experiment-dashboard", args=[made.experiment.pk])
    refused = client.post(url, {"action": "pause"}, HTTP_ACCEPT="application/json")
    assert refused.status_code == 409 and "cannot be paused" in refused.json()["error"]
    assert refused.json()["status"] == "draft"
    cancelled = client.post(url, {"action": "cancel"}, HTTP_ACCEPT="application/json")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (body["status"], body["done"], body["failed"], body["total"]) == ("cancelled", 7, 1, 9)
    made.experiment.refresh_from_db()
    assert made.experiment.status == Experiment.Status.CANCELLED


def test_controls_without_javascript_redirect_back_with_the_error(client, made, owner):
    client.force_login(owner)
    url = reverse("experiment-dashboard", args=[made.experiment.pk])
    response = client.post(url, {"action": "pause"}, follow=True)
    assert response.redirect_chain[-1][0] == url
    assert "cannot be paused" in response.content.decode()
    assert client.post(url, {"action": "explode"}, HTTP_ACCEPT="application/json").status_code == 409


def test_controls_are_the_owners_only(client, made):
    client.force_login(make_user("bob"))
    url = reverse("experiment-dashboard", args=[made.experiment.pk])
    assert client.post(url, {"action": "cancel"}, HTTP_ACCEPT="application/json").status_code == 404
    made.experiment.refresh_from_db()
    assert made.experiment.status == Experiment.Status.DRAFT


def test_results_fragment_is_the_tables_alone(client, made, owner):
    client.force_login(owner)
    response = client.get(reverse("experiment-results", args=[made.experiment.pk]))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<div id="experiment-results"') and "<html" not in fragment
    assert 'data-settled="8"' in fragment and "0.67" in fragment and 'data-testid="cell"' in fragment
    client.force_login(make_user("bob"))
    assert client.get(reverse("experiment-results", args=[made.experiment.pk])).status_code == 404


def test_new_experiment_form_offers_the_bundled_model_and_the_papers_strategies(client, owner, settings):
    settings.HEMICYCLE_DEFAULT_MODEL = "local:smollm2-135m"
    client.force_login(owner)
    page = client.get(reverse("experiment-new")).content.decode()
    assert 'value="local:smollm2-135m"' in page and 'data-model="local:smollm2-135m"' in page
    for strategy in ("one-shot", "parliament", "random", "greedy"):
        assert f'value="{strategy}"' in page
    assert 'name="params.parliament.rounds"' in page and 'name="preview"' in page
    assert 'name="params.mediator.candidates"' in page  # every strategy's declared parameters


def test_the_experiment_form_offers_only_registry_models_and_refuses_others_beside_the_field(client, made, owner):
    from deliberation.registry.models import ModelEntry

    ModelEntry.objects.create(name="gpt@staff", model="openai/gpt-4o-mini", access="staff")
    client.force_login(owner)
    page = client.get(reverse("experiment-new")).content.decode()
    assert 'data-model="scripted:slow"' in page and "gpt@staff" not in page
    for models, message in (
        ("scripted:default scripted:nope", "&#x27;scripted:nope&#x27; is not a model of this lab"),
        ("gpt@staff", "you may not use &#x27;gpt@staff&#x27;"),
    ):
        response = client.post(reverse("experiment-new"), _form(made.record.record_set.name, models=models))
        assert response.status_code == 200
        page = response.content.decode()
        field = page.split('name="models"', 1)[1].split('class="field"', 1)[0]  # the models field's own block
        assert message in field
    assert not Experiment.objects.filter(owner=owner, name="grid").exists()


def test_estimate_shows_without_creating_the_experiment(client, made, owner):
    client.force_login(owner)
    response = client.post(reverse("experiment-new"), _form(made.record.record_set.name, seeds="0 1 2", preview="1"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="experiment-estimate"' in page and 'data-testid="estimate-runs">3<' in page
    assert not Experiment.objects.filter(owner=owner, name="grid").exists()


def test_new_experiment_form_passes_parliament_rounds_and_the_sample_seed(client, made, owner):
    client.force_login(owner)
    client.post(
        reverse("experiment-new"),
        _form(
            made.record.record_set.name,
            strategies=["parliament", "greedy"],
            sample="1",
            sample_seed="3",
            **{"params.parliament.rounds": "0", "params.parliament.rapporteur": "", "params.one-shot.max_tokens": "99"},
        ),
    )
    experiment = Experiment.objects.get(owner=owner, name="grid")
    # Only the grid's strategies, only what was given: the rest keep their defaults.
    assert experiment.spec["params"] == {"parliament": {"rounds": 0}}
    assert (experiment.spec["source"]["sample"], experiment.spec["source"]["sample_seed"]) == (1, 3)
    assert experiment.estimate["per_strategy"]["parliament"]["runs"] == 1


def test_a_bad_strategy_parameter_is_refused_beside_its_input(client, made, owner):
    client.force_login(owner)
    response = client.post(
        reverse("experiment-new"),
        _form(
            made.record.record_set.name,
            strategies=["parliament"],
            **{"params.parliament.rounds": "9"},
        ),
    )
    assert response.status_code == 200 and not Experiment.objects.filter(owner=owner, name="grid").exists()
    page = response.content.decode()
    assert 'data-testid="error-parliament-rounds"><ul class="errorlist"><li>between 0 and 5, not 9' in page


def test_dashboard_shows_each_judges_latest_calibration_or_not_calibrated(client, made, owner):
    from deliberation.calibration.models import Calibration

    client.force_login(owner)
    url = reverse("experiment-dashboard", args=[made.experiment.pk])
    page = client.get(url).content.decode()
    assert reverse("calibration-list") in page and 'data-testid="judge-calibrations"' in page
    assert "Judge not calibrated on this record set" in page
    assert 'data-testid="partisan-probe" data-sortable' in page and "r with real vote" in page

    record_set = made.record.record_set
    made.experiment.spec = {"source": {"kind": "task", "record_set": record_set.name}, "judges": ["llm"]}
    made.experiment.save()
    results = {"pearson": 0.4567, "mae": 2.345, "bias": -0.5, "scored": 12, "fallbacks": 1}
    older = Calibration.objects.create(judge="llm", judge_model="m1", record_set=record_set, results=results)
    newer = Calibration.objects.create(
        judge="llm", judge_model="m1", record_set=record_set, results={**results, "pearson": 0.61}
    )
    page = client.get(url).content.decode()
    assert "Judge not calibrated" not in page
    assert reverse("calibration-detail", args=[newer.pk]) in page
    assert reverse("calibration-detail", args=[older.pk]) not in page
    assert "r = 0.61, MAE 2.35, bias -0.50, 12 pairs, 1 fallbacks" in page


def test_new_experiment_form_offers_topics_with_their_task_counts(client, made, owner):
    client.force_login(owner)
    page = client.get(reverse("experiment-new")).content.decode()
    assert '<option value="agriculture">agriculture (2 tasks)</option>' in page
    assert 'name="source"' in page and 'data-field="scenarios"' in page


def test_new_experiment_form_plays_saved_scenarios(client, made, owner):
    from deliberation.scenarios.models import SavedScenario

    saved = SavedScenario.objects.create(
        owner=owner,
        name="my water deal",
        record=made.record,
        groups=["EPP", "SD"],
        seat_structure="equal",
        seats={"EPP": 0.5, "SD": 0.5},
        goal="simple_majority",
        strategy="greedy",
        model="scripted:default",
        judge="scripted",
    )
    client.force_login(owner)
    assert "my water deal (2 groups" in client.get(reverse("experiment-new")).content.decode()
    response = client.post(
        reverse("experiment-new"),
        _form(
            "",
            source="scenarios",
            scenarios=[str(saved.pk)],
            strategies=["greedy"],
            start="",
        ),
    )
    experiment = Experiment.objects.get(owner=owner, name="grid")
    assert response.status_code == 302
    assert experiment.spec["source"] == {"kind": "scenario", "ids": [saved.pk], "party_counts": {str(saved.pk): 2}}

    empty = client.post(reverse("experiment-new"), _form("", name="none", source="scenarios", strategies=["greedy"]))
    assert "Tick at least one saved scenario" in empty.content.decode()


def test_the_dashboard_draws_the_topic_breakdown_and_its_tables_sort(client, made, owner):
    client.force_login(owner)
    page = client.get(reverse("experiment-dashboard", args=[made.experiment.pk])).content.decode()
    assert 'id="topic-simple_majority"' in page and 'id="power-simple_majority"' in page
    assert page.count('data-testid="breakdown" data-sortable') == 3
    assert "95% CI (bootstrap)" in page and "(normal)" not in page
    assert 'data-testid="export-parquet"' in page


def test_new_experiment_form_creates_a_calibration_grid_alone_or_beside_runs(client, made, owner):
    client.force_login(owner)
    record_set = made.record.record_set.name
    page = client.post(reverse("experiment-new"), _form(record_set, strategies=[])).content.decode()
    assert "choose at least one" in page and not Experiment.objects.filter(owner=owner, name="grid").exists()
    page = client.post(
        reverse("experiment-new"),
        _form(record_set, strategies=[], calibrate="on", calibration_models="scripted:slow", preview="1"),
    ).content.decode()
    assert 'data-testid="estimate-calibrations">1<' in page
    client.post(
        reverse("experiment-new"),
        _form(record_set, name="judged", calibrate="on", calibration_models="scripted:slow", calibration_limit="5"),
    )
    experiment = Experiment.objects.get(owner=owner, name="judged")
    assert experiment.estimate["runs"] == 1 and experiment.estimate["calibrations"] == 1
    assert experiment.spec["calibration"]["judge_models"] == ["scripted:slow"]
    assert experiment.spec["calibration"]["limit"] == 5


def _calibrated_llm(made):
    """The experiment on its record set, with the llm judge calibrated there (finished) and a
    scripted judge never calibrated."""
    from deliberation.calibration.models import Calibration

    record_set = made.record.record_set
    made.experiment.spec = {"source": {"kind": "task", "record_set": record_set.name}, "judges": ["llm", "scripted"]}
    made.experiment.save()
    results = {"pearson": 0.5, "mae": 2.0, "bias": -0.25, "scored": 8, "fallbacks": 0}
    return Calibration.objects.create(judge="llm", judge_model="m1", record_set=record_set, results=results)


def test_each_judges_table_links_its_calibration_and_its_calibrations_list(client, made, owner):
    calibration = _calibrated_llm(made)
    client.force_login(owner)
    page = client.get(reverse("experiment-results", args=[made.experiment.pk])).content.decode()
    list_url = f"{reverse('calibration-list')}?judge=llm&amp;record_set={made.record.record_set.pk}"
    block = page.split('data-judge="llm"')[1].split("</p>")[0]
    assert reverse("calibration-detail", args=[calibration.pk]) in block and list_url in block

    listed = client.get(reverse("calibration-list"), {"judge": "scripted"}).content.decode()
    assert 'data-testid="calibration-filter"' in listed and f'data-calibration="{calibration.pk}"' not in listed
    listed = client.get(reverse("calibration-list"), {"judge": "llm"}).content.decode()
    assert f'data-calibration="{calibration.pk}"' in listed


def test_the_sweep_dashboard_names_each_judges_calibration_or_not_calibrated(client, made, owner):
    calibration = _calibrated_llm(made)
    client.force_login(owner)
    page = client.get(reverse("experiment-sweep", args=[made.experiment.pk])).content.decode()
    assert 'data-testid="sweep-judges"' in page
    llm = page.split('data-judge="llm"')[1].split("</p>")[0]
    assert reverse("calibration-detail", args=[calibration.pk]) in llm and "r = 0.50, MAE 2.00" in llm
    scripted = page.split('data-judge="scripted"')[1].split("</p>")[0]
    assert "Judge not calibrated on this record set" in scripted
    assert f"{reverse('calibration-list')}?judge=scripted&amp;record_set=" in scripted
