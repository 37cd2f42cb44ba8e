import datetime as dt
import threading

import pytest
from django.db import connection, connections

from calls.booking.scheduling import claim_due_scheduled_calls
from calls.models import CallAttempt, ScheduledCall
from tests.factories import ContactFactory, RunningCampaignFactory, us_number

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks with SKIP LOCKED need PostgreSQL"
    ),
]


@pytest.mark.django_db(transaction=True)
def test_each_occurrence_is_dialled_once_with_several_ticks_at_once():
    now = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)  # 11:00 in New York
    campaign = RunningCampaignFactory(max_concurrent_calls=1000)
    calls = []
    for n in range(200):
        contact = ContactFactory(campaign=campaign, phone=us_number(1000 + n))
        calls.append(ScheduledCall(contact=contact, run_at=now, next_run_at=now, timezone="UTC"))
    ScheduledCall.objects.bulk_create(calls)
    barrier = threading.Barrier(6)
    claimed, errors = [], []

    def tick():
        try:
            barrier.wait()
            for _ in range(10):
                attempts, _ = claim_due_scheduled_calls(now=now, limit=15)
                claimed.extend(a.scheduled_call_id for a in attempts)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tick) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(claimed) == len(set(claimed)) == 200
    assert CallAttempt.objects.count() == 200
    assert ScheduledCall.objects.filter(status="running").count() == 200
