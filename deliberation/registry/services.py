"""Writes of the model registry: the settings' default models, created after every migrate."""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

ENTRY_FIELDS = (
    "description",
    "model",
    "api_base",
    "api_key_env",
    "concurrency",
    "prompt_price",
    "completion_price",
    "access",
    "enabled",
    "position",
)


def settings_models() -> list[dict]:
    """settings.HEMICYCLE_MODELS, plus HEMICYCLE_DEFAULT_MODEL when it names none of them (so a
    deployment that points the default at its server needs no other step)."""
    declared = [dict(item) for item in settings.HEMICYCLE_MODELS]
    default = settings.HEMICYCLE_DEFAULT_MODEL
    if default and default not in {item["name"] for item in declared}:
        declared.insert(0, {"name": default, "description": "the lab's default model", "position": 0})
    return declared


def models_sync_from_settings(*, apps=None, using: str = DEFAULT_DB_ALIAS, **kwargs) -> list[str]:
    """Create each model of settings_models() that the registry lacks (post_migrate receiver,
    also after the test runner's flush). Existing entries are left as the admin edited them; an
    admin retires a default model by disabling it (deleted, it comes back on the next migrate).
    Returns the names it created."""
    if apps is None:
        from django.apps import apps
    try:
        ModelEntry = apps.get_model("registry", "ModelEntry")
        Group = apps.get_model("auth", "Group")
    except LookupError:  # migrating backwards, or the registry is not migrated yet
        return []
    entries = ModelEntry.objects.using(using)
    existing = set(entries.values_list("name", flat=True))
    created = []
    for item in settings_models():
        if item["name"] in existing:
            continue
        values = {field: item[field] for field in ENTRY_FIELDS if field in item}
        values.setdefault("model", item["name"])
        entry = entries.create(name=item["name"], **values)
        for group_name in item.get("groups", ()):
            entry.groups.add(Group.objects.using(using).get_or_create(name=group_name)[0])
        created.append(entry.name)
    return created
