"""deliberation/registry: the models the lab offers, who may use them, and what they resolve to."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import override_settings

from deliberation.registry.admin import ModelEntryForm
from deliberation.registry.models import ModelEntry
from deliberation.registry.selectors import (
    ModelRefused,
    model_check,
    model_endpoint,
    model_names_for,
    model_runnable,
)
from deliberation.registry.services import models_sync_from_settings
from tests.factories import make_user
from worker.models.local import LOCAL_MODELS
from worker.models.scripted import SCRIPTED_CLIENTS

pytestmark = pytest.mark.django_db


def entry(name: str, **fields) -> ModelEntry:
    fields.setdefault("model", "hosted_vllm/Qwen/Qwen2.5-7B-Instruct")
    return ModelEntry.objects.create(name=name, **fields)


def test_a_fresh_database_offers_the_bundled_model_and_every_scripted_one_to_everyone():
    names = model_names_for(user=make_user())
    assert names[0] == "local:smollm2-135m"  # the default comes first
    expected = {f"scripted:{name}" for name in SCRIPTED_CLIENTS} | {f"local:{name}" for name in LOCAL_MODELS}
    assert set(names) == expected
    for name in names:  # the defaults' backend string is their name: old runs keep working
        assert ModelEntry.objects.get(name=name).model == name


def test_the_sync_keeps_admin_edits_and_brings_back_only_what_is_missing():
    ModelEntry.objects.filter(name="scripted:slow").update(enabled=False, concurrency=2)
    ModelEntry.objects.filter(name="scripted:fail").delete()
    call_command("migrate", verbosity=0)  # post_migrate syncs again
    slow = ModelEntry.objects.get(name="scripted:slow")
    assert (slow.enabled, slow.concurrency) == (False, 2)
    assert ModelEntry.objects.filter(name="scripted:fail").exists()
    assert models_sync_from_settings() == []  # idempotent


@override_settings(
    HEMICYCLE_DEFAULT_MODEL="hosted_vllm/Qwen/Qwen2.5-0.5B-Instruct",
    HEMICYCLE_MODELS=[
        {
            "name": "qwen@gpu2",
            "model": "hosted_vllm/Qwen/Qwen2.5-7B-Instruct",
            "api_base": "http://gpu2:8000/v1",
            "api_key_env": "GPU2_KEY",
            "concurrency": 3,
            "access": "groups",
            "groups": ["phd"],
        }
    ],
)
def test_settings_declare_models_with_endpoints_and_the_default_model_is_always_offered():
    assert models_sync_from_settings() == ["hosted_vllm/Qwen/Qwen2.5-0.5B-Instruct", "qwen@gpu2"]
    qwen = ModelEntry.objects.get(name="qwen@gpu2")
    assert (qwen.model, qwen.api_base, qwen.api_key_env, qwen.concurrency) == (
        "hosted_vllm/Qwen/Qwen2.5-7B-Instruct",
        "http://gpu2:8000/v1",
        "GPU2_KEY",
        3,
    )
    assert list(qwen.groups.values_list("name", flat=True)) == ["phd"]
    default = ModelEntry.objects.get(name="hosted_vllm/Qwen/Qwen2.5-0.5B-Instruct")
    assert (default.model, default.access, default.enabled) == (
        "hosted_vllm/Qwen/Qwen2.5-0.5B-Instruct",
        "everyone",
        True,
    )


def test_access_everyone_staff_and_named_groups():
    entry("open")
    entry("staff-only", access=ModelEntry.Access.STAFF)
    grouped = entry("phd-only", access=ModelEntry.Access.GROUPS)
    phd = Group.objects.create(name="phd")
    grouped.groups.add(phd)
    student, doctoral, admin = make_user("student"), make_user("doctoral"), make_user("admin")
    doctoral.groups.add(phd)
    User.objects.filter(pk=admin.pk).update(is_staff=True)
    admin.refresh_from_db()

    assert model_check(name="open", user=student) == "open"
    for name in ("staff-only", "phd-only"):
        with pytest.raises(ModelRefused, match=f"^model: you may not use '{name}'$"):
            model_check(name=name, user=student)
    assert model_check(name="phd-only", user=doctoral) == "phd-only"
    with pytest.raises(ModelRefused, match="you may not use"):
        model_check(name="staff-only", user=doctoral)
    assert {"open", "staff-only", "phd-only"} <= set(model_names_for(user=admin))
    assert "phd-only" in model_names_for(user=doctoral) and "staff-only" not in model_names_for(user=doctoral)


def test_unknown_disabled_and_empty_models_are_refused_with_the_field_named():
    user = make_user()
    entry("retired", enabled=False)
    with pytest.raises(
        ModelRefused,
        match=r"^judge_model: 'scripted:nope' is not a model of this lab; choose from local:smollm2-135m, ",
    ):
        model_check(name="scripted:nope", user=user, field="judge_model")
    with pytest.raises(ModelRefused, match="^models: 'retired' is disabled$"):
        model_check(name="retired", user=user, field="models")
    with pytest.raises(ModelRefused, match="^model: choose a model$"):
        model_check(name=" ", user=user)
    assert "retired" not in model_names_for(user=user)


def test_staff_may_give_a_raw_backend_string_in_the_cli_checked_like_an_entry():
    admin = make_user("admin")
    admin.is_staff = True
    user = make_user("bob")
    assert model_check(name="scripted:slow", user=admin, allow_raw=True) == "scripted:slow"
    assert model_check(name="hosted_vllm/some/model", user=admin, allow_raw=True) == "hosted_vllm/some/model"
    with pytest.raises(ModelRefused, match="unknown scripted model 'nope'"):
        model_check(name="scripted:nope", user=admin, allow_raw=True)
    with pytest.raises(ModelRefused, match="not a model of this lab"):
        model_check(name="hosted_vllm/some/model", user=user, allow_raw=True)  # not staff
    with pytest.raises(ModelRefused, match="not a model of this lab"):
        model_check(name="hosted_vllm/some/model", user=admin)  # not the CLI
    assert model_runnable(name="hosted_vllm/other") == "hosted_vllm/other"
    with pytest.raises(ModelRefused, match="no litellm provider"):
        model_runnable(name="nosuchprovider/model")


def test_a_run_resolves_its_model_through_the_registry_entry_when_it_starts():
    entry("qwen@gpu1", api_base="http://gpu1:8000/v1", api_key_env="GPU1_KEY")
    resolved = model_endpoint(name="qwen@gpu1")
    assert (resolved.model, resolved.api_base, resolved.api_key_env) == (
        "hosted_vllm/Qwen/Qwen2.5-7B-Instruct",
        "http://gpu1:8000/v1",
        "GPU1_KEY",
    )
    ModelEntry.objects.filter(name="qwen@gpu1").update(enabled=False)
    with pytest.raises(ModelRefused, match="'qwen@gpu1' is disabled in the model registry"):
        model_endpoint(name="qwen@gpu1")
    ModelEntry.objects.filter(name="qwen@gpu1").delete()
    with pytest.raises(ModelRefused, match="'qwen@gpu1' is no longer in the model registry"):
        model_endpoint(name="qwen@gpu1")
    assert model_endpoint(name="qwen@gpu1", allow_raw=True).model == "qwen@gpu1"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"model": "scripted:nope"}, "unknown scripted model"),
        ({"model": "local:gpt-5"}, "unknown local model"),
        ({"model": "nosuchprovider/x"}, "no litellm provider"),
        ({"api_key_env": "sk-live-123 456"}, "environment variable"),
        ({"access": "groups"}, "Name at least one group"),
        ({"api_base": "gpu1:8000/v1"}, "starting with http:// or https://"),
    ],
)
def test_the_admin_refuses_an_entry_that_could_not_run(fields, error):
    data = {"name": "x", "model": "hosted_vllm/q", "access": "everyone", "position": 100, "enabled": True, **fields}
    form = ModelEntryForm(data=data)
    assert not form.is_valid()
    assert error in str(form.errors)


def test_the_admin_lists_and_edits_the_registry(client):
    admin = User.objects.create_superuser("root", password="a-long-test-password")
    client.force_login(admin)
    page = client.get("/admin/registry/modelentry/")
    assert page.status_code == 200 and b"scripted:slow" in page.content
    created = client.post(
        "/admin/registry/modelentry/add/",
        {
            "name": "qwen@gpu1",
            "description": "",
            "model": "hosted_vllm/Qwen/Qwen2.5-7B-Instruct",
            "api_base": "http://gpu1:8000/v1",
            "api_key_env": "GPU1_KEY",
            "concurrency": "2",
            "access": "everyone",
            "enabled": "on",
            "position": "50",
        },
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    assert ModelEntry.objects.get(name="qwen@gpu1").api_key_env == "GPU1_KEY"


def test_the_lists_show_each_models_description_and_prices(client):
    from decimal import Decimal

    priced = entry("gpt-mini", description="hosted", prompt_price=Decimal("0.15"), completion_price=Decimal("0.6"))
    assert priced.summary == "hosted; 0.15 per million prompt tokens, 0.6 per million completion tokens"
    assert entry("bare").summary == ""
    client.force_login(make_user())
    page = client.get("/scenarios/new/").content.decode()
    assert 'title="hosted; 0.15 per million prompt tokens, 0.6 per million completion tokens"' in page
