"""One run's export: its tables and their data dictionary, for whoever may watch the run."""

import csv
import io
import json
import zipfile

from django.urls import reverse

from deliberation.runs.models import Run, RunEvent
from tests.factories import make_record, make_user


def make_finished_run(owner) -> Run:
    record = make_record()
    run = Run.objects.create(
        owner=owner,
        record=record,
        groups=["EPP", "SD"],
        seat_structure="equal",
        seats={"EPP": 0.5, "SD": 0.5},
        goal="simple_majority",
        strategy="parliament",
        model="scripted:default",
        judge="scripted",
        status=Run.Status.FINISHED,
        outcome={
            "goals": {"simple_majority": True},
            "scores": {"EPP": 8, "SD": 3},
            "weighted_total": 5.5,
            "fallbacks": [],
        },
    )
    RunEvent.objects.create(run=run, seq=1, type="run_started", data={"groups": ["EPP", "SD"]})
    RunEvent.objects.create(
        run=run, seq=2, type="speech", data={"group": "EPP", "text": "<b>Hello</b>", "by": "students"}
    )
    return run


def test_owner_downloads_the_runs_tables_and_dictionary_as_csv(client, db):
    owner = make_user()
    run = make_finished_run(owner)
    client.force_login(owner)
    response = client.get(reverse("run-export", args=[run.pk]), {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f'filename="run-{run.pk}.zip"' in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == sorted(
        ["runs.csv", "group_scores.csv", "events.csv", "data_dictionary.csv", "data_dictionary.json", "README.txt"]
    )
    runs = list(csv.DictReader(io.StringIO(archive.read("runs.csv").decode())))
    assert [(row["run_id"], row["experiment_id"], row["goal_passed"]) for row in runs] == [(str(run.pk), "", "true")]
    scores = list(csv.DictReader(io.StringIO(archive.read("group_scores.csv").decode())))
    assert [(row["group"], row["score"]) for row in scores] == [("EPP", "8"), ("SD", "3")]
    events = list(csv.DictReader(io.StringIO(archive.read("events.csv").decode())))
    assert [row["seq"] for row in events] == ["1", "2"]
    assert json.loads(events[1]["data_json"])["text"] == "<b>Hello</b>"
    tables = {row["table"] for row in json.loads(archive.read("data_dictionary.json"))}
    assert tables == {"runs", "group_scores", "events"}


def test_run_page_links_its_export(client, db):
    owner = make_user()
    run = make_finished_run(owner)
    client.force_login(owner)
    page = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert f'{reverse("run-export", args=[run.pk])}?format=csv' in page


def test_json_export_and_unknown_formats(client, db):
    owner = make_user()
    run = make_finished_run(owner)
    client.force_login(owner)
    response = client.get(reverse("run-export", args=[run.pk]), {"format": "json"})
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert json.loads(archive.read("events.json"))[1]["type"] == "speech"
    assert client.get(reverse("run-export", args=[run.pk]), {"format": "xls"}).status_code == 400


def test_others_cannot_export_a_private_run(client, db):
    run = make_finished_run(make_user())
    client.force_login(make_user("bob"))
    assert client.get(reverse("run-export", args=[run.pk])).status_code == 404


def test_the_export_streams_in_pieces_and_never_holds_the_tables_or_the_zip(db):
    import tracemalloc

    from deliberation.runs.exports import run_export

    run = make_finished_run(make_user())
    text = "x" * 2000
    RunEvent.objects.bulk_create(
        RunEvent(run=run, seq=seq, type="speech", data={"group": "EPP", "text": f"{seq} {text}"})
        for seq in range(3, 15003)
    )
    events_bytes = 15000 * len(text)
    tracemalloc.start()
    try:
        pieces = 0
        size = 0
        for piece in run_export(run=run, formats=["csv", "json"]):
            pieces += 1
            size += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pieces > 10 and size > 0
    assert peak < events_bytes / 2, f"peak {peak / 2**20:.1f} MiB for {events_bytes / 2**20:.1f} MiB of events"
