"""An experiment's calibration cells in Chromium: the dashboard's Calibration cells panel and its
progress bar follow the cells from queued to finished over the experiment's websocket, without a
reload, and read as the server renders them.

The grid: calibrations alone, of the scripted and the real-votes judges on scripted:default over
the sample record set (a judge that calls no model has one cell), 12 pairs each: chunks of 8 and
4. With no run, every message while the cells play is a cell's own news (a run's top-up would also
carry the cells), so each cell seen running on the socket was pushed by the cell itself. The
bar's sum of runs and cells is tests/unit/calibration/test_cells_progress.py's. A real Celery
worker plays it; it is held back until the dashboard is watching and the experiment has started
from the page.
"""

import json

from django.contrib.auth.models import User
from django.template.defaultfilters import floatformat
from playwright.sync_api import Page, expect

from deliberation.calibration.models import Calibration
from deliberation.records.models import RecordSet
from deliberation.runs.experiments import experiment_create
from tests.e2e.test_live_run import SAMPLE_SET, sample_records, sign_up  # noqa: F401 - sample_records is a fixture

LIMIT = 12
JUDGES = ["scripted", "real-votes"]
CELLS = len(JUDGES)
FINISH_TIMEOUT_MS = 60_000
BAR_JS = "bar => [bar.value, bar.max]"
ROW_TEXTS_JS = "rows => rows.map((row) => [row.dataset.calibration, row.innerText.split(/\\s+/).join(' ').trim()])"


def test_the_dashboard_follows_the_calibration_cells_from_queued_to_finished_without_a_reload(
    page: Page,
    sample_records: RecordSet,  # noqa: F811 - the imported fixture
    celery_worker,
) -> None:
    celery_worker.stop()  # hold the cells back until the dashboard is watching
    owner = User.objects.get(username=sign_up(page))
    experiment = experiment_create(
        owner=owner,
        name="judges against the real votes",
        record_set=SAMPLE_SET,
        parties=[2],
        sample=1,
        goals=["simple_majority"],
        strategies=[],
        models=["scripted:default"],
        judges=JUDGES,
        seeds=[0],
        calibrate=True,
        calibration_models=["scripted:default"],
        calibration_limit=LIMIT,
        calibration_seed=0,
    )
    assert experiment.estimate["runs"] == 0 and experiment.estimate["calibrations"] == CELLS
    snapshots: list[dict] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda payload: snapshots.append(json.loads(payload if isinstance(payload, str) else payload.decode())),
        ),
    )
    page.goto(f"/experiments/{experiment.pk}/")
    panel = page.get_by_test_id("calibration-cells")
    rows = panel.locator("tr[data-calibration]")
    expect(panel).to_contain_text("created when the experiment starts")  # a draft has no cells yet
    expect(page.get_by_test_id("experiment-connection")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("progress-calibrations-total")).to_have_text(str(CELLS))
    assert page.eval_on_selector("[data-role=bar]", BAR_JS) == [0, CELLS]
    page.evaluate("() => { window.notReloaded = true; }")

    # Started from the page: the cells it creates appear, queued, from the progress it answers.
    page.get_by_test_id("experiment-start").click()
    expect(page.get_by_test_id("experiment-status")).to_have_text("running")
    expect(rows).to_have_count(CELLS)
    cells = list(Calibration.objects.filter(experiment=experiment).order_by("pk"))
    assert [cell.judge for cell in cells] == JUDGES
    for cell in cells:
        row = panel.locator(f"tr[data-calibration='{cell.pk}']")
        expect(row).to_have_attribute("data-status", "queued")
        expect(row.locator("[data-col=scores]")).to_have_text(f"0 / {LIMIT}")
        expect(row.locator("[data-col=mae]")).to_have_text("–")
        expect(row.locator("a")).to_have_attribute("href", f"/calibrations/{cell.pk}/")
    expect(panel).not_to_contain_text("created when the experiment starts")

    celery_worker.start()

    # Every cell finishes on the page as it finishes in the worker, with its numbers.
    expect(page.get_by_test_id("experiment-status")).to_have_text("finished", timeout=FINISH_TIMEOUT_MS)
    for cell in cells:
        cell.refresh_from_db()
        assert cell.status == Calibration.Status.FINISHED, cell.error
        row = panel.locator(f"tr[data-calibration='{cell.pk}']")
        expect(row).to_have_attribute("data-status", "finished")
        expect(row.locator("[data-role=status]")).to_have_text("finished")
        expect(row.locator("[data-col=scores]")).to_have_text(f"{LIMIT} / {LIMIT}")
        expect(row.locator("[data-col=pearson]")).to_have_text(floatformat(cell.results["pearson"], 3) or "n/a")
        expect(row.locator("[data-col=mae]")).to_have_text(floatformat(cell.results["mae"], 2))
        expect(row.locator("[data-col=bias]")).to_have_text(floatformat(cell.results["bias"], 2))
    expect(page.get_by_test_id("progress-calibrations-settled")).to_have_text(str(CELLS))
    assert page.eval_on_selector("[data-role=bar]", BAR_JS) == [CELLS, CELLS]
    assert page.evaluate("() => window.notReloaded === true"), "the page reloaded"
    # Each cell's news came over the socket while it played (a cell is running only then).
    frames = [cell for snapshot in snapshots for cell in snapshot.get("calibrations", {}).get("cells", [])]
    assert {cell["id"] for cell in frames if cell["status"] == "running"} == {cell.pk for cell in cells}, snapshots

    # The live table reads as the server renders it.
    live = page.eval_on_selector_all("#calibration-cells tr[data-calibration]", ROW_TEXTS_JS)
    page.reload()
    expect(rows).to_have_count(CELLS)
    assert page.eval_on_selector_all("#calibration-cells tr[data-calibration]", ROW_TEXTS_JS) == live


# Numbers as the template's floatformat writes them: ties, a tie that is not one in binary,
# negatives, a negative that rounds to zero, tiny values written with an exponent.
FLOATS = [0.125, -0.125, 1.005, 2.675, -2.675, 0.0, -1e-16, 1e-07, 0.3333333, 1.0, -0.5, 12.3456, None]


def test_the_live_table_writes_numbers_as_the_server_does(page: Page) -> None:
    page.goto("/accounts/login/")
    written = page.evaluate(
        """async (values) => {
          const { floatFormat } = await import('/static/js/dom.js');
          return values.flatMap((value) => [floatFormat(value, 2), floatFormat(value, 3)]);
        }""",
        FLOATS,
    )
    expected = [floatformat(value, digits) or "n/a" for value in FLOATS for digits in (2, 3)]
    assert written == expected
