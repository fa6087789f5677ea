import json
from pathlib import Path

from django.core.management.base import CommandError

from deliberation.calibration.selectors import calibration_summary
from deliberation.calibration.services import calibration_run
from deliberation.commands import ApplicationCommand, judge_option, progress_bar
from deliberation.engine.calibration import DEFAULT_RESAMPLES
from deliberation.records.models import RecordSet


class Command(ApplicationCommand):
    help = (
        "Score every real adopted resolution of a record set for every group with a real vote, "
        "with one judge, and measure the scores against the real votes (stored as a calibration)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--record-set", required=True, help="name of the record set")
        judge_option(parser, "--judge")
        parser.add_argument(
            "--judge-model",
            default=None,
            help="model of the llm judges and ensembles (default: the bundled model); a calibrated:<id> judge calls its calibration's",
        )
        parser.add_argument("--topic", default=None)
        parser.add_argument(
            "--limit", type=int, default=None, help="at most N (record, group) pairs, records in a seeded order"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples of records")
        parser.add_argument("--concurrency", type=int, default=1, help="judge calls in flight at once (hosted models)")
        parser.add_argument(
            "--probes",
            action="store_true",
            help="also judge every pair with the position before the text and with the group unnamed, and report the shift",
        )
        parser.add_argument(
            "--reason-check",
            action="store_true",
            help="also ask the judge model for a reason with its score, and score the reason alone (VUM)",
        )
        parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")

    def handle(self, *args, **options):
        bar = progress_bar(total=0, unit="pair", quiet=options["verbosity"] == 0)
        try:
            calibration = calibration_run(
                record_set=options["record_set"],
                judge=options["judge"],
                judge_model=options["judge_model"],
                topic=options["topic"],
                limit=options["limit"],
                seed=options["seed"],
                resamples=options["resamples"],
                concurrency=options["concurrency"],
                probes=options["probes"],
                reason_check=options["reason_check"],
                progress=bar.update,
                heartbeat=True,
                on_total=lambda total: setattr(bar, "total", total) or bar.refresh(),
            )
        except RecordSet.DoesNotExist as error:  # a CalibrationError ends the command as ApplicationCommand says
            raise CommandError(str(error)) from None
        finally:
            bar.close()

        results = calibration.results
        self.stdout.write(calibration_summary(calibration))
        if calibration.errors:
            self.stderr.write(f"{len(calibration.errors)} pairs failed:")
            for error in calibration.errors[:20]:
                self.stderr.write(f"  {error}")
        if options["out"]:
            document = {
                "calibration": calibration.pk,
                "judge": calibration.judge,
                "judge_model": calibration.judge_model,
                "record_set": options["record_set"],
                "record_set_version": calibration.record_set_version.number if calibration.record_set_version else None,
                "params": calibration.params,
                **results,
            }
            options["out"].write_text(json.dumps(document, indent=2) + "\n")
            self.stdout.write(f"wrote {options['out']}")
