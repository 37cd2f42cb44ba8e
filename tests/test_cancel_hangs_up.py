"""Cancelling a campaign or a booked series hangs up its live calls through the provider, with
an event on each attempt."""

import datetime as dt

import pytest
import requests
from django.urls import reverse
from twilio.rest import Client

from calls.booking.scheduling import schedule_call
from calls.dialler.cancel import cancel_booking, cancel_campaign
from calls.models import CallAttempt, CallEvent, ScheduledCall
from calls.telephony import base
from calls.telephony.twilio import TwilioProvider
from calls.webhooks.status import apply_call_status
from campaigns.models import IllegalTransition
from tests.factories import CallAttemptFactory, ContactFactory, SurveyCampaignFactory, us_number
from tests.test_api_campaigns import assert_error
from tests.test_twilio_provider import ACCOUNT, RecordingHttpClient, call_resource, twilio_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def calling(open_now, run_tick, provider):
    """A running campaign with three calls placed by the tick, one of them already over."""
    campaign = SurveyCampaignFactory()
    ContactFactory.create_batch(3, campaign=campaign)
    run_tick(open_now)
    over = CallAttempt.objects.filter(campaign=campaign).first()
    apply_call_status(over, status="busy", now=open_now + dt.timedelta(seconds=20))
    return campaign


def live_sids(campaign):
    return set(
        CallAttempt.objects.filter(
            campaign=campaign, status__in=CallAttempt.LIVE_STATUSES
        ).values_list("provider_call_sid", flat=True)
    )


@pytest.fixture
def the_provider_of_fake_calls(provider, monkeypatch):
    """The web request finds the attempts' provider ("fake") by name, as it finds Twilio."""
    monkeypatch.setattr(base, "_instances", {"fake": provider})
    return provider


def test_cancelling_a_campaign_hangs_up_each_live_call_with_an_event(
    calling, provider, open_now, admin_user
):
    live = live_sids(calling)
    assert len(live) == 2
    later = open_now + dt.timedelta(minutes=1)
    hang_ups = cancel_campaign(calling, now=later, by=admin_user, provider=provider)
    assert hang_ups.hung_up == 2 and hang_ups.failed == 0
    assert set(provider.cancelled) == live
    calling.refresh_from_db()
    assert calling.status == "cancelled"
    events = CallEvent.objects.filter(kind="hung_up")
    assert {e.attempt.provider_call_sid for e in events} == live
    assert all(e.actor == "boss" and e.at == later for e in events)
    assert "cancelled by boss" in events[0].message
    # The call that was over is left alone.
    assert not CallEvent.objects.filter(attempt__status="busy", kind="hung_up").exists()


def test_a_campaign_already_over_is_not_cancelled_again_and_nothing_is_hung_up(
    calling, provider, open_now
):
    cancel_campaign(calling, now=open_now, provider=provider)
    with pytest.raises(IllegalTransition):
        cancel_campaign(calling, now=open_now, provider=provider)
    assert len(provider.cancelled) == 2


def test_cancelling_a_campaign_cancels_its_booked_calls(provider, open_now):
    campaign = SurveyCampaignFactory()
    contact = ContactFactory(campaign=campaign, phone=us_number(4100))
    call = schedule_call(
        contact=contact, run_at=open_now + dt.timedelta(hours=1), timezone="UTC", now=open_now
    )
    cancel_campaign(campaign, now=open_now, provider=provider)
    call.refresh_from_db()
    assert call.status == "cancelled" and call.next_run_at is None
    assert "was cancelled" in call.events.get(kind="cancelled").message


def test_the_api_cancel_hangs_up_the_campaigns_live_calls(
    api_client, calling, the_provider_of_fake_calls
):
    live = live_sids(calling)
    response = api_client.post(f"/api/v1/campaigns/{calling.pk}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert set(the_provider_of_fake_calls.cancelled) == live
    assert CallEvent.objects.filter(kind="hung_up").count() == 2
    again = api_client.post(f"/api/v1/campaigns/{calling.pk}/cancel/")
    assert_error(again, 409, "illegal_transition")
    assert len(the_provider_of_fake_calls.cancelled) == 2


def test_the_admin_cancel_hangs_up_the_campaigns_live_calls(
    admin_client, calling, the_provider_of_fake_calls
):
    url = reverse("admin:campaigns_campaign_changelist")
    done = admin_client.post(
        url,
        {"action": "cancel_campaigns", "_selected_action": [calling.pk], "confirmed": "yes"},
        follow=True,
    )
    assert "2 live call(s) hung up" in done.content.decode()
    assert set(the_provider_of_fake_calls.cancelled) == live_sids(calling)


@pytest.fixture
def booked_and_ringing(open_now, run_tick):
    contact = ContactFactory(campaign=SurveyCampaignFactory(), phone=us_number(4200))
    ContactFactory(campaign=contact.campaign, phone=us_number(4201))  # rung by the campaign
    call = schedule_call(
        contact=contact,
        run_at=open_now,
        timezone="UTC",
        now=open_now - dt.timedelta(hours=1),
        rrule="FREQ=DAILY;COUNT=3",
    )
    run_tick(open_now)
    call.refresh_from_db()
    assert call.status == "running"
    return call


def test_cancelling_a_series_hangs_up_its_call_in_progress_only(
    booked_and_ringing, provider, open_now
):
    mine = booked_and_ringing.attempts.get()
    cancel_booking(booked_and_ringing, now=open_now, provider=provider)
    assert provider.cancelled == [mine.provider_call_sid]
    assert CallEvent.objects.get(kind="hung_up").attempt == mine
    booked_and_ringing.refresh_from_db()
    assert booked_and_ringing.status == "cancelled"


@pytest.mark.parametrize("how", ["delete", "cancel"])
def test_the_api_hangs_up_a_cancelled_series(
    api_client, booked_and_ringing, the_provider_of_fake_calls, how
):
    url = f"/api/v1/scheduled-calls/{booked_and_ringing.pk}/"
    if how == "delete":
        assert api_client.delete(url).status_code == 204
    else:
        assert api_client.post(f"{url}cancel/", {}, format="json").status_code == 200
    assert the_provider_of_fake_calls.cancelled == [
        booked_and_ringing.attempts.get().provider_call_sid
    ]


def test_cancelling_only_the_next_occurrence_hangs_up_nothing(booked_and_ringing, provider, now):
    booked_and_ringing.status = ScheduledCall.Status.SCHEDULED
    booked_and_ringing.save()
    cancel_booking(booked_and_ringing, scope="occurrence", now=now, provider=provider)
    assert provider.cancelled == []


def test_the_admin_hangs_up_a_cancelled_series(
    admin_client, booked_and_ringing, the_provider_of_fake_calls
):
    url = reverse("admin:calls_scheduledcall_changelist")
    admin_client.post(
        url,
        {
            "action": "cancel_series",
            "_selected_action": [booked_and_ringing.pk],
            "confirmed": "yes",
        },
    )
    assert len(the_provider_of_fake_calls.cancelled) == 1


# --- through the Twilio adapter, its HTTP replaced ---------------------------------------------


def twilio_calls(campaign, *statuses, now):
    """Live Twilio calls of `campaign`, placed one second apart (hung up in that order)."""
    return [
        CallAttemptFactory(
            contact=ContactFactory(campaign=campaign, phone=us_number(4300 + n)),
            campaign=campaign,
            provider="twilio",
            provider_call_sid=f"CA{n:032d}",
            status=status,
            attempt_number=1,
            created_at=now + dt.timedelta(seconds=n),
        )
        for n, status in enumerate(statuses)
    ]


def test_cancel_asks_twilio_to_end_each_live_call(monkeypatch, now):
    campaign = SurveyCampaignFactory()
    answered, ringing = twilio_calls(campaign, "in_progress", "ringing", now=now)
    http = RecordingHttpClient(
        (200, call_resource(status="in-progress", sid=answered.provider_call_sid)),
        (200, call_resource(status="completed", sid=answered.provider_call_sid)),
        (200, call_resource(status="ringing", sid=ringing.provider_call_sid)),
        (200, call_resource(status="canceled", sid=ringing.provider_call_sid)),
    )
    twilio = TwilioProvider(client=Client(ACCOUNT, "auth-token", http_client=http))
    monkeypatch.setattr(base, "_instances", {"twilio": twilio})
    hang_ups = cancel_campaign(campaign, now=now)
    assert hang_ups.hung_up == 2
    posts = [r for r in http.requests if r["method"] == "POST"]
    assert {(r["uri"].rsplit("/", 1)[-1], r["data"]["Status"]) for r in posts} == {
        (f"{answered.provider_call_sid}.json", "completed"),
        (f"{ringing.provider_call_sid}.json", "canceled"),
    }
    assert CallEvent.objects.filter(kind="hung_up", attempt__provider="twilio").count() == 2


def test_a_hang_up_twilio_refuses_is_an_event_and_the_campaign_is_still_cancelled(monkeypatch, now):
    campaign = SurveyCampaignFactory()
    down, up = twilio_calls(campaign, "in_progress", "ringing", now=now)
    http = RecordingHttpClient(
        requests.exceptions.ConnectionError("Connection refused"),
        (200, call_resource(status="ringing", sid=up.provider_call_sid)),
        (200, call_resource(status="canceled", sid=up.provider_call_sid)),
    )
    twilio = TwilioProvider(client=Client(ACCOUNT, "auth-token", http_client=http))
    monkeypatch.setattr(base, "_instances", {"twilio": twilio})
    hang_ups = cancel_campaign(campaign, now=now)
    assert (hang_ups.hung_up, hang_ups.failed) == (1, 1)
    campaign.refresh_from_db()
    assert campaign.status == "cancelled"
    failed = CallEvent.objects.get(kind="hang_up_failed")
    assert failed.attempt == down and "Twilio unreachable" in failed.message
    assert CallEvent.objects.get(kind="hung_up").attempt == up


def test_a_hang_up_of_a_call_twilio_no_longer_knows_is_an_event(monkeypatch, now):
    campaign = SurveyCampaignFactory()
    (gone,) = twilio_calls(campaign, "ringing", now=now)
    http = RecordingHttpClient((404, twilio_error(20404, "The requested resource was not found")))
    twilio = TwilioProvider(client=Client(ACCOUNT, "auth-token", http_client=http))
    monkeypatch.setattr(base, "_instances", {"twilio": twilio})
    assert cancel_campaign(campaign, now=now).failed == 1
    assert CallEvent.objects.get(kind="hang_up_failed").attempt == gone
