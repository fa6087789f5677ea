import re

import pytest
from django.urls import reverse

from deliberation.runs import services
from deliberation.runs.models import Run
from deliberation.scenarios.models import SavedScenario
from tests.factories import builder_form, make_record, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    user = make_user()
    client.force_login(user)
    return user


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services, "run_enqueue", lambda run_id: None)


def builder_post(client, record, **fields):
    return client.post(reverse("scenario-builder"), builder_form(record, **fields))


def test_starting_from_the_builder_creates_a_run_and_opens_its_page(client, signed_in):
    record = make_record()
    response = builder_post(client, record)
    run = Run.objects.get()
    assert response.status_code == 302 and response.url == reverse("run-detail", args=[run.pk])
    assert run.groups == ["EPP", "SD"] and run.seats == {"EPP": 0.5, "SD": 0.5}
    # The run keeps every parameter it plays with, the defaults filled in.
    assert run.params == {
        "rounds": 1,
        "rapporteur": "largest",
        "temperature": 0.7,
        "speech_tokens": 160,
        "draft_tokens": 400,
    }


def test_custom_seats_that_do_not_add_up_are_refused_under_their_field(client, signed_in):
    response = builder_post(
        client, make_record(), seat_structure="custom", **{"custom_seats.EPP": "60", "custom_seats.SD": "30"}
    )
    assert response.status_code == 200
    assert "add up to 90%" in " ".join(response.context["errors"]["custom_seats"])
    assert Run.objects.count() == 0


def test_veto_power_needs_a_participating_veto_group(client, signed_in):
    response = builder_post(client, make_record(), goal="veto_power", veto_group="ALDE")
    assert "must be one of the participating groups" in " ".join(response.context["errors"]["veto_group"])


def test_saving_needs_a_name_and_saved_scenarios_reload(client, signed_in):
    record = make_record()
    response = builder_post(client, record, action="save")
    assert response.context["errors"] == {"name": ["Give the scenario a name to save it."]}
    response = builder_post(client, record, action="save", name="Posting workers, equal seats")
    saved = SavedScenario.objects.get()
    assert response.url.endswith(f"?scenario={saved.pk}")
    page = client.get(reverse("scenario-builder"), {"scenario": saved.pk})
    assert page.context["values"]["groups"] == ["EPP", "SD"]
    assert page.context["initial"]["groups"] == ["EPP", "SD"]  # what the script restores (json_script)
    assert 'id="builder-initial"' in page.content.decode()
    assert Run.objects.count() == 0


def test_the_k_most_divided_groups_are_chosen_by_real_votes(client, signed_in):
    record = make_record()  # EPP 8, SD 3, ALDE 5, GREEN_EFA 0
    builder_post(client, record, groups=[], most_divided=2)
    assert sorted(Run.objects.get().groups) == ["EPP", "GREEN_EFA"]


def test_api_starts_a_run_and_answers_its_id(client, signed_in):
    record = make_record()
    payload = {
        "record": record.pk,
        "groups": ["EPP", "SD", "ALDE"],
        "seat_structure": "random_tenths",
        "goal": "two_thirds_majority",
        "strategy": "one-shot",
        "model": "scripted:default",
        "judge": "llm",
    }
    response = client.post("/api/runs", payload, content_type="application/json")
    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["id"])
    assert run.owner == signed_in and run.strategy == "one-shot"


def test_api_answers_a_clear_message_per_field(client, signed_in):
    payload = {
        "record": make_record().pk,
        "groups": ["EPP"],
        "seat_structure": "equal",
        "goal": "nope",
        "strategy": "greedy",
        "judge": "scripted",
    }
    response = client.post("/api/runs", payload, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {"goal"}


def test_api_needs_a_signed_in_user(client):
    response = client.post("/api/runs", "{}", content_type="application/json")
    assert response.status_code == 401


def test_sign_up_is_refused_where_settings_close_it(client, settings):
    settings.HEMICYCLE_OPEN_SIGNUP = False
    assert client.get(reverse("signup")).status_code == 404
    settings.HEMICYCLE_OPEN_SIGNUP = True
    response = client.post(
        reverse("signup"),
        {"username": "newcomer", "password1": "a-long-pass-phrase-42", "password2": "a-long-pass-phrase-42"},
    )
    assert response.status_code == 302


def test_a_private_run_page_is_hidden_from_others(client, signed_in):
    builder_post(client, make_record())
    run = Run.objects.get()
    client.force_login(make_user("bob"))
    assert client.get(reverse("run-detail", args=[run.pk])).status_code == 404
    assert client.get(reverse("run-detail", args=[run.pk]), {"token": run.share_token}).status_code == 404
    Run.objects.filter(pk=run.pk).update(visibility="link")
    client.logout()
    assert client.get(reverse("run-detail", args=[run.pk]), {"token": run.share_token}).status_code == 200


def test_the_builder_offers_the_registry_models_the_user_may_use_and_no_other(client, signed_in):
    from deliberation.registry.models import ModelEntry

    ModelEntry.objects.create(name="gpt@staff", model="openai/gpt-4o-mini", access="staff")
    ModelEntry.objects.filter(name="scripted:fail").update(enabled=False)
    page = client.get(reverse("scenario-builder")).content.decode()
    assert 'data-model="local:smollm2-135m"' in page and 'data-model="scripted:slow"' in page
    assert "gpt@staff" not in page and 'data-model="scripted:fail"' not in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model", "scripted:nope", "&#x27;scripted:nope&#x27; is not a model of this lab"),
        ("model", "gpt@staff", "you may not use &#x27;gpt@staff&#x27;"),
        ("judge_model", "scripted:fail ", "&#x27;scripted:fail&#x27; is disabled"),
    ],
)
def test_an_unknown_or_forbidden_model_is_an_error_beside_its_field_and_nothing_is_stored(
    client, signed_in, field, value, message
):
    from deliberation.registry.models import ModelEntry

    ModelEntry.objects.create(name="gpt@staff", model="openai/gpt-4o-mini", access="staff")
    ModelEntry.objects.filter(name="scripted:fail").update(enabled=False)
    response = builder_post(client, make_record(), judge="llm", name="kept?", **{field: value})
    assert response.status_code == 200
    page = response.content.decode()
    errors = page.split(f'data-testid="error-{field}">', 1)[1].split("</div>", 1)[0]
    assert message in errors
    assert not Run.objects.exists() and not SavedScenario.objects.exists()


def test_an_empty_model_is_the_labs_default(client, signed_in, settings):
    settings.HEMICYCLE_DEFAULT_MODEL = "scripted:slow"
    builder_post(client, make_record(), model="")
    assert Run.objects.get().model == "scripted:slow"


def test_a_start_without_a_record_says_so_beside_the_record_field(client, signed_in):
    make_record()
    response = client.post(
        reverse("scenario-builder"),
        {"seat_structure": "equal", "goal": "simple_majority", "strategy": "parliament", "judge": "scripted"},
    )
    page = response.content.decode()
    assert response.status_code == 200 and Run.objects.count() == 0
    assert "Pick a record first" in " ".join(response.context["errors"]["record"])
    assert re.search(r'data-testid="error-record"><ul class="errorlist"[^>]*><li>Pick a record first', page)
    # The server validates: the browser's own pop-ups (which cannot reach the hidden record
    # field) are off, so every message is the server's, beside its field.
    assert 'data-testid="builder-form" novalidate' in page


def test_more_than_five_rounds_are_refused_beside_the_rounds_field(client, signed_in):
    response = builder_post(client, make_record(), **{"params.parliament.rounds": 6})
    assert response.context["errors"] == {"rounds": ["between 0 and 5, not 6"]}
    assert re.search(
        r'data-testid="error-parliament-rounds"><ul class="errorlist"[^>]*><li>between 0 and 5, not 6',
        response.content.decode(),
    )
    assert Run.objects.count() == 0


def test_only_the_chosen_strategys_parameters_are_read(client, signed_in):
    builder_post(
        client,
        make_record(),
        strategy="one-shot",
        **{"params.one-shot.max_tokens": "300", "params.parliament.rounds": 9},
    )
    assert Run.objects.get().params == {"temperature": 0.0, "max_tokens": 300}


def test_the_builder_shows_every_strategys_parameters_with_their_defaults(client, signed_in):
    page = client.get(reverse("scenario-builder")).content.decode()
    fieldset = page.split('data-testid="params-parliament"', 1)[1].split("</fieldset>", 1)[0]
    assert re.search(
        r'name="params\.parliament\.rounds"[^>]*data-testid="parliament-rounds"\s+type="number" step="1" min="0" max="5"\s+value="2"',
        fieldset,
    )
    assert '<option value="mediator">A neutral mediator</option>' in fieldset
    one_shot = page.split('data-testid="params-one-shot"', 1)[1].split("</fieldset>", 1)[0]
    assert 'name="params.one-shot.max_tokens"' in one_shot and 'value="400"' in one_shot
    assert " hidden>" in page.split('data-testid="params-one-shot"', 1)[1][:20]  # the chosen one shows
    assert "greedy has no parameters" in page
    # A parameter that names a model offers the registry's models, as the model field does.
    assert re.search(
        r'name="params\.advisor\.advisor_model"[^>]*type="text" list="model-suggestions"', page.replace("\n", " ")
    )


def test_a_saved_scenario_reloads_its_parameters(client, signed_in):
    builder_post(client, make_record(), action="save", name="Three rounds", **{"params.parliament.rounds": 3})
    saved = SavedScenario.objects.get()
    page = client.get(reverse("scenario-builder"), {"scenario": saved.pk}).content.decode()
    assert re.search(r'data-testid="parliament-rounds"[^>]*value="3"', page.replace("\n", " "))


def test_the_builder_suggests_the_demo_model_for_a_first_look(client, signed_in):
    page = client.get(reverse("scenario-builder")).content.decode()
    assert 'data-testid="first-look"' in page and 'data-model="scripted:demo"' in page


def test_amulet_on_a_model_without_token_ids_is_refused_beside_the_model(client, signed_in):
    record = make_record()
    response = builder_post(client, record, strategy="amulet", model="scripted:no-logprobs")
    assert response.status_code == 200
    assert "amulet decodes token by token" in " ".join(response.context["errors"]["model"])
    assert Run.objects.count() == 0
    response = builder_post(client, record, strategy="amulet", model="scripted:default")
    assert response.status_code == 302 and Run.objects.get().strategy == "amulet"
