"""Run pages, run controls, and the JSON API for starting runs."""

import json
import secrets
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from deliberation.engine.rules import RULES
from deliberation.engine.strategies import STRATEGIES
from deliberation.runs.exports import FORMATS, run_export
from deliberation.runs.models import Run
from deliberation.runs.selectors import (
    experiment_for_owner,
    experiment_progress,
    experiments_for_owner,
    run_for_viewer,
    run_group_rewards,
    run_list_for_owner,
    run_page_data,
    run_summary,
    runs_of_owner,
)
from deliberation.runs.services import (
    CLASSROOM_STRATEGY,
    TERMINAL,
    RunControlError,
    run_create,
    run_pause,
    run_reseed,
    run_resume,
    run_stop,
)
from deliberation.scenarios.models import SEAT_STRUCTURE_CHOICES, SavedScenario
from deliberation.scenarios.services import scenario_config_build


def _run_or_404(request: HttpRequest, run_id: int) -> Run:
    run = run_for_viewer(user=request.user, run_id=run_id, token=request.GET.get("token", ""))
    if run is None:
        raise Http404("no such run, or it is not shared with you")
    return run


RUNS_PER_PAGE = 50
RECENT = 5


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    filters = {key: (request.GET.get(key) or "").strip() for key in ("status", "strategy", "experiment")}
    if filters["status"] not in Run.Status.values:
        filters["status"] = ""
    runs = runs_of_owner(owner=request.user, **filters)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "runs/list.html",
        {
            "page": page,
            "runs": page.object_list,
            "filters": filters,
            "query": urlencode({key: value for key, value in filters.items() if value}),
            "statuses": Run.Status.choices,
            "strategies": sorted({*STRATEGIES, CLASSROOM_STRATEGY}),
            "experiments": experiments_for_owner(user=request.user).values_list("pk", "name")[:200],
        },
    )


@login_required
def my_dashboard(request: HttpRequest) -> HttpResponse:
    """Where signing in and signing up land: the latest runs and experiments, and what to do next."""
    runs = runs_of_owner(owner=request.user)[:RECENT]
    experiments = experiments_for_owner(user=request.user)[:RECENT]
    return render(
        request,
        "runs/dashboard.html",
        {
            "runs": runs,
            "experiments": [{"experiment": e, "progress": experiment_progress(experiment=e)} for e in experiments],
            "has_scenarios": SavedScenario.objects.filter(owner=request.user).exists(),
        },
    )


WHATIF_CHOICES = {
    "seat_choices": [("run", "This run's seats"), *SEAT_STRUCTURE_CHOICES],
    "rules": list(RULES.values()),
}


def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(request, run_id)
    page = {
        **run_page_data(run),
        "token": request.GET.get("token", ""),
        "is_owner": request.user.is_authenticated and request.user.pk == run.owner_id,
    }
    share_url = request.build_absolute_uri(reverse("run-detail", args=[run.pk])) + f"?token={run.share_token}"
    labels = {group["code"]: group["short_label"] for group in page["groups"]}
    return render(
        request,
        "runs/detail.html",
        {
            "run": run,
            "page": page,
            "share_url": share_url,
            "visibilities": Run.Visibility.choices,
            "whatif": WHATIF_CHOICES,
            "rewards": [{**row, "label": labels.get(row["group"], row["group"])} for row in run_group_rewards(run=run)],
            "veto_label": labels.get(run.veto_group, run.veto_group),
            "terminal": run.status in TERMINAL,
            # An experiment's run is seeded from its grid seed (and its task); show both.
            "grid_seed": run.cell.rsplit("|", 1)[-1] if run.experiment_id and "|" in run.cell else None,
            "new_seed": secrets.randbelow(2**31 - 1) + 1,
        },
    )


@require_POST
@login_required
def run_new_seed(request: HttpRequest, run_id: int) -> HttpResponse:
    """Play the run's scenario again with another seed (the cache answered the old one)."""
    run = _run_or_404(request, run_id)
    try:
        seed = int(request.POST.get("seed", ""))
        if not 0 <= seed < 2**31:
            raise ValueError(seed)
    except ValueError:
        seed = secrets.randbelow(2**31 - 1) + 1
    try:
        new = run_reseed(run=run, user=request.user, seed=seed)
    except RunControlError as error:  # a Forbidden goes on to ApplicationErrorMiddleware: 403
        messages.error(request, str(error))
        return redirect("run-detail", run_id=run.pk)
    return redirect("run-detail", run_id=new.pk)


@require_http_methods(["GET"])
def run_export_zip(request: HttpRequest, run_id: int) -> HttpResponse:
    """One run's tables (runs, group_scores, events) and data dictionary as a zip;
    ?format=csv&format=json (default both)."""
    run = _run_or_404(request, run_id)
    try:
        blob = run_export(run=run, formats=request.GET.getlist("format") or ["csv", "json"])
    except ValueError as error:
        return JsonResponse({"error": str(error), "formats": list(FORMATS)}, status=400)
    response = StreamingHttpResponse(blob, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.zip"'
    return response


@require_POST
@login_required
def run_control(request: HttpRequest, run_id: int, action: str) -> HttpResponse:
    run = _run_or_404(request, run_id)
    controls = {"pause": run_pause, "resume": run_resume, "stop": run_stop}
    if action not in controls:
        raise Http404(action)
    try:
        controls[action](run=run, user=request.user)
    except RunControlError as error:  # a Forbidden goes on to ApplicationErrorMiddleware: 403
        if request.accepts("text/html") and not request.headers.get("X-Requested-With"):
            messages.error(request, str(error))
        else:
            return JsonResponse({"error": str(error)}, status=409)
    if request.headers.get("X-Requested-With"):
        return JsonResponse({"status": Run.objects.get(pk=run.pk).status})
    return redirect("run-detail", run_id=run.pk)


@require_POST
@login_required
def run_visibility(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(request, run_id)
    if run.owner_id != request.user.pk:
        return JsonResponse({"error": "only the run's owner can share it"}, status=403)
    visibility = request.POST.get("visibility")
    if visibility not in Run.Visibility.values:
        return JsonResponse({"error": "unknown visibility"}, status=400)
    Run.objects.filter(pk=run.pk).update(visibility=visibility)
    return redirect("run-detail", run_id=run.pk)


@require_http_methods(["GET", "POST"])
def runs_api(request: HttpRequest) -> JsonResponse:
    """/api/runs, kept for the scripts that use it: the browser session's alias of GET and POST
    /api/v1/runs (same validator, same answers; POST takes the session's CSRF token)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "sign in first"}, status=401)
    if request.method == "GET":
        return JsonResponse({"runs": [run_summary(run) for run in run_list_for_owner(owner=request.user)[:100]]})
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"errors": {"__all__": ["the body must be JSON"]}}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"errors": {"__all__": ["the body must be a JSON object"]}}, status=400)
    # ScenarioInvalid and BudgetExceeded answer 400 with their field errors (ApplicationErrorMiddleware).
    config = scenario_config_build(data=payload, user=request.user)
    run = run_create(owner=request.user, config=config, visibility=payload.get("visibility") or "private")
    return JsonResponse({"id": run.pk, "url": reverse("run-detail", args=[run.pk])}, status=201)


def run_api(request: HttpRequest, run_id: int) -> JsonResponse:
    """/api/runs/<id>: the alias of GET /api/v1/runs/<id> (same answer)."""
    return JsonResponse(run_summary(_run_or_404(request, run_id)))


@require_http_methods(["GET"])
def experiment_progress_api(request: HttpRequest, experiment_id: int) -> JsonResponse:
    """The owner's view of an experiment's progress (the websocket pushes the same JSON)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "sign in first"}, status=401)
    experiment = experiment_for_owner(user=request.user, experiment_id=experiment_id)
    if experiment is None:
        return JsonResponse({"error": "no such experiment of yours"}, status=404)
    return JsonResponse(experiment_progress(experiment=experiment))
