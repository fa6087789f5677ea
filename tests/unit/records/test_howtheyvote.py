"""records/howtheyvote.py: HowTheyVote.eu's CSV export (fixtures/howtheyvote, invented rows in the
export's column layout) imported as records with real group votes, bad rows reported."""

import io
import shutil
import zipfile
from datetime import date
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from deliberation.records.howtheyvote import GROUP_CODES, group_vote, howtheyvote_import, term_of
from deliberation.records.models import Record, RecordSet, Stance

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "howtheyvote"


def stances(title: str) -> dict[str, tuple[float, int]]:
    record = Record.objects.get(title=title)
    return {
        s.group.code: (s.real_score, s.real_choice)
        for s in Stance.objects.filter(record=record).select_related("group")
    }


def test_the_fixtures_import_with_group_votes_on_the_0_to_9_scale():
    report = howtheyvote_import(folder=FIXTURES, name="HowTheyVote")
    assert (report.records, report.records_new, report.stances_new) == (3, 3, 14)
    # 9th term: EPP 3 of 4 for; RENEW 1 for, 1 abstention; ID against (its absent member left out)
    assert stances("Test directive on urban soil monitoring") == {
        "EPP": (0.75, 7),
        "SD": (1.0, 9),
        "RENEW": (0.5, 5),
        "GREEN_EFA": (1.0, 9),
        "ID": (0.0, 0),
    }
    # 8th term, their codes mapped: EPP_2009_0 -> EPP, EFD -> EFDD, GUE_NGL_1995_0 -> GUE_NGL; NI left out
    assert stances("Test regulation on coastal ferry safety") == {
        "EPP": (1.0, 9),
        "EFDD": (0.0, 0),
        "GUE_NGL": (0.5, 5),
    }
    # 10th term: PfE and ESN; the title falls back to the procedure's; ECR's bad row is skipped
    assert stances("Test resolution on rail freight corridors") == {
        "EPP": (1.0, 9),
        "SD": (0.0, 0),
        "PFE": (0.0, 0),
        "ESN": (0.0, 0),
        "RENEW": (1.0, 9),
        "ECR": (1.0, 9),
    }
    record = Record.objects.get(title="Test directive on urban soil monitoring")
    assert (record.term, record.real_total_choice) == ("9th", 7)
    assert list(record.topics.values_list("name", flat=True)) == ["environment & public health"]
    assert "2022/0999(COD)" in record.background and "2023-05-10" in record.background
    assert record.background.endswith("HowTheyVote.eu vote 900002.")
    assert "3 of the group's 4 members who voted were in favour" in record.stances.get(group__code="EPP").text


def test_bad_rows_are_reported_with_file_row_and_field():
    report = howtheyvote_import(folder=FIXTURES, name="HowTheyVote")
    problems = {(p.file, p.record, p.field) for p in report.problems}
    assert problems == {
        ("votes.csv", "id 900005", "timestamp"),
        ("votes.csv", "id 900006", "display_title"),
        ("votes.csv", "id 900002", "id"),
        ("votes.csv", "id 900007", "is_main"),
        ("votes.csv", "", "is_main"),  # one vote (an amendment) is not a main vote
        ("member_votes.csv", "line 35", "position"),
        ("member_votes.csv", "vote 900004", "group_code"),
        ("member_votes.csv", "line 38", "vote_id"),
    }
    assert report.file("votes.csv").records_skipped == 4
    assert report.file("member_votes.csv").stances_skipped == 3
    assert "appears twice" in report.render()


def test_importing_again_adds_nothing_and_keeps_the_version():
    howtheyvote_import(folder=FIXTURES, name="HowTheyVote")
    again = howtheyvote_import(folder=FIXTURES, name="HowTheyVote")
    assert (again.records_new, again.stances_new, again.version, again.version_created) == (0, 0, 1, False)


def test_a_folder_without_the_tables_writes_nothing(tmp_path):
    shutil.copy(FIXTURES / "groups.csv", tmp_path / "groups.csv")
    (tmp_path / "votes.csv").write_text("id,timestamp\n1,2020-01-01 10:00:00\n")
    report = howtheyvote_import(folder=tmp_path, name="Broken")
    assert not report.kept and not RecordSet.objects.exists()
    assert report.file("votes.csv").kind == "unreadable"
    assert "missing columns" in report.file("votes.csv").problems[0].message
    assert "cannot be read" in report.file("member_votes.csv").problems[0].message


def test_a_group_of_another_term_is_reported(tmp_path):
    for name in ("votes.csv", "groups.csv"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    # RENEW did not exist in the 8th term
    (tmp_path / "member_votes.csv").write_text(
        "vote_id,member_id,position,country_code,group_code\n900001,1,FOR,FRA,RENEW\n900001,2,FOR,DEU,EPP_2009_0\n"
    )
    report = howtheyvote_import(folder=tmp_path, name="Terms")
    assert any("no group of the 8th term" in p.message for p in report.problems)
    assert stances("Test regulation on coastal ferry safety") == {"EPP": (1.0, 9)}


def test_import_records_command_reads_the_howtheyvote_format():
    out = io.StringIO()
    call_command("import_records", str(FIXTURES), "--format", "howtheyvote", "--name", "HTV", stdout=out)
    assert 'Import into record set "HTV" (new record set, version 1)' in out.getvalue()
    assert "Records by term: 10th: 1, 8th: 1, 9th: 1" in out.getvalue()
    with pytest.raises(CommandError, match="one export"):
        call_command("import_records", str(FIXTURES), str(FIXTURES), "--format", "howtheyvote", stdout=out)


def test_group_vote_and_terms():
    assert group_vote({"FOR": 2, "AGAINST": 1, "ABSTENTION": 0, "DID_NOT_VOTE": 5}) == (2 / 3, 6)
    assert group_vote({"FOR": 9, "AGAINST": 1}) == (0.9, 9)
    assert group_vote({"DID_NOT_VOTE": 3}) is None
    assert term_of(date(2019, 7, 1)) == "8th" and term_of(date(2019, 7, 2)) == "9th"
    assert term_of(date(2024, 7, 15)) == "9th" and term_of(date(2024, 7, 16)) == "10th"
    assert term_of(date(2009, 7, 13)) is None
    assert GROUP_CODES["EFD"] == "EFDD" and GROUP_CODES["EFD_2009_0"] == "EFD"


def test_the_published_zip_imports_as_the_folder_does(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in FIXTURES.iterdir():
            out.write(path, f"export/{path.name}")
        out.writestr("export/README.md", "not a table")
    report = howtheyvote_import(folder=archive, name="Zipped")
    assert (report.records_new, report.stances_new, len(report.problems)) == (3, 14, 8)
    assert stances("Test regulation on coastal ferry safety") == {
        "EPP": (1.0, 9),
        "EFDD": (0.0, 0),
        "GUE_NGL": (0.5, 5),
    }


def test_an_unsafe_zip_or_something_else_is_refused_whole(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("../votes.csv", (FIXTURES / "votes.csv").read_text())
    report = howtheyvote_import(folder=archive, name="Bad")
    assert not report.kept and "climbs out" in report.problems[0].message
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not a folder or a zip archive" in howtheyvote_import(folder=text, name="Bad").problems[0].message
    assert not RecordSet.objects.exists()
