import json
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.urls import reverse

from deliberation.commands import ApplicationCommand
from deliberation.runs.services import run_create
from deliberation.scenarios.services import scenario_config_build, scenario_save


class Command(ApplicationCommand):
    help = (
        "Start one run of a scenario written as JSON (the body POST /api/v1/runs takes; GET "
        "/api/v1/strategies lists each strategy's parameters), checked by the same validator as "
        "the builder and the API. The run is played by the workers, as one started in the browser."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scenario", required=True, type=Path, help="the scenario's JSON file, or - for stdin")
        parser.add_argument("--owner", required=True, help="the username the run belongs to")
        parser.add_argument(
            "--check", action="store_true", help="only validate: print the resolved scenario, start nothing"
        )

    def handle(self, *args, **options):
        source = options["scenario"]
        try:
            data = json.loads(sys.stdin.read() if str(source) == "-" else source.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CommandError(f"--scenario: {error}") from None
        if not isinstance(data, dict):
            raise CommandError("--scenario: a JSON object is expected")
        owner = get_user_model().objects.filter(username=options["owner"]).first()
        if owner is None:
            raise CommandError(f"--owner: no user named {options['owner']!r}")
        config = scenario_config_build(data=data, user=owner)  # ScenarioInvalid: per-field messages
        if options["check"]:
            fields = config.model_fields()
            self.stdout.write(json.dumps({**fields, "record": fields["record"].pk}, indent=2, default=str))
            return
        name = str(data.get("name") or "").strip()
        scenario = scenario_save(owner=owner, name=name, config=config) if name else None
        run = run_create(owner=owner, config=config, scenario=scenario, visibility=data.get("visibility") or "private")
        self.stdout.write(f"run {run.pk} started: {reverse('run-detail', args=[run.pk])}")
