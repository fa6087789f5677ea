import argparse
import json
from functools import partial
from pathlib import Path

from django.core.management.base import CommandError

from deliberation.commands import ApplicationCommand, judge_option
from deliberation.engine.goals import GOAL_KEYS
from deliberation.engine.strategies import STRATEGIES, strategy_params
from deliberation.engine.strategies.base import model_params_of
from deliberation.registry.clients import strategy_model_check
from deliberation.registry.selectors import ModelRefused, model_runnable
from deliberation.runs.benchmark import EVALUATE_OWNER, benchmark_evaluate
from deliberation.runs.play import experiment_play_followed


def strategy_param(text: str) -> tuple[str, str]:
    """NAME=VALUE; the strategy's declaration reads the value as its type (params.py)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=VALUE")
    return name.strip(), value


class Command(ApplicationCommand):
    help = (
        "Run the PoliCon benchmark over a record set's tasks and print the paper's table (the runs are stored "
        "as an experiment of the 'evaluate' account)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--record-set", required=True, help="name of the record set")
        parser.add_argument("--parties", nargs="+", type=int, default=[2, 4, 6], choices=[2, 4, 6])
        parser.add_argument("--goals", nargs="+", default=["all"], help=f"all or any of {', '.join(GOAL_KEYS)}")
        parser.add_argument("--strategy", required=True, choices=sorted(STRATEGIES))
        parser.add_argument(
            "--model",
            default=None,
            help="drafting model: a registry name, or a backend model string (default: the lab's default model)",
        )
        judge_option(parser, "--judge")
        parser.add_argument(
            "--judge-model",
            default=None,
            help="model of the llm judges and ensembles (default: --model); a calibrated:<id> judge calls its calibration's",
        )
        parser.add_argument("--topic", default=None)
        parser.add_argument("--limit", type=int, default=None, help="at most N tasks per party count")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            type=strategy_param,
            help="a strategy parameter (repeatable), e.g. --param rounds=2 --param advisor_model=scripted:default",
        )
        parser.add_argument("--out", type=Path, default=None, help="write the table as JSON here")

    def handle(self, *args, **options):
        from django.conf import settings

        goals = list(GOAL_KEYS) if options["goals"] == ["all"] else options["goals"]
        params = dict(options["param"])
        try:
            params = strategy_params(options["strategy"], params).model_dump()
        except ValueError as error:
            raise CommandError(f"--param {error}") from None
        model = options["model"] or settings.HEMICYCLE_DEFAULT_MODEL
        # The shell is the operator's (staff): a registry name, or a raw string checked as the
        # registry checks its entries.
        further = [
            (f"--param {param}", str(params[param]))
            for param in model_params_of(STRATEGIES[options["strategy"]])
            if params.get(param)
        ]
        for what, name in (("--model", model), ("--judge-model", options["judge_model"]), *further):
            if name:
                try:
                    model_runnable(name=name)
                except ModelRefused as error:
                    raise CommandError(f"{what}: {error.message}") from None
        try:
            strategy_model_check(strategy=options["strategy"], model=model, allow_raw=True)
        except ModelRefused as error:
            raise CommandError(f"--model: {error.message}") from None
        result = benchmark_evaluate(  # a BenchmarkError ends the command as ApplicationCommand says
            record_set=options["record_set"],
            party_counts=options["parties"],
            goals=goals,
            strategy=options["strategy"],
            model=model,
            judge=options["judge"],
            judge_model=options["judge_model"],
            topic=options["topic"],
            limit=options["limit"],
            seed=options["seed"],
            params=params,
            play=partial(experiment_play_followed, disable=options["verbosity"] == 0),
        )

        self.stdout.write(result.render())
        usage = result.usage
        self.stdout.write(
            f"{result.runs} runs in {result.seconds:.1f} s; {int(usage['calls'])} model steps, "
            f"{int(usage['prompt_tokens'])} prompt + {int(usage['completion_tokens'])} completion tokens, "
            f"{usage['seconds']:.1f} s of uncached model time"
        )
        if result.failures:
            self.stderr.write(f"{len(result.failures)} runs failed:")
            for failure in result.failures[:20]:
                self.stderr.write(f"  {failure}")
        self.stdout.write(f"runs stored as experiment {result.experiment!r} (owner {EVALUATE_OWNER!r})")
        if options["out"]:
            options["out"].write_text(json.dumps(result.table, indent=2) + "\n")
            self.stdout.write(f"wrote {options['out']}")
