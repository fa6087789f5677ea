"""Experiment pages: the owner's list with progress, one experiment's dashboard, a cell's runs."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from deliberation.dashboards import figures
from deliberation.dashboards.forms import ExperimentForm
from deliberation.dashboards.selectors import (
    breakdown,
    experiment_runs,
    experiments_for_owner,
    group_views,
    paper_tables,
)
from deliberation.engine.goals import GOALS
from deliberation.runs.experiments import ExperimentError, experiment_create, experiment_start
from deliberation.runs.models import Experiment
from deliberation.runs.selectors import experiment_for_owner, experiment_progress


def _experiment_or_404(request: HttpRequest, experiment_id: int) -> Experiment:
    experiment = experiment_for_owner(user=request.user, experiment_id=experiment_id)
    if experiment is None:
        raise Http404("no such experiment of yours")
    return experiment


def _breakdown_rows(cells: dict) -> list[dict]:
    rows = [
        {"strategy": s, "model": m, "judge": j, "goal": GOALS[g].label, "kind": GOALS[g].kind, "bucket": b, "cell": cell}
        for (s, m, j, g, b), cell in cells.items()
    ]
    return sorted(rows, key=lambda r: (str(r["bucket"]), r["goal"], r["strategy"], r["model"], r["judge"]))


@login_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    experiments = experiments_for_owner(user=request.user)[:200]
    rows = [{"experiment": e, "progress": experiment_progress(experiment=e)} for e in experiments]
    return render(request, "dashboards/experiment_list.html", {"rows": rows})


@login_required
def experiment_dashboard(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment_or_404(request, experiment_id)
    if request.method == "POST" and request.POST.get("action") == "start":
        try:
            experiment_start(experiment=experiment, user=request.user)
        except ExperimentError as error:
            messages.error(request, str(error))
        return redirect("experiment-dashboard", experiment_id=experiment.pk)
    tables = paper_tables(experiment=experiment)
    power = breakdown(experiment=experiment, by="power")
    groups = group_views(experiment=experiment)
    charts = [
        *figures.paper_table_figures(tables),
        *figures.power_figures(power),
        *[figure for figure in (figures.dominant_group_figure(groups.by_share), figures.support_figure(groups.by_real_vote)) if figure],
    ]
    return render(request, "dashboards/experiment_detail.html", {
        "experiment": experiment,
        "progress": experiment_progress(experiment=experiment),
        "tables": tables,
        "breakdowns": [
            ("Power structure (largest group's seat share)", _breakdown_rows(power)),
            ("Topic", _breakdown_rows(breakdown(experiment=experiment, by="topic"))),
            ("Parliamentary term", _breakdown_rows(breakdown(experiment=experiment, by="term"))),
        ],
        "charts": charts,
    })


@login_required
def experiment_run_list(request: HttpRequest, experiment_id: int) -> HttpResponse:
    experiment = _experiment_or_404(request, experiment_id)
    filters = {key: request.GET.get(key) or None for key in ("strategy", "model", "judge", "goal")}
    parties = request.GET.get("parties")
    filters["parties"] = int(parties) if parties and parties.isdigit() else None
    page = Paginator(experiment_runs(experiment=experiment, **filters), 200).get_page(request.GET.get("page"))
    return render(request, "dashboards/experiment_runs.html", {
        "experiment": experiment, "page": page, "filters": {k: v for k, v in filters.items() if v is not None},
    })


@login_required
def experiment_new(request: HttpRequest) -> HttpResponse:
    form = ExperimentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            experiment = experiment_create(owner=request.user, **form.create_kwargs())
            if form.cleaned_data.get("start"):
                experiment_start(experiment=experiment, user=request.user)
        except ExperimentError as error:
            form.add_error(None, str(error))
        else:
            return redirect("experiment-dashboard", experiment_id=experiment.pk)
    return render(request, "dashboards/experiment_new.html", {"form": form})
