"""Experiments from the command line: create a grid, run it (here, with --wait), see and export it.

manage.py experiment create --name N --record-set S [--topic T] [--parties 2 4] [--sample N]
    [--goals all|...] --strategies one-shot greedy --models scripted:default --judges scripted
    --seeds 0 1 [--cap N] [--calibrate [--judge-models M1 M2] [--calibrate-limit N] [--calibrate-seed S]]
    (--calibrate without --strategies: an experiment of calibration cells alone)
manage.py experiment run NAME [--wait]
manage.py experiment pause NAME / cancel NAME
manage.py experiment status NAME
manage.py experiment export NAME --out FILE.json
manage.py experiment export NAME --out FILE.zip [--format csv parquet json]
    (tidy tables and their data dictionary: runs/exports.py)
"""

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from deliberation.commands import ApplicationCommand, judge_option
from deliberation.engine.goals import GOAL_KEYS
from deliberation.engine.strategies import STRATEGIES, ParamsError, strategy_params
from deliberation.engine.strategies.params import params_from_pairs
from deliberation.runs.experiments import (
    experiment_cancel,
    experiment_create,
    experiment_pause,
    experiment_start,
)
from deliberation.runs.exports import FORMATS, experiment_export
from deliberation.runs.models import Experiment
from deliberation.runs.play import experiment_play_followed, progress_line
from deliberation.runs.selectors import experiment_get, experiment_progress, experiment_results

DEFAULT_OWNER = "experiments"


def experiment_named(*, name: str, owner: str | None) -> Experiment:
    """The experiment a command names (and its owner's username, when several owners use the
    name), or a CommandError saying why not."""
    user = None
    if owner:
        user = get_user_model().objects.filter(username=owner).first()
        if user is None:
            raise CommandError(f"no user named {owner!r}")
    try:
        return experiment_get(name=name, owner=user)
    except Experiment.DoesNotExist:
        raise CommandError(f"no experiment named {name!r}") from None
    except Experiment.MultipleObjectsReturned:
        raise CommandError(f"several owners have an experiment named {name!r}: give --owner") from None


class Command(ApplicationCommand):
    help = "Create, run, inspect and export experiments (grids of runs)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="store a grid and its estimate (nothing runs yet)")
        create.add_argument("--name", required=True)
        create.add_argument("--record-set", help="play this record set's benchmark tasks")
        create.add_argument("--scenarios", nargs="+", type=int, default=[], help="or these saved scenarios (ids)")
        create.add_argument("--topic", default=None)
        create.add_argument("--parties", nargs="+", type=int, default=[2, 4, 6], choices=[2, 4, 6])
        create.add_argument("--sample", type=int, default=None, help="a seeded sample of this many tasks")
        create.add_argument("--sample-seed", type=int, default=0)
        create.add_argument("--goals", nargs="+", default=["all"], help=f"all or any of {', '.join(GOAL_KEYS)}")
        create.add_argument(
            "--strategies", nargs="*", default=[], choices=sorted(STRATEGIES), help="(none with --calibrate: no runs)"
        )
        create.add_argument(
            "--models",
            nargs="+",
            default=None,
            help="drafting models: registry names the owner may use (staff: also backend strings); default: the lab's default model",
        )
        judge_option(create, "--judges", nargs="+")
        create.add_argument("--seeds", nargs="+", type=int, default=[0])
        create.add_argument("--rounds", type=int, default=None, help="parliament: negotiation rounds")
        create.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a strategy parameter, for every strategy of the grid that has it (repeatable)",
        )
        create.add_argument("--cap", type=int, default=None, help="at most this many uncached model steps")
        create.add_argument(
            "--calibrate",
            action="store_true",
            help="also calibrate every judge x judge model against the real votes of the record set (Celery tasks)",
        )
        create.add_argument(
            "--judge-models", nargs="+", default=[], help="--calibrate: the judge models (default: the --models)"
        )
        create.add_argument(
            "--calibrate-limit", type=int, default=None, help="--calibrate: at most N (record, group) pairs"
        )
        create.add_argument("--calibrate-seed", type=int, default=0, help="--calibrate: the seed of the sample")
        for action in (
            create,
            *(
                actions.add_parser(name, help=text)
                for name, text in (
                    ("run", "start or resume an experiment"),
                    ("pause", "start no new runs; runs in flight pause and resume with the experiment"),
                    ("cancel", "start no new runs and stop those in flight (run resumes it)"),
                    ("status", "progress of an experiment"),
                    ("export", "every run's cell, status and outcome as JSON, or tidy tables in a zip"),
                )
            ),
        ):
            if action is not create:
                action.add_argument("name")
            action.add_argument("--owner", default=None, help=f"username (create: default {DEFAULT_OWNER!r})")
            if action.prog.endswith(" run"):
                action.add_argument("--wait", action="store_true", help="stay with a progress bar until it ends")
            if action.prog.endswith(" export"):
                action.add_argument("--out", type=Path, required=True)
                action.add_argument(
                    "--format",
                    nargs="+",
                    choices=FORMATS,
                    default=None,
                    help="write a zip of tidy tables in these formats (default for a .zip --out: all)",
                )

    def handle(self, *args, **options):
        getattr(self, f"handle_{options['action']}")(options)  # ExperimentError, Forbidden: ApplicationCommand

    def _experiment(self, options) -> Experiment:
        return experiment_named(name=options["name"], owner=options["owner"])

    def _grid_params(self, options) -> dict[str, dict]:
        """--param NAME=VALUE for each strategy of the grid that declares NAME (typed as declared),
        and --rounds for the parliament."""
        try:
            pairs = params_from_pairs(options["param"])
            params: dict[str, dict] = {}
            for strategy in options["strategies"]:
                given = {
                    name: value
                    for name, value in pairs.items()
                    if name in STRATEGIES[strategy].params_model.model_fields
                }
                if strategy == "parliament" and options["rounds"] is not None:
                    given["rounds"] = options["rounds"]
                if given:
                    params[strategy] = strategy_params(strategy, given).model_dump(include=set(given))
        except ParamsError as error:
            raise CommandError(f"--param {error}") from None
        unused = [
            name for name in pairs if not any(name in params.get(strategy, {}) for strategy in options["strategies"])
        ]
        if unused:
            raise CommandError(f"--param: no strategy of the grid has a parameter named {', '.join(unused)}")
        return params

    def handle_create(self, options) -> None:
        if not options["strategies"] and not options["calibrate"]:
            raise CommandError("--strategies: choose at least one (or --calibrate alone)")
        owner, _ = get_user_model().objects.get_or_create(username=options["owner"] or DEFAULT_OWNER)
        params = self._grid_params(options)
        experiment = experiment_create(
            owner=owner,
            name=options["name"],
            record_set=options["record_set"],
            scenario_ids=options["scenarios"],
            topic=options["topic"],
            parties=options["parties"],
            sample=options["sample"],
            sample_seed=options["sample_seed"],
            goals=list(GOAL_KEYS) if options["goals"] == ["all"] else options["goals"],
            strategies=options["strategies"],
            models=options["models"] or [settings.HEMICYCLE_DEFAULT_MODEL],
            judges=options["judges"],
            seeds=options["seeds"],
            params=params,
            call_cap=options["cap"],
            allow_raw_models=True,  # for a staff owner only (experiment_create checks)
            calibrate=options["calibrate"],
            calibration_models=options["judge_models"],
            calibration_limit=options["calibrate_limit"],
            calibration_seed=options["calibrate_seed"],
        )
        estimate = experiment.estimate
        calibrations = f" and {estimate['calibrations']} calibrations" if estimate.get("calibrations") else ""
        self.stdout.write(
            f"created experiment {experiment.name!r} (id {experiment.pk}): {estimate['runs']} runs{calibrations}, "
            f"at most {estimate['steps']} model steps and {estimate['completion_tokens']} completion tokens"
        )
        for strategy, row in estimate["per_strategy"].items():
            self.stdout.write(f"  {strategy:<16} {row['runs']:>6} runs {row['steps']:>8} steps")

    def handle_run(self, options) -> None:
        experiment = self._experiment(options)
        if options["wait"]:
            self._write_progress(experiment_play_followed(experiment, disable=options["verbosity"] == 0))
            return
        started = experiment_start(experiment=experiment, user=experiment.owner)
        self.stdout.write(f"experiment {experiment.name!r} is {experiment.status}; {len(started)} runs started")
        if settings.CELERY_EMBEDDED_WORKER:
            self.stdout.write(
                "no broker is configured: the web process's worker plays it when it starts, or use --wait"
            )

    def _write_progress(self, progress: dict) -> None:
        self.stdout.write(progress_line(progress))
        for cell in progress["calibrations"]["cells"]:
            model = f" on {cell['judge_model']}" if cell["judge_model"] else ""
            line = f"  calibration {cell['id']}: {cell['judge']}{model} {cell['status']}, {cell['scored']}/{cell['total']} scores"
            if cell["status"] == "finished":
                r, mae = cell["pearson"], cell["mae"]
                line += f", r {'n/a' if r is None else f'{r:.3f}'}, mae {'n/a' if mae is None else f'{mae:.2f}'}"
            self.stdout.write(line + (f" ({cell['error']})" if cell["error"] else ""))

    def handle_pause(self, options) -> None:
        experiment = self._experiment(options)
        experiment_pause(experiment=experiment, user=experiment.owner)
        self._write_progress(experiment_progress(experiment=experiment))

    def handle_cancel(self, options) -> None:
        experiment = self._experiment(options)
        experiment_cancel(experiment=experiment, user=experiment.owner)
        self._write_progress(experiment_progress(experiment=experiment))

    def handle_status(self, options) -> None:
        self._write_progress(experiment_progress(experiment=self._experiment(options)))

    def handle_export(self, options) -> None:
        experiment = self._experiment(options)
        if options["format"] or options["out"].suffix == ".zip":
            pieces = experiment_export(experiment=experiment, formats=options["format"] or FORMATS)
            with open(options["out"], "wb") as out:
                out.writelines(pieces)
            self.stdout.write(
                f"wrote {experiment.runs.count()} runs' tables and their data dictionary to {options['out']}"
            )
            return
        data = {
            "experiment": experiment.name,
            "status": experiment.status,
            "spec": experiment.spec,
            "estimate": experiment.estimate,
            "progress": experiment_progress(experiment=experiment),
            "runs": experiment_results(experiment=experiment),
        }
        options["out"].write_text(json.dumps(data, indent=2) + "\n")
        self.stdout.write(f"wrote {len(data['runs'])} runs to {options['out']}")
