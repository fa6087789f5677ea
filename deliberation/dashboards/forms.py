"""The browser's create-experiment form; experiment_create does the validation that matters."""

from django import forms

from deliberation.engine.goals import GOALS
from deliberation.engine.strategies import STRATEGIES
from deliberation.records.selectors import record_set_list
from deliberation.runs.clients import JUDGES


def _words(text: str) -> list[str]:
    return [word for word in text.replace(",", " ").split() if word]


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=200)
    record_set = forms.ChoiceField(choices=[])
    topic = forms.CharField(required=False, max_length=200, help_text="Leave empty for every topic.")
    parties = forms.TypedMultipleChoiceField(
        choices=[(2, "2"), (4, "4"), (6, "6")], coerce=int, initial=[2, 4, 6], widget=forms.CheckboxSelectMultiple
    )
    sample = forms.IntegerField(required=False, min_value=1, help_text="Play a seeded sample of this many tasks.")
    goals = forms.MultipleChoiceField(choices=[(key, goal.label) for key, goal in GOALS.items()],
                                      widget=forms.CheckboxSelectMultiple)
    strategies = forms.MultipleChoiceField(choices=[(name, name) for name in STRATEGIES], widget=forms.CheckboxSelectMultiple)
    models = forms.CharField(max_length=1000, initial="scripted:default", help_text="Drafting model strings, separated by spaces.")
    judges = forms.MultipleChoiceField(choices=[(name, name) for name in JUDGES], initial=["llm"],
                                       widget=forms.CheckboxSelectMultiple)
    seeds = forms.CharField(max_length=200, initial="0", help_text="Integers, separated by spaces.")
    call_cap = forms.IntegerField(required=False, min_value=0, help_text="At most this many uncached model steps.")
    start = forms.BooleanField(required=False, initial=True, help_text="Start it now.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["record_set"].choices = [(s.name, s.name) for s in record_set_list()]

    def clean_seeds(self):
        try:
            return [int(word) for word in _words(self.cleaned_data["seeds"])]
        except ValueError:
            raise forms.ValidationError("seeds are whole numbers") from None

    def create_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"], "record_set": data["record_set"], "topic": data["topic"] or None,
            "parties": data["parties"], "sample": data["sample"], "goals": data["goals"],
            "strategies": data["strategies"], "models": _words(data["models"]), "judges": data["judges"],
            "seeds": data["seeds"], "call_cap": data["call_cap"],
        }
