"""One validator for a scenario, used by the browser builder and by POST /api/runs alike.

The models are the registry's (deliberation/registry) that the user may use: the form takes the
user, and a model or judge model outside that list is an error beside its field.
"""

from django import forms
from django.conf import settings

from deliberation.engine.scenario import ScenarioError
from deliberation.engine.strategies import STRATEGIES
from deliberation.records.models import Record
from deliberation.registry.selectors import ModelRefused, model_check, model_entries_for
from deliberation.runs.clients import judge_choices, strategy_model_check
from deliberation.scenarios.models import GOAL_CHOICES, SEAT_STRUCTURE_CHOICES
from deliberation.scenarios.services import (
    ScenarioConfig,
    engine_scenario,
    most_divided_groups,
    scenario_seats,
)

RAPPORTEURS = [("largest", "The largest group"), ("mediator", "A neutral mediator")]
VISIBILITIES = [("private", "Only me"), ("signed_in", "Anyone signed in"), ("link", "Anyone with the link")]

# ScenarioError messages start with the engine's field name; show each under the right input.
ENGINE_FIELD = {"seats": "seat_structure", "groups": "groups", "goal": "goal", "veto_group": "veto_group"}


class ScenarioForm(forms.Form):
    record = forms.ModelChoiceField(queryset=Record.objects.all(), error_messages={
        "required": "Pick a record first: search the list below and click one.",
        "invalid_choice": "That record does not exist (any more): pick another one.",
    })
    groups = forms.JSONField(required=False, help_text="Group codes in order; leave empty to use most_divided.")
    most_divided = forms.IntegerField(required=False, min_value=2, max_value=8)
    seat_structure = forms.ChoiceField(choices=SEAT_STRUCTURE_CHOICES, initial="random_tenths")
    custom_seats = forms.JSONField(required=False, help_text="Group code -> percent, adding up to 100.")
    goal = forms.ChoiceField(choices=GOAL_CHOICES, initial="simple_majority")
    veto_group = forms.CharField(required=False, max_length=32)
    strategy = forms.ChoiceField(choices=[], initial="parliament")
    model = forms.CharField(required=False, max_length=200)
    judge = forms.ChoiceField(choices=lambda: [(name, name) for name in judge_choices()], initial="llm")
    judge_model = forms.CharField(required=False, max_length=200)
    seed = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1, initial=0)
    rounds = forms.IntegerField(required=False, min_value=0, max_value=5, initial=1, error_messages={
        "max_value": "At most %(limit_value)s negotiation rounds.",
        "min_value": "Rounds cannot be negative (0 skips the negotiation).",
    })
    rapporteur = forms.ChoiceField(required=False, choices=RAPPORTEURS, initial="largest")
    name = forms.CharField(required=False, max_length=200, help_text="Name it to save the scenario.")
    visibility = forms.ChoiceField(required=False, choices=VISIBILITIES, initial="private")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["strategy"].choices = [(name, name) for name in sorted(STRATEGIES)]
        self.model_choices = list(model_entries_for(user=user))

    def _checked_model(self, field: str, name: str) -> str:
        try:
            return model_check(name=name, user=self.user, field=field)
        except ModelRefused as error:
            raise forms.ValidationError(error.message) from None

    def clean_model(self):
        # Empty: the lab's default model, if this user may use it (else the error says to choose).
        return self._checked_model("model", (self.cleaned_data.get("model") or "").strip() or settings.HEMICYCLE_DEFAULT_MODEL)

    def clean_judge_model(self):
        name = (self.cleaned_data.get("judge_model") or "").strip()
        return self._checked_model("judge_model", name) if name else ""

    def clean_groups(self):
        groups = self.cleaned_data.get("groups")
        if groups in (None, "", []):
            return []
        if not isinstance(groups, list) or not all(isinstance(code, str) for code in groups):
            raise forms.ValidationError("Give the groups as a list of group codes.")
        return groups

    def clean_custom_seats(self):
        seats = self.cleaned_data.get("custom_seats")
        if seats in (None, "", {}):
            return {}
        if not isinstance(seats, dict):
            raise forms.ValidationError("Give custom seats as {group code: percent}.")
        try:
            return {str(code): float(share) for code, share in seats.items()}
        except (TypeError, ValueError):
            raise forms.ValidationError("Every custom seat share must be a number (percent).") from None

    def clean(self):
        data = super().clean()
        record = data.get("record")
        if record is None or self.errors:
            return data
        seed = data.get("seed") or 0
        groups = data.get("groups") or []
        if not groups:
            if not data.get("most_divided"):
                self.add_error("groups", "Pick at least two groups, or ask for the k most divided.")
                return data
            try:
                groups = most_divided_groups(record=record, count=data["most_divided"], seed=seed)
            except ScenarioError as error:
                self.add_error("most_divided", str(error).split(": ", 1)[-1])
                return data
        if len(set(groups)) != len(groups) or len(groups) < 2:
            self.add_error("groups", "Pick at least two different groups.")
            return data
        structure = data["seat_structure"]
        if structure == "custom":
            custom = data.get("custom_seats") or {}
            if set(custom) != set(groups):
                self.add_error("custom_seats", "Give a seat share for every participating group.")
                return data
            total = sum(custom.values())
            if abs(total - 100) > 0.01:
                self.add_error("custom_seats", f"Custom seat shares add up to {total:g}%, not 100%.")
                return data
        strategy, judge = data["strategy"], data["judge"]
        if judge == "real-votes" and strategy != "real-resolution":
            self.add_error("judge", "The real-votes judge only scores the adopted resolution (strategy real-resolution).")
            return data
        try:
            strategy_model_check(strategy=strategy, model=data["model"])
        except ModelRefused as error:
            self.add_error(error.field, error.message)
            return data
        goal, veto = data["goal"], (data.get("veto_group") or "").strip()
        if goal == "veto_power" and not veto:
            self.add_error("veto_group", "Veto power needs a veto group.")
            return data
        if veto and veto not in groups:
            self.add_error("veto_group", "The veto group must be one of the participating groups.")
            return data
        try:
            seats = scenario_seats(
                record=record, groups=groups, structure=structure, seed=seed,
                custom_percent=data.get("custom_seats"),
            )
            # Build the engine's scenario once: it is the final word on what can be played.
            engine_scenario(record=record, groups=groups, seats=seats, goal=goal, veto_group=veto)
        except ScenarioError as error:
            field, _, message = str(error).partition(": ")
            self.add_error(ENGINE_FIELD.get(field), message or str(error))
            return data
        params = {"rounds": data.get("rounds") if data.get("rounds") is not None else 1,
                  "rapporteur": data.get("rapporteur") or "largest"}
        self.config = ScenarioConfig(
            record=record,
            groups=tuple(groups),
            seat_structure=structure,
            seats=seats,
            goal=goal,
            veto_group=veto if goal == "veto_power" or veto else "",
            strategy=strategy,
            model=data["model"],
            judge=judge,
            judge_model=data["judge_model"],
            seed=seed,
            params=params if strategy == "parliament" else {},
        )
        return data
