"""Who the tick dials: one test per eligibility rule (DESIGN.md §4, issue 3)."""

import datetime as dt

import pytest

from calls.models import CallAttempt
from contacts.models import Contact
from tests.factories import ContactFactory, ExclusionFactory, RunningCampaignFactory

pytestmark = pytest.mark.django_db


def test_pending_and_not_reached_contacts_are_dialled(open_now, run_tick, provider):
    pending = ContactFactory(next_attempt_at=open_now)
    retry = ContactFactory(
        campaign=pending.campaign,
        state="not_reached",
        attempts_count=1,
        last_attempt_number=1,
        next_attempt_at=open_now,
    )
    report = run_tick(open_now)
    assert report.dialled == 2
    assert sorted(provider.dialled_phones) == sorted([pending.phone, retry.phone])


@pytest.mark.parametrize(
    "state", ["in_progress", "completed", "refused", "excluded", "exhausted", "invalid"]
)
def test_contacts_in_other_states_are_never_dialled(open_now, run_tick, provider, state):
    ContactFactory(state=state, next_attempt_at=open_now - dt.timedelta(days=1))
    assert run_tick(open_now).claimed == 0
    assert provider.calls == []


def test_contact_with_every_attempt_used_is_not_dialled(open_now, run_tick, provider):
    campaign = RunningCampaignFactory(max_attempts=3)
    ContactFactory(
        campaign=campaign,
        state="not_reached",
        attempts_count=3,
        last_attempt_number=3,
        next_attempt_at=open_now,
    )
    assert run_tick(open_now).claimed == 0


def test_a_call_granted_by_the_completion_rule_is_dialled(open_now, run_tick, provider):
    campaign = RunningCampaignFactory(max_attempts=3)
    contact = ContactFactory(
        campaign=campaign,
        state="not_reached",
        attempts_count=3,
        last_attempt_number=3,
        completion_attempts_count=1,
        next_attempt_at=open_now,
    )
    assert run_tick(open_now).dialled == 1
    contact.refresh_from_db()
    assert (contact.attempts_count, contact.last_attempt_number) == (4, 4)


def test_contact_is_not_dialled_before_its_next_attempt_time(open_now, run_tick, provider):
    contact = ContactFactory(next_attempt_at=open_now + dt.timedelta(seconds=1))
    assert run_tick(open_now).claimed == 0
    assert run_tick(open_now + dt.timedelta(seconds=1)).dialled == 1
    assert provider.dialled_phones == [contact.phone]


def test_globally_excluded_number_is_never_dialled(open_now, run_tick, provider):
    contact = ContactFactory(next_attempt_at=open_now)
    ExclusionFactory(phone=contact.phone, campaign=None)
    assert run_tick(open_now).claimed == 0
    contact.refresh_from_db()
    assert contact.state == "pending"


def test_exclusion_added_after_import_stops_the_call(open_now, run_tick, provider):
    first = ContactFactory(next_attempt_at=open_now + dt.timedelta(minutes=5))
    second = ContactFactory(campaign=first.campaign, next_attempt_at=open_now)
    assert run_tick(open_now).dialled == 1  # `second`, before anyone asked not to be called

    ExclusionFactory(phone=first.phone, campaign=first.campaign, source="api")
    assert run_tick(open_now + dt.timedelta(minutes=10)).claimed == 0
    assert provider.dialled_phones == [second.phone]


def test_campaign_exclusion_only_stops_that_campaign(open_now, run_tick, provider):
    here = ContactFactory(next_attempt_at=open_now)
    elsewhere = ContactFactory(phone=here.phone, next_attempt_at=open_now)
    ExclusionFactory(phone=here.phone, campaign=here.campaign)
    assert run_tick(open_now).dialled == 1
    assert provider.calls[0]["contact"] == elsewhere.pk


def test_expired_exclusion_no_longer_stops_the_call(open_now, run_tick, provider):
    contact = ContactFactory(next_attempt_at=open_now)
    ExclusionFactory(phone=contact.phone, expires_at=open_now)
    assert run_tick(open_now).dialled == 1


@pytest.mark.parametrize("status", ["draft", "scheduled", "paused", "completed", "cancelled"])
def test_contacts_of_a_campaign_that_is_not_running_are_not_dialled(
    open_now, run_tick, provider, status
):
    campaign = RunningCampaignFactory(status=status, start_at=open_now + dt.timedelta(days=1))
    ContactFactory(campaign=campaign, next_attempt_at=open_now)
    assert run_tick(open_now).claimed == 0


def test_running_campaign_outside_its_dates_is_not_dialled(open_now, run_tick, provider):
    early = RunningCampaignFactory(start_at=open_now + dt.timedelta(minutes=1))
    ContactFactory(campaign=early, next_attempt_at=open_now)
    late = RunningCampaignFactory(
        start_at=open_now - dt.timedelta(days=2), end_at=open_now + dt.timedelta(minutes=1)
    )
    ContactFactory(campaign=late, next_attempt_at=open_now)
    report = run_tick(open_now)
    assert [c["campaign"] for c in provider.calls] == [late.pk]
    assert report.dialled == 1


def test_claim_creates_the_attempt_with_the_campaigns_call_settings(open_now, run_tick, provider):
    campaign = RunningCampaignFactory(caller_id="+12125550100", machine_detection=False)
    contact = ContactFactory(
        campaign=campaign,
        state="not_reached",
        attempts_count=1,
        last_attempt_number=2,  # one earlier attempt was an outage
        next_attempt_at=open_now,
    )
    run_tick(open_now)
    attempt = CallAttempt.objects.get(contact=contact)
    assert attempt.attempt_number == 3
    assert (attempt.caller_id, attempt.machine_detection) == ("+12125550100", False)
    assert attempt.provider == "fake"
    assert attempt.status == CallAttempt.Status.INITIATED
    assert attempt.provider_call_sid and attempt.dialled_at == open_now
    contact.refresh_from_db()
    assert contact.state == Contact.State.IN_PROGRESS
    assert (contact.attempts_count, contact.last_attempt_number) == (2, 3)
    assert contact.last_attempt_at == open_now
    assert provider.calls[0]["urls"].status_callback.endswith(f"/status/{attempt.call_id}/")


def test_a_claimed_contact_is_not_dialled_again_by_the_next_tick(open_now, run_tick, provider):
    ContactFactory(next_attempt_at=open_now)
    run_tick(open_now)
    assert run_tick(open_now + dt.timedelta(seconds=5)).claimed == 0
    assert len(provider.calls) == 1
