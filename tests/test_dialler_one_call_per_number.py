"""One person, one call at a time: a number in several campaigns (or booked while a campaign
calls it) is never rung by two of them at once; the other waits until the call ends."""

import datetime as dt

import pytest

from calls.booking.scheduling import schedule_call
from calls.models import CallAttempt
from calls.webhooks.status import apply_call_status
from tests.factories import ContactFactory, RunningCampaignFactory, SurveyCampaignFactory

pytestmark = pytest.mark.django_db

SAME = "+12125550160"  # New York


def later(now, seconds):
    return now + dt.timedelta(seconds=seconds)


def test_a_number_in_two_campaigns_is_called_by_one_of_them_at_a_time(open_now, run_tick, provider):
    first, second = RunningCampaignFactory(), RunningCampaignFactory()
    ContactFactory(campaign=first, phone=SAME, next_attempt_at=open_now)
    ContactFactory(campaign=second, phone=SAME, next_attempt_at=open_now)
    other = ContactFactory(campaign=second, phone="+12125550161", next_attempt_at=open_now)

    run_tick(open_now)  # both due in the same tick: one call to the number
    assert sorted(provider.dialled_phones) == sorted([SAME, other.phone])

    run_tick(later(open_now, 30))  # while that call is live, the other campaign waits
    assert provider.dialled_phones.count(SAME) == 1

    live = CallAttempt.objects.get(contact__phone=SAME)
    apply_call_status(live, status="completed", now=later(open_now, 60))
    run_tick(later(open_now, 61))  # the call ended: now the other campaign's turn
    assert provider.dialled_phones.count(SAME) == 2
    assert set(
        CallAttempt.objects.filter(contact__phone=SAME).values_list("campaign", flat=True)
    ) == {
        first.pk,
        second.pk,
    }


def test_a_booked_call_waits_while_its_number_is_on_a_campaign_call(open_now, run_tick, provider):
    ContactFactory(campaign=RunningCampaignFactory(), phone=SAME, next_attempt_at=open_now)
    run_tick(open_now)
    assert provider.dialled_phones == [SAME]

    booked = ContactFactory(campaign=SurveyCampaignFactory(), phone=SAME)
    call = schedule_call(contact=booked, run_at=later(open_now, 10), timezone="UTC", now=open_now)
    report = run_tick(later(open_now, 10))
    assert provider.dialled_phones == [SAME]  # not rung again on top of the live call
    assert report.skipped["booked_contact_busy"] == 1

    live = CallAttempt.objects.get()
    apply_call_status(live, status="busy", now=later(open_now, 20))
    run_tick(later(open_now, 21))  # within the booking's grace: placed now
    assert provider.dialled_phones == [SAME, SAME]
    assert CallAttempt.objects.get(scheduled_call=call).contact_id == booked.pk
