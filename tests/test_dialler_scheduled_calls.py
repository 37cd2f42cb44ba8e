"""Booked calls go through the same tick, caps and webhooks as campaign calls."""

import datetime as dt

import pytest

from calls.booking.scheduling import schedule_call
from calls.models import CallAttempt, ScheduledCall
from calls.webhooks.status import apply_call_status
from tests.factories import ContactFactory, SurveyCampaignFactory, us_number


@pytest.fixture
def campaign():
    return SurveyCampaignFactory(max_concurrent_calls=5)


def booked(campaign, at, now, **kw):
    contact = ContactFactory(
        campaign=campaign, phone=us_number(4000 + ScheduledCall.objects.count())
    )
    return schedule_call(contact=contact, run_at=at, timezone="UTC", now=now, **kw)


@pytest.mark.django_db
def test_booked_contact_waits_for_its_time_then_the_tick_dials_it(
    campaign, open_now, run_tick, provider
):
    call = booked(campaign, open_now + dt.timedelta(hours=1), open_now - dt.timedelta(hours=1))
    report = run_tick(open_now)
    assert report.dialled == 0 and provider.calls == []  # due for the campaign, but booked later
    report = run_tick(call.next_run_at)
    assert provider.dialled_phones == [call.contact.phone]
    attempt = CallAttempt.objects.get()
    assert attempt.scheduled_call_id == call.pk and attempt.status == "initiated"
    call.refresh_from_db()
    assert call.status == "running"


@pytest.mark.django_db
def test_booked_calls_count_against_the_campaign_cap(campaign, open_now, run_tick, provider):
    campaign.max_concurrent_calls = 1
    campaign.save()
    call = booked(campaign, open_now, open_now - dt.timedelta(hours=1))
    ContactFactory.create_batch(3, campaign=campaign)
    run_tick(open_now)
    assert provider.dialled_phones == [call.contact.phone]
    assert CallAttempt.objects.filter(status__in=CallAttempt.LIVE_STATUSES).count() == 1


@pytest.mark.django_db
def test_unanswered_booked_call_is_retried_through_the_webhook_path(
    campaign, open_now, run_tick, provider
):
    call = booked(
        campaign, open_now, open_now - dt.timedelta(hours=1), max_retries=1, retry_delay_minutes=5
    )
    run_tick(open_now)
    attempt = CallAttempt.objects.get()
    apply_call_status(attempt, status="no-answer", now=open_now + dt.timedelta(seconds=40))
    call.refresh_from_db()
    assert call.status == "scheduled"
    assert call.next_run_at == open_now + dt.timedelta(seconds=40, minutes=5)
    attempt.contact.refresh_from_db()
    assert attempt.contact.state == "pending"  # the campaign's own attempts are not spent
    run_tick(call.next_run_at)
    assert len(provider.calls) == 2
    second = CallAttempt.objects.get(attempt_number=2)
    apply_call_status(second, status="busy", now=call.next_run_at + dt.timedelta(seconds=20))
    call.refresh_from_db()
    assert call.status == "failed"


@pytest.mark.django_db
def test_a_lost_booked_call_is_released_by_recovery(
    campaign, open_now, run_tick, provider, settings
):
    call = booked(campaign, open_now, open_now - dt.timedelta(hours=1))
    run_tick(open_now)
    later = open_now + dt.timedelta(seconds=settings.DIALLER_DIAL_LEASE_SECONDS + 60)
    report = run_tick(later)
    assert report.recovered == 1
    call.refresh_from_db()
    assert call.status == "scheduled" and call.retries_done == 1


@pytest.mark.django_db
def test_booked_call_that_spends_the_last_attempt_leaves_the_contact_exhausted(
    campaign, open_now, run_tick
):
    call = booked(campaign, open_now, open_now - dt.timedelta(hours=1), max_retries=0)
    type(call.contact).objects.filter(pk=call.contact_id).update(
        state="not_reached", attempts_count=2, last_attempt_number=2
    )
    run_tick(open_now)
    attempt = CallAttempt.objects.get()
    apply_call_status(attempt, status="busy", now=open_now + dt.timedelta(seconds=30))
    attempt.contact.refresh_from_db()
    assert (attempt.contact.attempts_count, attempt.contact.state) == (3, "exhausted")
    call.refresh_from_db()
    assert call.status == "failed"
