"""Recovery: lost attempts are closed and their contacts released; finished ones are not."""

import datetime as dt

import pytest
from django.db.models import F

from calls.dialler.claim import claim_batch
from calls.dialler.recovery import close_lost_attempt, find_lost_attempts, recover_lost_attempts
from calls.models import CallAttempt, CallEvent
from calls.outcomes import NOT_A_CALL_RETRY, settle_contact
from tests.factories import CallAttemptFactory, ContactFactory

pytestmark = pytest.mark.django_db
S = CallAttempt.Status


def age(seconds):
    """Move every attempt's timestamps back, as if `seconds` had passed (no sleeping)."""
    back = dt.timedelta(seconds=seconds)
    CallAttempt.objects.update(created_at=F("created_at") - back)


def live_attempt(now, status, *, dialled=True, **fields):
    contact = ContactFactory(
        state="in_progress",
        attempts_count=1 if dialled else 0,
        last_attempt_number=1,
    )
    return CallAttemptFactory(
        contact=contact,
        attempt_number=1,
        status=status,
        created_at=now,
        dialled_at=now if dialled else None,
        **fields,
    )


def test_claim_never_dialled_is_released_after_the_lease(open_now, settings):
    # The dialler died between claim and dial: attempts queued, contacts in progress.
    contacts = ContactFactory.create_batch(3, next_attempt_at=open_now)
    claim = claim_batch(now=open_now, provider_name="fake", budget=10)
    assert len(claim.attempts) == 3

    assert recover_lost_attempts(now=open_now) == 0  # still inside the lease
    age(settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    assert recover_lost_attempts(now=open_now) == 3
    for contact in contacts:
        contact.refresh_from_db()
        assert (contact.state, contact.attempts_count) == ("pending", 0)
        assert contact.next_attempt_at == open_now + NOT_A_CALL_RETRY
    assert set(CallAttempt.objects.values_list("status", "error_code")) == {("failed", "lost")}
    assert CallEvent.objects.filter(kind="lost").count() == 3


def test_initiated_call_never_called_back_is_lost_and_counts_as_a_try(open_now, settings):
    attempt = live_attempt(open_now, S.INITIATED)
    age(settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    assert recover_lost_attempts(now=open_now) == 1
    attempt.contact.refresh_from_db()
    assert attempt.contact.state == "not_reached"
    assert attempt.contact.next_attempt_at == open_now + attempt.campaign.retry_delay("failed")


def test_call_on_the_line_is_left_alone_until_the_longest_call(open_now, settings):
    attempt = live_attempt(open_now, S.IN_PROGRESS)
    age(settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    assert recover_lost_attempts(now=open_now) == 0
    age(settings.DIALLER_MAX_CALL_SECONDS)
    assert recover_lost_attempts(now=open_now) == 1
    attempt.refresh_from_db()
    assert (attempt.status, attempt.error_code, attempt.ended_at) == ("failed", "lost", open_now)


def test_finished_attempts_are_never_rescued(open_now, settings):
    live_attempt(open_now, S.COMPLETED, ended_at=open_now)
    age(settings.DIALLER_MAX_CALL_SECONDS + 1)
    assert recover_lost_attempts(now=open_now) == 0


def test_rescue_does_not_overwrite_an_attempt_finished_after_it_was_found(open_now, settings):
    attempt = live_attempt(open_now, S.RINGING)
    age(settings.DIALLER_MAX_CALL_SECONDS + 1)
    assert find_lost_attempts(now=open_now) == [attempt.pk]

    # The completed callback lands between recovery's read and its write.
    finished = CallAttempt.objects.filter(pk=attempt.pk, status__in=CallAttempt.LIVE_STATUSES)
    assert (
        finished.update(
            status=S.COMPLETED, answered_by="human", survey_finished=True, ended_at=open_now
        )
        == 1
    )
    attempt.refresh_from_db()
    assert settle_contact(attempt, now=open_now) == "completed"

    assert close_lost_attempt(attempt.pk, now=open_now) is False
    attempt.refresh_from_db()
    assert (attempt.status, attempt.error_code) == ("completed", "")
    attempt.contact.refresh_from_db()
    assert attempt.contact.state == "completed"


def test_rescue_does_not_close_an_attempt_that_moved_on_to_a_young_stage(open_now, settings):
    attempt = live_attempt(open_now, S.INITIATED)
    age(settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    found = find_lost_attempts(now=open_now)
    CallAttempt.objects.filter(pk=attempt.pk).update(status=S.RINGING)  # callback in between
    assert close_lost_attempt(found[0], now=open_now) is False


def test_late_callback_after_a_rescue_does_not_move_a_contact_on_a_newer_attempt(
    open_now, run_tick, provider, settings
):
    contact = ContactFactory(next_attempt_at=open_now)
    claim_batch(now=open_now, provider_name="fake", budget=10)  # crashed before dialling
    age(settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    later = open_now + NOT_A_CALL_RETRY
    report = run_tick(later)
    assert report.recovered == 1 and report.claimed == 0  # released, due a minute later
    assert run_tick(later + NOT_A_CALL_RETRY).dialled == 1
    contact.refresh_from_db()
    assert (contact.state, contact.last_attempt_number) == ("in_progress", 2)

    # The first attempt's completed callback finally arrives: recorded on its attempt only.
    first = CallAttempt.objects.get(contact=contact, attempt_number=1)
    first.status, first.answered_by, first.survey_finished = S.COMPLETED, "human", True
    first.error_code = ""
    assert settle_contact(first, now=later) is None
    contact.refresh_from_db()
    assert (contact.state, contact.last_attempt_number) == ("in_progress", 2)
