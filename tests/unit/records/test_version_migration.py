"""records 0003 / runs 0003: record sets imported before versions become version 1, with every
record, and runs made before then point at it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("records", "0002_ep_groups"), ("runs", "0002_run_runevent")]
AFTER = [("records", "0003_versions_aliases_uploads"), ("runs", "0003_run_record_set_version")]


@pytest.mark.django_db(transaction=True)
def test_existing_record_sets_become_version_1_and_their_runs_point_at_it():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    record_set = old.get_model("records", "RecordSet").objects.create(name="Old set")
    Record = old.get_model("records", "Record")
    records = [
        Record.objects.create(record_set=record_set, content_hash=f"h{i}", title=f"R{i}", background="b", term="7th")
        for i in range(3)
    ]
    empty = old.get_model("records", "RecordSet").objects.create(name="Empty set")
    owner = old.get_model("auth", "User").objects.create(username="owner")
    run = old.get_model("runs", "Run").objects.create(
        owner=owner,
        record=records[0],
        groups=["EPP", "SD"],
        seat_structure="equal",
        seats={"EPP": 0.5, "SD": 0.5},
        goal="simple_majority",
        strategy="one-shot",
        model="scripted:default",
        judge="scripted",
        share_token="t",
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps

    Version = new.get_model("records", "RecordSetVersion")
    version = Version.objects.get(record_set__name="Old set")
    assert version.number == 1
    assert sorted(version.records.values_list("title", flat=True)) == ["R0", "R1", "R2"]
    assert new.get_model("records", "RecordSet").objects.get(name="Old set").current_version_id == version.pk
    assert Version.objects.get(record_set=empty.pk).records.count() == 0
    assert new.get_model("runs", "Run").objects.get(pk=run.pk).record_set_version_id == version.pk

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # leave the schema as the other tests expect it
