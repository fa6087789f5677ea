"""{% load groups %} ... {% group_label code %}: a group's label instead of its code ("S&D", not "SD")."""

from django import template

from deliberation.records.selectors import group_labels

register = template.Library()


@register.simple_tag(takes_context=True)
def group_label(context: template.Context, code: str) -> str:
    # One query per rendered page, however many labels it shows.
    labels = context.render_context.get("group_labels")
    if labels is None:
        labels = context.render_context["group_labels"] = group_labels()
    return labels.get(code, code) if code else ""
