"""python manage.py reconcile_tallies: count the contacts, correct the contact tallies where they
differ (contacts.tallies), fold them, and say what was corrected. The schedulers do the same
every TALLY_RECONCILE_MINUTES; an operator runs it after a restore or a TRUNCATE."""

from django.core.management.base import BaseCommand

from contacts.tallies import fold_tallies, reconcile_tallies


class Command(BaseCommand):
    help = "Correct the contact tallies from the contacts themselves, and fold them."

    def handle(self, *args, **options):
        drift = reconcile_tallies()
        fold_tallies()
        for (campaign_id, state), n in sorted(drift.items()):
            self.stdout.write(f"campaign {campaign_id} {state}: {n:+d}")
        self.stdout.write(
            f"{len(drift)} tallies corrected." if drift else "The tallies were right."
        )
