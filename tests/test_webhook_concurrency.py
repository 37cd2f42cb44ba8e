"""Duplicated callbacks arriving at the same moment, on real threads and connections."""

import datetime as dt
import threading

import pytest
from django.db import connections

from calls.models import CallAttempt, CallEvent
from calls.webhooks.status import apply_call_status, record_call_status
from calls.webhooks.survey import opt_out
from contacts.models import Exclusion
from tests.webhook_helpers import live_attempt


def run_together(n, work):
    """Run work() on n threads released at once; return their results or exceptions."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def target(i):
        try:
            barrier.wait(timeout=10)
            results[i] = work()
        except Exception as exc:  # reported to the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_racing_final_callbacks_settle_the_contact_once(needs_postgres):
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    attempt = live_attempt(now=now, status="in_progress", answered_by="human")

    def deliver():
        fresh = CallAttempt.objects.get(pk=attempt.pk)
        return apply_call_status(fresh, status="completed", now=now, duration=30)

    results = run_together(6, deliver)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.moved for r in results) == 1
    attempt.contact.refresh_from_db()
    assert attempt.contact.state == "not_reached"
    assert attempt.contact.completion_attempts_count == 1  # settled exactly once
    assert CallEvent.objects.filter(attempt=attempt, kind="status").count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_racing_final_webhooks_settle_the_contact_once(needs_postgres):
    # The webhook's own path: by call id, logging and moving in one statement.
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    attempt = live_attempt(now=now, status="in_progress", answered_by="human")

    def deliver():
        event = CallEvent(kind="webhook", message="status_callback completed", at=now)
        return record_call_status(
            attempt.call_id, event=event, status="completed", now=now, duration=30
        )

    results = run_together(6, deliver)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.moved for r in results) == 1
    attempt.refresh_from_db()
    assert (attempt.status, attempt.duration) == ("completed", 30)
    attempt.contact.refresh_from_db()
    assert attempt.contact.state == "not_reached"
    assert attempt.contact.completion_attempts_count == 1  # settled exactly once
    assert CallEvent.objects.filter(attempt=attempt, kind="status").count() == 1
    assert CallEvent.objects.filter(attempt=attempt, kind="webhook").count() == 6


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_racing_opt_outs_make_one_exclusion(needs_postgres):
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    attempt = live_attempt(now=now, status="in_progress")

    def press_nine():
        return opt_out(
            CallAttempt.objects.select_related("contact", "campaign").get(pk=attempt.pk), now=now
        )

    results = run_together(4, press_nine)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Exclusion.objects.filter(phone=attempt.contact.phone).count() == 1
