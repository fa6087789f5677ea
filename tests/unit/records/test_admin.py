import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from deliberation.records.models import (
    BenchmarkTask,
    GroupAlias,
    PartyGroup,
    Record,
    RecordSet,
    RecordSetVersion,
    RecordUpload,
    Topic,
)
from tests.unit.records.builders import run_import, stance, task_record, topic_record, write_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.org", "a-long-test-password"))
    return client


@pytest.fixture
def imported(tmp_path):
    record = topic_record(0, title="Widget rules")
    ninth = topic_record(1, title="Cod quotas", topic="fisheries", term="9th_datas", stances=[stance("RENEW", 0.7)])
    write_json(tmp_path, "topic_datas/agriculture.json", [record, ninth])
    write_json(tmp_path, "task_datas/2/agriculture.json", [task_record(record, ["EPP", "SD"], [0.3, 0.7], "SD")])
    run_import(tmp_path, name="Admin set")


@pytest.mark.parametrize(
    "model", [PartyGroup, Topic, RecordSet, Record, BenchmarkTask, RecordSetVersion, GroupAlias, RecordUpload]
)
def test_changelists_open(admin_client, imported, model):
    response = admin_client.get(reverse(f"admin:records_{model._meta.model_name}_changelist"))
    assert response.status_code == 200


def test_record_changelist_filters_by_term_and_topic_and_searches_titles(admin_client, imported):
    url = reverse("admin:records_record_changelist")
    agriculture = Topic.objects.get(name="agriculture")

    assert "Widget rules" in admin_client.get(url, {"term__exact": "7th"}).text
    ninth = admin_client.get(url, {"term__exact": "9th"}).text
    assert "Widget rules" not in ninth and "Cod quotas" in ninth
    assert "Widget rules" in admin_client.get(url, {"topics__id__exact": agriculture.pk}).text
    quota = admin_client.get(url, {"q": "quota"}).text
    assert "Widget rules" not in quota and "Cod quotas" in quota
    assert "Widget rules" in admin_client.get(url, {"q": "widget"}).text


def test_record_page_shows_its_stances_inline(admin_client, imported):
    record = Record.objects.get(title="Widget rules")
    response = admin_client.get(reverse("admin:records_record_change", args=[record.pk]))

    assert response.status_code == 200
    assert "EPP weighs the issue." in response.text
    assert 'name="stances-TOTAL_FORMS" value="3"' in response.text


def test_task_changelist_shows_groups_with_seat_shares(admin_client, imported):
    response = admin_client.get(reverse("admin:records_benchmarktask_changelist"))
    assert "EPP 30%, SD 70%" in response.text


def test_adding_an_upload_in_the_admin_opens_the_upload_page(admin_client):
    response = admin_client.get(reverse("admin:records_recordupload_add"))
    assert response.status_code == 302 and response.url == reverse("record-upload")


def test_version_list_links_to_the_comparison(admin_client, imported, tmp_path):
    run_import(write_json(tmp_path, "more.json", [topic_record(9, title="More")]), name="Admin set")
    record_set = RecordSet.objects.get(name="Admin set")

    text = admin_client.get(reverse("admin:records_recordsetversion_changelist")).text

    assert f'{reverse("record-set-compare", args=[record_set.pk])}?old=1&amp;new=2' in text
    compare = admin_client.get(reverse("record-set-compare", args=[record_set.pk]), {"old": 1, "new": 2}).text
    assert "1 added, 0 removed, 0 changed" in compare and "More" in compare
