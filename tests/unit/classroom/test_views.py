"""Classroom pages: who may open them, joining (validation, rate limit, seat token), the join
link and its QR code, and escaping of what students type."""

import re

import django_ratelimit.core
import pytest
from django.core.cache import cache
from django.urls import reverse

from deliberation.classroom.lan import is_loopback
from deliberation.classroom.models import ClassSession, Student
from deliberation.classroom.selectors import student_for_token
from deliberation.scenarios.services import scenario_save
from tests.factories import make_record, make_user, scenario_config
from tests.unit.classroom.conftest import open_session, teach

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_join_counts(monkeypatch):
    cache.clear()  # the throttles count attempts in the cache
    # One counting window for the whole test (django-ratelimit's windows are fixed: a test that
    # straddled a boundary would see its counts start again).
    monkeypatch.setattr(django_ratelimit.core, "_get_window", lambda value, period: 0)
    yield
    cache.clear()


@pytest.fixture
def session() -> ClassSession:
    return open_session()


def join(client, session, name="Ada", seat="SD", **extra):
    return client.post(reverse("classroom-join-code", args=[session.code]), {"name": name, "seat": seat}, **extra)


# ---- the teacher's pages ------------------------------------------------------------------------


def test_teacher_opens_a_session_from_a_saved_scenario(client):
    teacher = make_user("teacher")
    scenario = scenario_save(owner=teacher, name="posting", config=scenario_config(make_record(), rounds=1))
    client.force_login(teacher)
    page = client.get(reverse("classroom-home")).content.decode()
    assert 'data-testid="open-session-form"' in page and "posting" in page
    response = client.post(
        reverse("classroom-home"), {"scenario": scenario.pk, "seconds_per_phase": "60", "words_per_second": "4"}
    )
    session = ClassSession.objects.get(teacher=teacher)
    assert response.status_code == 302 and response["Location"] == reverse("classroom-teach", args=[session.code])
    assert (session.phase_seconds, session.words_per_second, session.run.strategy) == (60, 4.0, "classroom")
    assert session.code in client.get(reverse("classroom-home")).content.decode()


def test_open_form_refuses_another_teachers_scenario_and_a_too_short_timer(client):
    other = scenario_save(owner=make_user("bob"), name="bobs", config=scenario_config(make_record()))
    teacher = make_user("teacher")
    mine = scenario_save(owner=teacher, name="mine", config=scenario_config(make_record(title="Another issue")))
    client.force_login(teacher)
    response = client.post(reverse("classroom-home"), {"scenario": other.pk, "words_per_second": "3"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    response = client.post(
        reverse("classroom-home"), {"scenario": mine.pk, "seconds_per_phase": "5", "words_per_second": "3"}
    )
    assert "seconds per phase: between 10" in response.content.decode()
    assert not ClassSession.objects.exists()


def test_console_shows_the_code_join_link_qr_and_export(client, session):
    client.force_login(session.teacher)
    response = client.get(reverse("classroom-teach", args=[session.code]))
    page = response.content.decode()
    assert response.status_code == 200
    assert f'data-testid="join-code">{session.code}<' in page
    assert reverse("classroom-qr", args=[session.code]) in page
    assert f"/join/{session.code}/" in page
    assert f'{reverse("run-export", args=[session.run_id])}?format=csv' in page
    assert 'id="classroom-page"' in page


@pytest.mark.parametrize("name", ["classroom-teach", "classroom-projector"])
def test_teacher_pages_refuse_other_users_and_send_visitors_to_sign_in(client, session, name):
    url = reverse(name, args=[session.code])
    assert client.get(url).status_code == 302 and "login" in client.get(url)["Location"]
    client.force_login(make_user("bob"))
    assert client.get(url).status_code == 403
    client.force_login(session.teacher)
    assert client.get(url).status_code == 200


def test_unknown_codes_are_404(client, session):
    client.force_login(session.teacher)
    assert client.get(reverse("classroom-teach", args=["AAAAAA"])).status_code == 404
    assert client.get(reverse("classroom-join-code", args=["AAAAAA"])).status_code == 404


def test_qr_code_is_an_svg_of_the_join_link(client, session):
    response = client.get(reverse("classroom-qr", args=[session.code]))
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    body = response.content.decode()
    assert body.startswith("<svg") and "<path" in body and "script" not in body


def test_join_link_uses_the_lan_address_when_the_teacher_browses_on_loopback(client, session, settings):
    settings.HEMICYCLE_LAN_ADDRESS = "192.168.1.20"
    settings.HEMICYCLE_PUBLIC_URL = ""
    client.force_login(session.teacher)
    page = client.get(reverse("classroom-teach", args=[session.code]), HTTP_HOST="127.0.0.1:8000").content.decode()
    assert f'href="http://192.168.1.20:8000/join/{session.code}/"' in page
    # A teacher already on the LAN address keeps it; a public URL wins over both.
    page = client.get(reverse("classroom-teach", args=[session.code]), HTTP_HOST="testserver").content.decode()
    assert f'href="http://testserver/join/{session.code}/"' in page
    settings.HEMICYCLE_PUBLIC_URL = "https://lab.example.edu"
    page = client.get(reverse("classroom-teach", args=[session.code])).content.decode()
    assert f'href="https://lab.example.edu/join/{session.code}/"' in page


def test_console_warns_when_phones_cannot_reach_the_server(client, session, settings):
    settings.HEMICYCLE_LAN_ADDRESS = "192.168.1.20"
    settings.HEMICYCLE_PUBLIC_URL = ""
    settings.HEMICYCLE_BIND_HOST = "127.0.0.1"
    client.force_login(session.teacher)
    page = client.get(reverse("classroom-teach", args=[session.code]), HTTP_HOST="127.0.0.1:8000").content.decode()
    assert "make run HOST=0.0.0.0" in page
    settings.HEMICYCLE_BIND_HOST = "0.0.0.0"
    page = client.get(reverse("classroom-teach", args=[session.code]), HTTP_HOST="127.0.0.1:8000").content.decode()
    assert 'data-testid="join-warning"' not in page


# ---- joining ------------------------------------------------------------------------------------


def test_join_code_form_normalises_the_code_and_rejects_unknown_ones(client, session):
    response = client.post(reverse("classroom-join"), {"code": f" {session.code.lower()} "})
    assert response.status_code == 302 and response["Location"] == reverse("classroom-join-code", args=[session.code])
    response = client.post(reverse("classroom-join"), {"code": "AAAAAA"})
    assert response.status_code == 200 and "No session has this code" in response.content.decode()


def test_joining_stores_the_seat_token_and_opens_the_seat_page(client, session):
    response = join(client, session, name="  Ada   Lovelace ", seat="SD")
    assert response.status_code == 302 and response["Location"] == reverse("classroom-seat", args=[session.code])
    student = Student.objects.get(class_session=session)
    assert (student.name, student.group) == ("Ada Lovelace", "SD")
    token = client.session[f"classroom.{session.code}"]
    assert student_for_token(class_session=session, token=token) == student
    page = client.get(reverse("classroom-seat", args=[session.code])).content.decode()
    assert "Ada Lovelace" in page and 'data-testid="act"' in page
    # Back on the join page, a seated student goes straight to the seat.
    assert client.get(reverse("classroom-join-code", args=[session.code]))["Location"] == reverse(
        "classroom-seat", args=[session.code]
    )


def test_a_student_may_watch(client, session):
    assert join(client, session, name="Watcher", seat="").status_code == 302
    assert Student.objects.get(class_session=session).group == ""


def test_join_validation_messages(client, session):
    response = join(client, session, name="   ")
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    response = join(client, session, seat="NOPE")
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert join(client, session, name="Ada").status_code == 302
    other = client.__class__()
    response = join(other, session, name="ada")
    assert response.status_code == 400 and "already called ada" in response.content.decode()
    assert Student.objects.count() == 1


def test_joining_an_ended_session_is_refused(client, session):
    teach(session, "end")
    page = client.get(reverse("classroom-join-code", args=[session.code])).content.decode()
    assert 'data-testid="join-ended"' in page and 'data-testid="join-form"' not in page
    response = join(client, session)
    assert response.status_code == 400 and "This session has ended." in response.content.decode()
    assert not Student.objects.exists()


def test_joins_are_rate_limited_per_client_address(client, session, settings):
    settings.HEMICYCLE_JOIN_RATE = 2
    assert join(client, session, name="A1").status_code == 302
    assert join(client.__class__(), session, name="A2").status_code == 302
    response = join(client.__class__(), session, name="A3")
    assert response.status_code == 429
    assert "Too many tries to join from this device: wait a minute" in response.content.decode()
    assert not Student.objects.filter(name="A3").exists()
    # Another address is not affected.
    assert join(client.__class__(), session, name="B1", REMOTE_ADDR="10.0.0.9").status_code == 302


def test_joins_count_per_address_and_session_so_one_address_may_join_another_session(client, session, settings):
    settings.HEMICYCLE_JOIN_RATE = 2
    other = open_session(make_user("second-teacher"))
    assert join(client.__class__(), session, name="A1").status_code == 302
    assert join(client.__class__(), session, name="A2").status_code == 302
    assert join(client.__class__(), session, name="A3").status_code == 429
    assert join(client.__class__(), other, name="C1").status_code == 302  # the next class on the same network


def test_join_code_lookups_are_throttled_per_address(client, session, settings):
    settings.HEMICYCLE_JOIN_LOOKUP_RATE = "3/m"
    for guess in ("AAAAAA", "BBBBBB", "CCCCCC"):
        assert client.get(reverse("classroom-join"), {"code": guess}).status_code == 200
    refused = client.get(reverse("classroom-join"), {"code": session.code})
    assert refused.status_code == 429 and "Too many session codes tried" in refused.content.decode()
    assert client.get(reverse("classroom-join-code", args=["ZZZZZZ"])).status_code == 429
    assert client.get(reverse("classroom-qr", args=[session.code])).status_code == 429
    # Another address is not affected.
    assert client.get(reverse("classroom-qr", args=[session.code]), REMOTE_ADDR="10.0.0.9").status_code == 200


def test_unknown_codes_on_the_join_page_count_as_guesses_and_known_ones_do_not(client, session, settings):
    settings.HEMICYCLE_JOIN_LOOKUP_RATE = "2/m"
    for _ in range(5):
        assert client.get(reverse("classroom-join-code", args=[session.code])).status_code == 200
    assert client.get(reverse("classroom-join-code", args=["ZZZZZZ"])).status_code == 404
    assert client.get(reverse("classroom-join-code", args=["YYYYYY"])).status_code == 404
    assert client.get(reverse("classroom-join-code", args=["XXXXXX"])).status_code == 429
    assert client.get(reverse("classroom-join-code", args=[session.code])).status_code == 429


def test_seat_page_without_a_seat_sends_to_the_join_page(client, session):
    response = client.get(reverse("classroom-seat", args=[session.code]))
    assert response.status_code == 302 and response["Location"] == reverse("classroom-join-code", args=[session.code])
    client.cookies.clear()
    session_store = client.session
    session_store[f"classroom.{session.code}"] = "forged-token"
    session_store.save()
    assert client.get(reverse("classroom-seat", args=[session.code])).status_code == 302


def test_display_names_are_escaped_on_every_page(client, session):
    evil = "<script>alert(1)</script>"
    assert join(client, session, name=evil).status_code == 302
    pages = [client.get(reverse("classroom-seat", args=[session.code])).content.decode()]
    other = client.__class__()
    pages.append(other.get(reverse("classroom-join-code", args=[session.code])).content.decode())
    other.force_login(session.teacher)
    pages.append(other.get(reverse("classroom-teach", args=[session.code])).content.decode())
    for page in pages:
        assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0] and "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    # In the page's JSON the name is escaped for HTML too (json_script).
    data = re.search(r'<script id="classroom-page" type="application/json">(.*?)</script>', pages[0]).group(1)
    assert "\\u003Cscript\\u003Ealert(1)\\u003C/script\\u003E" in data


def test_nav_links_to_the_classroom(client, session):
    assert 'data-testid="nav-join"' in client.get(reverse("classroom-join")).content.decode()
    client.force_login(session.teacher)
    assert 'data-testid="nav-classroom"' in client.get(reverse("classroom-home")).content.decode()


def test_a_sessions_run_page_renders_with_the_classrooms_rounds(client, session):
    client.force_login(session.teacher)
    page = client.get(reverse("run-detail", args=[session.run_id])).content.decode()
    data = re.search(r'<script id="run-page" type="application/json">(.*?)</script>', page).group(1)
    assert '"strategy": "classroom"' in data and '"rounds": 0' in data
    # The session is driven from its console, not with the run's pause and stop.
    assert reverse("classroom-teach", args=[session.code]) in page and 'data-testid="pause"' not in page


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("localhost", True),
        ("[::1]", True),
        ("::1", True),
        ("192.168.1.20", False),
        ("lab.example.edu", False),
        ("0.0.0.0", False),
    ],
)
def test_loopback_hosts_are_recognised(host, loopback):
    assert is_loopback(host) is loopback


def test_the_open_form_says_which_model_plays_the_agents_and_how_long_a_turn_takes(client):
    teacher = make_user("teacher")
    scenario_save(owner=teacher, name="demo", config=scenario_config(make_record(), model="scripted:demo"))
    scenario_save(
        owner=teacher, name="cpu", config=scenario_config(make_record(title="Other"), model="local:smollm2-135m")
    )
    client.force_login(teacher)
    page = client.get(reverse("classroom-home")).content.decode()
    assert "Agents are played by <code>scripted:demo</code>: about 1 s a turn" in page
    assert "Agents are played by <code>local:smollm2-135m</code>: 8 to 17 s a turn on this machine" in page


def test_the_projector_is_full_screen_without_the_site_nav_or_the_teachers_name(client, session):
    client.force_login(session.teacher)
    page = client.get(reverse("classroom-projector", args=[session.code])).content.decode()
    assert 'class="projector-mode"' in page and 'data-testid="projector"' in page
    assert 'class="topbar"' not in page and 'class="who"' not in page  # no account name, no nav
    assert 'data-testid="nav-runs"' not in page
    console = client.get(reverse("classroom-teach", args=[session.code])).content.decode()
    assert 'class="topbar"' in console  # the other pages keep the site's navigation


def test_the_seat_page_briefs_the_student_on_the_issue_and_the_groups_stance_and_real_vote(client, session):
    join(client, session, seat="SD")
    page = client.get(reverse("classroom-seat", args=[session.code])).content.decode()
    assert 'data-testid="seat-brief"' in page
    assert session.run.record.background in page
    assert "S&amp;D asks for binding social safeguards before it can support the text." in page
    assert 'data-testid="real-vote"' in page and "35% of its members for the resolution" in page
    assert '<span class="vote vote-against">against</span> (3 of 9)' in page
    assert 'data-testid="vote-draft"' in page  # the final text sits beside the vote slider


def test_a_watcher_gets_the_background_but_no_stance(client, session):
    join(client, session, seat="")
    page = client.get(reverse("classroom-seat", args=[session.code])).content.decode()
    assert session.run.record.background in page and 'data-testid="group-stance"' not in page
