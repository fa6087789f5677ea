"""Data migration: the EP political groups of the 7th, 8th and 9th terms (fixtures/ep_groups.json).

Every database has the groups after `migrate`, tests included. Re-running it (or editing the
fixture and adding a migration that calls load_ep_groups again) updates groups in place.
"""

import json
from pathlib import Path

from django.db import migrations

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "ep_groups.json"
FIELDS = ("label", "short_label", "colour", "seats_at_start")


def load_ep_groups(apps, schema_editor):
    PartyGroup = apps.get_model("records", "PartyGroup")
    for group in json.loads(FIXTURE.read_text(encoding="utf-8"))["groups"]:
        PartyGroup.objects.using(schema_editor.connection.alias).update_or_create(
            code=group["code"], term=group["term"], defaults={name: group[name] for name in FIELDS}
        )


class Migration(migrations.Migration):
    dependencies = [("records", "0001_initial")]

    # Reversing keeps the groups: stances refer to them (PROTECT), and they are facts, not state.
    operations = [migrations.RunPython(load_ep_groups, migrations.RunPython.noop)]
