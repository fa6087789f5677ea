"""The home page in a real browser."""

from playwright.sync_api import Page, expect

from deliberation.records.models import RecordSet


def test_home_page_shows_the_record_sets_heading_and_a_stored_set(page: Page) -> None:
    RecordSet.objects.create(name="Browser smoke set", description="committed before the page loads")

    page.goto("/")

    expect(page.get_by_role("heading", level=1, name="Record sets")).to_be_visible()
    expect(page.get_by_role("cell", name="Browser smoke set")).to_be_visible()


def test_signing_in_lands_on_your_lab_which_links_the_api_docs_and_your_runs(page: Page, ep_groups) -> None:
    import re

    from django.contrib.auth.models import User

    from deliberation.runs.models import Experiment

    user = User.objects.create_user("returning", password="Hemicycle-e2e-password-7")
    Experiment.objects.create(owner=user, name="strategies on agriculture", spec={}, estimate={"runs": 4})
    page.goto("/accounts/login/")
    page.fill("#id_username", "returning")
    page.fill("#id_password", "Hemicycle-e2e-password-7")
    page.locator("form [type=submit]").first.click()
    expect(page).to_have_url(re.compile(r"/me/$"))
    expect(page.get_by_test_id("next-steps")).to_contain_text("Next steps")
    expect(page.get_by_test_id("recent-experiment")).to_have_text("strategies on agriculture")
    page.get_by_test_id("api-docs-link").click()
    expect(page).to_have_url(re.compile(r"/api/v1/docs$"))
    expect(page.get_by_text("Pause an experiment")).to_be_visible(timeout=20_000)
