"""The records 0002 data migration loads fixtures/ep_groups.json into every database."""

import json
from pathlib import Path

import pytest
from django.db.models import Sum

from deliberation.records.models import PartyGroup

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "ep_groups.json"
DATA_CODES = {
    "7th": {"EPP", "EFD", "SD", "ALDE", "ECR", "GREEN_EFA", "GUE_NGL"},
    "8th": {"EPP", "SD", "ECR", "EFDD", "GREEN_EFA", "GUE_NGL", "ALDE", "ENF"},
    "9th": {"EPP", "SD", "ECR", "RENEW", "GREEN_EFA", "GUE_NGL", "ID"},
    "10th": {"EPP", "SD", "PFE", "ECR", "RENEW", "GREEN_EFA", "GUE_NGL", "ESN"},  # HowTheyVote imports
}


def test_migrated_database_has_exactly_the_groups_the_data_uses():
    for term, codes in DATA_CODES.items():
        assert set(PartyGroup.objects.filter(term=term).values_list("code", flat=True)) == codes


@pytest.mark.parametrize(
    ("term", "code", "seats"),
    [
        ("7th", "EPP", 265),
        ("7th", "SD", 184),
        ("7th", "ALDE", 84),
        ("7th", "GREEN_EFA", 55),
        ("7th", "ECR", 54),
        ("7th", "GUE_NGL", 35),
        ("7th", "EFD", 32),
        ("8th", "EPP", 221),
        ("8th", "SD", 191),
        ("8th", "ECR", 70),
        ("8th", "ALDE", 67),
        ("8th", "GUE_NGL", 52),
        ("8th", "GREEN_EFA", 50),
        ("8th", "EFDD", 48),
        ("8th", "ENF", 36),
        ("9th", "EPP", 182),
        ("9th", "SD", 154),
        ("9th", "RENEW", 108),
        ("9th", "GREEN_EFA", 74),
        ("9th", "ID", 73),
        ("9th", "ECR", 62),
        ("9th", "GUE_NGL", 41),
        ("10th", "EPP", 188),
        ("10th", "SD", 136),
        ("10th", "PFE", 84),
        ("10th", "ECR", 78),
        ("10th", "RENEW", 77),
        ("10th", "GREEN_EFA", 53),
        ("10th", "GUE_NGL", 46),
        ("10th", "ESN", 25),
    ],
)
def test_seats_at_the_start_of_each_term(term, code, seats):
    assert PartyGroup.objects.get(term=term, code=code).seats_at_start == seats


def test_group_seats_and_non_attached_add_up_to_the_house():
    terms = json.loads(FIXTURE.read_text(encoding="utf-8"))["terms"]
    for term, facts in terms.items():
        groups = PartyGroup.objects.filter(term=term).exclude(code="ENF")  # ENF formed mid-term
        assert groups.aggregate(total=Sum("seats_at_start"))["total"] + facts["non_attached"] == facts["seats_total"]


def test_every_group_has_labels_and_a_hex_colour():
    for group in PartyGroup.objects.all():
        assert group.label and group.short_label
        assert len(group.colour) == 7 and group.colour.startswith("#")
        int(group.colour[1:], 16)


def test_enf_carries_a_note_that_it_formed_mid_term():
    enf = next(g for g in json.loads(FIXTURE.read_text(encoding="utf-8"))["groups"] if g["code"] == "ENF")
    assert "June 2015" in enf["note"]


def test_every_known_group_has_a_seat_in_the_chamber_order():
    """The hemicycle seats groups by SEATING_ORDER (far left to the right, then the non-attached):
    a group of the fixture missing from it would be seated at the far right by default."""
    import json
    from pathlib import Path

    from deliberation.records.models import SEATING_ORDER, seating_key

    fixture = json.loads((Path(__file__).resolve().parents[3] / "fixtures" / "ep_groups.json").read_text())
    codes = {group["code"] for group in fixture["groups"]}
    assert codes <= set(SEATING_ORDER), codes - set(SEATING_ORDER)
    assert sorted(["EPP", "GUE_NGL", "ECR", "SD", "GREEN_EFA"], key=seating_key) == [
        "GUE_NGL",
        "SD",
        "GREEN_EFA",
        "EPP",
        "ECR",
    ]
