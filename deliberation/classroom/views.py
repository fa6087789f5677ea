"""Classroom pages: the teacher's sessions, console and projector; students' join and seat pages;
the join QR code. Thin: every write is a service, every read a selector; the live part of each
page is the websocket (consumers.py) and classroom.js."""

from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from deliberation.classroom import selectors, services
from deliberation.classroom.lan import is_loopback
from deliberation.classroom.models import NAME_LIMIT, ClassSession, Student
from deliberation.engine.classroom import MAX_WORDS_PER_SECOND
from deliberation.engine.goals import vote_position
from deliberation.runs.selectors import run_page_data
from deliberation.scenarios.models import SavedScenario
from deliberation.throttling import join_lookup_throttled, join_throttled


def _session_or_404(code: str) -> ClassSession:
    session = selectors.class_session_by_code(code=code)
    if session is None:
        raise Http404("no classroom session with this code")
    return session


def _teacher_session(request: HttpRequest, code: str) -> ClassSession | HttpResponse:
    session = _session_or_404(code)
    if session.teacher_id != request.user.pk:
        return HttpResponseForbidden("Only the teacher who opened this session can open this page.")
    return session


def _seated_student(request: HttpRequest, session: ClassSession) -> Student | None:
    """The student whose seat token this browser holds for the session (None: not seated, removed)."""
    token = request.session.get(selectors.seat_session_key(session.code), "")
    return selectors.student_for_token(class_session=session, token=token)


def join_url(request: HttpRequest, code: str) -> str:
    """The address students open: HEMICYCLE_PUBLIC_URL when set; else this request's host, or,
    when the teacher browses on loopback, this machine's LAN address (phones cannot reach
    127.0.0.1)."""
    path = reverse("classroom-join-code", args=[code])
    if settings.HEMICYCLE_PUBLIC_URL:
        return settings.HEMICYCLE_PUBLIC_URL + path
    host = urlsplit(f"//{request.get_host()}")
    if is_loopback(host.hostname or "") and settings.HEMICYCLE_LAN_ADDRESS:
        port = f":{host.port}" if host.port else ""
        return f"{request.scheme}://{settings.HEMICYCLE_LAN_ADDRESS}{port}{path}"
    return request.build_absolute_uri(path)


def _reachability_warning(url: str) -> str:
    if is_loopback(urlsplit(url).hostname or ""):
        return (
            "This join link only works on this computer: no local network address was found. "
            "Connect to the classroom network, or set HEMICYCLE_PUBLIC_URL."
        )
    if settings.HEMICYCLE_BIND_HOST and is_loopback(settings.HEMICYCLE_BIND_HOST):
        return (
            "The server listens on this computer only, so phones cannot open the link: "
            "restart it with `make run HOST=0.0.0.0`."
        )
    return ""


def _page(session: ClassSession, role: str, **extra) -> dict:
    return {
        **run_page_data(session.run),
        "classroom": {
            "code": session.code,
            "role": role,
            "words_per_second": session.words_per_second,
            "server_now": timezone.now().isoformat(),
            **extra,
        },
    }


# ---- teacher ------------------------------------------------------------------------------------


# How long an agent's turn takes on a model, as a teacher plans a lesson with it (longest prefix wins).
TURN_TIMES = {
    "local:": "8 to 17 s a turn on this machine's CPU (the bundled model)",
    "scripted:demo": "about 1 s a turn (a demo double: its text means nothing)",
    "scripted:slow": "a fraction of a second a turn (a test double: its text means nothing)",
    "scripted:": "instant (a test double: its text means nothing)",
}
TURN_TIME_SERVED = "a few seconds a turn on a hosted or GPU-served model, depending on the server"


def turn_time(model: str) -> str:
    prefixes = [prefix for prefix in TURN_TIMES if model.startswith(prefix)]
    return TURN_TIMES[max(prefixes, key=len)] if prefixes else TURN_TIME_SERVED


class OpenSessionForm(forms.Form):
    scenario = forms.ModelChoiceField(
        queryset=SavedScenario.objects.none(), empty_label=None, help_text="A scenario you saved in the builder."
    )
    seconds_per_phase = forms.IntegerField(
        min_value=0,
        max_value=services.MAX_PHASE_SECONDS,
        required=False,
        initial=0,
        help_text="A timer for each phase (10 s or more); when it runs out the phase moves on. 0 or empty: no timer.",
    )
    words_per_second = forms.FloatField(
        min_value=0,
        max_value=MAX_WORDS_PER_SECOND,
        initial=3,
        help_text="How fast agents' text appears, word by word. 0: all at once.",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scenario"].queryset = SavedScenario.objects.filter(owner=owner).select_related("record")
        self.fields["scenario"].label_from_instance = lambda saved: (
            f"{saved.name} ({saved.record.title[:60]}, {len(saved.groups)} groups)"
        )
        # Which model plays the agents, and how long a turn takes on it, per scenario.
        self.agent_models = [
            {"id": saved.pk, "model": saved.model, "turn": turn_time(saved.model)}
            for saved in self.fields["scenario"].queryset
        ]


@login_required
@require_http_methods(["GET", "POST"])
def classroom_home(request: HttpRequest) -> HttpResponse:
    form = OpenSessionForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            session = services.class_session_open(
                teacher=request.user,
                scenario=form.cleaned_data["scenario"],
                phase_seconds=form.cleaned_data["seconds_per_phase"] or None,
                words_per_second=form.cleaned_data["words_per_second"],
            )
        except services.ClassroomError as error:
            form.add_error(None, str(error))
        else:
            return redirect("classroom-teach", code=session.code)
    return render(
        request,
        "classroom/home.html",
        {
            "form": form,
            "sessions": selectors.sessions_for_teacher(user=request.user).select_related("run__record")[:100],
        },
    )


@login_required
def classroom_teach(request: HttpRequest, code: str) -> HttpResponse:
    session = _teacher_session(request, code)
    if isinstance(session, HttpResponse):
        return session
    url = join_url(request, session.code)
    return render(
        request,
        "classroom/teach.html",
        {
            "session": session,
            "run": session.run,
            "join_url": url,
            "warning": _reachability_warning(url),
            "page": _page(session, "teacher"),
        },
    )


@login_required
def classroom_projector(request: HttpRequest, code: str) -> HttpResponse:
    session = _teacher_session(request, code)
    if isinstance(session, HttpResponse):
        return session
    return render(
        request,
        "classroom/projector.html",
        {
            "session": session,
            "run": session.run,
            "join_url": join_url(request, session.code),
            "page": _page(session, "projector"),
        },
    )


def classroom_qr(request: HttpRequest, code: str) -> HttpResponse:
    if join_lookup_throttled(request):
        return HttpResponse(TOO_MANY_LOOKUPS, status=429, content_type="text/plain")
    session = _session_or_404(code)
    image = qrcode.make(join_url(request, session.code), image_factory=qrcode.image.svg.SvgPathImage)
    response = HttpResponse(image.to_string(encoding="unicode"), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=300"
    return response


# ---- students -----------------------------------------------------------------------------------


class JoinCodeForm(forms.Form):
    code = forms.CharField(max_length=12, label="Session code")

    def clean_code(self) -> str:
        code = selectors.normalised_code(self.cleaned_data["code"].replace("-", ""))
        if selectors.class_session_by_code(code=code) is None:
            raise forms.ValidationError("No session has this code. Check it with your teacher.")
        return code


TOO_MANY_LOOKUPS = "Too many session codes tried from this device: wait a minute, then try again."


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest) -> HttpResponse:
    form = JoinCodeForm(request.POST or request.GET or None)
    if not (request.POST or request.GET):
        return render(request, "classroom/join.html", {"form": form})
    if join_lookup_throttled(request):
        form = JoinCodeForm(data={})  # the code is not looked up
        form.errors.clear()
        form.add_error(None, TOO_MANY_LOOKUPS)
        return render(request, "classroom/join.html", {"form": form}, status=429)
    if form.is_valid():
        return redirect("classroom-join-code", code=form.cleaned_data["code"])
    return render(request, "classroom/join.html", {"form": form})


class JoinSeatForm(forms.Form):
    name = forms.CharField(max_length=NAME_LIMIT, label="Your name", help_text="As the class will see it.")
    seat = forms.ChoiceField(widget=forms.RadioSelect, label="Your seat")

    def __init__(self, *args, seats, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["seat"].choices = [*seats, ("", "Just watch")]
        self.fields["seat"].required = False

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Type the name the class will see.")
        return name


@require_http_methods(["GET", "POST"])
def join_code(request: HttpRequest, code: str) -> HttpResponse:
    if join_lookup_throttled(request, count=False):
        return HttpResponse(TOO_MANY_LOOKUPS, status=429, content_type="text/plain")
    session = selectors.class_session_by_code(code=code)
    if session is None:  # an unknown code counts as a guess
        if join_lookup_throttled(request):
            return HttpResponse(TOO_MANY_LOOKUPS, status=429, content_type="text/plain")
        raise Http404("no classroom session with this code")
    if code != session.code:
        return redirect("classroom-join-code", code=session.code)
    if request.method == "GET" and _seated_student(request, session) is not None:
        return redirect("classroom-seat", code=session.code)
    page = run_page_data(session.run)
    form = JoinSeatForm(request.POST or None, seats=[(g["code"], g["label"]) for g in page["groups"]])
    status = 200
    if request.method == "POST":
        if join_throttled(request, code=session.code):
            form.add_error(None, "Too many tries to join from this device: wait a minute, then try again.")
            status = 429
        elif form.is_valid():
            try:
                student = services.student_join(
                    class_session=session,
                    name=form.cleaned_data["name"],
                    group=form.cleaned_data["seat"] or None,
                )
            except services.ClassroomError as error:
                form.add_error(None, str(error))
            else:
                request.session[selectors.seat_session_key(session.code)] = services.seat_token(student=student)
                return redirect("classroom-seat", code=session.code)
        if status == 200:
            status = 400
    seated = selectors.presence(class_session=session)["seats"]
    return render(
        request,
        "classroom/join_seat.html",
        {
            "session": session,
            "run": session.run,
            "form": form,
            "groups": [
                {**group, "students": [student["name"] for student in seated.get(group["code"], [])]}
                for group in page["groups"]
            ],
        },
        status=status,
    )


def classroom_seat(request: HttpRequest, code: str) -> HttpResponse:
    session = _session_or_404(code)
    student = _seated_student(request, session)
    if student is None:
        return redirect("classroom-join-code", code=session.code)
    # What a student needs to play the part: the issue, and the group's stance and real vote.
    stance = (
        session.run.record.stances.select_related("group").filter(group__code=student.group).first()
        if student.group
        else None
    )
    return render(
        request,
        "classroom/seat.html",
        {
            "session": session,
            "run": session.run,
            "student": student,
            "stance": stance,
            "real_position": vote_position(stance.real_choice) if stance and stance.real_choice is not None else None,
            "page": _page(
                session, "student", student={"id": student.pk, "name": student.name, "group": student.group or None}
            ),
        },
    )
