import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from deliberation.records.management.commands.import_records import default_name
from deliberation.records.models import Record, RecordSet
from tests.unit.records.builders import topic_record, write_json

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[3]


def call(*args: str) -> str:
    out = io.StringIO()
    call_command("import_records", *args, stdout=out)
    return out.getvalue()


def test_command_prints_the_report_and_imports_under_the_given_name(tmp_path):
    path = write_json(tmp_path, "topic_datas/agriculture.json", [topic_record(0)])

    output = call(str(path), "--name", "Mine", "--description", "a test set")

    assert 'Import into record set "Mine" (new record set, version 1)' in output
    assert "New: 1 records, 3 stances, 0 tasks" in output
    assert RecordSet.objects.get().description == "a test set"


def test_default_name_comes_from_the_first_path(tmp_path):
    folder = tmp_path / "eurocon_release"
    write_json(folder, "topic_datas/agriculture.json", [topic_record(0)])
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("topic_datas/fisheries.json", json.dumps([topic_record(0, title="Fish", topic="fisheries")]))

    call(str(folder), str(tmp_path / "topic.json"))
    call(str(archive))

    assert set(RecordSet.objects.values_list("name", flat=True)) == {"eurocon_release", "upload"}
    assert default_name(tmp_path / "x" / "agriculture.json") == "agriculture"


def test_command_fails_clearly_when_nothing_is_kept(tmp_path):
    path = write_json(tmp_path, "t.json", [topic_record(0, stances=[])])

    with pytest.raises(CommandError, match="Nothing was imported into 'Empty'"):
        call(str(path), "--name", "Empty")

    assert (RecordSet.objects.count(), Record.objects.count()) == (0, 0)


def test_command_exits_non_zero_from_the_shell(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )

    assert manage("migrate", "--noinput", "-v0").returncode == 0
    result = manage("import_records", str(tmp_path / "missing.json"))

    assert result.returncode == 1
    assert "no such file or folder" in result.stdout
    assert "Nothing was imported into 'missing'" in result.stderr
