"""The REST API for scripts, /api/v1/ (OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs).

Thin: every operation authorises, then calls the services and selectors the pages use
(scenarios.services.scenario_config_build is the one validator of a scenario; run_create,
experiment_create and experiment_start do the writes). Authentication: `Authorization: Bearer <token>` (manage.py
api_token create USERNAME) for everything; a browser's session also reads (GET). Invalid input
answers 400 with `{"errors": {field: [message, ...]}}`, whatever found it (the schemas, the
forms and services, or a body that is not JSON); every other error answers `{"error": message}`
with its status (401, 404, 409; 413 from deliberation/bodylimit.py). Every operation declares
the answers it can give, so the OpenAPI schema is complete (schemathesis checks it in
tests/integration/test_api_schemathesis.py).
"""

from typing import Annotated, Any, Literal

from django.contrib.auth.models import AnonymousUser
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from ninja import NinjaAPI, Query, Status
from ninja.errors import HttpError, ValidationError
from ninja.security import APIKeyQuery, HttpBearer, SessionAuth
from pydantic import Field

from deliberation.api.schemas import (
    BIGINT_MAX,
    BudgetOut,
    Code,
    CounterfactualOut,
    CreatedOut,
    ErrorOut,
    EstimateOut,
    EventOut,
    ExperimentIn,
    ExperimentOut,
    FieldErrorsOut,
    Id,
    ModelOut,
    Name,
    PowerOut,
    PreferenceIn,
    PreferenceOut,
    ProgressOut,
    RecordDetailOut,
    RecordOut,
    RecordSetOut,
    ResultOut,
    RunOut,
    RunRewardsOut,
    ScenarioIn,
    ScenarioOut,
    Seed,
    StartedOut,
    StrategyOut,
    SweepOut,
)
from deliberation.api.services import api_token_user
from deliberation.dashboards.institutions import rule_sweep
from deliberation.engine.events_doc import events_json_schema
from deliberation.engine.power import RULE_KEYS as POWER_RULES, PowerError, parse_fraction, power_of
from deliberation.engine.strategies import STRATEGIES, ParamsError, run_cost, strategy_descriptions, strategy_params
from deliberation.engine.strategies.params import params_from_pairs
from deliberation.errors import ApplicationError, Conflict, Invalid, error_body
from deliberation.records.models import Record
from deliberation.records.selectors import record_get, record_search, record_set_list
from deliberation.registry.clients import judge_name_check, judge_uses_model
from deliberation.registry.selectors import model_entries_for
from deliberation.runs.budgets import spending_for
from deliberation.runs.counterfactuals import CounterfactualError, run_counterfactual
from deliberation.runs.experiments import (
    ExperimentError,
    experiment_cancel,
    experiment_create,
    experiment_pause,
    experiment_start,
)
from deliberation.runs.exports import FORMATS, experiment_export
from deliberation.runs.models import Experiment, Run
from deliberation.runs.oracle import preference_oracle
from deliberation.runs.selectors import (
    experiment_for_owner,
    experiment_progress,
    experiment_results,
    run_events_after,
    run_for_viewer,
    run_group_rewards,
    run_list_for_owner,
    run_summary,
)
from deliberation.runs.services import run_create
from deliberation.runs.training import FORMATS as TRAINING_FORMATS, training_zip
from deliberation.scenarios.models import SavedScenario
from deliberation.scenarios.services import scenario_config_build, scenario_save

MAX_LIMIT = 1000


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        return api_token_user(token=token)


class SessionRead(SessionAuth):
    """The browser's session, for reads only: writes from scripts carry a token."""

    def authenticate(self, request: HttpRequest, key: str | None):
        if request.method not in ("GET", "HEAD"):
            return None
        return super().authenticate(request, key)


class LinkToken(APIKeyQuery):
    """A run's share link (?token=...): reads only; the operation checks the token against its run."""

    param_name = "token"

    def authenticate(self, request: HttpRequest, key: str | None):
        if request.method not in ("GET", "HEAD") or not key:
            return None
        return AnonymousUser()


READ = [BearerToken(), SessionRead()]
WRITE = [BearerToken()]

api = NinjaAPI(
    title="Hemicycle API",
    version="1",
    description="Record sets, records, scenarios, runs and experiments of the Hemicycle lab.",
    urls_namespace="api-v1",
    auth=READ,
)


@api.exception_handler(ValidationError)
def validation_errors(request: HttpRequest, error: ValidationError) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    for item in error.errors:
        names = [str(part) for part in item.get("loc", ()) if part not in ("body", "payload", "query", "path")]
        errors.setdefault(names[0] if names else "__all__", []).append(item.get("msg", "invalid"))
    return api.create_response(request, {"errors": errors}, status=400)


@api.exception_handler(HttpError)
def http_errors(request: HttpRequest, error: HttpError) -> HttpResponse:
    """ninja's own refusals (a body that is not JSON: 400; no or a wrong token: 401) in the
    shapes the schema declares."""
    if error.status_code == 400:
        return api.create_response(request, {"errors": {"__all__": [str(error)]}}, status=400)
    return api.create_response(request, {"error": str(error)}, status=error.status_code)


@api.exception_handler(ApplicationError)
def application_errors(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    """Every service's refusal (deliberation/errors.py), answered here once: its kind's status and
    body ({"errors": {field: [message]}} for invalid input, {"error": message} otherwise)."""
    return api.create_response(request, error_body(error), status=error.status)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return api.create_response(request, {"error": "not found"}, status=404)


# The answers every operation may give besides its own: invalid input, no or a wrong token; a
# body over the size limit (deliberation/bodylimit.py) for those that take one.
ERRORS = {400: FieldErrorsOut, 401: ErrorOut}
BODY_ERRORS = {**ERRORS, 413: ErrorOut}
NOT_FOUND = {404: ErrorOut}


# Power indices are exact: their work grows with 2**groups; a parliament has a dozen at most.
MAX_GROUPS = 16
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Field(ge=0, le=BIGINT_MAX - MAX_LIMIT)]


# Record sets and records -------------------------------------------------------------------


@api.get("/record-sets", response={200: list[RecordSetOut], **ERRORS}, tags=["records"])
def record_sets(request: HttpRequest):
    return [
        {
            "id": s.pk,
            "name": s.name,
            "description": s.description,
            "records": s.record_count,
            "tasks": s.task_count,
            "version": s.current_version.number if s.current_version else None,
        }
        for s in record_set_list()
    ]


def _record(record: Record) -> dict:
    return {
        "id": record.pk,
        "record_set": record.record_set.name,
        "title": record.title,
        "term": record.term,
        "topics": [topic.name for topic in record.topics.all()],
    }


@api.get("/records", response={200: list[RecordOut], **ERRORS}, tags=["records"])
def records(
    request: HttpRequest,
    record_set: Name | None = None,
    topic: Name | None = None,
    term: Code | None = None,
    q: Name | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
):
    """The current records of every set, filtered by set, topic, term and title (q)."""
    found = record_search(record_set=record_set, topic=topic, term=term, query=q, min_stances=0)
    return [_record(record) for record in found[offset : offset + limit]]


@api.get("/records/{record_id}", response={200: RecordDetailOut, **ERRORS, **NOT_FOUND}, tags=["records"])
def record(request: HttpRequest, record_id: Id):
    try:
        found = record_get(record_id=record_id)
    except Record.DoesNotExist:
        return Status(404, {"error": "no such record"})
    return {
        **_record(found),
        "background": found.background,
        "resolution": found.resolution,
        "real_total_score": found.real_total_score,
        "stances": [
            {
                "group": s.group.code,
                "label": s.group.label,
                "text": s.text,
                "real_score": s.real_score,
                "real_choice": s.real_choice,
            }
            for s in found.stances.all()
        ],
    }


# Models ------------------------------------------------------------------------------------


@api.get("/models", response={200: list[ModelOut], **ERRORS}, tags=["models"])
def models(request: HttpRequest):
    """The models of the lab's registry that you may use: what `model`, `judge_model` and an
    experiment's `models` accept."""
    return [
        {
            "name": entry.name,
            "description": entry.description,
            "prompt_price": None if entry.prompt_price is None else float(entry.prompt_price),
            "completion_price": None if entry.completion_price is None else float(entry.completion_price),
        }
        for entry in model_entries_for(user=request.auth)
    ]


@api.get("/budget", response={200: BudgetOut, **ERRORS}, tags=["models"])
def budget(request: HttpRequest):
    """Your spending budget: what is left before a run or an experiment is refused or capped."""
    spending = spending_for(user=request.auth)
    return {
        "steps_per_day": spending.budget.steps_per_day,
        "steps_left": spending.steps_left,
        "tokens_per_day": spending.budget.tokens_per_day,
        "tokens_left": spending.tokens_left,
        "experiment_cap": spending.budget.experiment_cap,
    }


# Scenarios ---------------------------------------------------------------------------------


@api.get("/scenarios", response={200: list[ScenarioOut], **ERRORS}, tags=["scenarios"])
def scenarios(request: HttpRequest):
    return SavedScenario.objects.filter(owner=request.auth).order_by("-created_at")


@api.post("/scenarios", auth=WRITE, response={201: ScenarioOut, **BODY_ERRORS}, tags=["scenarios"])
def scenario_create(request: HttpRequest, payload: ScenarioIn):
    """Save a scenario under a name (the same name again replaces it)."""
    config = scenario_config_build(data=payload, user=request.auth)
    name = payload.name.strip()
    if not name:
        return Status(400, {"errors": {"name": ["Name the scenario to save it."]}})
    return Status(201, scenario_save(owner=request.auth, name=name, config=config))


# Strategies --------------------------------------------------------------------------------


@api.get("/strategies", response={200: list[StrategyOut], **ERRORS}, tags=["scenarios"])
def strategies(request: HttpRequest):
    """The strategies and their parameters: what a scenario's `strategy` and `strategy_params` accept."""
    return strategy_descriptions()


@api.get(
    "/strategies/{name}/estimate",
    response={200: EstimateOut, **ERRORS, **NOT_FOUND},
    tags=["scenarios"],
)
def strategy_estimate(
    request: HttpRequest,
    name: Code,
    groups: Annotated[int, Field(ge=2, le=MAX_GROUPS)],
    judge: Code = "llm",
    param: list[str] = Query([], max_length=MAX_GROUPS),
):
    """The model steps one run of this strategy takes for `groups` groups and `judge`, with its
    parameters (repeat `param=NAME=VALUE`; omitted ones take their defaults)."""
    if name not in STRATEGIES:
        return Status(404, {"error": f"no strategy {name!r}; GET /strategies lists them"})
    try:
        params = strategy_params(name, params_from_pairs(param))
    except ParamsError as error:
        return Status(400, {"errors": error.errors})
    try:
        judge_name_check(judge)
    except ValueError as error:
        return Status(400, {"errors": {"judge": [str(error)]}})
    cost = run_cost(
        strategy=name, party_count=groups, judge_uses_model=judge_uses_model(judge), params=params.model_dump()
    )
    return {
        "strategy": name,
        "groups": groups,
        "judge": judge,
        "steps": cost.steps,
        "completion_tokens": cost.completion_tokens,
        "params": params.model_dump(),
    }


# Runs --------------------------------------------------------------------------------------


@api.get("/runs", response={200: list[RunOut], **ERRORS}, tags=["runs"])
def runs(request: HttpRequest, status: Code | None = None, limit: Limit = 100, offset: Offset = 0):
    """Your runs, newest first."""
    mine = run_list_for_owner(owner=request.auth)
    if status:
        mine = mine.filter(status=status)
    return [run_summary(run) for run in mine[offset : offset + limit]]


@api.post("/runs", auth=WRITE, response={201: CreatedOut, **BODY_ERRORS}, tags=["runs"])
def run_start(request: HttpRequest, payload: ScenarioIn):
    """Validate the scenario and start a run of it; answers its id."""
    run = run_create(
        owner=request.auth, config=scenario_config_build(data=payload, user=request.auth), visibility=payload.visibility
    )
    return Status(201, {"id": run.pk, "url": reverse("run-detail", args=[run.pk])})


def _viewable_run(request: HttpRequest, run_id: int) -> Run | None:
    return run_for_viewer(user=request.auth, run_id=run_id)


@api.get("/runs/{run_id}", response={200: RunOut, **ERRORS, **NOT_FOUND}, tags=["runs"])
def run(request: HttpRequest, run_id: Id):
    found = _viewable_run(request, run_id)
    if found is None:
        return Status(404, {"error": "no such run, or it is not shared with you"})
    return run_summary(found)


@api.get("/runs/{run_id}/events", response={200: list[EventOut], **ERRORS, **NOT_FOUND}, tags=["runs"])
def run_events(request: HttpRequest, run_id: Id, after: Annotated[int, Field(ge=0, le=BIGINT_MAX)] = 0):
    """The run's stored events after sequence number `after`, in order."""
    if _viewable_run(request, run_id) is None:
        return Status(404, {"error": "no such run, or it is not shared with you"})
    return [event.as_message() for event in run_events_after(run_id=run_id, seq=after)]


@api.get("/events/schema", response={200: dict[str, Any], **ERRORS}, tags=["runs"])
def event_schema(request: HttpRequest):
    """The JSON Schema of each event type's data, as event_append enforces it (docs/events.md)."""
    return events_json_schema()


def _pairs(values: list[str], field: str) -> dict[str, float]:
    """['EPP:0.5', 'SD:0.3'] -> {'EPP': 0.5, 'SD': 0.3}; 'CODE=VALUE' is accepted too."""
    pairs: dict[str, float] = {}
    for value in values:
        code, sep, number = value.replace("=", ":").partition(":")
        if not sep or not code.strip():
            raise CounterfactualError(f"{field}: {value!r} is not CODE:VALUE")
        try:
            pairs[code.strip()] = float(parse_fraction(number))
        except PowerError:
            raise CounterfactualError(f"{field}: {number!r} is not a number") from None
    if len(pairs) != len(values):
        raise CounterfactualError(f"{field}: a group appears twice")
    return pairs


def _run_shared_with(request: HttpRequest, run_id: int) -> Run:
    """The run if the request may read it: signed in (session or token) or with its share link's
    ?token= (READ + LinkToken); 401 for a share link's token that does not open it, else 404."""
    found = run_for_viewer(user=request.auth, run_id=run_id, token=request.GET.get("token", ""))
    if found is None and not request.auth.is_authenticated:  # only a share link's token came
        raise HttpError(401, "this share link's token does not open this run")
    if found is None:
        raise HttpError(404, "no such run, or it is not shared with you")
    return found


@api.get(
    "/runs/{run_id}/rewards",
    auth=[*READ, LinkToken()],
    response={200: RunRewardsOut, **ERRORS, **NOT_FOUND, 409: ErrorOut},
    tags=["runs"],
)
def run_rewards_view(request: HttpRequest, run_id: Id):
    """A finished run's moral rewards per group, in the scenario's order (engine/rewards.py,
    docs/rewards.md; stored with its per-group scores when it finishes). 409 until it has finished:
    the run page asks as its outcome event arrives, which is stored just before them."""
    found = _run_shared_with(request, run_id)
    if found.status != Run.Status.FINISHED:
        raise Conflict("run: its rewards are stored when it has finished")
    return {"run": found.pk, "rewards": run_group_rewards(run=found)}


@api.get(
    "/runs/{run_id}/counterfactual",
    auth=[*READ, LinkToken()],
    response={200: CounterfactualOut, **ERRORS, **NOT_FOUND, 409: ErrorOut},
    tags=["runs"],
)
def run_counterfactual_view(
    request: HttpRequest,
    run_id: Id,
    seats: Code = "run",
    seed: Seed | None = None,
    custom: list[str] = Query([], max_length=MAX_GROUPS),
    rule: Code | None = None,
    veto_group: Code | None = None,
):
    """Re-tally a finished run's stored scores under other seats (run, real, equal, random_tenths
    with `seed`, custom: repeat `custom=CODE:WEIGHT`) and another rule (a goal, double_majority,
    borda, schulze), beside its own seats; no model call. 409 while the run has no outcome."""
    return run_counterfactual(  # NotFinished: 409, CounterfactualError: 400 (application_errors)
        run=_run_shared_with(request, run_id),
        seats=seats,
        seed=seed,
        custom=_pairs(custom, "custom") if custom else None,
        rule=rule,
        veto_group=veto_group,
    )


@api.get("/power", response={200: PowerOut, **ERRORS}, tags=["scenarios"])
def power(
    request: HttpRequest,
    seats: list[str] = Query(..., max_length=MAX_GROUPS),
    goal: Code = "simple_majority",
    veto_group: Code | None = None,
    quota: Code = "scale",
    strict: bool = False,
):
    """Shapley-Shubik and normalised Banzhaf power of each group (repeat `seats=CODE:SHARE`; shares
    or seat counts) when a coalition wins by reaching the goal's quota: `scale` (5/9 for simple
    majority, 20/27 for two-thirds, the veto group required under veto power), `ep` (more than
    half, two thirds) or a share such as 2/3."""
    if goal not in POWER_RULES:
        return Status(400, {"errors": {"goal": [f"choose one of {', '.join(POWER_RULES)}"]}})
    try:
        result = power_of(_pairs(seats, "seats"), goal=goal, veto_group=veto_group or None, quota=quota, strict=strict)
    except PowerError as error:  # the engine's: invalid input here
        raise Invalid(str(error)) from None
    return {"goal": goal, **result.as_dict()}


# Experiments -------------------------------------------------------------------------------


def _own_experiment(request: HttpRequest, experiment_id: int) -> Experiment | None:
    return experiment_for_owner(user=request.auth, experiment_id=experiment_id)


NO_EXPERIMENT = {"error": "no such experiment of yours"}


@api.get("/experiments", response={200: list[ExperimentOut], **ERRORS}, tags=["experiments"])
def experiments(request: HttpRequest):
    return Experiment.objects.filter(owner=request.auth).order_by("-created_at")


@api.post("/experiments", auth=WRITE, response={201: ExperimentOut, **BODY_ERRORS}, tags=["experiments"])
def experiment_new(request: HttpRequest, payload: ExperimentIn):
    """Store a grid and its estimate; nothing runs until it is started."""
    return Status(201, experiment_create(owner=request.auth, **payload.dict()))


@api.get("/experiments/{experiment_id}", response={200: ExperimentOut, **ERRORS, **NOT_FOUND}, tags=["experiments"])
def experiment(request: HttpRequest, experiment_id: Id):
    found = _own_experiment(request, experiment_id)
    return Status(200, found) if found else Status(404, NO_EXPERIMENT)


@api.post(
    "/experiments/{experiment_id}/start",
    auth=WRITE,
    response={200: StartedOut, **BODY_ERRORS, **NOT_FOUND, 409: ErrorOut},
    tags=["experiments"],
)
def experiment_run(request: HttpRequest, experiment_id: Id):
    """Start a draft, or resume a paused, cancelled or capped experiment."""
    found = _own_experiment(request, experiment_id)
    if found is None:
        return Status(404, NO_EXPERIMENT)
    try:
        started = experiment_start(experiment=found, user=request.auth)
    except ExperimentError as error:  # refused in the experiment's state
        raise Conflict(str(error)) from None
    return {"status": found.status, "started_runs": started}


def _control(request: HttpRequest, experiment_id: int, control) -> Status | dict:
    found = _own_experiment(request, experiment_id)
    if found is None:
        return Status(404, NO_EXPERIMENT)
    try:
        control(experiment=found, user=request.auth)
    except ExperimentError as error:  # refused in the experiment's state
        raise Conflict(str(error)) from None
    found.refresh_from_db()
    return experiment_progress(experiment=found)


CONTROL_RESPONSES = {200: ProgressOut, **BODY_ERRORS, **NOT_FOUND, 409: ErrorOut}


@api.post("/experiments/{experiment_id}/pause", auth=WRITE, response=CONTROL_RESPONSES, tags=["experiments"])
def experiment_pause_view(request: HttpRequest, experiment_id: Id):
    """No new runs start; runs in flight pause and resume when the experiment is started again."""
    return _control(request, experiment_id, experiment_pause)


@api.post("/experiments/{experiment_id}/cancel", auth=WRITE, response=CONTROL_RESPONSES, tags=["experiments"])
def experiment_cancel_view(request: HttpRequest, experiment_id: Id):
    """No new runs start and the runs in flight stop (start resumes the remaining cells)."""
    return _control(request, experiment_id, experiment_cancel)


@api.get(
    "/experiments/{experiment_id}/progress",
    response={200: ProgressOut, **ERRORS, **NOT_FOUND},
    tags=["experiments"],
)
def experiment_progress_view(request: HttpRequest, experiment_id: Id):
    found = _own_experiment(request, experiment_id)
    return Status(200, experiment_progress(experiment=found)) if found else Status(404, NO_EXPERIMENT)


@api.get(
    "/experiments/{experiment_id}/sweep",
    response={200: SweepOut, **ERRORS, **NOT_FOUND},
    tags=["experiments"],
)
def experiment_sweep_view(request: HttpRequest, experiment_id: Id):
    """Pass rates per strategy re-tallied under each seat structure (as played, equal, real,
    another random draw) and rule (the voting goals, double majority; Borda and Schulze win rates
    over the drafts of one cell): the dashboard's Seats, power and rules page. No model call."""
    found = _own_experiment(request, experiment_id)
    if found is None:
        return Status(404, NO_EXPERIMENT)
    sweep = rule_sweep(experiment=found)
    return {
        "runs": sweep.runs,
        "structures": [{"key": key, "label": label} for key, label in sweep.structures],
        "rules": sweep.rules,
        "rows": [
            {"strategy": row.strategy, "structure": structure, "rule": rule["key"], "rate": rate, "n": n}
            for row in sweep.rows
            for rule in sweep.rules
            for structure, _ in sweep.structures
            for rate, n in [row.cells[(structure, rule["key"])]]
        ],
    }


@api.get(
    "/experiments/{experiment_id}/results",
    response={200: list[ResultOut], **ERRORS, **NOT_FOUND},
    tags=["experiments"],
)
def experiment_results_view(request: HttpRequest, experiment_id: Id):
    """One row per run: cell, status and outcome."""
    found = _own_experiment(request, experiment_id)
    return Status(200, experiment_results(experiment=found)) if found else Status(404, NO_EXPERIMENT)


@api.get(
    "/experiments/{experiment_id}/export.zip",
    response={**ERRORS, **NOT_FOUND},
    tags=["experiments"],
    openapi_extra={
        "responses": {
            "200": {
                "description": "The zip: <table>.<format> files and data_dictionary.csv/.json",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def experiment_export_zip(
    request: HttpRequest,
    experiment_id: Id,
    format: list[Literal[FORMATS]] = Query(list(FORMATS), max_length=len(FORMATS)),  # noqa: B008 - ninja's marker
):
    """Tidy tables (experiments, runs, group_scores, events) in the asked formats (csv, parquet,
    json; repeat `format`) and their data dictionary, as a zip."""
    found = _own_experiment(request, experiment_id)
    if found is None:
        return Status(404, NO_EXPERIMENT)
    response = StreamingHttpResponse(
        experiment_export(experiment=found, formats=format), content_type="application/zip"
    )
    response["Content-Disposition"] = f'attachment; filename="experiment-{found.pk}.zip"'
    return response


@api.get(
    "/experiments/{experiment_id}/training.zip",
    response={**ERRORS, **NOT_FOUND},
    tags=["experiments"],
    openapi_extra={
        "responses": {
            "200": {
                "description": "The zip: train/test .jsonl and .parquet (grpo: drafts/ and turns/, hemicycle_rewards.py) and README.md",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def experiment_training_zip(
    request: HttpRequest,
    experiment_id: Id,
    format: Literal[TRAINING_FORMATS],
    split: float = Query(0.9, gt=0, le=1),
    seed: Seed = 0,
    margin: float = Query(0.0, ge=0, le=100),  # noqa: B008 - ninja's marker
):
    """The experiment's judged drafts as a training dataset in TRL's columns: dpo (prompt, chosen,
    rejected), grpo (prompt and reward columns) or sft (messages), split by record (docs/training.md)."""
    found = _own_experiment(request, experiment_id)
    if found is None:
        return Status(404, NO_EXPERIMENT)
    pieces = training_zip(experiment=found, format=format, train=split, seed=seed, margin=margin)
    response = StreamingHttpResponse(pieces, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="experiment-{found.pk}-{format}.zip"'
    return response


@api.post(
    "/runs/{run_id}/preference",
    auth=WRITE,
    response={200: PreferenceOut, **BODY_ERRORS, **NOT_FOUND},
    tags=["runs"],
)
def run_preference(request: HttpRequest, run_id: Id, payload: PreferenceIn):
    """The pairwise preference oracle: which of two texts the run's goal prefers, and by how much,
    from the run's judge (each text scored for every group; cached like the run's own verdicts)."""
    found = run_for_viewer(user=request.auth, run_id=run_id)
    if found is None or found.owner_id != request.auth.pk:
        return Status(404, {"error": "no such run of yours"})
    return preference_oracle(run=found, text_a=payload.text_a, text_b=payload.text_b, tau=payload.tau)


# Endpoint names as the docs show them: sentences, not the view functions' names
# ("Pause an experiment", not "Experiment Pause View"). Every operation has one (tests check).
SUMMARIES = {
    "record_sets": "List the record sets",
    "records": "Search the records",
    "record": "Read a record with its stances and real votes",
    "models": "List the models you may use",
    "scenarios": "List your saved scenarios",
    "scenario_create": "Save a scenario",
    "strategies": "List the strategies and their parameters",
    "strategy_estimate": "Estimate a strategy's model steps for a scenario",
    "runs": "List your runs",
    "run_start": "Start a run",
    "run": "Read a run",
    "run_events": "Read a run's events (after a sequence number)",
    "event_schema": "Read the JSON Schema of every event type",
    "run_counterfactual_view": "Re-tally a finished run under other seats or rules",
    "run_rewards_view": "Read a finished run's moral rewards per group",
    "power": "Compute voting power for a seat distribution",
    "experiments": "List your experiments",
    "experiment_new": "Create an experiment",
    "experiment": "Read an experiment",
    "experiment_run": "Start or resume an experiment",
    "experiment_pause_view": "Pause an experiment",
    "experiment_cancel_view": "Cancel an experiment",
    "experiment_progress_view": "Read an experiment's progress",
    "experiment_results_view": "Read an experiment's results tables",
    "experiment_export_zip": "Export an experiment's tables (CSV, Parquet, JSON)",
    "experiment_training_zip": "Export an experiment's drafts as a training dataset (dpo, grpo, sft)",
    "run_preference": "Ask the pairwise preference oracle which of two texts a run's goal prefers",
    "experiment_sweep_view": "Re-tally an experiment's runs under other seats and rules",
    "budget": "Read your spending budget and what is left of it",
}


def _summary(view) -> str:
    """The sentence for a view: SUMMARIES, else its docstring's first sentence, else its name in
    sentence case without "view" (an endpoint added later still reads as words, not a title)."""
    if view.__name__ in SUMMARIES:
        return SUMMARIES[view.__name__]
    doc = " ".join((view.__doc__ or "").split())
    if doc:
        return doc.split(". ")[0].rstrip(".:")[:120]
    words = [word for word in view.__name__.split("_") if word and word != "view"]
    return " ".join(words).capitalize()


def _summaries_set() -> None:
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                operation.summary = _summary(operation.view_func)


_summaries_set()
