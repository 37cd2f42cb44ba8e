from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from calls.demo import admin_url, ensure_demo_superuser, load_demo_campaign


class Command(BaseCommand):
    help = "Create the demo superuser (if none exists) and the demo campaign, and print the login."

    def handle(self, *args, **options):
        login = ensure_demo_superuser(settings.VAR_DIR / "admin-password")
        campaign, created = load_demo_campaign(now=timezone.now())
        self.stdout.write(
            f"Demo campaign {campaign.name!r}: {'created' if created else 'already there'}, "
            f"{campaign.contacts.count()} contacts, {campaign.status}."
        )
        password = (
            login.password or "(set before; reset with: .venv/bin/python manage.py changepassword)"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Admin: {admin_url()}\n  Login: {login.username}\n  Password: {password}\n"
            )
        )
