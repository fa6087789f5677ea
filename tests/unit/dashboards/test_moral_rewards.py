"""The dashboard's moral rewards per strategy and model, from the stored per-group rows."""

import pytest
from django.urls import reverse

from deliberation.dashboards.selectors import moral_rewards
from deliberation.runs.models import RunGroupScore


def _set(made, *, strategy: str, group: str, deontological: float, utilitarian: float) -> None:
    RunGroupScore.objects.filter(experiment=made.experiment, strategy=strategy, group=group).update(
        reward_deontological=deontological, reward_utilitarian=utilitarian
    )


def test_rewards_are_averaged_per_strategy_and_model_with_broken_commitments_counted(made, client, owner):
    _set(made, strategy="one-shot", group="EPP", deontological=-1.0, utilitarian=4.0)
    _set(made, strategy="one-shot", group="SD", deontological=1.0, utilitarian=4.0)
    _set(made, strategy="greedy", group="EPP", deontological=0.0, utilitarian=4.5)
    epp = RunGroupScore.objects.filter(experiment=made.experiment, strategy="one-shot", group="EPP").count()
    sd = RunGroupScore.objects.filter(experiment=made.experiment, strategy="one-shot", group="SD").count()
    rows = {(row["strategy"], row["model"]): row for row in moral_rewards(experiment=made.experiment)}
    one_shot = rows[("one-shot", "m1")]
    assert (one_shot["n"], one_shot["broken"], one_shot["endorsed"]) == (epp + sd, epp, epp + sd)
    assert one_shot["deontological"] == pytest.approx((sd - epp) / (epp + sd))
    assert rows[("greedy", "m1")]["broken"] == 0 and rows[("greedy", "m1")]["utilitarian"] == 4.5

    client.force_login(owner)
    page = client.get(reverse("experiment-results", args=[made.experiment.pk])).content.decode()
    assert 'data-testid="moral-rewards" data-sortable' in page and 'data-figure="moral-rewards"' in page
