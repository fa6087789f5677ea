import io
import json
import zipfile

import pytest
from django.db.models import Count

from deliberation.records import services
from deliberation.records.models import BenchmarkTask, Record, RecordSet, Stance, Topic
from tests.unit.records.builders import (
    EUROCON_SUBSET,
    problems_of,
    run_import,
    stance,
    task_record,
    topic_record,
    write_json,
)

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {
        "record sets": RecordSet.objects.count(),
        "records": Record.objects.count(),
        "stances": Stance.objects.count(),
        "tasks": BenchmarkTask.objects.count(),
        "topics": Topic.objects.count(),
    }


# What gets written ------------------------------------------------------------------------------


def test_topic_file_writes_records_with_stances_term_topic_and_votes(tmp_path):
    path = write_json(tmp_path, "topic_datas/agriculture.json", [topic_record(0), topic_record(1, title="Other rules")])

    report = run_import(path, name="Set A")

    record = Record.objects.get(title="Rules on test widgets")
    assert record.record_set.name == "Set A"
    assert record.term == "7th"
    assert [topic.name for topic in record.topics.all()] == ["agriculture"]
    assert (record.real_total_score, record.real_total_choice) == (0.61, 6)
    assert sorted(record.stances.values_list("group__code", "real_score", "real_choice")) == [
        ("ALDE", 0.1, 1),
        ("EPP", 0.9, 9),
        ("SD", 0.45, 4),
    ]
    assert record.stances.get(group__code="EPP").text == "EPP weighs the issue.\nEPP states its view."
    assert (report.records, report.records_new, report.stances_new, report.tasks) == (2, 2, 6, 0)
    assert report.record_set_created and report.problems == []


def test_task_file_writes_task_with_groups_in_order_weights_and_veto(tmp_path):
    record = topic_record(3)
    task = task_record(record, ["EPP", "ALDE"], [0.3, 0.7], "ALDE")
    path = write_json(tmp_path, "task_datas/2/agriculture.json", [task])

    report = run_import(path)

    task = BenchmarkTask.objects.get()
    assert (task.party_count, task.groups, task.seat_weights, task.veto_group) == (
        2,
        ["EPP", "ALDE"],
        [0.3, 0.7],
        "ALDE",
    )
    assert task.topic.name == "agriculture"
    assert sorted(task.record.stances.values_list("group__code", flat=True)) == ["ALDE", "EPP"]
    assert report.tasks_by_party_count == {2: 1}
    assert report.file(str(tmp_path / "task_datas/2/agriculture.json")).kind == "task"


def test_task_file_is_recognised_by_content_anywhere(tmp_path):
    record = topic_record(0)
    path = write_json(tmp_path, "anything.json", [task_record(record, ["EPP", "SD"], [0.5, 0.5], "SD")])

    report = run_import(path)

    assert report.files[0].kind == "task"
    assert BenchmarkTask.objects.count() == 1


def test_file_under_task_datas_without_task_fields_keeps_record_but_not_task(tmp_path):
    write_json(tmp_path, "eurocon/task_datas/4/agriculture.json", [topic_record(0)])

    report = run_import(tmp_path / "eurocon")

    assert report.files[0].kind == "task"
    assert (Record.objects.count(), BenchmarkTask.objects.count()) == (1, 0)
    assert ("id 0", "seat_weights", "missing") in problems_of(report)
    assert ("id 0", "veto_party_name", "missing") in problems_of(report)
    assert report.files[0].tasks_skipped == 1


def test_topic_falls_back_to_the_file_name_and_is_normalised(tmp_path):
    untitled = topic_record(0, topic=None)
    spelled_out = topic_record(1, title="Second", topic="Foreign  and Security Policy")
    write_json(tmp_path, "topic_datas/foreign and security policy.json", [untitled, spelled_out])

    run_import(tmp_path)

    assert list(Topic.objects.values_list("name", flat=True)) == ["foreign & security policy"]
    assert Record.objects.filter(topics__name="foreign & security policy").count() == 2


def test_stance_given_as_a_list_of_sentences_is_joined_with_newlines(tmp_path):
    stances = [stance("EPP", 0.8, ["EPP backs it.", "EPP wants a review."]), stance("SD", 0.2)]
    path = write_json(tmp_path, "t.json", [topic_record(0, stances=stances)])

    run_import(path)

    assert Stance.objects.get(group__code="EPP").text == "EPP backs it.\nEPP wants a review."


def test_numeric_strings_are_read_as_numbers(tmp_path):
    record = topic_record(
        0, stances=[{**stance("EPP", 0.8), "score": "0.8", "choice": "8"}, stance("SD", 0.25)], total_score="0.5"
    )
    task = task_record(record, ["EPP", "SD"], ["0.6", "0.4"], "EPP")
    path = write_json(tmp_path, "t.json", [task])

    report = run_import(path)

    assert report.problems == []
    assert Stance.objects.get(group__code="EPP").real_score == 0.8
    assert BenchmarkTask.objects.get().seat_weights == [0.6, 0.4]
    assert Record.objects.get().real_total_score == 0.5


@pytest.mark.parametrize("garbage", ["0,8", "high", True, None, "nan", [0.8]])
def test_garbage_scores_drop_the_stance(tmp_path, garbage):
    record = topic_record(0, stances=[{**stance("EPP", 0.8), "score": garbage}, stance("SD", 0.2)])
    path = write_json(tmp_path, "t.json", [record])

    report = run_import(path)

    assert [(p.record, p.field) for p in report.problems] == [("id 0", "stances[0].score")]
    assert list(Stance.objects.values_list("group__code", flat=True)) == ["SD"]


def test_empty_stance_text_is_kept_with_a_note(tmp_path):
    path = write_json(tmp_path, "t.json", [topic_record(0, stances=[stance("EPP", 0.0, text=""), stance("SD", 0.6)])])

    report = run_import(path)

    assert Stance.objects.get(group__code="EPP").text == ""
    assert problems_of(report) == [("id 0", "stances[0].stance", "EPP stance text is empty: kept")]


# Per-record problems ----------------------------------------------------------------------------


def test_record_without_stances_is_skipped_and_reported(tmp_path):
    path = write_json(
        tmp_path, "topic_datas/agriculture.json", [topic_record(0, stances=[]), topic_record(1, title="Kept")]
    )

    report = run_import(path)

    assert list(Record.objects.values_list("title", flat=True)) == ["Kept"]
    assert problems_of(report) == [("id 0", "stances", "no stances: record skipped")]
    assert (report.files[0].records_kept, report.files[0].records_skipped) == (1, 1)


def test_unknown_group_for_the_term_drops_that_stance_only(tmp_path):
    # RENEW exists in the 9th term only; the record itself is kept with its other stances.
    stances = [stance("EPP", 0.9), stance("RENEW", 0.5), stance("SD", 0.3)]
    path = write_json(tmp_path, "t.json", [topic_record(4, stances=stances)])

    report = run_import(path)

    assert sorted(Stance.objects.values_list("group__code", flat=True)) == ["EPP", "SD"]
    assert problems_of(report) == [
        (
            "id 4",
            "stances[1].party_name",
            "unknown group code RENEW for the 7th term: map it in the admin (group aliases); stance skipped",
        )
    ]


def test_task_losing_a_stance_is_skipped_but_its_record_kept(tmp_path):
    record = topic_record(0, stances=[stance("EPP", 0.9), stance("SD", 0.3), stance("ENF", 0.1)])
    task = task_record(record, ["EPP", "SD", "ENF"], [0.2, 0.3, 0.5], "EPP")
    path = write_json(tmp_path, "t.json", [task])

    report = run_import(path)

    assert BenchmarkTask.objects.count() == 0
    assert Record.objects.get().stances.count() == 2
    assert (report.files[0].tasks_kept, report.files[0].tasks_skipped) == (0, 1)
    fields = [p.field for p in report.problems]
    assert fields == ["stances[2].party_name", "stances"]


def test_task_with_fewer_than_two_stances_is_skipped(tmp_path):
    record = topic_record(0, stances=[stance("EPP", 0.9)])
    path = write_json(tmp_path, "t.json", [task_record(record, ["EPP"], [1.0], "EPP")])

    report = run_import(path)

    assert BenchmarkTask.objects.count() == 0
    assert ("id 0", "stances", "a task needs at least 2 groups, it has 1: task skipped") in problems_of(report)


@pytest.mark.parametrize(
    ("field", "value"),
    [("choice", 10), ("choice", -1), ("choice", 4.5), ("score", 1.2), ("score", -0.1)],
)
def test_vote_out_of_range_drops_the_stance_and_names_the_field(tmp_path, field, value):
    record = topic_record(7, stances=[stance("EPP", 0.9), {**stance("SD", 0.3), field: value}])
    path = write_json(tmp_path, "t.json", [record])

    report = run_import(path)

    assert [(p.record, p.field) for p in report.problems] == [("id 7", f"stances[1].{field}")]
    assert list(Stance.objects.values_list("group__code", flat=True)) == ["EPP"]


def test_seat_weights_not_summing_to_one_skip_the_task(tmp_path):
    record = topic_record(0)
    path = write_json(tmp_path, "t.json", [task_record(record, ["EPP", "SD"], [0.5, 0.4], "EPP")])

    report = run_import(path)

    assert BenchmarkTask.objects.count() == 0 and Record.objects.count() == 1
    assert problems_of(report) == [("id 0", "seat_weights", "seat weights add up to 0.9, not 1: task skipped")]


def test_seat_weights_within_tolerance_are_accepted(tmp_path):
    record = topic_record(0)
    task = task_record(record, ["EPP", "SD", "ALDE"], [0.1, 0.2, 0.7000000001], "EPP")
    path = write_json(tmp_path, "t.json", [task])

    run_import(path)

    assert BenchmarkTask.objects.count() == 1


def test_seat_weights_not_aligned_with_stances_skip_the_task(tmp_path):
    record = topic_record(0)
    path = write_json(tmp_path, "t.json", [task_record(record, ["EPP", "SD"], [0.2, 0.3, 0.5], "EPP")])

    report = run_import(path)

    assert BenchmarkTask.objects.count() == 0
    assert problems_of(report) == [("id 0", "seat_weights", "3 seat weights for 2 stances: task skipped")]


def test_zero_or_negative_seat_weight_skips_the_task(tmp_path):
    record = topic_record(0)
    path = write_json(tmp_path, "t.json", [task_record(record, ["EPP", "SD"], [0.0, 1.0], "EPP")])

    report = run_import(path)

    assert BenchmarkTask.objects.count() == 0
    assert [p.field for p in report.problems] == ["seat_weights[0]"]


def test_veto_group_outside_the_task_skips_the_task(tmp_path):
    record = topic_record(0)
    path = write_json(tmp_path, "t.json", [task_record(record, ["EPP", "SD"], [0.5, 0.5], "ALDE")])

    report = run_import(path)

    assert BenchmarkTask.objects.count() == 0
    assert problems_of(report) == [
        ("id 0", "veto_party_name", "veto group 'ALDE' is not among the task's groups: task skipped")
    ]


def test_missing_and_invalid_record_fields_are_each_reported(tmp_path):
    broken = topic_record(0, term="11th_datas", total_score="lots")
    del broken["title"]
    path = write_json(tmp_path, "t.json", [broken, "not a record", topic_record(2, title="Fine")])

    report = run_import(path)

    assert list(Record.objects.values_list("title", flat=True)) == ["Fine"]
    by_field = {p.field: p for p in report.problems if p.record == "id 0"}
    assert set(by_field) == {"title", "parliament_terms", "total_score"}
    assert by_field["title"].message == "missing"
    assert "unknown parliament term" in by_field["parliament_terms"].message
    assert ("item 1", "", "expected a JSON object, found str: skipped") in problems_of(report)
    assert report.files[0].records_skipped == 2


def test_blank_title_is_invalid(tmp_path):
    path = write_json(tmp_path, "t.json", [topic_record(0, title=" \xa0 ")])

    report = run_import(path)

    assert Record.objects.count() == 0
    assert [(p.field, p.message) for p in report.problems] == [("title", "Value error, must not be empty")]


def test_duplicate_id_in_one_file_skips_the_later_record(tmp_path):
    path = write_json(tmp_path, "t.json", [topic_record(5), topic_record(5, title="Another issue")])

    report = run_import(path)

    assert list(Record.objects.values_list("title", flat=True)) == ["Rules on test widgets"]
    assert problems_of(report) == [("id 5", "id", "duplicate id in this file (first at item 0): skipped")]


def test_group_twice_in_one_record_keeps_the_first(tmp_path):
    stances = [stance("EPP", 0.9, text="first"), stance("epp", 0.1, text="second"), stance("SD", 0.5)]
    path = write_json(tmp_path, "t.json", [topic_record(0, stances=stances)])

    report = run_import(path)

    assert Stance.objects.get(group__code="EPP").text == "first"
    assert problems_of(report) == [("id 0", "stances[1].party_name", "group EPP appears twice: later stance skipped")]


# Identity and merging ---------------------------------------------------------------------------


def test_same_id_in_two_files_is_two_records(tmp_path):
    write_json(tmp_path, "topic_datas/agriculture.json", [topic_record(0, title="Farm issue")])
    write_json(tmp_path, "topic_datas/fisheries.json", [topic_record(0, title="Fish issue", topic="fisheries")])

    report = run_import(tmp_path)

    assert report.records == 2
    assert sorted(Record.objects.values_list("title", flat=True)) == ["Farm issue", "Fish issue"]


def test_same_issue_under_two_topics_is_one_record_with_both_topics(tmp_path):
    write_json(tmp_path, "topic_datas/agriculture.json", [topic_record(0)])
    write_json(tmp_path, "topic_datas/fisheries.json", [topic_record(9, topic="fisheries")])

    report = run_import(tmp_path)

    record = Record.objects.get()
    assert sorted(record.topics.values_list("name", flat=True)) == ["agriculture", "fisheries"]
    assert record.stances.count() == 3
    assert report.records == 1 and report.problems == []


def test_topic_and_task_files_of_one_issue_make_one_record_and_the_task(tmp_path):
    record = topic_record(0)
    write_json(tmp_path, "eurocon/topic_datas/agriculture.json", [record])
    write_json(
        tmp_path, "eurocon/task_datas/2/agriculture.json", [task_record(record, ["EPP", "ALDE"], [0.4, 0.6], "EPP")]
    )

    report = run_import(tmp_path / "eurocon")

    assert (Record.objects.count(), Stance.objects.count(), BenchmarkTask.objects.count()) == (1, 3, 1)
    assert report.problems == []
    assert BenchmarkTask.objects.get().record == Record.objects.get()


def test_task_file_adds_groups_the_topic_file_lacks(tmp_path):
    full = topic_record(0, stances=[stance("EPP", 0.9), stance("SD", 0.3), stance("GUE_NGL", 0.0)])
    write_json(tmp_path, "topic_datas/agriculture.json", [topic_record(0, stances=full["stances"][:2])])
    write_json(tmp_path, "task_datas/2/agriculture.json", [task_record(full, ["EPP", "GUE_NGL"], [0.5, 0.5], "EPP")])

    run_import(tmp_path)

    assert sorted(Stance.objects.values_list("group__code", flat=True)) == ["EPP", "GUE_NGL", "SD"]


def test_conflicting_stance_keeps_the_first_and_reports_it(tmp_path):
    record = topic_record(0)
    task = task_record(record, ["EPP", "SD"], [0.5, 0.5], "EPP")
    task["stances"][0] = stance("EPP", 0.2, text="EPP now says something else.")
    write_json(tmp_path, "topic_datas/agriculture.json", [record])
    write_json(tmp_path, "task_datas/2/agriculture.json", [task])

    report = run_import(tmp_path)

    epp = Stance.objects.get(group__code="EPP")
    assert (epp.text, epp.real_score) == ("EPP weighs the issue.\nEPP states its view.", 0.9)
    assert [(p.file.endswith("task_datas/2/agriculture.json"), p.field, p.message) for p in report.problems] == [
        (
            True,
            "stances[0]",
            f"EPP stance conflicts with {tmp_path.name}/topic_datas/agriculture.json (id 0): kept the first",
        )
    ]
    assert BenchmarkTask.objects.count() == 1


def test_stance_differing_from_the_stored_one_is_reported_and_not_overwritten(tmp_path):
    run_import(write_json(tmp_path, "first.json", [topic_record(0)]))
    changed = topic_record(0, stances=[stance("EPP", 0.9, text="EPP rewrote its view."), stance("GUE_NGL", 0.0)])

    report = run_import(write_json(tmp_path, "second.json", [changed]))

    assert Stance.objects.get(group__code="EPP").text == "EPP weighs the issue.\nEPP states its view."
    assert Stance.objects.filter(group__code="GUE_NGL").exists()
    assert report.stances_new == 1
    assert problems_of(report) == [
        ("id 0", "stances[0]", "EPP stance differs from the one already stored: kept the stored one")
    ]


def test_whitespace_differences_do_not_split_a_record(tmp_path):
    write_json(tmp_path, "a.json", [topic_record(0)])
    spaced = topic_record(1)
    spaced["title"] = "  Rules on\xa0test   widgets "
    write_json(tmp_path, "b.json", [spaced])

    run_import(tmp_path)

    assert Record.objects.count() == 1


def test_one_task_under_two_topics_is_two_tasks(tmp_path):
    record = topic_record(0)
    task = task_record(record, ["EPP", "SD"], [0.5, 0.5], "EPP")
    write_json(tmp_path, "task_datas/2/agriculture.json", [task])
    write_json(tmp_path, "task_datas/2/fisheries.json", [{**task, "topic": "fisheries"}])

    report = run_import(tmp_path)

    assert (report.records, report.tasks) == (1, 2)
    assert sorted(BenchmarkTask.objects.values_list("topic__name", flat=True)) == ["agriculture", "fisheries"]


def test_several_paths_go_into_one_record_set(tmp_path):
    first = write_json(tmp_path, "one.json", [topic_record(0, title="First")])
    second = write_json(tmp_path, "two.json", [topic_record(0, title="Second")])

    run_import(first, second, name="Both")

    assert RecordSet.objects.get().name == "Both"
    assert Record.objects.filter(record_set__name="Both").count() == 2


# Idempotency, atomicity, nothing kept -----------------------------------------------------------


def test_importing_the_same_data_twice_adds_nothing(tmp_path):
    record = topic_record(0)
    write_json(tmp_path, "topic_datas/agriculture.json", [record, topic_record(1, title="Other")])
    write_json(tmp_path, "task_datas/2/agriculture.json", [task_record(record, ["EPP", "SD"], [0.5, 0.5], "SD")])
    run_import(tmp_path)
    before = counts()

    again = run_import(tmp_path)

    assert counts() == before
    assert (again.records_new, again.stances_new, again.tasks_new) == (0, 0, 0)
    assert (again.records, again.tasks) == (2, 1)
    assert not again.record_set_created
    assert "New: 0 records, 0 stances, 0 tasks" in again.render()


def test_a_later_import_into_the_same_set_adds_only_what_is_new(tmp_path):
    record = topic_record(0)
    topic_file = write_json(tmp_path, "topic_datas/agriculture.json", [record])
    task_file = write_json(
        tmp_path, "task_datas/2/agriculture.json", [task_record(record, ["EPP", "SD"], [0.5, 0.5], "SD")]
    )
    run_import(topic_file)

    report = run_import(topic_file, task_file)

    assert (report.records_new, report.stances_new, report.tasks_new) == (0, 0, 1)
    assert (Record.objects.count(), BenchmarkTask.objects.count()) == (1, 1)


def test_the_same_data_under_another_name_is_a_separate_set(tmp_path):
    path = write_json(tmp_path, "t.json", [topic_record(0)])
    run_import(path, name="One")

    report = run_import(path, name="Two")

    assert report.records_new == 1
    assert Record.objects.count() == 2


def test_import_that_keeps_nothing_creates_nothing(tmp_path):
    path = write_json(tmp_path, "t.json", [topic_record(0, stances=[]), topic_record(1, term="3rd")])

    report = run_import(path, name="Empty")

    assert counts() == {"record sets": 0, "records": 0, "stances": 0, "tasks": 0, "topics": 0}
    assert not report.kept
    assert "nothing kept, nothing written" in report.render()


def test_failure_while_writing_leaves_the_database_unchanged(tmp_path, monkeypatch):
    first = write_json(tmp_path, "first.json", [topic_record(0, title="Already there")])
    run_import(first, name="Set")
    before = counts()
    record = topic_record(0, title="New issue", topic="fisheries")
    second = write_json(tmp_path, "task_datas/2/fisheries.json", [task_record(record, ["EPP", "SD"], [0.5, 0.5], "SD")])

    insert_rows = services._insert_rows

    def fail_on_tasks(model, *args, **kwargs):  # tasks are the last write of an import
        if model is BenchmarkTask:
            raise RuntimeError("disk full")
        return insert_rows(model, *args, **kwargs)

    monkeypatch.setattr(services, "_insert_rows", fail_on_tasks)
    with pytest.raises(RuntimeError, match="disk full"):
        run_import(second, name="Set")
    with pytest.raises(RuntimeError, match="disk full"):
        run_import(second, name="Fresh set")

    assert counts() == before
    assert not Topic.objects.filter(name="fisheries").exists()


# Unreadable files, folders and zips -------------------------------------------------------------


def test_unreadable_files_are_reported_and_the_rest_imported(tmp_path):
    folder = tmp_path / "upload"
    write_json(folder, "topic_datas/agriculture.json", [topic_record(0)])
    (folder / "topic_datas" / "truncated.json").write_text('[{"title": "Cut off', encoding="utf-8")
    (folder / "topic_datas" / "latin1.json").write_bytes('[{"title": "Caf\xe9"}]'.encode("latin-1"))
    (folder / "topic_datas" / "object.json").write_text('{"records": []}', encoding="utf-8")
    (folder / "LICENSE").write_text("MIT", encoding="utf-8")

    report = run_import(folder)

    assert Record.objects.count() == 1
    unreadable = {f.name.rsplit("/", 1)[-1]: f.problems[0].message for f in report.files if f.kind == "unreadable"}
    assert set(unreadable) == {"truncated.json", "latin1.json", "object.json"}
    assert unreadable["truncated.json"].startswith("not valid JSON, perhaps truncated (Unterminated string")
    assert unreadable["latin1.json"] == "not UTF-8 text (byte 0xe9 at offset 15): not read"
    assert unreadable["object.json"] == "expected a JSON list of records, found dict: not read"
    assert report.kept


def test_missing_path_is_reported(tmp_path):
    report = run_import(tmp_path / "nowhere")

    assert problems_of(report) == [("", "", "no such file or folder")]
    assert RecordSet.objects.count() == 0


def zip_bytes(members: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data if isinstance(data, str) else json.dumps(data))
    return buffer.getvalue()


def test_zip_of_a_release_folder_imports_like_the_folder(tmp_path):
    record = topic_record(0)
    archive = tmp_path / "release.zip"
    archive.write_bytes(
        zip_bytes(
            {
                "eurocon/topic_datas/agriculture.json": [record],
                "eurocon/task_datas/2/agriculture.json": [task_record(record, ["EPP", "SD"], [0.5, 0.5], "SD")],
                "eurocon/LICENSE": "MIT",
                "__MACOSX/eurocon/._agriculture.json": "junk",
            }
        )
    )

    report = run_import(archive)

    assert [f.name for f in report.files] == [
        "release.zip:eurocon/topic_datas/agriculture.json",
        "release.zip:eurocon/task_datas/2/agriculture.json",
    ]
    assert [f.kind for f in report.files] == ["topic", "task"]
    assert (Record.objects.count(), BenchmarkTask.objects.count()) == (1, 1)


def test_zip_with_members_that_escape_is_refused_whole_and_nothing_written(tmp_path):
    archive = tmp_path / "upload" / "evil.zip"
    archive.parent.mkdir()
    members = {
        "../evil.json": [topic_record(0, title="Evil")],
        "/abs.json": [topic_record(1)],
        "ok.json": [topic_record(2, title="Good")],
    }
    archive.write_bytes(zip_bytes(members))

    report = run_import(archive)

    assert problems_of(report) == [
        ("", "", "zip member path '../evil.json' is absolute or climbs out with '..': the archive is refused")
    ]
    assert not report.kept and Record.objects.count() == 0 and RecordSet.objects.count() == 0
    assert not (tmp_path / "evil.json").exists()


def test_corrupt_zip_is_reported(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(zip_bytes({"a.json": [topic_record(0)]})[:-30])

    report = run_import(archive)

    assert report.files[0].kind == "unreadable"
    assert not report.kept


# The report --------------------------------------------------------------------------------------


def test_report_renders_a_table_of_files_totals_and_problems(tmp_path):
    write_json(tmp_path, "topic_datas/agriculture.json", [topic_record(0), topic_record(1, title="B", stances=[])])

    text = run_import(tmp_path, name="Rendered").render()

    lines = text.splitlines()
    assert lines[0].startswith('Import into record set "Rendered" (new record set, version 1), ')
    assert lines[2].split() == ["file", "kind", "records", "kept", "skipped", "tasks", "kept", "skipped", "problems"]
    assert lines[4].split() == [f"{tmp_path.name}/topic_datas/agriculture.json", "topic", "1", "1", "-", "-", "1"]
    assert any(line.split() == ["total", "(distinct)", "1", "1", "0", "0", "1"] for line in lines)
    assert "Problems (1):" in lines
    assert lines[-1].split()[-4:] == ["no", "stances:", "record", "skipped"]


# A release in EuroCon's layout -------------------------------------------------------------------


def test_a_release_in_eurocons_layout_keeps_every_benchmark_task():
    """fixtures/eurocon_subset: two topics written for this project in the release's layout, with
    its quirks: records without stances in the topic files, and a topic known only from its task
    files (as the release's budgetary control)."""
    report = run_import(EUROCON_SUBSET, name="EuroCon")

    assert report.tasks_by_party_count == {2: 5, 4: 5, 6: 4}
    stored = BenchmarkTask.objects.order_by("party_count").values_list("party_count").annotate(n=Count("id"))
    assert list(stored) == [(2, 5), (4, 5), (6, 4)]
    # 4 topic-file records with stances plus 1 budgetary-control record known only from tasks.
    assert Record.objects.count() == report.records == 5
    assert Record.objects.filter(topics__name="budgetary control").count() == 1
    assert Topic.objects.count() == 3
    assert report.records_skipped == 2  # the topic-file records with no stances
    assert all(problem.message.endswith(("record skipped", "kept")) for problem in report.problems)
    assert {term for (term,) in Record.objects.values_list("term")} == {"8th"}


def test_control_characters_in_a_title_or_a_stance_are_reported_by_the_check_per_field(tmp_path):
    stances = [stance("EPP", 0.9, text="EPP agrees\u0000"), stance("SD", 0.5), stance("ALDE", 0.2)]
    records = [
        topic_record(0, title="Rules on\u0000 widgets"),
        topic_record(1, title="Fine", stances=stances),
        topic_record(2, title="Tabs\tand\nlines are text"),
    ]
    path = write_json(tmp_path, "t.json", records)

    plan = services.records_check(paths=[path], name="Test set")

    problems = {(p.record, p.field): p.message for p in plan.report.problems}
    assert "U+0000" in problems[("id 0", "title")]
    assert "U+0000" in problems[("id 1", "stances[0].stance")]
    report = run_import(path)
    assert sorted(Record.objects.values_list("title", flat=True)) == ["Fine", "Tabs and lines are text"]
    assert set(Stance.objects.filter(record__title="Fine").values_list("group__code", flat=True)) == {"SD", "ALDE"}
    assert report.records_skipped == 1


def test_a_zip_is_read_one_member_at_a_time(tmp_path):
    """Peak memory is about one member, not the archive: six 4 MiB members (blank JSON lists) never
    sit in memory together."""
    import tracemalloc

    member = b"[" + b" " * (4 * 2**20) + b"]"
    path = tmp_path / "wide.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(6):
            archive.writestr(f"topic_datas/t{index}.json", member)
    tracemalloc.start()
    try:
        plan = services.records_check(paths=[path], name="Test set")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(plan.report.files) == 6 and not plan.report.unreadable
    assert peak < 5 * len(member), f"peak {peak / 2**20:.1f} MiB"
