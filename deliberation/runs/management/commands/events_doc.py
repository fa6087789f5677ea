"""Write docs/events.md from the event models (engine/events.py); --check only says whether it is current."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deliberation.engine.events_doc import DOC_PATH, events_markdown


class Command(BaseCommand):
    help = "Generate docs/events.md from the event models in deliberation/engine/events.py."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="fail if docs/events.md is stale; write nothing")

    def handle(self, *args, check: bool = False, **options):
        path = Path(settings.BASE_DIR) / DOC_PATH
        text = events_markdown()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if check:
            if current != text:
                raise CommandError(f"{DOC_PATH} is stale: run python manage.py events_doc")
            self.stdout.write(f"{DOC_PATH} is current")
            return
        if current == text:
            self.stdout.write(f"{DOC_PATH} is current")
            return
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {DOC_PATH}")
