"""The contact tallies (contacts.tallies): the table of deltas, the triggers that write them,
and the tallies of the contacts already there.

The fill runs after the triggers are made, in the same transaction: on PostgreSQL, CREATE
TRIGGER waits for the writers in flight on the contacts table and holds theirs back until the
migration commits, so every contact is counted once, by the fill or by a trigger."""

import django.db.models.deletion
from django.db import migrations, models

from contacts.tallies import POSTGRES_DROP, POSTGRES_TRIGGERS, SQLITE_DROP, SQLITE_TRIGGERS

FILL_SQL = """
    INSERT INTO contacts_statetally (campaign_id, state, n)
    SELECT campaign_id, state, COUNT(*) FROM contacts_contact GROUP BY campaign_id, state
"""


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = {"postgresql": POSTGRES_TRIGGERS, "sqlite": SQLITE_TRIGGERS}[vendor]
    for statement in [*statements, FILL_SQL]:
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP}[vendor]:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_campaign_ad_hoc_key"),
        ("contacts", "0006_labels"),
    ]

    operations = [
        migrations.CreateModel(
            name="StateTally",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("in_progress", "In progress"),
                            ("not_reached", "Not reached (will retry)"),
                            ("completed", "Completed"),
                            ("refused", "Refused (opted out)"),
                            ("excluded", "Excluded (do-not-call)"),
                            ("exhausted", "Exhausted (max attempts)"),
                            ("invalid", "Invalid number"),
                        ],
                        max_length=16,
                    ),
                ),
                ("n", models.BigIntegerField()),
                (
                    "campaign",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="tallies",
                        to="campaigns.campaign",
                    ),
                ),
            ],
            options={
                "verbose_name": "contact tally",
                "verbose_name_plural": "contact tallies",
                "indexes": [
                    models.Index(fields=["campaign", "state"], name="tally_campaign_state_idx")
                ],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
