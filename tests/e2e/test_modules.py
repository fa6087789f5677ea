"""Every page's own scripts are native ES modules (frontend/static/js, no build step) that load and
run in Chromium without a console error or an uncaught exception.

A module that fails to load (a wrong import path, a name a module does not export, a syntax
error) stops its whole page and says so only in the console: these tests listen to it
(Playwright's console and pageerror events) on each page that loads our scripts, and check that
each page's modules ran (something only its script draws is there)."""

import re

from django.contrib.auth.models import User
from playwright.sync_api import ConsoleMessage, Page, expect

from deliberation.calibration.services import calibration_run
from deliberation.classroom.services import class_session_open
from deliberation.engine.events import EVENT_TYPES
from deliberation.engine.goals import GOALS
from deliberation.records.models import RecordSet, RecordUpload
from deliberation.runs.experiments import experiment_create
from deliberation.runs.models import Run
from tests.e2e.test_classroom import (  # noqa: F401 - contexts is a fixture
    PAGE_START_MS,
    PASSWORD,
    class_scenario,
    contexts,
    join,
    sign_in,
)
from tests.e2e.test_live_run import SAMPLE_SET, pick_record, sample_records, sign_up  # noqa: F401 - sample_records is a fixture
from tests.e2e.test_power import finished_run  # noqa: F401 - a fixture

# The page's own scripts (not the vendored Plotly, a classic script the modules find on window).
OUR_SCRIPTS_JS = """() => [...document.scripts].filter((s) => s.src.includes('/static/js/')).map((s) => ({src: s.src, type: s.type}))"""
RENDERED_TYPES_JS = "async () => Object.keys((await import('/static/js/events/index.js')).RENDERERS)"


class PageProblems:
    """What a page wrote to its console as an error, and the exceptions nothing caught."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"uncaught: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(f"console: {message.text} ({message.location.get('url', '')})")


def assert_modules_ran(page: Page, problems: PageProblems) -> None:
    scripts = page.evaluate(OUR_SCRIPTS_JS)
    assert scripts, f"{page.url} loads none of our scripts"
    assert all(script["type"] == "module" for script in scripts), scripts
    assert problems.messages == [], f"{page.url}: {problems.messages}"


def test_the_run_pages_modules_draw_a_finished_run(page: Page, finished_run: Run) -> None:  # noqa: F811
    problems = PageProblems(page)
    page.goto(f"/runs/{finished_run.pk}/?token={finished_run.share_token}")
    expect(page.get_by_test_id("connection")).to_have_text("transcript complete")
    expect(page.get_by_test_id("event-outcome")).to_be_visible()
    expect(page.locator("#hemicycle .js-plotly-plot")).to_be_visible()
    # Goal names come from the server (engine/goals.py), not from a copy in the script.
    goal = finished_run.goal
    expect(page.locator(f"#goal-table tr[data-goal={goal}] td").first).to_have_text(
        f"{GOALS[goal].label} (this run's goal)"
    )
    expect(page.locator("#whatif-panel")).to_have_attribute(
        "data-state", "ready"
    )  # counterfactual.js, imported by run.js
    assert_modules_ran(page, problems)


def test_every_event_renderer_draws_a_declared_event_type(page: Page) -> None:
    """The transcript's renderer registry (js/events/index.js) names only types engine/events.py declares."""
    page.goto("/")
    rendered = page.evaluate(RENDERED_TYPES_JS)
    assert {"run_started", "speech", "draft", "vote", "outcome"} <= set(rendered)
    assert set(rendered) <= set(EVENT_TYPES), set(rendered) - set(EVENT_TYPES)


def test_the_classroom_pages_modules_connect(contexts, ep_groups) -> None:  # noqa: F811
    saved = class_scenario()
    session = class_session_open(teacher=saved.owner, scenario=saved, phase_seconds=None, words_per_second=0)
    teacher = contexts().new_page()
    problems = PageProblems(teacher)
    sign_in(teacher, saved.owner.username)
    teacher.goto("/classroom/")
    expect(teacher.get_by_test_id("agent-models").locator("li:visible")).to_have_count(1)  # classroom_home.js
    assert_modules_ran(teacher, problems)
    for view in ("teach", "projector"):
        teacher.goto(f"/classroom/{session.code}/{view}/")
        expect(teacher.get_by_test_id("connection")).to_have_attribute("data-state", "open", timeout=PAGE_START_MS)
        expect(teacher.locator("#transcript [data-type=run_started]")).to_be_visible()
        assert_modules_ran(teacher, problems)

    student = contexts().new_page()
    student_problems = PageProblems(student)
    join(student, session.code, "Ada", "EPP")  # waits for the seat page's socket
    expect(student.locator("#my-seat .chip")).to_be_visible()
    assert_modules_ran(student, student_problems)


def test_the_builders_modules_draw_the_preview(page: Page, sample_records: RecordSet) -> None:  # noqa: F811
    problems = PageProblems(page)
    sign_up(page)  # lands on the builder
    pick_record(page)
    expect(page.locator("#hemicycle-preview .js-plotly-plot")).to_be_visible()
    assert_modules_ran(page, problems)


def test_the_experiment_pages_modules_go_live(page: Page, ep_groups) -> None:
    saved = class_scenario()
    sign_in(page, saved.owner.username)
    experiment = experiment_create(
        owner=saved.owner,
        name="Modules",
        goals=["simple_majority"],
        strategies=["one-shot"],
        models=["scripted:default"],
        judges=["scripted"],
        seeds=[0],
        scenario_ids=[saved.pk],
    )
    problems = PageProblems(page)

    page.goto("/experiments/new")
    page.locator("input[name=source][value=scenarios]").check()
    expect(page.locator("[data-field=record_set]")).to_be_hidden()  # dashboard.js's source switch
    assert_modules_ran(page, problems)

    page.goto("/experiments/")
    expect(page.locator(f"tr[data-experiment='{experiment.pk}']")).to_be_visible()
    assert_modules_ran(page, problems)

    page.goto(f"/experiments/{experiment.pk}/")
    expect(page.get_by_test_id("experiment-connection")).to_have_attribute("data-state", "open", timeout=PAGE_START_MS)
    expect(page.locator("[data-control=start]")).to_be_enabled()
    assert_modules_ran(page, problems)

    page.goto(f"/experiments/{experiment.pk}/sweep")
    expect(page.locator("h1")).to_be_visible()
    assert_modules_ran(page, problems)


def test_the_calibration_pages_modules_draw_its_figures(page: Page, sample_records: RecordSet) -> None:  # noqa: F811
    calibration = calibration_run(record_set=SAMPLE_SET, judge="scripted", resamples=50)
    problems = PageProblems(page)
    sign_up(page)
    page.goto(f"/calibrations/{calibration.pk}/")
    expect(page.locator("#calibration-figures .js-plotly-plot")).to_have_count(3)
    assert_modules_ran(page, problems)


def test_the_upload_pages_module_polls_a_queued_import(page: Page) -> None:
    staff = User.objects.create_user("curator", password=PASSWORD, is_staff=True)
    upload = RecordUpload.objects.create(created_by=staff, record_set_name="Queued", status=RecordUpload.Status.QUEUED)
    problems = PageProblems(page)
    page.goto("/accounts/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.locator("form [type=submit]").click()
    expect(page.get_by_test_id("nav-upload")).to_be_visible()
    page.goto(f"/records/uploads/{upload.pk}/")
    expect(page.locator("#import-label")).to_have_text(re.compile(r"^0% · waiting for a worker$"))  # set by a poll
    assert_modules_ran(page, problems)
