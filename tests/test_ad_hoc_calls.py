"""An API client books a one-off call to a number with a message or a survey, without building
a campaign: POST /api/v1/scheduled-calls/ad-hoc/."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from calls.models import CallAttempt, ScheduledCall
from calls.webhooks.status import apply_call_status
from calls.webhooks.survey import start_survey
from campaigns.models import Campaign
from contacts.models import Contact
from tests.factories import ExclusionFactory, SurveyCampaignFactory
from tests.test_api_campaigns import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/scheduled-calls/ad-hoc/"
PHONE = "+12125550142"  # New York


@pytest.fixture(autouse=True)
def frozen(open_now):
    """The API reads the clock: Monday 2026-11-23 17:00 UTC, noon in New York."""
    with time_machine.travel(open_now, tick=False):
        yield


def book(client, **body):
    return client.post(URL, {"phone": PHONE, **body}, format="json")


def test_a_message_call_is_booked_for_now_and_plays_the_message_then_hangs_up(
    api_client, open_now, run_tick, provider
):
    response = book(api_client, message="Your parcel arrives tomorrow between 9 and 11.")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "scheduled" and body["next_run_at"] == "2026-11-23T17:00:00Z"
    campaign = Campaign.objects.get(pk=body["campaign"])
    assert campaign.is_ad_hoc and campaign.status == "running"
    assert not campaign.questions.exists()

    run_tick(open_now)
    assert provider.dialled_phones == [PHONE]
    attempt = CallAttempt.objects.get()
    assert attempt.scheduled_call_id == body["id"]
    twiml = start_survey(attempt, answered_by="human", now=open_now + dt.timedelta(seconds=20))
    assert "Your parcel arrives tomorrow between 9 and 11." in twiml
    assert "<Gather" not in twiml and twiml.rstrip().endswith("<Hangup /></Response>")


def test_a_survey_call_asks_its_questions(api_client, open_now, run_tick):
    questions = [
        {"prompt": "Was the delivery on time? 1 for yes, 2 for no.", "kind": "yes_no"},
        {"prompt": "Rate us from 1 to 5.", "kind": "scale", "min_value": 1, "max_value": 5},
    ]
    response = book(api_client, message="Hello from Acme.", questions=questions)
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(pk=response.json()["campaign"])
    assert [(q.position, q.kind) for q in campaign.questions.all()] == [
        (1, "yes_no"),
        (2, "scale"),
    ]
    run_tick(open_now)
    twiml = start_survey(CallAttempt.objects.get(), answered_by="human", now=open_now)
    assert "Hello from Acme." in twiml and "Was the delivery on time?" in twiml
    assert "<Gather" in twiml


def test_a_later_call_in_the_callees_zone(api_client):
    response = book(
        api_client, message="Reminder.", at="2026-11-24T10:30:00", timezone="America/New_York"
    )
    assert response.status_code == 201, response.content
    assert response.json()["next_run_at"] == "2026-11-24T15:30:00Z"


def test_the_same_message_reuses_its_campaign_and_another_gets_its_own(api_client):
    first = book(api_client, message="Reminder: your appointment is tomorrow.").json()
    second = api_client.post(
        URL,
        {"phone": "+12125550143", "message": "Reminder: your appointment is tomorrow."},
        format="json",
    ).json()
    other = book(api_client, message="Something else.").json()
    assert first["campaign"] == second["campaign"] != other["campaign"]
    assert Campaign.objects.filter(ad_hoc_key__gt="").count() == 2
    # Booked again, the same number reuses its contact.
    again = book(
        api_client, message="Reminder: your appointment is tomorrow.", at="2026-11-24T17:00:00Z"
    )
    assert again.status_code == 201, again.content
    assert Contact.objects.filter(phone=PHONE).count() == 2  # one per campaign


@pytest.mark.parametrize("scope", ["global", "campaign"])
def test_a_number_on_the_do_not_call_list_is_refused(api_client, scope):
    if scope == "campaign":
        campaign_id = book(api_client, message="Hi.").json()["campaign"]
        ScheduledCall.objects.all().delete()
        ExclusionFactory(phone=PHONE, campaign_id=campaign_id)
    else:
        ExclusionFactory(phone=PHONE)
    error = assert_error(book(api_client, message="Hi."), 409, "do_not_call")
    assert "do-not-call list" in error["message"] and PHONE not in error["message"]
    assert not ScheduledCall.objects.exists()
    if scope == "global":
        assert not Campaign.objects.exists()  # nothing half-made


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"phone": "+999 123"}, "phone"),
        ({"phone": ""}, "phone"),
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({"questions": []}, "message"),
        ({"questions": [{"prompt": "Rate us", "kind": "scale"}]}, "questions"),
        ({"questions": [{"kind": "yes_no"}]}, "questions"),
        ({"questions": "yes"}, "questions"),
        ({"at": "2026-11-24T23:30:00", "timezone": "America/New_York"}, "at"),  # legal window
        ({"at": "2026-11-20T12:00:00Z"}, "at"),  # in the past
        ({"at": "soon"}, "at"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
    ],
)
def test_bad_ad_hoc_calls_are_400_naming_the_field(api_client, body, field):
    request = {"message": "Hello.", **body}
    if "questions" in body and "message" not in body:
        request.pop("message")
    error = assert_error(api_client.post(URL, {"phone": PHONE, **request}, format="json"), 400)
    assert field in error["details"], error
    assert not ScheduledCall.objects.exists() and not Campaign.objects.exists()


def test_booking_ad_hoc_calls_needs_the_permissions_to_make_them(viewer_client, anon_client):
    assert_error(viewer_client.post(URL, {"phone": PHONE, "message": "Hi."}), 403)
    assert_error(anon_client.post(URL, {"phone": PHONE, "message": "Hi."}), 401)


def test_the_ad_hoc_campaign_places_only_its_bookings(api_client, open_now, run_tick, provider):
    """A booking that did not reach the person is not redialled by the campaign's own retry
    rules, and the campaign does not complete when its contacts are done."""
    body = book(api_client, message="Hi.", max_retries=0).json()
    run_tick(open_now)
    attempt = CallAttempt.objects.get()
    apply_call_status(attempt, status="no-answer", now=open_now + dt.timedelta(seconds=40))
    assert ScheduledCall.objects.get(pk=body["id"]).status == "failed"
    assert Contact.objects.get(phone=PHONE).state == "pending"
    for hours in (1, 2, 5):
        run_tick(open_now + dt.timedelta(hours=hours))
    assert provider.dialled_phones == [PHONE]
    campaign = Campaign.objects.get(pk=body["campaign"])
    assert campaign.status == "running"
    listed = api_client.get("/api/v1/campaigns/", {"ad_hoc": "true"}).json()["results"]
    assert [row["id"] for row in listed] == [campaign.pk] and listed[0]["ad_hoc"] is True
    assert api_client.get("/api/v1/campaigns/", {"ad_hoc": "false"}).json()["count"] == 0


def test_the_admin_tells_ad_hoc_campaigns_apart(api_client, admin_client):
    ad_hoc = Campaign.objects.get(pk=book(api_client, message="Hi.").json()["campaign"])
    SurveyCampaignFactory(name="Spring poll")
    url = reverse("admin:campaigns_campaign_changelist")

    def names(query):
        return [c.name for c in admin_client.get(url, query).context["cl"].result_list]

    assert names({"ad_hoc": "yes"}) == [ad_hoc.name]
    assert names({"ad_hoc": "no"}) == ["Spring poll"]
