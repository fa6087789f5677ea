"""Recompute every stored run's moral rewards (engine/rewards.py) from its events."""

from django.core.management.base import BaseCommand

from deliberation.runs.group_scores import group_rewards_backfill, group_scores_backfill


class Command(BaseCommand):
    help = "Recompute the moral rewards of every stored run and group from the runs' event logs (no model call)."

    def handle(self, *args, **options):
        written = group_scores_backfill()  # finished runs without per-group rows get them first
        updated = group_rewards_backfill()
        self.stdout.write(f"{written} per-group rows written, {updated} rows' rewards computed")
