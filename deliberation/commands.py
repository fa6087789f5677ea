"""The command line's side of the error vocabulary (deliberation/errors.py) and its progress bar.

Management commands subclass ApplicationCommand: an ApplicationError a service raises ends the
command as a CommandError (its message on stderr, exit code 1), here once instead of a try/except
per command; progress_bar is the one terminal progress bar (quiet at --verbosity 0);
judge_argument is the type of every --judge option.
"""

import argparse

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from deliberation.errors import ApplicationError
from deliberation.registry.clients import judge_name_check, judge_names_help


class ApplicationCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ApplicationError as error:
            raise CommandError(str(error)) from None


def progress_bar(*, total: int, unit: str, quiet: bool = False) -> tqdm:
    """A terminal progress bar of `total` `unit`s (close it when done; total may be set later)."""
    return tqdm(total=total, unit=unit, disable=quiet)


def judge_argument(text: str) -> str:
    """argparse's type of a --judge or --judges option: registry.clients.judge_name_check (a fixed
    judge, or calibrated:<id> of any calibration with a map), its message shown as it is."""
    try:
        judge_name_check(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def judge_option(parser: argparse.ArgumentParser, flag: str, **kwargs) -> None:
    """A --judge (or --judges, with nargs) option: judge_argument, its help the judges' names."""
    parser.add_argument(flag, required=True, type=judge_argument, help=f"any of {judge_names_help()}", **kwargs)
