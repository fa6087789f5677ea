"""The command line's side of the error vocabulary (deliberation/errors.py) and its progress bar.

Management commands subclass ApplicationCommand: an ApplicationError a service raises ends the
command as a CommandError (its message on stderr, exit code 1), here once instead of a try/except
per command; progress_bar is the one terminal progress bar (quiet at --verbosity 0).
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from deliberation.errors import ApplicationError


class ApplicationCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except ApplicationError as error:
            raise CommandError(str(error)) from None


def progress_bar(*, total: int, unit: str, quiet: bool = False) -> tqdm:
    """A terminal progress bar of `total` `unit`s (close it when done; total may be set later)."""
    return tqdm(total=total, unit=unit, disable=quiet)
