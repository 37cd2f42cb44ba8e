"""Issue an API token and print its key, once: `manage.py issue_token alice`."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from voicesurvey.accounts.models import issue_token


class Command(BaseCommand):
    help = (
        "Issue a new API token for a user and print its key (Authorization: Token <key>). "
        "The key is stored hashed: it is printed now and never again."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for.")
        parser.add_argument(
            "--rotate", action="store_true", help="Revoke the user's other tokens first."
        )

    def handle(self, *args, username, name, rotate, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive; its token would not work.")
        if rotate:
            user.api_tokens.all().delete()
        _, key = issue_token(user, name=name)
        self.stdout.write(key)
