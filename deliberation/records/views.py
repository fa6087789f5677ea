from collections.abc import Callable
from functools import wraps

from django import forms
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.views import LoginView, redirect_to_login
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from deliberation.engine.goals import vote_position
from deliberation.records.models import TERMS, Record, RecordSet, RecordSetVersion, RecordUpload, Topic, seating_key
from deliberation.records.selectors import (
    current_records,
    import_report_tables,
    record_get,
    record_search,
    record_set_list,
    record_set_versions_compare,
    record_upload_list,
)
from deliberation.records.services import (
    UploadRefused,
    record_upload_create,
    record_upload_start,
    upload_progress_key,
)
from deliberation.throttling import signin_throttled


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous: to the sign-in page; signed in but not staff: 403. Both before the request body
    is read: CSRF is checked here, after the permission check, because the CSRF middleware
    would parse a refused multipart body (every uploaded file) to look for its token."""

    @csrf_exempt
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("Only staff can upload and compare record sets.")
        rejected = CsrfViewMiddleware(lambda _request: HttpResponse()).process_view(request, None, (), {})
        if rejected is not None:
            return rejected
        return view(request, *args, **kwargs)

    return wrapped


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "records/home.html", {"record_sets": record_set_list()})


TOO_MANY_SIGNINS = "Too many sign-in attempts from here: wait a minute, then try again."


class SignInView(LoginView):
    """Django's sign-in, throttled per (address, user name) and per address (deliberation/throttling.py)."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        if signin_throttled(request, username=username):
            form = self.get_form_class()(request, data={"username": username})  # no password: none is checked
            form.errors.clear()
            form.add_error(None, TOO_MANY_SIGNINS)
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


def signup(request: HttpRequest) -> HttpResponse:
    """Self-service accounts, on where settings allow it (the embedded default does)."""
    if not settings.HEMICYCLE_OPEN_SIGNUP:
        raise Http404("sign-up is closed here; ask an admin for an account")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and signin_throttled(request, username="(sign-up)"):
        form = UserCreationForm(data={})
        form.errors.clear()
        form.add_error(None, TOO_MANY_SIGNINS)
        return render(request, "registration/signup.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("my-dashboard")
    return render(request, "registration/signup.html", {"form": form})


# Browsing ------------------------------------------------------------------------------------------


@login_required
@require_GET
def record_set_detail(request: HttpRequest, record_set_id: int) -> HttpResponse:
    record_set = get_object_or_404(RecordSet.objects.select_related("current_version"), pk=record_set_id)
    topic = request.GET.get("topic") or None
    term = request.GET.get("term") or None
    query = (request.GET.get("q") or "").strip() or None
    records = record_search(record_set=record_set.name, topic=topic, term=term, query=query, min_stances=1)
    page = Paginator(records, 50).get_page(request.GET.get("page"))
    topics = (
        Topic.objects.filter(records__in=current_records(Record.objects.filter(record_set=record_set)))
        .distinct()
        .values_list("name", flat=True)
    )
    return render(
        request,
        "records/record_set.html",
        {
            "record_set": record_set,
            "page": page,
            "topics": topics,
            "terms": TERMS,
            "filters": {"topic": topic or "", "term": term or "", "q": query or ""},
            "versions": record_set.versions.order_by("-number") if request.user.is_staff else [],
        },
    )


@login_required
@require_GET
def record_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    try:
        record = record_get(record_id=record_id)
    except Record.DoesNotExist:
        raise Http404("no such record") from None
    ordered = sorted(
        record.stances.all(), key=lambda stance: seating_key(stance.group.code)
    )  # as seated, left to right
    stances = [(stance, vote_position(stance.real_choice)) for stance in ordered]
    return render(request, "records/record.html", {"record": record, "stances": stances})


# Uploads (staff) ------------------------------------------------------------------------------------


class UploadForm(forms.Form):
    record_set = forms.CharField(
        max_length=200, help_text="A new name makes a new record set; an existing one gets a new version."
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    note = forms.CharField(required=False, max_length=500, help_text="What this version brings (kept with it).")
    mode = forms.ChoiceField(
        choices=RecordSetVersion.Mode.choices, initial=RecordSetVersion.Mode.EXTEND, widget=forms.RadioSelect
    )


@staff_required
@require_http_methods(["GET", "POST"])
def record_upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, initial={"record_set": request.GET.get("record_set", "")})
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            upload = record_upload_create(
                files=request.FILES.getlist("files"),
                record_set_name=form.cleaned_data["record_set"].strip(),
                description=form.cleaned_data["description"],
                note=form.cleaned_data["note"],
                mode=form.cleaned_data["mode"],
                created_by=request.user,
            )
        except UploadRefused as refused:
            error = str(refused)
        else:
            return redirect("record-upload-detail", upload_id=upload.pk)
    return render(
        request,
        "records/upload.html",
        {
            "form": form,
            "error": error,
            "uploads": record_upload_list()[:10],
            "record_set_names": RecordSet.objects.values_list("name", flat=True),
            "max_bytes": settings.HEMICYCLE_UPLOAD_MAX_BYTES,
        },
        status=400 if error else 200,
    )


@staff_required
@require_http_methods(["GET", "POST"])
def record_upload_detail(request: HttpRequest, upload_id: int) -> HttpResponse:
    upload = get_object_or_404(record_upload_list(), pk=upload_id)
    refusal = ""
    if request.method == "POST":
        try:
            record_upload_start(upload=upload, skip_problems=request.POST.get("skip_problems") == "on")
        except UploadRefused as refused:
            refusal = str(refused)
        else:
            return redirect("record-upload-detail", upload_id=upload.pk)
    record_set = RecordSet.objects.filter(name=upload.record_set_name).select_related("current_version").first()
    return render(
        request,
        "records/upload_detail.html",
        {
            "upload": upload,
            "check": upload.check_report or {},
            "check_tables": import_report_tables(upload.check_report or {}),
            "result": upload.result_report or {},
            "record_set": record_set,
            "running": upload.status in RecordUpload.WORKING,
            "max_problems": 500,
            "refusal": refusal,
            "needs_alias": any(
                "map it in the admin" in problem["message"]
                for problem in (upload.check_report or {}).get("problems", [])
            ),
        },
        status=400 if refusal else 200,
    )


@staff_required
@require_GET
def record_upload_progress(request: HttpRequest, upload_id: int) -> JsonResponse:
    """Polled every second by the upload page while the check or the import runs."""
    upload = get_object_or_404(RecordUpload, pk=upload_id)
    live = cache.get(upload_progress_key(upload.pk)) or {}
    finished = upload.status not in RecordUpload.WORKING
    return JsonResponse(
        {
            "status": upload.status,
            "progress": 1.0 if finished else live.get("progress", 0.0),
            "label": upload.status if finished else live.get("label", "waiting for a worker"),
            "finished": finished,
        }
    )


@staff_required
@require_GET
def record_set_compare(request: HttpRequest, record_set_id: int) -> HttpResponse:
    record_set = get_object_or_404(RecordSet, pk=record_set_id)
    versions = list(record_set.versions.order_by("number"))
    if len(versions) < 2:
        return render(request, "records/compare.html", {"record_set": record_set, "versions": versions, "diff": None})
    by_number = {version.number: version for version in versions}

    def pick(name: str, default: RecordSetVersion) -> RecordSetVersion:
        try:
            return by_number[int(request.GET.get(name, default.number))]
        except (KeyError, ValueError):
            raise Http404(f"no version {request.GET.get(name)!r} of this record set") from None

    new = pick("new", versions[-1])
    old = pick("old", by_number.get(new.number - 1, versions[0]))
    diff = record_set_versions_compare(old=old, new=new)
    return render(request, "records/compare.html", {"record_set": record_set, "versions": versions, "diff": diff})
