"""API tokens from the command line.

manage.py api_token create USERNAME [--name NAME]   prints a new token (shown only this once)
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from deliberation.api.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user (send it as 'Authorization: Bearer <token>')."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="print a new token for the user")
        create.add_argument("username")
        create.add_argument("--name", default="", help="what the token is for")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        row, token = api_token_create(user=user, name=options["name"])
        self.stderr.write(f"token {row.prefix}... for {user.get_username()}: it is shown only now, keep it")
        self.stdout.write(token)
