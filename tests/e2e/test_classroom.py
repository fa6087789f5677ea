"""A classroom session in Chromium, teacher, projector and two students, through to the vote.

The teacher opens a session of a saved scenario (scripted model and judge, no negotiation round,
three groups with equal seats: EPP speaks first and is the rapporteur), two students join from
their own browser contexts (Alice for S&D, Bob for ALDE), and the agent plays EPP. The real stack
serves it: uvicorn's websockets, Celery for the agent's turns, PostgreSQL and Redis.
"""

import io
import re
import zipfile

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, BrowserContext, Page, expect

from deliberation.classroom.models import ClassSession
from deliberation.runs.models import RunEvent
from deliberation.scenarios.models import SavedScenario
from deliberation.scenarios.services import scenario_save
from tests.factories import make_record, scenario_config
from tests.integration import servers

PASSWORD = "Hemicycle-e2e-password-7"
AGENT_TIMEOUT_MS = 20_000
# The pages open their socket once every script has run, Plotly's 3.6 MB included: seconds on a
# loaded machine (measured 2.4 to 7 s for the console), more than expect's default 5 s.
PAGE_START_MS = 20_000
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
PROJECTOR = {"width": 1920, "height": 1080}
ALICE = "Alice <b>&</b>"  # shown as typed, never as markup


@pytest.fixture
def contexts(browser: Browser, asgi_server: servers.AsgiServer):
    opened: list[BrowserContext] = []

    def open_context(**options) -> BrowserContext:
        context = browser.new_context(base_url=asgi_server.url, **options)
        context.set_default_timeout(10_000)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


def sign_in(page: Page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.locator("form button[type=submit]").first.click()
    expect(page.get_by_test_id("nav-classroom")).to_be_visible()


def join(page: Page, code: str, name: str, seat: str) -> None:
    page.goto("/join/")
    page.get_by_test_id("join-code").fill(code.lower())
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(re.compile(rf"/join/{code}/$"))
    page.get_by_test_id("join-name").fill(name)
    page.get_by_test_id(f"seat-{seat}").click()
    page.get_by_test_id("join-submit").click()
    expect(page).to_have_url(re.compile(rf"/classroom/{code}/seat/$"))
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open", timeout=PAGE_START_MS)


def speech_cards(page: Page):
    return page.locator("#transcript [data-testid=speech]")


def class_scenario() -> SavedScenario:
    """The teacher's account and saved scenario (scripted model and judge, EPP, S&D, ALDE at equal seats)."""
    teacher = User.objects.create_user("teacher", password=PASSWORD)
    return scenario_save(
        owner=teacher,
        name="Class scenario",
        config=scenario_config(
            make_record(title="Regulation on the classroom test"),
            seat_structure="equal",
            rounds=0,
            goal="simple_majority",
        ),
    )


def test_a_class_plays_a_session_to_the_vote(contexts, celery_worker, ep_groups) -> None:
    play_a_session(contexts, class_scenario())


def play_a_session(contexts, saved: SavedScenario) -> None:
    """The whole session, from the teacher's sign-in to the outcome. One function, so that it can
    also be driven by hand against a `make run` server (the embedded mode: SQLite, in-process
    worker, in-memory channel layer)."""
    # The teacher opens a session from the saved scenario.
    teacher = contexts().new_page()
    sign_in(teacher, saved.owner.username)
    teacher.get_by_test_id("nav-classroom").click()
    teacher.get_by_label("Saved scenario").select_option(str(saved.pk))
    teacher.get_by_label("Reveal speed (words per second)").fill("0")
    teacher.get_by_test_id("open-session").click()
    expect(teacher).to_have_url(re.compile(r"/classroom/[A-Z0-9]{6}/teach/$"))
    code = teacher.get_by_test_id("join-code").inner_text().strip()
    session = ClassSession.objects.get(code=code)
    expect(teacher.get_by_test_id("join-url")).to_have_text(re.compile(rf"^http://[^/]+/join/{code}/$"))
    teacher.wait_for_function(
        "() => { const qr = document.querySelector('[data-testid=qr]'); return qr.complete && qr.naturalWidth > 0; }"
    )
    expect(teacher.get_by_test_id("connection")).to_have_attribute("data-state", "open", timeout=PAGE_START_MS)

    projector = teacher.context.new_page()
    projector.set_viewport_size(PROJECTOR)
    projector.goto(f"/classroom/{code}/projector/")
    expect(projector.get_by_test_id("projector-code")).to_have_text(code)
    expect(projector.get_by_test_id("connection")).to_have_attribute("data-state", "open", timeout=PAGE_START_MS)
    # Full screen for the room: no site navigation, no account name.
    expect(projector.locator(".topbar")).to_have_count(0)

    # Two students join, in their own browsers; the console shows them connected in their seats.
    alice = contexts(**PHONE).new_page()
    join(alice, code, ALICE, "SD")
    # Her brief, folded on a phone: the group's stance and real vote, and the background.
    stance = alice.get_by_test_id("group-stance")
    expect(stance).to_contain_text("Your group's stance: S&D")
    expect(stance).not_to_have_attribute("open", "")
    stance.locator("summary").click()
    expect(stance.get_by_test_id("real-vote")).to_be_visible()
    expect(stance.get_by_test_id("real-vote")).to_contain_text("35% of its members for the resolution")
    expect(alice.get_by_test_id("record-background").locator("summary")).to_be_visible()
    expect(alice.get_by_test_id("connection")).to_have_text("connected")  # the session badge says "live"
    bob = contexts().new_page()
    join(bob, code, "Bob", "ALDE")
    sd_seat = teacher.get_by_test_id("seat-SD")
    expect(sd_seat.locator(".student.connected .student-name")).to_have_text(ALICE)
    expect(teacher.get_by_test_id("seat-ALDE").locator(".student.connected .student-name")).to_have_text("Bob")
    expect(teacher.get_by_test_id("seat-EPP").get_by_test_id("agent-seat")).to_be_visible()

    # The teacher starts: the agent gives EPP's opening statement, then it is S&D's turn.
    teacher.get_by_test_id("start").click()
    expect(alice.get_by_test_id("act")).to_be_visible(timeout=AGENT_TIMEOUT_MS)
    expect(alice.locator("#transcript [data-testid=speech][data-by=agent][data-group=EPP]")).to_have_count(1)
    # On a phone only the current phase is named (six labels do not fit side by side).
    named = alice.eval_on_selector_all(
        ".phases li",
        "items => items.filter((li) => parseFloat(getComputedStyle(li).fontSize) > 0).map((li) => li.dataset.phase)",
    )
    assert named == ["opening"], named
    expect(bob.get_by_test_id("act")).to_be_hidden()

    # Bob may not speak out of turn: the server refuses and says why.
    bob.evaluate("() => window.HemicycleClassroom.send({action: 'speak', text: 'Out of turn'})")
    expect(bob.get_by_test_id("refused")).to_have_text(re.compile("not ALDE's turn"))

    alice.get_by_test_id("act-text").fill("S&D wants <em>binding</em> social safeguards.")
    alice.get_by_test_id("act-submit").click()
    expect(alice.get_by_test_id("act")).to_be_hidden()
    alice_speech = projector.locator("#transcript [data-testid=speech][data-group=SD]")
    expect(alice_speech.locator(".prose")).to_have_text("S&D wants <em>binding</em> social safeguards.")
    expect(alice_speech.locator(".byline")).to_have_text(f"by {ALICE}")

    # Muted, Bob cannot speak for ALDE until the teacher unmutes him.
    bob_row = teacher.get_by_test_id("seat-ALDE").get_by_test_id("student")
    bob_row.get_by_test_id("mute").click()
    expect(bob.get_by_test_id("seat-banner")).to_contain_text("muted you")
    expect(bob.get_by_test_id("act")).to_be_hidden()
    expect(bob_row.locator(".muted-tag")).to_be_visible()
    bob_row.get_by_test_id("unmute").click()
    expect(bob.get_by_test_id("seat-banner")).to_be_hidden()

    expect(bob.get_by_test_id("act")).to_be_visible()
    bob.get_by_test_id("act-text").fill("ALDE supports the aim, with lighter reporting duties.")
    bob.get_by_test_id("act-submit").click()
    expect(projector.locator("#transcript [data-testid=speech]")).to_have_count(3)

    # Alice reloads: back in her seat with the whole transcript.
    alice.reload()
    expect(alice.get_by_test_id("my-seat")).to_contain_text("S&D")
    expect(speech_cards(alice)).to_have_count(3)
    expect(alice.get_by_test_id("connection")).to_have_attribute("data-state", "open", timeout=PAGE_START_MS)

    # Drafting: the agent (EPP, the rapporteur) writes the draft, shown word by word at 8 words a second.
    teacher.get_by_test_id("reveal-speed").fill("8")
    teacher.get_by_role("button", name="Set").click()
    expect(projector.locator("#transcript [data-type=control]").last).to_contain_text("8 words per second")
    expect(teacher.get_by_test_id("advance")).to_be_enabled()
    teacher.get_by_test_id("advance").click()
    draft = projector.locator("#transcript [data-type=draft] .prose")
    expect(draft).to_have_attribute("data-revealed", "false", timeout=AGENT_TIMEOUT_MS)
    expect(draft).to_have_attribute("data-revealed", "true", timeout=AGENT_TIMEOUT_MS)
    stored_draft = RunEvent.objects.get(run=session.run, type="draft").data["text"]
    expect(draft).to_have_text(stored_draft)
    expect(projector.get_by_test_id("current-draft")).to_have_count(0)  # the projector has no draft panel
    expect(alice.get_by_test_id("current-draft")).to_have_text(stored_draft)

    # Amendments: S&D tables one (the agent rapporteur decides), ALDE passes.
    teacher.get_by_test_id("advance").click()
    expect(alice.get_by_test_id("act")).to_have_attribute("data-mode", "amendment", timeout=AGENT_TIMEOUT_MS)
    alice.get_by_test_id("act-text").fill("Add a review clause after three years.")
    alice.reload()  # what she typed for this turn is still there
    expect(alice.get_by_test_id("act-text")).to_have_value("Add a review clause after three years.")
    alice.get_by_test_id("act-submit").click()
    expect(projector.locator("#transcript [data-type=amendment_decision]")).to_have_count(1, timeout=AGENT_TIMEOUT_MS)
    decision = RunEvent.objects.get(run=session.run, type="amendment_decision").data
    if decision["accepted"]:  # the agent rapporteur's answer is the scripted model's: either way
        assert "Add a review clause after three years." in decision["draft_after"]
        expect(alice.get_by_test_id("current-draft")).to_contain_text("Add a review clause after three years.")
    expect(bob.get_by_test_id("act")).to_have_attribute("data-mode", "amendment", timeout=AGENT_TIMEOUT_MS)
    bob.get_by_test_id("act-none").click()
    expect(projector.locator("#transcript [data-type=amendment]")).to_have_count(2)

    # The vote: the judge scores EPP, the students cast their groups' votes; the projector shows the outcome.
    expect(teacher.get_by_test_id("advance")).to_be_enabled()
    teacher.get_by_test_id("advance").click()
    expect(alice.get_by_test_id("act")).to_have_attribute("data-mode", "vote", timeout=AGENT_TIMEOUT_MS)
    # The text being voted on sits beside the slider.
    final = (
        RunEvent.objects.filter(run=session.run, type__in=["draft", "amendment_decision"]).order_by("-seq").first().data
    )
    expect(alice.get_by_test_id("vote-draft")).to_have_text(final.get("draft_after", final.get("text")))
    alice.get_by_test_id("vote-score").fill("7")
    expect(alice.get_by_test_id("vote-output")).to_have_text("7 · for")
    alice.get_by_test_id("vote-submit").click()
    bob.get_by_test_id("vote-score").fill("2")
    bob.get_by_test_id("vote-submit").click()

    expect(projector.get_by_test_id("outcome")).to_be_visible(timeout=AGENT_TIMEOUT_MS)
    expect(projector.get_by_test_id("outcome-headline")).to_have_text(re.compile(r"^(Passed|Failed): Simple majority$"))
    expect(projector.get_by_test_id("tally-chart")).to_have_attribute("data-drawn", "tally")
    # At 1920x1080 the outcome and the tally are above the fold.
    for part in ("outcome", "tally-chart", "hemicycle"):
        box = projector.get_by_test_id(part).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= PROJECTOR["height"], (part, box)
    expect(projector.locator("#transcript [data-type=vote][data-group=SD]")).to_contain_text("support 7/9")
    expect(projector.locator("#transcript [data-type=vote][data-group=ALDE]")).to_contain_text("against")
    votes = {
        e.data["group"]: (e.data["score"], e.data["by"]) for e in RunEvent.objects.filter(run=session.run, type="vote")
    }
    assert votes["SD"] == (7, "students") and votes["ALDE"] == (2, "students") and votes["EPP"][1] == "judge"
    expect(alice.get_by_test_id("outcome")).to_be_visible()

    # The session exports like a run.
    export = teacher.get_by_test_id("export-csv")
    response = teacher.request.get(export.get_attribute("href"))
    assert response.ok
    names = zipfile.ZipFile(io.BytesIO(response.body())).namelist()
    assert {"runs.csv", "group_scores.csv", "events.csv", "data_dictionary.csv"} <= set(names)

    # Removed, a student's page says so and the socket stays closed.
    teacher.on("dialog", lambda dialog: dialog.accept())
    teacher.get_by_test_id("seat-ALDE").get_by_test_id("remove").click()
    expect(bob.get_by_test_id("seat-banner")).to_contain_text("no longer in this session")

    # Nothing a student typed became markup anywhere.
    for page in (teacher, projector, alice, bob):
        assert page.locator("#transcript b, #transcript em").count() == 0
