"""Experiment pages: the owner's list with progress, one experiment's dashboard (its results are
also a fragment the page reloads as runs finish), a cell's runs, and the create form."""

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET

from deliberation.calibration.selectors import calibrations_for_experiment
from deliberation.dashboards import figures
from deliberation.dashboards.forms import ExperimentForm
from deliberation.dashboards.institutions import power_support, rule_sweep
from deliberation.dashboards.selectors import (
    breakdown,
    experiment_runs,
    group_views,
    moral_rewards,
    paper_tables,
    results_cache_seconds,
    results_version,
)
from deliberation.engine.goals import GOALS
from deliberation.records.selectors import group_labels
from deliberation.runs.experiments import (
    ExperimentError,
    experiment_cancel,
    experiment_create,
    experiment_pause,
    experiment_start,
)
from deliberation.runs.models import Experiment
from deliberation.runs.selectors import experiment_for_owner, experiment_progress, experiments_for_owner

# The dashboard's buttons. `start` starts a draft and resumes a paused, cancelled or capped one.
CONTROLS = {
    "start": experiment_start,
    "resume": experiment_start,
    "pause": experiment_pause,
    "cancel": experiment_cancel,
}


class _Preview(Exception):
    """Raised inside the preview's transaction so that nothing it created is kept."""

    def __init__(self, estimate: dict) -> None:
        self.estimate = estimate


def _experiment_or_404(request: HttpRequest, experiment_id: int) -> Experiment:
    experiment = experiment_for_owner(user=request.user, experiment_id=experiment_id)
    if experiment is None:
        raise Http404("no such experiment of yours")
    return experiment


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _breakdown_rows(cells: dict) -> list[dict]:
    rows = [
        {
            "strategy": s,
            "model": m,
            "judge": j,
            "goal": GOALS[g].label,
            "kind": GOALS[g].kind,
            "bucket": b,
            "cell": cell,
        }
        for (s, m, j, g, b), cell in cells.items()
    ]
    return sorted(rows, key=lambda r: (str(r["bucket"]), r["goal"], r["strategy"], r["model"], r["judge"]))


def _results_content(experiment: Experiment, version: str, calibrations: dict) -> dict:
    tables = paper_tables(experiment=experiment, version=version)
    power = breakdown(experiment=experiment, by="power", version=version)
    topic = breakdown(experiment=experiment, by="topic", version=version)
    groups = group_views(experiment=experiment, version=version)
    rewards = moral_rewards(experiment=experiment, version=version)
    charts = [
        *figures.paper_table_figures(tables),
        *figures.power_figures(power),
        *figures.topic_figures(topic),
        *[
            figure
            for figure in (
                figures.dominant_group_figure(groups.by_share, labels=group_labels()),
                figures.support_figure(groups.by_real_vote),
                figures.moral_rewards_figure(rewards),
            )
            if figure
        ],
    ]
    return {
        # each judge's table beside its latest calibrations on the experiment's record set
        "tables": [(table, calibrations["by_judge"].get(table.judge, [])) for table in tables],
        "breakdowns": [
            ("Power structure (largest group's seat share)", _breakdown_rows(power)),
            ("Topic", _breakdown_rows(topic)),
            ("Parliamentary term", _breakdown_rows(breakdown(experiment=experiment, by="term", version=version))),
        ],
        "charts": charts,
        "partisan": groups.partisan,
        "rewards": rewards,
    }


def _results_context(experiment: Experiment, progress: dict) -> dict:
    """What the results fragment shows: the paper's tables, the figures and the breakdowns, and
    how many runs had settled when it was read (the page reloads it when that number moves).

    The fragment is rendered once per version of the experiment's results (the template caches
    it under results_version, unless the experiment is running: results_cache_seconds): the
    tables, figures and breakdowns are made only when it is not cached, so they are lazy here."""
    version = results_version(experiment=experiment)
    calibrations = calibrations_for_experiment(experiment=experiment)
    content = SimpleLazyObject(lambda: _results_content(experiment, version, calibrations))
    return {
        "experiment": experiment,
        "calibration_version": calibrations["version"],
        "calibration_record_set": calibrations["record_set"],
        "settled": progress["done"] + progress["failed"],
        "results_version": version,
        "results_cache_seconds": results_cache_seconds(experiment=experiment),
        **{
            name: SimpleLazyObject(partial(lambda name: content[name], name))
            for name in ("tables", "breakdowns", "charts", "partisan", "rewards")
        },
    }


def _spec_summary(experiment: Experiment) -> list[tuple[str, str]]:
    spec = experiment.spec or {}
    source = spec.get("source", {})
    rows = []
    if source.get("kind") == "task":
        tasks = f"{len(source.get('ids', []))} benchmark task(s) of {source.get('record_set')}"
        if source.get("topic"):
            tasks += f", topic {source['topic']}"
        tasks += f", {' / '.join(map(str, source.get('parties', [])))} parties"
        if source.get("sample"):
            tasks += f", seeded sample of {source['sample']} (sample seed {source.get('sample_seed', 0)})"
        rows.append(("Tasks", tasks))
    elif source.get("kind") == "scenario":
        rows.append(("Scenarios", ", ".join(f"#{pk}" for pk in source.get("ids", []))))
    rows.append(("Goals", ", ".join(GOALS[key].label if key in GOALS else key for key in spec.get("goals", []))))
    for key in ("strategies", "models", "judges", "seeds"):
        rows.append((key.capitalize(), ", ".join(map(str, spec.get(key, [])))))
    for strategy, params in (spec.get("params") or {}).items():
        if params:
            rows.append((f"{strategy} parameters", ", ".join(f"{k} {v}" for k, v in params.items())))
    if experiment.call_cap is not None:
        rows.append(("Cap", f"{experiment.call_cap} uncached model steps"))
    grid = spec.get("calibration")
    if grid:
        limit = f", at most {grid['limit']} pairs (seed {grid['seed']})" if grid.get("limit") else ""
        rows.append(
            (
                "Calibration",
                f"judges {', '.join(grid['judges'])} x judge models {', '.join(grid['judge_models'])} "
                f"against the real votes of {grid['record_set']}{limit}",
            )
        )
    return rows


@login_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    experiments = experiments_for_owner(user=request.user)[:200]
    rows = [{"experiment": e, "progress": experiment_progress(experiment=e)} for e in experiments]
    return render(request, "dashboards/experiment_list.html", {"rows": rows})


@login_required
def experiment_dashboard(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment_or_404(request, experiment_id)
    if request.method == "POST":
        action = request.POST.get("action", "")
        control = CONTROLS.get(action)
        error = None if control else f"unknown action {action!r}"
        if control:
            try:
                control(experiment=experiment, user=request.user)
            except ExperimentError as failure:
                error = str(failure)
        experiment.refresh_from_db()
        if _wants_json(request):
            body = experiment_progress(experiment=experiment)
            if error:
                body["error"] = error
            return JsonResponse(body, status=409 if error else 200)
        if error:
            messages.error(request, error)
        return redirect("experiment-dashboard", experiment_id=experiment.pk)
    progress = experiment_progress(experiment=experiment)
    return render(
        request,
        "dashboards/experiment_detail.html",
        {
            **_results_context(experiment, progress),
            "progress": progress,
            "spec_rows": _spec_summary(experiment),
            "estimate": experiment.estimate,
            "calibration_grid": bool(experiment.spec.get("calibration")),
        },
    )


@login_required
@require_GET
def experiment_results(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """The dashboard's results alone (tables, figures, breakdowns): the page swaps it in as runs finish."""
    experiment = _experiment_or_404(request, experiment_id)
    response = render(
        request, "dashboards/_results.html", _results_context(experiment, experiment_progress(experiment=experiment))
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def experiment_sweep(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """Seats, power and rules: judged support against seat share and voting power, and pass (and
    win) rates per strategy re-tallied under each seat structure and decision rule. A page of its
    own: over 100,000 runs its reads cost seconds (bench/bench_dashboard.py), the dashboard's do not."""
    experiment = _experiment_or_404(request, experiment_id)
    version = results_version(experiment=experiment)
    sweep = rule_sweep(experiment=experiment, version=version)
    support = figures.power_support_figure(power_support(experiment=experiment, version=version))
    rows = [
        {
            "strategy": row.strategy,
            "cells": [row.cells[(structure, rule["key"])] for rule in sweep.rules for structure, _ in sweep.structures],
        }
        for row in sweep.rows
    ]
    calibrations = calibrations_for_experiment(experiment=experiment)
    return render(
        request,
        "dashboards/experiment_sweep.html",
        {
            "experiment": experiment,
            "sweep": sweep,
            "rows": rows,
            "charts": [support] if support else [],
            # the judged support above is each judge's: how far each tracks the real votes
            "judges": [
                (judge, calibrations["by_judge"].get(judge, [])) for judge in (experiment.spec or {}).get("judges", [])
            ],
            "calibration_record_set": calibrations["record_set"],
        },
    )


@login_required
def experiment_run_list(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment_or_404(request, experiment_id)
    filters = {key: request.GET.get(key) or None for key in ("strategy", "model", "judge", "goal")}
    parties = request.GET.get("parties")
    filters["parties"] = int(parties) if parties and parties.isdigit() else None
    page = Paginator(experiment_runs(experiment=experiment, **filters), 200).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboards/experiment_runs.html",
        {
            "experiment": experiment,
            "page": page,
            "filters": {k: v for k, v in filters.items() if v is not None},
        },
    )


def _estimate_only(request: HttpRequest, form: ExperimentForm) -> dict:
    """The estimate experiment_create would store, without keeping the experiment."""
    try:
        with transaction.atomic():
            experiment = experiment_create(owner=request.user, **form.create_kwargs())
            raise _Preview(experiment.estimate)
    except _Preview as preview:
        return preview.estimate


@login_required
def experiment_new(request: HttpRequest) -> HttpResponse:
    form = ExperimentForm(request.POST or None, user=request.user)
    estimate = None
    if request.method == "POST" and form.is_valid():
        try:
            if "preview" in request.POST:
                estimate = _estimate_only(request, form)
            else:
                experiment = experiment_create(owner=request.user, **form.create_kwargs())
                if form.cleaned_data.get("start"):
                    experiment_start(experiment=experiment, user=request.user)
                return redirect("experiment-dashboard", experiment_id=experiment.pk)
        except ExperimentError as error:
            # "field: message" goes beside its field when the form has one.
            field, _, message = str(error).partition(": ")
            if message and field in form.fields:
                form.add_error(field, message)
            else:
                form.add_error(None, str(error))
    return render(request, "dashboards/experiment_new.html", {"form": form, "estimate": estimate})
