"""The home page in a real browser."""

from playwright.sync_api import Page, expect

from deliberation.records.models import RecordSet


def test_home_page_shows_the_record_sets_heading_and_a_stored_set(page: Page) -> None:
    RecordSet.objects.create(name="Browser smoke set", description="committed before the page loads")

    page.goto("/")

    expect(page.get_by_role("heading", level=1, name="Record sets")).to_be_visible()
    expect(page.get_by_role("cell", name="Browser smoke set")).to_be_visible()
