"""The scenario builder (browser) and the JSON it reads while you build."""

import json

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from deliberation.engine.goals import GOALS, vote_position
from deliberation.engine.scenario import ScenarioError
from deliberation.engine.strategies import STRATEGIES
from deliberation.records.models import TERMS, Record, RecordSet, Topic
from deliberation.records.selectors import record_search
from deliberation.registry.budgets import BudgetExceeded, spending_for
from deliberation.runs.services import run_create
from deliberation.scenarios.forms import ScenarioForm
from deliberation.scenarios.models import SavedScenario
from deliberation.scenarios.services import most_divided_groups, scenario_save, scenario_seats, term_seat_counts

DEMO_MODEL = "scripted:demo"


def _form_data_from_post(request: HttpRequest) -> dict:
    data = request.POST.dict()
    data["groups"] = json.dumps(request.POST.getlist("groups")) if request.POST.getlist("groups") else ""
    return data


@login_required
def scenario_builder(request: HttpRequest) -> HttpResponse:
    initial = {}
    if "scenario" in request.GET:
        saved = get_object_or_404(SavedScenario, pk=request.GET["scenario"], owner=request.user)
        initial = {**saved.scenario_fields(), "record": saved.record_id, "name": saved.name,
                   "rounds": saved.params.get("rounds", 1),
                   "rapporteur": saved.params.get("rapporteur", "largest")}
        if saved.seat_structure == "custom":
            initial["custom_seats"] = {code: round(share * 100, 4) for code, share in saved.seats.items()}
    elif "record" in request.GET:
        initial = {"record": request.GET["record"]}
    form = ScenarioForm(_form_data_from_post(request) if request.method == "POST" else None, initial=initial,
                        user=request.user)
    saving = request.POST.get("action") == "save"
    if request.method == "POST" and form.is_valid() and saving and not form.cleaned_data.get("name"):
        form.add_error("name", "Give the scenario a name to save it.")
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data.get("name")
        try:
            # One transaction: a run the budget refuses leaves no saved scenario behind either.
            with transaction.atomic():
                scenario = scenario_save(owner=request.user, name=name, config=form.config) if name else None
                if saving:
                    return redirect(f"{request.path}?scenario={scenario.pk}")
                run = run_create(
                    owner=request.user, config=form.config, scenario=scenario,
                    visibility=form.cleaned_data.get("visibility") or "private",
                )
        except BudgetExceeded as error:
            form.add_error(None, error.reason)
        else:
            return redirect("run-detail", run_id=run.pk)
    saved = SavedScenario.objects.filter(owner=request.user).select_related("record")
    return render(request, "scenarios/builder.html", {
        "form": form,
        "spending": spending_for(user=request.user),
        "goals": GOALS,
        "strategies": sorted(STRATEGIES),
        "saved_scenarios": saved,
        # A first look: the watchable scripted model, when the registry offers it to this user.
        "demo_model": next((entry.name for entry in form.model_choices if entry.name == DEMO_MODEL), None),
        "record_filters": {
            "topics": Topic.objects.values_list("name", flat=True),
            "terms": TERMS,
            "record_sets": RecordSet.objects.values_list("name", flat=True),
        },
        "initial_json": json.dumps({k: (v if not hasattr(v, "pk") else v.pk) for k, v in initial.items()}, default=str),
    })


@require_GET
@login_required
def record_list_api(request: HttpRequest) -> JsonResponse:
    records = record_search(
        topic=request.GET.get("topic") or None,
        term=request.GET.get("term") or None,
        query=request.GET.get("q") or None,
        record_set=request.GET.get("record_set") or None,
    )[:200]
    return JsonResponse({"records": [
        {"id": r.pk, "title": r.title, "term": r.term, "record_set": r.record_set.name,
         "topics": [t.name for t in r.topics.all()], "groups": r.stance_count}
        for r in records
    ]})


@require_GET
@login_required
def record_detail_api(request: HttpRequest, record_id: int) -> JsonResponse:
    record = get_object_or_404(Record.objects.select_related("record_set"), pk=record_id)
    seats = term_seat_counts(record.term)
    return JsonResponse({
        "id": record.pk,
        "title": record.title,
        "background": record.background,
        "resolution": record.resolution,
        "term": record.term,
        "topics": [t.name for t in record.topics.all()],
        "real_total_score": record.real_total_score,
        "stances": [
            {"group": s.group.code, "label": s.group.label, "short_label": s.group.short_label or s.group.code,
             "colour": s.group.colour, "seats": seats.get(s.group.code), "text": s.text,
             "real_score": s.real_score, "real_choice": s.real_choice, "real_position": vote_position(s.real_choice)}
            for s in record.stances.select_related("group").order_by("-group__seats_at_start", "group__code")
        ],
    })


@require_GET
@login_required
def seats_preview_api(request: HttpRequest, record_id: int) -> JsonResponse:
    """The groups and seat shares a scenario would get, for the builder's hemicycle preview."""
    record = get_object_or_404(Record, pk=record_id)
    try:
        seed = int(request.GET.get("seed") or 0)
        groups = [code for code in request.GET.get("groups", "").split(",") if code]
        if not groups and request.GET.get("most_divided"):
            groups = most_divided_groups(record=record, count=int(request.GET["most_divided"]), seed=seed)
        custom = json.loads(request.GET["custom"]) if request.GET.get("custom") else None
        seats = scenario_seats(
            record=record, groups=groups, structure=request.GET.get("structure", "equal"),
            seed=seed, custom_percent=custom,
        )
    except (ScenarioError, ValueError) as error:
        return JsonResponse({"error": str(error).split(": ", 1)[-1]}, status=400)
    return JsonResponse({"groups": groups, "seats": seats})
