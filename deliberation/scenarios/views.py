"""The scenario builder (browser) and the JSON it reads while you build."""

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from deliberation.engine.goals import vote_position
from deliberation.engine.scenario import ScenarioError
from deliberation.records.models import Record
from deliberation.records.selectors import record_search
from deliberation.scenarios.services import (
    most_divided_groups,
    scenario_seats,
    term_seat_counts,
)


@require_GET
@login_required
def record_list_api(request: HttpRequest) -> JsonResponse:
    records = record_search(
        topic=request.GET.get("topic") or None,
        term=request.GET.get("term") or None,
        query=request.GET.get("q") or None,
        record_set=request.GET.get("record_set") or None,
    )[:200]
    return JsonResponse(
        {
            "records": [
                {
                    "id": r.pk,
                    "title": r.title,
                    "term": r.term,
                    "record_set": r.record_set.name,
                    "topics": [t.name for t in r.topics.all()],
                    "groups": r.stance_count,
                }
                for r in records
            ]
        }
    )


@require_GET
@login_required
def record_detail_api(request: HttpRequest, record_id: int) -> JsonResponse:
    record = get_object_or_404(Record.objects.select_related("record_set"), pk=record_id)
    seats = term_seat_counts(record.term)
    return JsonResponse(
        {
            "id": record.pk,
            "title": record.title,
            "background": record.background,
            "resolution": record.resolution,
            "term": record.term,
            "topics": [t.name for t in record.topics.all()],
            "real_total_score": record.real_total_score,
            "stances": [
                {
                    "group": s.group.code,
                    "label": s.group.label,
                    "short_label": s.group.short_label or s.group.code,
                    "colour": s.group.colour,
                    "seats": seats.get(s.group.code),
                    "text": s.text,
                    "real_score": s.real_score,
                    "real_choice": s.real_choice,
                    "real_position": vote_position(s.real_choice),
                }
                for s in record.stances.select_related("group").order_by("-group__seats_at_start", "group__code")
            ],
        }
    )


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
            record=record,
            groups=groups,
            structure=request.GET.get("structure", "equal"),
            seed=seed,
            custom_percent=custom,
        )
    except (ScenarioError, ValueError) as error:
        return JsonResponse({"error": str(error).split(": ", 1)[-1]}, status=400)
    return JsonResponse({"groups": groups, "seats": seats})
