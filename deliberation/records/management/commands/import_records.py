from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from deliberation.records.howtheyvote import howtheyvote_import
from deliberation.records.models import RecordSetVersion
from deliberation.records.services import records_import

ARCHIVE_SUFFIXES = {".zip", ".json"}


def default_name(path: Path) -> str:
    """The record set's name when none is given: the first path's name, without .zip / .json."""
    path = path.resolve()
    return path.stem if path.suffix.lower() in ARCHIVE_SUFFIXES else path.name


class Command(BaseCommand):
    help = (
        "Import EuroCon / PoliCon records (JSON files, folders laid out like the release, zip "
        "archives), or with --format howtheyvote HowTheyVote.eu's CSV export (its zip or a folder), into one "
        "record set, and print what was kept, skipped and why."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
        parser.add_argument("--name", default=None, help="record set name (default: the first path's name)")
        parser.add_argument("--description", default="", help="record set description (used when it is new)")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="the new version holds only these records (default: the previous version's records plus these)",
        )
        parser.add_argument("--note", default="", help="a note on the new version")
        parser.add_argument(
            "--format",
            choices=("eurocon", "howtheyvote"),
            default="eurocon",
            help="eurocon (JSON, the default) or howtheyvote (one export, folder or zip: votes.csv, member_votes.csv, groups.csv)",
        )

    def handle(self, *args, **options):
        name = options["name"] or default_name(options["paths"][0])
        common = {
            "name": name,
            "description": options["description"],
            "note": options["note"],
            "mode": RecordSetVersion.Mode.REPLACE if options["replace"] else RecordSetVersion.Mode.EXTEND,
        }
        if options["format"] == "howtheyvote":
            if len(options["paths"]) != 1:
                raise CommandError("--format howtheyvote reads one export: a folder of its CSV tables or its zip")
            report = howtheyvote_import(folder=options["paths"][0], **common)
        else:
            report = records_import(paths=options["paths"], **common)
        self.stdout.write(report.render())
        if not report.kept:
            raise CommandError(
                f"Nothing was imported into {name!r}: no file held a usable record (see the problems above)."
            )
