"""An experiment in Chromium: create it in the browser, pause and resume it, watch its progress
arrive over the websocket until it finishes, read the paper's table, open a cell's runs and a
run's transcript.

The grid is the new user's comparison: one-shot, parliament (no negotiation round), random and
greedy over a seeded sample of two 2-party benchmark tasks of the sample record set, judged by the
llm judge, on the instant scripted:default model. A real Celery worker plays it; it is held back
until the dashboard is watching, so the progress is seen moving rather than already done.
"""

import json
import re
from statistics import mean

from django.template.defaultfilters import floatformat
from playwright.sync_api import Page, expect

from deliberation.records.models import RecordSet
from deliberation.runs.models import Experiment, Run, RunEvent, RunGroupScore
from tests.e2e.test_live_run import SAMPLE_SET, sample_records, sign_up  # noqa: F401 - sample_records is a fixture

STRATEGIES = ["one-shot", "parliament", "random", "greedy"]
TASKS = 2
RUNS = TASKS * len(STRATEGIES)
FINISH_TIMEOUT_MS = 45_000


def create_experiment(page: Page, name: str) -> None:
    page.goto("/experiments/")
    page.get_by_test_id("experiment-new").click()
    expect(page.get_by_test_id("experiment-form")).to_be_visible()
    # What the form offers a new user: the four strategies ticked, the bundled model suggested.
    for strategy in STRATEGIES:
        expect(page.locator(f"input[name=strategies][value={strategy}]")).to_be_checked()
    expect(page.get_by_test_id("model-choice").first).to_have_text("local:smollm2-135m")

    page.fill("#id_name", name)
    page.select_option("#id_record_set", SAMPLE_SET)
    for parties in ("4", "6"):
        page.locator(f"input[name=parties][value='{parties}']").uncheck()
    page.fill("#id_sample", str(TASKS))
    page.get_by_test_id("experiment-params").locator("summary").click()
    page.get_by_test_id("parliament-rounds").fill("0")
    page.get_by_test_id("model-choice").filter(has_text="scripted:default").click()
    expect(page.locator("#id_models")).to_have_value("scripted:default")

    page.get_by_test_id("experiment-estimate-button").click()
    expect(page.get_by_test_id("estimate-runs")).to_have_text(str(RUNS))
    assert not Experiment.objects.filter(name=name).exists(), "the estimate created the experiment"
    expect(page.locator("#id_start")).to_be_checked()
    page.get_by_test_id("experiment-create").click()


def test_an_experiment_runs_live_and_its_dashboard_leads_to_transcripts(
    page: Page,
    sample_records: RecordSet,
    celery_worker,  # noqa: F811 - the imported fixture
) -> None:
    celery_worker.stop()  # hold the runs back until the dashboard is watching
    sign_up(page)
    sockets: list[str] = []
    snapshots: list[str] = []

    def watch(ws) -> None:
        sockets.append(ws.url)
        ws.on(
            "framereceived", lambda payload: snapshots.append(payload if isinstance(payload, str) else payload.decode())
        )

    page.on("websocket", watch)

    create_experiment(page, "strategies on the sample")
    expect(page).to_have_url(re.compile(r"/experiments/\d+/$"))
    experiment = Experiment.objects.get(name="strategies on the sample")
    assert experiment.spec["strategies"] == STRATEGIES and experiment.spec["params"] == {"parliament": {"rounds": 0}}
    assert len(experiment.spec["source"]["ids"]) == TASKS
    expect(page.get_by_test_id("experiment-connection")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("experiment-status")).to_have_text("running")
    expect(page.get_by_test_id("progress-total")).to_have_text(str(RUNS))
    expect(page.get_by_test_id("progress-done")).to_have_text("0")

    # Pause and resume from the page: the buttons follow the status, the page does not reload.
    page.get_by_test_id("experiment-pause").click()
    expect(page.get_by_test_id("experiment-status")).to_have_text("paused")
    expect(page.get_by_test_id("experiment-pause")).to_be_disabled()
    expect(page.get_by_test_id("experiment-start")).to_have_text("Resume")
    assert Experiment.objects.get(pk=experiment.pk).status == Experiment.Status.PAUSED
    page.get_by_test_id("experiment-start").click()
    expect(page.get_by_test_id("experiment-status")).to_have_text("running")
    expect(page.get_by_test_id("experiment-pause")).to_be_enabled()
    expect(page.get_by_test_id("no-results")).to_be_visible()

    # The list of experiments follows along in another tab.
    listing = page.context.new_page()
    listing.goto("/experiments/")
    row = listing.locator(f"tr[data-experiment='{experiment.pk}']")
    expect(row.locator("[data-role=status]")).to_have_text("running")

    celery_worker.start()

    # The bar fills from the socket's snapshots, and the results fill in without a reload.
    expect(page.get_by_test_id("experiment-status")).to_have_text("finished", timeout=FINISH_TIMEOUT_MS)
    expect(page.get_by_test_id("progress-done")).to_have_text(str(RUNS))
    expect(page.get_by_test_id("progress-failed")).to_have_text("0")
    expect(page.get_by_test_id("progress-running")).to_have_text("0")
    expect(page.get_by_test_id("progress-remaining")).to_have_text("0")
    assert page.eval_on_selector("[data-role=bar]", "bar => [bar.value, bar.max]") == [RUNS, RUNS]
    expect(page.get_by_test_id("experiment-results")).to_have_attribute("data-settled", str(RUNS), timeout=20_000)
    expect(page.get_by_test_id("experiment-start")).to_be_disabled()
    assert sockets and all(url.endswith(f"/ws/experiments/{experiment.pk}/") for url in sockets), sockets
    # The progress came over the socket: a snapshot on connecting, then one per change, to the end.
    final = json.loads(snapshots[-1])
    assert (final["status"], final["done"], final["total"]) == ("finished", RUNS, RUNS), snapshots[-1]
    assert len({json.loads(frame)["done"] for frame in snapshots}) >= 2, "no progress arrived over the socket"

    expect(row.locator("[data-role=status]")).to_have_text("finished")
    expect(row.get_by_test_id("progress-done")).to_have_text(str(RUNS))
    listing.close()

    # The paper's table: every strategy's pass rate over its two runs, as the runs say.
    runs = Run.objects.filter(experiment=experiment)
    assert runs.count() == RUNS and set(runs.values_list("status", flat=True)) == {Run.Status.FINISHED}
    table = page.get_by_test_id("paper-table")
    expect(table).to_have_count(1)
    for strategy in STRATEGIES:
        values = [float(v) for v in runs.filter(strategy=strategy).values_list("goal_value", flat=True)]
        cell = table.locator(f"a[data-testid=cell][href*='strategy={strategy}&'][href*='parties=2']")
        expect(cell).to_have_text(f"{mean(values):.2f}")

    # The paper's table sorts by a column: each header is a button, pressed by mouse or keyboard
    # (Enter again: the other way), and says how it sorts in aria-sort; ties keep the server's
    # order (baselines first), and a strategy's later goals stay blank under its first.
    rows_js = (
        "rows => rows.map((tr) => [tr.cells[0].dataset.value, tr.cells[1].dataset.value,"
        " tr.cells[3].dataset.value, tr.cells[0].classList.contains('same-as-above')])"
    )
    served = table.locator("tbody tr").evaluate_all(rows_js)
    assert [row[0] for row in served][:2] == ["random", "greedy"]

    def shown_in(expected: list[list]) -> None:
        shown = table.locator("tbody tr").evaluate_all(rows_js)
        assert [row[:3] for row in shown] == [row[:3] for row in expected]
        assert [row[3] for row in shown] == [i > 0 and shown[i - 1][:2] == row[:2] for i, row in enumerate(shown)]

    strategy_header = table.locator("th").nth(0)
    table.get_by_role("button", name="Strategy").click()
    expect(strategy_header).to_have_attribute("aria-sort", "ascending")
    by_strategy = sorted(served, key=lambda row: row[0])
    assert [row[0] for row in by_strategy] != [row[0] for row in served]  # the click reordered the rows
    shown_in(by_strategy)
    table.get_by_role("button", name="Strategy").press("Enter")
    expect(strategy_header).to_have_attribute("aria-sort", "descending")
    shown_in(sorted(served, key=lambda row: row[0], reverse=True))

    table.get_by_role("button", name="2 parties").press("Enter")
    expect(table.locator("th").nth(3)).to_have_attribute("aria-sort", "ascending")
    expect(strategy_header).not_to_have_attribute("aria-sort", re.compile("."))
    by_value = sorted(served, key=lambda row: (row[2] == "", float(row[2] or 0)))
    shown_in(by_value)
    # The results fragment reloads as runs settle (js/dashboard.js): its fresh copy is sorted as
    # the reader left the table, by the same steps, on the server's HTML.
    restored = page.evaluate(
        """async () => {
          const { makeSortable, sortState, sortRestore } = await import("/static/js/sortable.js");
          const url = document.querySelector("[data-results-url]").dataset.resultsUrl;
          const html = await (await fetch(url, { credentials: "same-origin" })).text();
          const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("experiment-results");
          makeSortable(fresh);
          sortRestore(fresh, sortState(document.getElementById("experiment-results")));
          const table = fresh.querySelector("[data-testid=paper-table]");
          return [table.tHead.rows[0].cells[3].getAttribute("aria-sort"),
                  Array.from(table.tBodies[0].rows, (tr) => tr.cells[0].dataset.value)];
        }"""
    )
    assert restored == ["ascending", [row[0] for row in by_value]]

    # The moral rewards (docs/rewards.md): a row per strategy, averaged from the stored per-group
    # rows as the template formats them, and a point per strategy in their figure.
    def rewards_row(strategy: str) -> list[str]:
        rows = RunGroupScore.objects.filter(experiment=experiment, strategy=strategy)
        deontological = [row.reward_deontological for row in rows]
        return [
            strategy,
            "scripted:default",
            str(len(rows)),
            floatformat(mean(deontological), 2),
            f"{sum(value < 0 for value in deontological)} / {sum(value != 0 for value in deontological)}",
            floatformat(mean(row.reward_utilitarian for row in rows), 2),
        ]

    shown = page.eval_on_selector_all(
        "[data-testid=moral-rewards] tbody tr", "rows => rows.map((tr) => [...tr.cells].map((td) => td.textContent))"
    )
    assert shown == [rewards_row(strategy) for strategy in sorted(STRATEGIES)]
    points = page.eval_on_selector("[data-figure=moral-rewards]", "node => node.data.map((trace) => trace.name)")
    assert sorted(points) == [f"{strategy} · scripted:default" for strategy in sorted(STRATEGIES)]

    # A cell leads to its runs, a run to its transcript.
    table.locator("a[data-testid=cell][href*='strategy=parliament&']").click()
    expect(page).to_have_url(re.compile(rf"/experiments/{experiment.pk}/runs\?.*strategy=parliament"))
    links = page.get_by_test_id("run-link")
    expect(links).to_have_count(TASKS)
    links.first.click()
    expect(page).to_have_url(re.compile(r"/runs/\d+/$"))
    run_id = int(re.search(r"/runs/(\d+)/$", page.url).group(1))
    assert Run.objects.get(pk=run_id).strategy == "parliament"
    expect(page.get_by_test_id("outcome")).to_be_visible()
    stored = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
    expect(page.locator("#transcript [data-seq]")).to_have_count(len(stored))
    expect(page.locator("#transcript [data-testid=speech]")).to_have_count(2)  # the opening, one a group


def test_the_dashboard_polls_while_the_socket_cannot_open_then_goes_live(
    page: Page,
    sample_records: RecordSet,
    celery_worker,  # noqa: F811 - the imported fixture
) -> None:
    celery_worker.stop()
    # The first two experiment sockets are closed at once (a proxy restarting, say); later ones
    # reach the server.
    refused: list[str] = []

    def route(ws) -> None:
        if len(refused) < 2:
            refused.append(ws.url)
            ws.close(code=1011, reason="not now")
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r"/ws/experiments/"), route)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if request.url.endswith("/progress") else None)
    sign_up(page)
    create_experiment(page, "polled")
    expect(page).to_have_url(re.compile(r"/experiments/\d+/$"))

    # Polled meanwhile, then live once the socket opens (after the backoff: about 1 s, then 2 s).
    for _ in range(150):  # the route handler runs while Playwright is called: wait in its calls
        if len(refused) == 2:
            break
        page.wait_for_timeout(100)
    expect(page.get_by_test_id("experiment-connection")).to_have_attribute("data-state", "open", timeout=15_000)
    assert len(refused) == 2 and polls, (refused, polls)
    polled = len(polls)

    celery_worker.start()
    expect(page.get_by_test_id("experiment-status")).to_have_text("finished", timeout=FINISH_TIMEOUT_MS)
    expect(page.get_by_test_id("progress-done")).to_have_text(str(RUNS))
    expect(page.get_by_test_id("experiment-results")).to_have_attribute("data-settled", str(RUNS), timeout=20_000)
    expect(page.get_by_test_id("paper-table").locator("a[data-testid=cell]")).to_have_count(len(STRATEGIES))
    assert len(polls) == polled, "the page kept polling with the socket open"
