"""The browser's create-experiment form; experiment_create does the validation that matters."""

from django import forms
from django.conf import settings

from deliberation.engine.goals import GOALS
from deliberation.engine.strategies import STRATEGIES, ParamsError, strategy_params
from deliberation.records.selectors import record_set_list, topic_task_counts
from deliberation.registry.clients import judge_choices, judge_name_check
from deliberation.registry.selectors import ModelRefused, model_check, model_entries_for
from deliberation.runs.budgets import budget_for, spending_for
from deliberation.scenarios.models import SavedScenario
from deliberation.scenarios.strategy_inputs import strategy_inputs, strategy_params_posted

# What a new user compares first: the paper's drafter, the debate and the two baselines.
DEFAULT_STRATEGIES = [name for name in ("one-shot", "parliament", "random", "greedy") if name in STRATEGIES]


def _words(text: str) -> list[str]:
    return [word for word in text.replace(",", " ").split() if word]


class JudgesField(forms.MultipleChoiceField):
    """The judges the form offers (the fixed ones, the newest calibrated ones), and any other the
    one rule accepts (registry.clients.judge_name_check: calibrated:<id> of an older calibration),
    refused with what is wrong."""

    def validate(self, value):
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        for name in value:
            try:
                judge_name_check(name)
            except ValueError as error:
                raise forms.ValidationError(str(error), code="invalid_choice") from None


SOURCES = [("tasks", "A record set's benchmark tasks"), ("scenarios", "Your saved scenarios")]


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=200)
    source = forms.ChoiceField(
        choices=SOURCES, initial="tasks", required=False, widget=forms.RadioSelect, label="What to play"
    )
    record_set = forms.ChoiceField(choices=[], required=False)
    topic = forms.ChoiceField(required=False, choices=[], help_text="The number of benchmark tasks is in brackets.")
    scenarios = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        choices=[],
        widget=forms.CheckboxSelectMultiple,
        label="Saved scenarios",
        help_text="Each scenario keeps its record, groups and seats; the grid varies goals, strategies, models and seeds.",
    )
    parties = forms.TypedMultipleChoiceField(
        choices=[(2, "2"), (4, "4"), (6, "6")], coerce=int, initial=[2, 4, 6], widget=forms.CheckboxSelectMultiple
    )
    sample = forms.IntegerField(
        required=False,
        min_value=1,
        initial=4,
        help_text="Play a seeded sample of this many tasks (empty: every matching task).",
    )
    sample_seed = forms.IntegerField(
        required=False, initial=0, help_text="Which sample: the same seed picks the same tasks."
    )
    goals = forms.MultipleChoiceField(
        choices=[(key, goal.label) for key, goal in GOALS.items()],
        initial=["simple_majority"],
        widget=forms.CheckboxSelectMultiple,
    )
    strategies = forms.MultipleChoiceField(
        choices=[(name, name) for name in STRATEGIES],
        initial=DEFAULT_STRATEGIES,
        widget=forms.CheckboxSelectMultiple,
        required=False,  # none: calibrations alone (experiment_create says so when nothing is asked)
    )
    models = forms.CharField(
        max_length=1000,
        help_text="Drafting models of the lab's registry, separated by spaces.",
        widget=forms.TextInput(attrs={"list": "model-suggestions"}),
    )
    judges = JudgesField(
        choices=lambda: [(name, name) for name in judge_choices()],
        initial=["llm"],
        widget=forms.CheckboxSelectMultiple,
        help_text="llm: the paper's judge, on the drafting model.",
    )
    seeds = forms.CharField(max_length=200, initial="0", help_text="Integers, separated by spaces.")
    call_cap = forms.IntegerField(required=False, min_value=0, help_text="At most this many uncached model steps.")
    calibrate = forms.BooleanField(
        required=False,
        help_text="Also measure every judge against the real votes of the record set's records (a calibration per "
        "judge and judge model, beside the runs; with no strategy, calibrations alone).",
    )
    calibration_models = forms.CharField(
        max_length=1000,
        required=False,
        help_text="Judge models to calibrate, separated by spaces (empty: the drafting models).",
        widget=forms.TextInput(attrs={"list": "model-suggestions"}),
    )
    calibration_limit = forms.IntegerField(
        required=False, min_value=1, initial=40, help_text="At most this many (record, group) pairs per calibration."
    )
    start = forms.BooleanField(required=False, initial=True, help_text="Start it now.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.params_posted = (
            {name: strategy_params_posted(self.data, strategy=name) for name in STRATEGIES} if self.is_bound else {}
        )
        self.params_errors: dict[str, dict[str, list[str]]] = {}
        self.fields["record_set"].choices = [(s.name, s.name) for s in record_set_list()]
        self.fields["topic"].choices = [("", "Every topic")] + [
            (name, f"{name} ({count} task{'' if count == 1 else 's'})") for name, count in topic_task_counts()
        ]
        self.fields["scenarios"].choices = [
            (s.pk, f"{s.name} ({len(s.groups)} groups, {s.record.title[:60]})")
            for s in SavedScenario.objects.filter(owner=user).select_related("record")
        ]
        # The models this user may use, from the registry (the default first when it is one).
        self.model_choices = list(model_entries_for(user=user))
        names = [entry.name for entry in self.model_choices]
        self.fields["models"].initial = (
            settings.HEMICYCLE_DEFAULT_MODEL if settings.HEMICYCLE_DEFAULT_MODEL in names else (names[:1] or [""])[0]
        )
        # What the user may still spend, shown before they start (runs.experiments enforces it).
        budget = budget_for(user=user)
        self.spending = spending_for(user=user, budget=budget)
        if budget.experiment_cap is not None:
            self.fields[
                "call_cap"
            ].help_text = (
                f"At most this many uncached model steps (empty: your default cap, {budget.experiment_cap} steps)."
            )

    def clean_models(self):
        names = _words(self.cleaned_data["models"])
        if not names:
            raise forms.ValidationError("choose at least one model")
        try:
            return [model_check(name=name, user=self.user, field="models") for name in names]
        except ModelRefused as error:
            raise forms.ValidationError(error.message) from None

    def clean_seeds(self):
        try:
            return [int(word) for word in _words(self.cleaned_data["seeds"])]
        except ValueError:
            raise forms.ValidationError("seeds are whole numbers") from None

    def strategy_inputs(self) -> list[dict]:
        """Every strategy's parameter inputs (empty: the default), with what was posted and its messages."""
        return strategy_inputs(
            values=self.params_posted, errors=self.params_errors, shown=lambda name: True, prefill=False
        )

    def clean(self):
        data = super().clean()
        # The strategies' parameters (params.<strategy>.<name>), typed as each declares them.
        data["params"] = {}
        for strategy in data.get("strategies") or []:
            given = self.params_posted.get(strategy)
            if not given:
                continue
            try:
                data["params"][strategy] = strategy_params(strategy, given).model_dump(include=set(given))
            except ParamsError as error:
                self.params_errors[strategy] = error.errors
                self.add_error(None, f"{strategy}: {error}")
        if data.get("source") == "scenarios" and not data.get("scenarios"):
            self.add_error("scenarios", "Tick at least one saved scenario (save one from the builder first).")
        if data.get("source") != "scenarios" and not data.get("record_set"):
            self.add_error("record_set", "Choose a record set.")
        return data

    def create_kwargs(self) -> dict:
        data = self.cleaned_data
        params = data["params"]
        grid = {
            "name": data["name"],
            "goals": data["goals"],
            "strategies": data["strategies"],
            "models": data["models"],
            "judges": data["judges"],
            "seeds": data["seeds"],
            "params": params,
            "call_cap": data["call_cap"],
        }
        if data.get("calibrate"):
            grid.update(
                calibrate=True,
                calibration_models=_words(data.get("calibration_models") or ""),
                calibration_limit=data.get("calibration_limit"),
            )
        if data.get("source") == "scenarios":
            return {**grid, "scenario_ids": data["scenarios"]}
        return {
            **grid,
            "record_set": data["record_set"],
            "topic": data["topic"] or None,
            "parties": data["parties"],
            "sample": data["sample"],
            "sample_seed": data.get("sample_seed") or 0,
        }
