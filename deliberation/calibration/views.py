"""Calibration pages: the list (optionally one record set's) and one calibration with its figures."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deliberation.calibration.figures import calibration_figures
from deliberation.calibration.models import Calibration
from deliberation.calibration.selectors import calibration_get, calibration_list, calibration_scored
from deliberation.engine.calibration import REPORTED_PAPER_R

LIST_SIZE = 200


@login_required
@require_GET
def calibration_index(request: HttpRequest) -> HttpResponse:
    calibrations = calibration_list()
    record_set = request.GET.get("record_set")
    if record_set and record_set.isdigit():
        calibrations = calibrations.filter(record_set_id=int(record_set))
    judge = request.GET.get("judge")
    if judge:  # a dashboard's link: one judge's calibrations
        calibrations = calibrations.filter(judge=judge)
    return render(
        request,
        "calibration/calibration_list.html",
        {
            "calibrations": calibrations[:LIST_SIZE],
            "judge": judge,
            "paper_r": REPORTED_PAPER_R,
        },
    )


@login_required
@require_GET
def calibration_detail(request: HttpRequest, calibration_id: int) -> HttpResponse:
    try:
        calibration = calibration_get(calibration_id=calibration_id)
    except Calibration.DoesNotExist:
        raise Http404("no such calibration") from None
    if calibration.status != Calibration.Status.FINISHED:  # no results yet (or ever): how far it got
        return render(
            request,
            "calibration/calibration_progress.html",
            {"calibration": calibration, "scored": calibration_scored(calibration=calibration)},
        )
    results = calibration.results
    return render(
        request,
        "calibration/calibration_detail.html",
        {
            "calibration": calibration,
            "r": results,
            "isotonic": results.get("isotonic"),
            "confusion_rows": list(enumerate(results["confusion"])),
            "positions": results["positions"],
            "breakdowns": [
                (name, dict(sorted(results[key].items())))  # jsonb does not keep key order
                for name, key in (("Group", "bias_by_group"), ("Term", "bias_by_term"), ("Topic", "bias_by_topic"))
            ],
            "charts": calibration_figures(
                results=results, pairs=calibration.pairs, seed=calibration.params.get("seed", 0)
            ),
            "paper_r": REPORTED_PAPER_R,
        },
    )
