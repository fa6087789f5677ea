"""fixtures/sample_records: the original sample set that `make run` imports."""

import json
import math
from pathlib import Path

import pytest

from deliberation.records.models import BenchmarkTask, PartyGroup, Record
from tests.unit.records.builders import run_import

SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "sample_records"
SAMPLE_NAME = "Sample EP issues"


def topic_records() -> list[dict]:
    return [
        record for path in sorted((SAMPLE / "topic_datas").glob("*.json")) for record in json.loads(path.read_text())
    ]


def test_sample_spans_a_dozen_issues_six_topics_and_three_terms():
    records = topic_records()
    assert 12 <= len(records) <= 14
    assert len({record["topic"] for record in records}) >= 6
    assert {record["parliament_terms"] for record in records} == {"7th_datas", "8th_datas", "9th_datas"}


def test_sample_records_read_like_the_benchmark():
    for record in topic_records():
        assert record["resolution"].startswith("The European Parliament")
        assert 40 <= len(record["background"].split()) <= 70
        assert 150 <= len(record["resolution"].split()) <= 210
        assert 4 <= len(record["stances"]) <= 7
        assert record["party_num"] == len(record["stances"])
        assert record["total_choice"] == min(9, math.floor(10 * record["total_score"]))
        for stance in record["stances"]:
            assert stance["choice"] == min(9, math.floor(10 * stance["score"]))
            assert len(stance["stance"].split("  \n")) == 5


def test_groups_are_divided_on_most_issues():
    divided = [
        r
        for r in topic_records()
        if max(s["choice"] for s in r["stances"]) - min(s["choice"] for s in r["stances"]) >= 5
    ]
    assert len(divided) >= len(topic_records()) * 2 / 3


def test_task_files_are_what_make_sample_tasks_generates():
    from fixtures.make_sample_tasks import PARTY_COUNTS, task_records

    for path in sorted((SAMPLE / "topic_datas").glob("*.json")):
        records = json.loads(path.read_text())
        for k in PARTY_COUNTS:
            expected = task_records(records, topic=path.stem, k=k)
            task_file = SAMPLE / "task_datas" / str(k) / path.name
            assert (json.loads(task_file.read_text()) if task_file.exists() else []) == expected


@pytest.mark.django_db
def test_sample_imports_cleanly_and_idempotently():
    first = run_import(SAMPLE, name=SAMPLE_NAME)
    second = run_import(SAMPLE, name=SAMPLE_NAME)

    assert first.problems == [] and second.problems == []
    assert (first.records_new, first.tasks_new) == (len(topic_records()), first.tasks)
    assert first.tasks_by_party_count == {2: 13, 4: 13, 6: 11}
    assert (second.records_new, second.stances_new, second.tasks_new) == (0, 0, 0)
    assert Record.objects.count() == len(topic_records())
    assert BenchmarkTask.objects.count() == 37
    for record in Record.objects.prefetch_related("stances__group"):
        assert all(stance.group.term == record.term for stance in record.stances.all())
    assert PartyGroup.objects.filter(stances__isnull=False).distinct().count() == 22
