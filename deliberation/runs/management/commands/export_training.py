"""Write an experiment's judged drafts as a training dataset (dpo, grpo or sft) in TRL's formats."""

from pathlib import Path

from django.core.management.base import CommandError

from deliberation.commands import ApplicationCommand
from deliberation.runs.management.commands.experiment import experiment_named
from deliberation.runs.training import FORMATS, training_export


class Command(ApplicationCommand):
    help = "Export an experiment's drafts as a dpo, grpo or sft dataset (JSONL and Parquet, split by record)."

    def add_arguments(self, parser):
        parser.add_argument("--experiment", required=True, help="the experiment's name")
        parser.add_argument("--owner", default=None, help="its owner's username, when several owners use the name")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, type=Path, help="the folder to write (made if missing)")
        parser.add_argument("--split", type=float, default=0.9, help="the share of records in train (default 0.9)")
        parser.add_argument("--seed", type=int, default=0, help="the seed of the split by record")
        parser.add_argument(
            "--margin",
            type=float,
            default=0.0,
            help="dpo: pair two drafts only when their goal values differ by more than this (default 0: ties dropped)",
        )

    def handle(self, *args, **options):
        experiment = experiment_named(name=options["experiment"], owner=options["owner"])
        try:
            summary = training_export(
                experiment=experiment,
                format=options["format"],
                out=options["out"],
                train=options["split"],
                seed=options["seed"],
                margin=options["margin"],
            )
        except ValueError as error:
            raise CommandError(str(error)) from None
        for subset, counts in summary["counts"].items():
            self.stdout.write(f"{subset}: {counts['train']} train rows, {counts['test']} test rows")
        self.stdout.write(f"wrote {options['out']} ({summary['scenarios']} scenarios, {summary['drafts']} drafts)")
