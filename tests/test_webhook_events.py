"""The events the dialler, the survey and the back office emit, from their real flows: each
makes one delivery, with the payload a client's system needs, that a live receiver gets."""

import datetime as dt
import json

import pytest

from calls.booking.scheduling import claim_due_scheduled_calls
from calls.models import CallAttempt
from calls.webhooks.status import apply_call_status
from campaigns.models import Question
from hooks.models import WebhookDelivery, WebhookSubscription
from hooks.sending import send_due_deliveries
from hooks.signing import verify_signature
from tests.factories import (
    ContactFactory,
    QuestionFactory,
    RunningCampaignFactory,
    SurveyCampaignFactory,
    book,
)
from tests.webhook_helpers import live_attempt, send_status, signed_post, twiml, voice_url

pytestmark = pytest.mark.django_db
EVENTS = [
    "attempt.finished",
    "survey.completed",
    "contact.opted_out",
    "campaign.completed",
    "booking.missed",
    "booking.completed",
]


@pytest.fixture
def subscription(receiver):
    return WebhookSubscription.objects.create(url=receiver.url, event_types=EVENTS)


def deliveries(event_type):
    return list(WebhookDelivery.objects.filter(event_type=event_type))


def data_of(event_type) -> dict:
    [delivery] = deliveries(event_type)
    assert delivery.payload["type"] == event_type
    assert delivery.payload["id"] == str(delivery.event_id)
    return delivery.payload["data"]


def test_a_signed_status_callback_ending_an_attempt_sends_attempt_finished(
    client, subscription, receiver, now
):
    attempt = live_attempt(now=now, status="in_progress")
    assert send_status(client, attempt, "busy").status_code < 300
    contact = attempt.contact
    data = data_of("attempt.finished")
    assert data["attempt_id"] == str(attempt.pk) and data["contact_id"] == contact.pk
    assert data["phone"] == contact.phone and data["campaign_id"] == attempt.campaign_id
    assert (data["status"], data["outcome"], data["contact_state"]) == (
        "busy",
        "busy",
        "not_reached",
    )
    assert data["ended_at"] and data["dialled_at"] == "2026-11-23T12:00:00Z"

    send_status(client, attempt, "busy")  # Twilio's duplicate: no second event
    assert len(deliveries("attempt.finished")) == 1
    assert send_due_deliveries() == 1
    [got] = receiver.received
    verify_signature(subscription.secret, got.headers["Voicesurvey-Signature"], got.body)
    assert json.loads(got.body)["data"] == data


def test_an_attempt_closed_by_the_dialler_sends_attempt_finished_too(subscription, now):
    attempt = live_attempt(now=now, status="ringing")
    apply_call_status(attempt, status="no-answer", now=now + dt.timedelta(seconds=30))
    assert data_of("attempt.finished")["outcome"] == "no_answer"


def survey_attempt(now, *positions):
    campaign = RunningCampaignFactory()
    for position in positions:
        QuestionFactory(campaign=campaign, position=position, kind=Question.Kind.YES_NO)
    return live_attempt(now=now, campaign=campaign, status="in_progress")


def press(client, root, digits):
    return twiml(signed_post(client, root.find("Gather").get("action"), {"Digits": digits}))


def test_answering_the_last_question_sends_survey_completed_with_the_answers(
    client, subscription, now
):
    attempt = survey_attempt(now, 1, 2)
    root = twiml(signed_post(client, voice_url(attempt), {"CallStatus": "in-progress"}))
    root = press(client, root, "1")
    assert deliveries("survey.completed") == []  # one question still to answer
    press(client, root, "2")
    data = data_of("survey.completed")
    assert data["attempt_id"] == str(attempt.pk) and data["phone"] == attempt.contact.phone
    assert [(a["position"], a["value"], a["raw_input"]) for a in data["answers"]] == [
        (1, "yes", "1"),
        (2, "no", "2"),
    ]


def test_the_opt_out_key_sends_contact_opted_out(client, subscription, now):
    attempt = survey_attempt(now, 1)
    root = twiml(signed_post(client, voice_url(attempt), {"CallStatus": "in-progress"}))
    press(client, root, attempt.campaign.opt_out_key)
    data = data_of("contact.opted_out")
    assert data["source"] == "opt_out" and data["scope_campaign_id"] is None
    assert (data["contact_id"], data["attempt_id"]) == (attempt.contact_id, str(attempt.pk))
    assert data["phone"] == attempt.contact.phone
    assert deliveries("survey.completed") == []


def test_a_number_put_on_the_do_not_call_list_sends_contact_opted_out(api_client, subscription):
    campaign = RunningCampaignFactory()
    response = api_client.post(
        "/api/v1/exclusions/",
        {"phone": "+1 212 555 0199", "campaign": campaign.pk, "reason": "asked by email"},
        format="json",
    )
    assert response.status_code == 201
    data = data_of("contact.opted_out")
    assert (data["phone"], data["scope_campaign_id"], data["source"]) == (
        "+12125550199",
        campaign.pk,
        "api",
    )
    assert data["contact_id"] is None and data["reason"] == "asked by email"


def test_the_tick_completing_a_campaign_sends_campaign_completed(subscription, open_now, run_tick):
    campaign = RunningCampaignFactory(name="Spring survey")
    for state in ("completed", "completed", "refused"):
        ContactFactory(campaign=campaign, state=state)
    assert run_tick(open_now).completed == [campaign.pk]
    data = data_of("campaign.completed")
    assert (data["campaign_id"], data["name"], data["reason"]) == (
        campaign.pk,
        "Spring survey",
        "all_contacts_done",
    )
    assert data["contacts"]["completed"] == 2 and data["contacts"]["refused"] == 1
    assert data["completed_at"] == "2026-11-23T17:00:00Z"
    run_tick(open_now + dt.timedelta(minutes=1))
    assert len(deliveries("campaign.completed")) == 1


def test_a_booking_missed_by_the_tick_sends_booking_missed(subscription, now, run_tick):
    contact = ContactFactory(campaign=SurveyCampaignFactory(), phone="+12125550142")
    call = book(contact, now)
    late = call.next_run_at + dt.timedelta(hours=1)
    run_tick(late)
    data = data_of("booking.missed")
    assert (data["scheduled_call_id"], data["contact_id"], data["status"]) == (
        call.pk,
        contact.pk,
        "missed",
    )
    assert data["occurrence"] == call.next_run_at.isoformat().replace("+00:00", "Z")
    assert data["phone"] == contact.phone and data["next_run_at"] is None


def test_a_booked_call_answered_sends_booking_completed(client, subscription, now):
    contact = ContactFactory(campaign=SurveyCampaignFactory(), phone="+12125550142")
    call = book(contact, now)
    [attempt], _ = claim_due_scheduled_calls(now=call.next_run_at, limit=1)
    CallAttempt.objects.filter(pk=attempt.pk).update(
        status="in_progress", dialled_at=call.next_run_at, provider_call_sid="CA" + "1" * 32
    )
    attempt.refresh_from_db()
    send_status(client, attempt, "completed", CallDuration="40", AnsweredBy="human")
    data = data_of("booking.completed")
    assert (data["scheduled_call_id"], data["attempt_id"]) == (call.pk, str(attempt.pk))
    assert (data["outcome"], data["reached"], data["status"]) == ("incomplete", True, "completed")
    assert data_of("attempt.finished")["scheduled_call_id"] == call.pk
