"""Attempts are now counted on their contact when claimed, not when the provider accepts them
(calls.claiming, calls.outcomes). A contact in progress on an attempt the dial step has not
written back yet was claimed under the old rule and is not counted: count it, so that the new
rule's give-back (for a call the provider never took) cannot take one it never had."""

from django.db import migrations
from django.db.models import Exists, F, OuterRef


def count_claimed_attempts(apps, schema_editor):
    Contact = apps.get_model("contacts", "Contact")
    CallAttempt = apps.get_model("calls", "CallAttempt")
    undialled = CallAttempt.objects.filter(
        contact=OuterRef("pk"),
        attempt_number=OuterRef("last_attempt_number"),
        dialled_at__isnull=True,
    )
    Contact.objects.filter(state="in_progress").filter(Exists(undialled)).update(
        attempts_count=F("attempts_count") + 1
    )


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0006_event_scheduled_call_partial_idx"),
        ("contacts", "0004_drop_dialable_idx"),
    ]

    operations = [migrations.RunPython(count_claimed_attempts, migrations.RunPython.noop)]
