"""Record set versions: made by imports (extend or replace), kept by runs, compared by admins."""

import pytest

from deliberation.records.models import GroupAlias, PartyGroup, Record, RecordSet, RecordSetVersion
from deliberation.records.selectors import (
    benchmark_task_list,
    record_search,
    record_set_list,
    record_set_versions_compare,
)
from deliberation.records.services import records_import
from deliberation.runs.services import run_create
from tests.factories import make_user, scenario_config
from tests.unit.records.builders import problems_of, run_import, stance, task_record, topic_record, write_json

pytestmark = pytest.mark.django_db


def titles(version: RecordSetVersion) -> list[str]:
    return sorted(version.records.values_list("title", flat=True))


def test_first_import_makes_version_1_and_the_same_data_again_makes_none(tmp_path):
    path = write_json(tmp_path, "a.json", [topic_record(0, title="A"), topic_record(1, title="B")])

    first = run_import(path, name="S")
    again = run_import(path, name="S")

    record_set = RecordSet.objects.get(name="S")
    assert (first.version, first.version_created) == (1, True)
    assert (again.version, again.version_created) == (1, False)
    assert record_set.versions.count() == 1
    assert titles(record_set.current_version) == ["A", "B"]
    assert "version 1 unchanged" in again.render().splitlines()[0]


def test_extend_upload_makes_a_new_version_with_the_old_records_and_the_new(tmp_path):
    run_import(write_json(tmp_path, "a.json", [topic_record(0, title="A")]), name="S")
    report = run_import(write_json(tmp_path, "b.json", [topic_record(0, title="B")]), name="S")

    v1, v2 = RecordSetVersion.objects.filter(record_set__name="S").order_by("number")
    assert (report.version, report.version_created) == (2, True)
    assert record_set_list().get(name="S").record_count == 2
    assert (titles(v1), titles(v2)) == (["A"], ["A", "B"])
    # unchanged records are shared, not copied
    assert Record.objects.filter(title="A").count() == 1
    assert v1.records.get().pk == v2.records.get(title="A").pk


def test_replace_upload_drops_missing_records_from_browsing_and_the_benchmark(tmp_path):
    old = topic_record(0, title="Old")
    run_import(write_json(tmp_path, "t1.json", [task_record(old, ["EPP", "SD"], [0.5, 0.5], "SD")]), name="S")
    assert record_set_list().get(name="S").task_count == 1
    report = records_import(
        paths=[write_json(tmp_path, "t2.json", [topic_record(0, title="New")])], name="S", mode="replace"
    )

    record_set = RecordSet.objects.get(name="S")
    assert report.version == 2 and titles(record_set.current_version) == ["New"]
    assert list(record_search(record_set="S").values_list("title", flat=True)) == ["New"]
    assert benchmark_task_list(record_set=record_set) == []  # the old record's task is not current
    listed = record_set_list().get(name="S")
    assert (listed.record_count, listed.task_count) == (1, 0)
    assert Record.objects.filter(title="Old").exists()  # version 1 still holds it


def test_compare_lists_added_removed_and_changed_records(tmp_path):
    run_import(
        write_json(
            tmp_path,
            "v1.json",
            [topic_record(0, title="Kept"), topic_record(1, title="Dropped"), topic_record(2, title="Edited")],
        ),
        name="S",
    )
    edited = topic_record(2, title="Edited", resolution="A corrected adopted text.")
    records_import(
        paths=[
            write_json(tmp_path, "v2.json", [topic_record(0, title="Kept"), edited, topic_record(3, title="Added")])
        ],
        name="S",
        mode="replace",
    )
    v1, v2 = RecordSetVersion.objects.order_by("number")

    diff = record_set_versions_compare(old=v1, new=v2)

    assert [record.title for record in diff.added] == ["Added"]
    assert [record.title for record in diff.removed] == ["Dropped"]
    assert [(a.title, b.title) for a, b in diff.changed] == [("Edited", "Edited")]
    old_text, new_text = diff.changed[0][0].resolution, diff.changed[0][1].resolution
    assert new_text == "A corrected adopted text." and old_text != new_text


def test_runs_keep_the_version_they_played_after_a_new_upload(tmp_path):
    run_import(write_json(tmp_path, "a.json", [topic_record(0, title="A")]), name="S")
    record = Record.objects.get(title="A")
    run = run_create(owner=make_user(), config=scenario_config(record))
    run_import(write_json(tmp_path, "b.json", [topic_record(0, title="B")]), name="S")

    run.refresh_from_db()
    assert run.record_set_version.number == 1
    assert RecordSet.objects.get(name="S").current_version.number == 2
    later = run_create(owner=make_user("bob"), config=scenario_config(record))
    assert later.record_set_version.number == 2


# Group aliases -----------------------------------------------------------------------------------


def test_unknown_group_code_is_reported_with_how_to_map_it(tmp_path):
    stances = [stance("EPP", 0.9), stance("EFD", 0.5)]
    report = run_import(write_json(tmp_path, "a.json", [topic_record(0, term="8th_datas", stances=stances)]))

    assert problems_of(report) == [
        (
            "id 0",
            "stances[1].party_name",
            "unknown group code EFD for the 8th term: map it in the admin (group aliases); stance skipped",
        )
    ]
    assert report.stances_skipped == 1


def test_group_alias_maps_a_code_per_term_before_rejecting_it(tmp_path):
    efdd = PartyGroup.objects.get(code="EFDD", term="8th")
    GroupAlias.objects.create(term="8th", alias="EFD", group=efdd)
    eighth = topic_record(0, term="8th_datas", stances=[stance("EPP", 0.9), stance("EFD", 0.5)])
    task = task_record(eighth, ["EPP", "EFD"], [0.6, 0.4], "EFD")
    seventh = topic_record(1, title="Seventh", stances=[stance("EPP", 0.9), stance("EFD", 0.2)])

    report = run_import(write_json(tmp_path, "t.json", [task]), write_json(tmp_path, "s.json", [seventh]))

    mapped = Record.objects.get(term="8th")
    assert sorted(mapped.stances.values_list("group__code", flat=True)) == ["EFDD", "EPP"]
    assert mapped.tasks.get().groups == ["EPP", "EFDD"] and mapped.tasks.get().veto_group == "EFDD"
    # the alias is for the 8th term only: EFD of the 7th is its own group and stays as it is
    assert sorted(Record.objects.get(title="Seventh").stances.values_list("group__code", flat=True)) == ["EFD", "EPP"]
    assert report.problems == []
