"""The calibration pages: the list, one calibration with its figures and tables."""

import json
from pathlib import Path

import pytest
from django.urls import reverse

from deliberation.calibration.services import calibration_run
from deliberation.records.services import records_import
from tests.factories import make_user

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[3] / "fixtures" / "sample_records"


@pytest.fixture
def calibration():
    records_import(paths=[SAMPLE], name="Sample EP issues")
    return calibration_run(record_set="Sample EP issues", judge="scripted", resamples=50)


def test_calibration_page_shows_metrics_and_the_three_figures(client, calibration):
    client.force_login(make_user("ann"))
    response = client.get(reverse("calibration-detail", args=[calibration.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "vendor/plotly/plotly.min.js" in page and "js/calibration.js" in page
    figures = {}
    for name in ("scatter", "confusion", "bias"):
        marker = f'<script id="calibration-figure-{name}" type="application/json">'
        assert marker in page
        figures[name] = json.loads(page.split(marker)[1].split("</script>")[0])
    assert figures["confusion"]["data"][0]["z"] == calibration.results["confusion"]
    assert sum(len(trace["x"]) for trace in figures["scatter"]["data"][:-1]) == 86  # the last trace is y = x
    assert figures["bias"]["data"][0]["x"] == sorted(calibration.results["bias_by_group"])
    assert 'data-testid="confusion"' in page and 'data-testid="bias-group"' in page
    assert f"{calibration.results['mae']:.2f}" in page
    assert f"calibrated:{calibration.pk}" in page  # the isotonic map, selectable as a judge


def test_calibration_list_links_each_calibration_and_filters_by_record_set(client, calibration):
    client.force_login(make_user("ann"))
    page = client.get(reverse("calibration-list")).content.decode()
    assert reverse("calibration-detail", args=[calibration.pk]) in page
    other = client.get(reverse("calibration-list"), {"record_set": calibration.record_set_id + 1}).content.decode()
    assert reverse("calibration-detail", args=[calibration.pk]) not in other


def test_calibration_pages_need_sign_in_and_unknown_ids_are_404(client, calibration):
    assert client.get(reverse("calibration-detail", args=[calibration.pk])).status_code == 302
    client.force_login(make_user("ann"))
    assert client.get(reverse("calibration-detail", args=[calibration.pk + 99])).status_code == 404


def test_a_calibration_being_played_shows_its_progress_and_is_no_judge_yet(client):
    from deliberation.calibration.models import Calibration
    from deliberation.calibration.services import calibration_create
    from deliberation.registry.clients import judge_choices

    records_import(paths=[SAMPLE], name="Sample EP issues")
    queued = calibration_create(record_set="Sample EP issues", judge="real-votes", limit=6, enqueue=False)
    Calibration.objects.filter(pk=queued.pk).update(status=Calibration.Status.FAILED, error="worker <lost>")
    client.force_login(make_user("ann"))
    page = client.get(reverse("calibration-detail", args=[queued.pk])).content.decode()
    assert 'data-status="failed"' in page and "0 of 6 scores made" in page
    assert "worker &lt;lost&gt;" in page  # escaped
    listing = client.get(reverse("calibration-list")).content.decode()
    assert 'data-testid="calibration-status">failed<' in listing
    assert f"calibrated:{queued.pk}" not in judge_choices()
