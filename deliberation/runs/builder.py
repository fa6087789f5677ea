"""The scenario builder page: choose a record, groups, seats, goal and strategy, then save the
scenario or start its run (here in runs, as the run is what it makes; the JSON the page reads
while you build is scenarios/views.py's)."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render

from deliberation.engine.goals import GOALS
from deliberation.records.models import TERMS, Record, RecordSet, Topic
from deliberation.registry.clients import judge_choices
from deliberation.registry.selectors import model_entries_for
from deliberation.runs.budgets import BudgetExceeded, spending_for
from deliberation.runs.services import run_create
from deliberation.scenarios.models import GOAL_CHOICES, SEAT_STRUCTURE_CHOICES, SavedScenario, Visibility
from deliberation.scenarios.services import ScenarioInvalid, scenario_config_build, scenario_save
from deliberation.scenarios.strategy_inputs import strategy_inputs, strategy_params_posted

DEMO_MODEL = "scripted:demo"

# The builder form's inputs that carry one value each (ScenarioIn's fields of the same names).
SCALAR_FIELDS = (
    "record",
    "most_divided",
    "seat_structure",
    "goal",
    "veto_group",
    "strategy",
    "model",
    "judge",
    "judge_model",
    "seed",
    "name",
    "visibility",
)
CUSTOM_SEAT = "custom_seats."  # + group code: that group's percent


def _builder_input(post: QueryDict) -> dict[str, Any]:
    """The posted form as ScenarioIn's input: empty inputs left out (their defaults apply), the
    groups' checkboxes and custom seat inputs gathered, the chosen strategy's parameters."""
    data: dict[str, Any] = {key: post[key] for key in SCALAR_FIELDS if post.get(key, "").strip()}
    data["groups"] = post.getlist("groups")
    data["custom_seats"] = {
        key.removeprefix(CUSTOM_SEAT): value
        for key, value in post.items()
        if key.startswith(CUSTOM_SEAT) and value.strip()
    }
    data["strategy_params"] = strategy_params_posted(post, strategy=post.get("strategy", ""))
    return data


def _saved_input(saved: SavedScenario) -> dict[str, Any]:
    """A saved scenario as the builder's values (custom seats back in percent)."""
    data = {**saved.scenario_fields(), "record": saved.record_id, "name": saved.name, "strategy_params": saved.params}
    data["custom_seats"] = (
        {code: round(share * 100, 4) for code, share in saved.seats.items()} if saved.seat_structure == "custom" else {}
    )
    return data


def _strategies(values: dict[str, Any], errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Every strategy's parameter inputs, the chosen one shown with the values and messages it
    came with, the others with their defaults."""
    chosen = values.get("strategy") or "parliament"
    return strategy_inputs(
        values={chosen: values.get("strategy_params") or {}},
        errors={chosen: errors},
        shown=lambda name: name == chosen,
        prefill=True,
    )


@login_required
def scenario_builder(request: HttpRequest) -> HttpResponse:
    values: dict[str, Any] = {
        "seat_structure": "random_tenths",
        "goal": "simple_majority",
        "strategy": "parliament",
        "judge": "llm",
        "seed": 0,
        "visibility": "private",
    }
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _builder_input(request.POST)
        saving = request.POST.get("action") == "save"
        name = values.get("name", "").strip()
        try:
            config = scenario_config_build(data=values, user=request.user)
            if saving and not name:
                raise ScenarioInvalid({"name": ["Give the scenario a name to save it."]})
            # One transaction: a run the budget refuses leaves no saved scenario behind either.
            with transaction.atomic():
                scenario = scenario_save(owner=request.user, name=name, config=config) if name else None
                if saving:
                    return redirect(f"{request.path}?scenario={scenario.pk}")
                run = run_create(
                    owner=request.user,
                    config=config,
                    scenario=scenario,
                    visibility=values.get("visibility") or "private",
                )
        except ScenarioInvalid as error:
            errors = error.errors
        except BudgetExceeded as error:
            errors = {"__all__": [error.reason]}
        else:
            return redirect("run-detail", run_id=run.pk)
    elif "scenario" in request.GET:
        values = _saved_input(get_object_or_404(SavedScenario, pk=request.GET["scenario"], owner=request.user))
    elif "record" in request.GET:
        values = {**values, "record": request.GET["record"]}
    saved = SavedScenario.objects.filter(owner=request.user).select_related("record")
    model_choices = list(model_entries_for(user=request.user))
    return render(
        request,
        "scenarios/builder.html",
        {
            "values": values,
            "errors": errors,
            "form_errors": errors.get("__all__", []),  # a template cannot read a key that starts with _
            "strategies": _strategies(values, errors),
            "choices": {
                "seat_structures": SEAT_STRUCTURE_CHOICES,
                "goals": GOAL_CHOICES,
                "judges": judge_choices(),
                "visibilities": Visibility.choices,
            },
            "records": Record.objects.only("id", "title"),
            "model_choices": model_choices,
            "spending": spending_for(user=request.user),
            "goals": GOALS,
            "saved_scenarios": saved,
            # A first look: the watchable scripted model, when the registry offers it to this user.
            "demo_model": next((entry.name for entry in model_choices if entry.name == DEMO_MODEL), None),
            "record_filters": {
                "topics": Topic.objects.values_list("name", flat=True),
                "terms": TERMS,
                "record_sets": RecordSet.objects.values_list("name", flat=True),
            },
            # What the script restores (json_script encodes it once): the groups, custom seats, mode.
            "initial": {key: values.get(key) for key in ("record", "groups", "custom_seats", "most_divided")},
        },
    )
