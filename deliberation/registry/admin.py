from django import forms
from django.contrib import admin

from deliberation.registry.models import ModelEntry, UserBudget


class ModelEntryForm(forms.ModelForm):
    class Meta:
        model = ModelEntry
        fields = "__all__"

    def clean_model(self) -> str:
        """The backend string is checked as the CLI checks a raw one: a typo is caught here, not
        when a run first calls it."""
        from worker.models import model_string_check
        from worker.models.retry import PermanentModelError

        model = self.cleaned_data["model"].strip()
        try:
            model_string_check(model)
        except PermanentModelError as error:
            raise forms.ValidationError(str(error)) from None
        return model

    def clean_api_base(self) -> str:
        api_base = self.cleaned_data["api_base"].strip()
        if api_base and not api_base.startswith(("http://", "https://")):
            raise forms.ValidationError("A base URL starting with http:// or https://, e.g. http://gpu1:8000/v1.")
        return api_base

    def clean(self):
        data = super().clean()
        if data.get("access") == ModelEntry.Access.GROUPS and not data.get("groups"):
            self.add_error("groups", "Name at least one group, or choose another access.")
        return data


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    form = ModelEntryForm
    list_display = ("name", "model", "api_base", "api_key_env", "concurrency", "access", "enabled", "position")
    list_editable = ("enabled", "position")
    list_filter = ("enabled", "access")
    search_fields = ("name", "model", "api_base", "description")
    filter_horizontal = ("groups",)


@admin.register(UserBudget)
class UserBudgetAdmin(admin.ModelAdmin):
    list_display = ("user", "steps_per_day", "tokens_per_day", "experiment_cap")
    search_fields = ("user__username",)
    autocomplete_fields = ("user",)
