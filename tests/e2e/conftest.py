"""End-to-end tests: Debian's Chromium, driven by Playwright, against the real stack.

Every test here is marked ``e2e`` and runs against ``asgi_server`` (uvicorn serving HTTP and
websockets, on the test PostgreSQL and Redis; see tests/conftest.py). Pair it with
``celery_worker`` when the page starts work. Playwright cannot download browsers here, so it
launches /usr/bin/chromium (HEMICYCLE_CHROMIUM overrides) headless.

Fixtures:
  browser   session   playwright Browser (Chromium, headless)
  page      function  a Page in a fresh context whose base_url is the ASGI server, so
                      ``page.goto("/")`` works; 10 s default timeout (15 s for expect()). On failure a screenshot
                      and the page's HTML are saved in var/test-artifacts/.
"""

import os
import re
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.integration import servers

CHROMIUM = Path(os.environ.get("HEMICYCLE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = servers.REPO_ROOT / "var" / "test-artifacts"
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()
# expect() polls with its own deadline (5 s by default, not the context's): on 2 cores under a
# loaded machine a page that fetches its data and draws Plotly figures took longer than that.
expect.set_options(timeout=15_000)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        raise servers.StackError(
            f"Chromium not found at {CHROMIUM}. Install it with `apt-get install chromium` (or run "
            "`make test`), or point HEMICYCLE_CHROMIUM at a Chromium binary."
        )
    # Playwright's sync API keeps an event loop in this thread, which Django's ORM takes for an
    # async context; the tests' own ORM calls (fixtures, assertions) are plain sync code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser: Browser, asgi_server: servers.AsgiServer, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(base_url=asgi_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    report = request.node.stash.get(_CALL_REPORT, None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-150:]
        try:
            page.screenshot(path=str(ARTIFACTS / f"{stem}.png"), full_page=True)
            (ARTIFACTS / f"{stem}.html").write_text(page.content())
        except Exception as error:  # noqa: BLE001 - the test already failed; say why there is no picture
            print(f"could not save the page after the failure: {error}")
    context.close()


@pytest.fixture
def ep_groups() -> None:
    """The EP groups of the records 0002 data migration, loaded again by its own loader:
    transactional tests empty every table afterwards, those rows included, and pages label
    groups from them ("S&D", not "SD")."""
    loader = import_module("deliberation.records.migrations.0002_ep_groups")
    with connection.schema_editor() as editor:
        loader.load_ep_groups(apps, editor)
