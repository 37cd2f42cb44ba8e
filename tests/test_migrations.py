"""Data migrations: what an upgrade does to rows already in the database."""

import datetime as dt
import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BEFORE_COUNTING_AT_CLAIM = [
    ("calls", "0006_event_scheduled_call_partial_idx"),
    ("contacts", "0004_drop_dialable_idx"),
    ("campaigns", "0001_initial"),
]
COUNTING_AT_CLAIM = [("calls", "0007_count_claimed_attempts")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def latest_schema_afterwards():
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_a_call_claimed_before_the_upgrade_is_counted_on_its_contact(latest_schema_afterwards):
    apps = migrate(BEFORE_COUNTING_AT_CLAIM)
    Campaign = apps.get_model("campaigns", "Campaign")
    Contact = apps.get_model("contacts", "Contact")
    CallAttempt = apps.get_model("calls", "CallAttempt")
    now = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
    campaign = Campaign.objects.create(name="Upgrade")

    def contact(phone, state, *, attempts_count, last_attempt_number, dialled):
        row = Contact.objects.create(
            campaign=campaign,
            phone=phone,
            timezone_key="America/New_York",
            state=state,
            attempts_count=attempts_count,
            last_attempt_number=last_attempt_number,
        )
        if last_attempt_number:
            CallAttempt.objects.create(
                contact=row,
                campaign=campaign,
                attempt_number=last_attempt_number,
                created_at=now,
                dialled_at=now if dialled else None,
            )
        return row.pk

    # Claimed, not yet written back: the old rule had not counted it.
    waiting = contact(
        "+12125550101", "in_progress", attempts_count=1, last_attempt_number=2, dialled=False
    )
    # Written back: already counted by the old rule.
    dialled = contact(
        "+12125550102", "in_progress", attempts_count=2, last_attempt_number=2, dialled=True
    )
    # Not in progress: nothing to do.
    settled = contact(
        "+12125550103", "not_reached", attempts_count=1, last_attempt_number=1, dialled=True
    )

    apps = migrate(COUNTING_AT_CLAIM)
    counts = dict(apps.get_model("contacts", "Contact").objects.values_list("pk", "attempts_count"))
    assert counts == {waiting: 2, dialled: 2, settled: 1}


def test_the_dialler_schedule_follows_the_tick_to_its_new_module(latest_schema_afterwards):
    """A database set up before the move keeps a qcluster ticking: its schedule is repointed."""
    apps = migrate([("calls", "0008_shared_dial_pace")])
    # As 0004 left it (a transactional test before this one may have flushed the row).
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name="dialler tick",
        defaults={"func": "calls.schedules.run_dialler_for_a_minute", "schedule_type": "I"},
    )
    apps = migrate([("calls", "0009_dialler_schedule_moved")])
    func = apps.get_model("django_q", "Schedule").objects.get(name="dialler tick").func
    module, name = func.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))
