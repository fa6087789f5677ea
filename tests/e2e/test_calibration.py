"""A judge calibration in Chromium: the list links it, its page draws the three Plotly figures."""

from playwright.sync_api import Page, expect

from deliberation.calibration.services import calibration_run
from deliberation.records.models import RecordSet
from tests.e2e.test_live_run import SAMPLE_SET, sample_records, sign_up  # noqa: F401 - sample_records is a fixture


def test_the_calibration_page_draws_its_figures(page: Page, sample_records: RecordSet) -> None:  # noqa: F811
    calibration = calibration_run(record_set=SAMPLE_SET, judge="scripted", resamples=50)
    sign_up(page)
    page.goto("/calibrations/")
    page.locator(f"tr[data-calibration='{calibration.pk}'] a").first.click()
    expect(page).to_have_url(f"/calibrations/{calibration.pk}/")
    figures = page.locator("#calibration-figures .js-plotly-plot")
    expect(figures).to_have_count(3)
    for index in range(3):
        expect(figures.nth(index).locator(".main-svg").first).to_be_visible()
    # the heatmap holds the stored confusion matrix, as plotly.js drew it
    drawn = page.eval_on_selector("[data-figure=calibration-figure-confusion]", "node => node.data[0].z")
    assert drawn == calibration.results["confusion"]
    expect(page.get_by_test_id("calibration-metrics")).to_contain_text(f"{calibration.results['mae']:.2f}")
