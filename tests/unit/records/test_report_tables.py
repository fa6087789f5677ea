"""The import check as people read it: counts sorted, groups labelled and seated left to right;
the record page gives each stance the page's width."""

import pytest
from django.urls import reverse

from deliberation.records.models import PartyGroup
from deliberation.records.selectors import import_report_tables
from tests.factories import make_record, make_user

pytestmark = pytest.mark.django_db


def test_report_counts_are_sorted_and_groups_labelled_in_seating_order():
    PartyGroup.objects.update_or_create(code="SD", term="7th", defaults={"label": "Socialists", "short_label": "S&D"})
    PartyGroup.objects.update_or_create(code="SD", term="10th", defaults={"label": "Socialists", "short_label": "S&D"})
    tables = import_report_tables(
        {
            "tasks_by_party_count": {"6": 1, "2": 5, "4": 3},
            "records_by_topic": {"fisheries": 1, "agriculture": 2},
            "records_by_term": {"9th": 1, "10th": 2, "7th": 3},
            "stances_by_group": {"7th EPP": 2, "10th SD": 1, "7th SD": 4, "7th GUE_NGL": 1, "7th NEWCODE": 1},
        }
    )
    assert tables["tasks_by_party_count"] == [(2, 5), (4, 3), (6, 1)]
    assert tables["records_by_topic"] == [("agriculture", 2), ("fisheries", 1)]
    assert [term for term, _ in tables["records_by_term"]] == ["7th", "9th", "10th"]
    assert [block["term"] for block in tables["stances_by_term"]] == ["7th", "10th"]
    seventh = tables["stances_by_term"][0]["groups"]
    assert [(g["code"], g["label"]) for g in seventh] == [
        ("GUE_NGL", "GUE/NGL"),
        ("SD", "S&D"),
        ("EPP", "EPP"),
        ("NEWCODE", "NEWCODE"),
    ]


def test_the_record_page_puts_each_stance_under_its_group_across_the_width(client):
    client.force_login(make_user())
    record = make_record()
    page = client.get(reverse("record", args=[record.pk])).content.decode()
    assert 'class="stance-list" data-testid="record-stances"' in page and "<table class=\"data stances\"" not in page
    # seated left to right: S&D, the Greens, ALDE, the EPP
    order = [page.index(f'data-group="{code}"') for code in ("SD", "GREEN_EFA", "ALDE", "EPP")]
    assert order == sorted(order)
