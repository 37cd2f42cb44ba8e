"""The Twilio adapter against the real twilio client, its HTTP replaced at the library's own
seam (twilio.http.HttpClient) with Twilio's real response shapes."""

import datetime as dt
import json
import logging

import pytest
import requests
from django.test import override_settings
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from calls.telephony import base
from calls.telephony.base import (
    NumberRejected,
    ProviderCall,
    ProviderUnavailable,
    call_urls,
    get_provider,
)
from calls.telephony.twilio import ProviderMisconfigured, TwilioProvider
from contacts.phones import mask_phones_in
from tests.factories import CallAttemptFactory, ContactFactory

ACCOUNT = "AC" + "a" * 32
CALL_SID = "CA" + "b" * 32
CALLS_URI = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls.json"


def call_resource(status="queued", **fields):
    """A Call resource as Twilio's API returns it (201 on create)."""
    return {
        "account_sid": ACCOUNT,
        "annotation": None,
        "answered_by": None,
        "api_version": "2010-04-01",
        "caller_name": None,
        "date_created": "Mon, 23 Nov 2026 12:00:00 +0000",
        "date_updated": "Mon, 23 Nov 2026 12:00:00 +0000",
        "direction": "outbound-api",
        "duration": None,
        "end_time": None,
        "forwarded_from": None,
        "from": "+15005550006",
        "from_formatted": "(500) 555-0006",
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": "PN" + "c" * 32,
        "price": None,
        "price_unit": "USD",
        "sid": CALL_SID,
        "start_time": None,
        "status": status,
        "subresource_uris": {
            "notifications": f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL_SID}/Notifications.json",
            "recordings": f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL_SID}/Recordings.json",
        },
        "to": "+12125550100",
        "to_formatted": "(212) 555-0100",
        "trunk_sid": None,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL_SID}.json",
        "queue_time": "0",
        **fields,
    }


def twilio_error(code, message, status=400):
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class RecordingHttpClient(HttpClient):
    """Twilio's HTTP seam: records each request the library builds, answers from a script."""

    def __init__(self, *answers):
        super().__init__(logger=logging.getLogger("tests.twilio"), is_async=False)
        self.answers = list(answers)
        self.requests = []

    def request(self, method, uri, params=None, data=None, headers=None, auth=None, **kwargs):
        self.requests.append(
            {"method": method, "uri": uri, "data": data or {}, "auth": auth, "params": params}
        )
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return Response(status, json.dumps(body))


def provider_with(*answers):
    http = RecordingHttpClient(*answers)
    return TwilioProvider(client=Client(ACCOUNT, "auth-token", http_client=http)), http


@pytest.fixture
def attempt(db):
    contact = ContactFactory(phone="+12125550100")
    return CallAttemptFactory(
        contact=contact, caller_id="+12125550199", machine_detection=True, attempt_number=1
    )


@pytest.mark.django_db
def test_place_call_asks_twilio_for_the_call_with_our_webhooks(attempt):
    provider, http = provider_with((201, call_resource()))
    sid = provider.place_call(attempt, call_urls(attempt))
    assert sid == CALL_SID
    (request,) = http.requests
    assert request["method"] == "POST"
    assert request["uri"] == CALLS_URI
    assert request["auth"] == (ACCOUNT, "auth-token")
    data = request["data"]
    assert data["To"] == "+12125550100"
    assert data["From"] == "+12125550199"  # the campaign's caller id, kept on the attempt
    assert data["Url"] == call_urls(attempt).voice
    assert data["Url"].endswith(f"/webhooks/voice/{attempt.call_id}/")
    assert data["StatusCallback"].endswith(f"/webhooks/status/{attempt.call_id}/")
    assert data["StatusCallbackMethod"] == "POST"
    assert data["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert data["MachineDetection"] == "Enable"


@pytest.mark.django_db
@override_settings(TWILIO_FROM_NUMBER="+15005550006")
def test_without_a_caller_id_the_accounts_number_calls_and_no_detection_unless_asked(attempt):
    attempt.caller_id = ""
    attempt.machine_detection = False
    provider, http = provider_with((201, call_resource()))
    provider.place_call(attempt, call_urls(attempt))
    data = http.requests[0]["data"]
    assert data["From"] == "+15005550006"
    assert "MachineDetection" not in data


@pytest.mark.django_db
def test_voicemail_policy_waits_for_the_end_of_the_greeting(attempt):
    attempt.campaign.machine_policy = "voicemail"
    attempt.campaign.save()
    provider, http = provider_with((201, call_resource()))
    provider.place_call(attempt, call_urls(attempt))
    assert http.requests[0]["data"]["MachineDetection"] == "DetectMessageEnd"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answer",
    [
        (500, twilio_error(20500, "Internal Server Error", status=500)),
        (503, twilio_error(20503, "Service Unavailable", status=503)),
        (429, twilio_error(20429, "Too Many Requests", status=429)),
        requests.exceptions.ConnectionError("Connection refused"),
        requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)"),
    ],
    ids=["500", "503", "429", "connection-error", "timeout"],
)
def test_outage_is_retryable_and_not_the_numbers_fault(attempt, answer):
    provider, _ = provider_with(answer)
    with pytest.raises(ProviderUnavailable) as caught:
        provider.place_call(attempt, call_urls(attempt))
    assert not isinstance(caught.value, ProviderMisconfigured | NumberRejected)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("code", "message"),
    [
        (21211, "Invalid 'To' Phone Number: +1212555010"),
        (21216, "Call blocked by Twilio"),
        (21215, "Account not authorized to call +2425550100."),
        (13224, "Twilio does not support calling this number or the number is invalid"),
    ],
)
def test_rejected_number_is_number_rejected(attempt, code, message):
    provider, _ = provider_with((400, twilio_error(code, message)))
    with pytest.raises(NumberRejected) as caught:
        provider.place_call(attempt, call_urls(attempt))
    assert caught.value.code == str(code)
    assert mask_phones_in(message) in str(caught.value)  # kept on the attempt, number masked


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (401, 20003, "Authenticate"),
        (400, 21212, "Invalid 'From' Phone Number: +1999"),
        (400, 21210, "'From' phone number not verified"),
    ],
)
def test_our_own_misconfiguration_never_blames_the_number(attempt, status, code, message):
    provider, _ = provider_with((status, twilio_error(code, message, status=status)))
    with pytest.raises(ProviderMisconfigured) as caught:
        provider.place_call(attempt, call_urls(attempt))
    assert isinstance(caught.value, ProviderUnavailable)  # retried later, like an outage
    assert caught.value.code == str(code)


def test_cancel_hangs_up_an_answered_call_and_cancels_a_ringing_one():
    provider, http = provider_with(
        (200, call_resource(status="in-progress")),
        (200, call_resource(status="completed")),
        (200, call_resource(status="ringing")),
        (200, call_resource(status="canceled")),
    )
    provider.cancel(CALL_SID)
    provider.cancel(CALL_SID)
    posts = [r for r in http.requests if r["method"] == "POST"]
    assert [r["data"]["Status"] for r in posts] == ["completed", "canceled"]
    assert posts[0]["uri"].endswith(f"/Calls/{CALL_SID}.json")


def test_cancel_of_a_finished_call_does_nothing():
    provider, http = provider_with((200, call_resource(status="completed")))
    provider.cancel(CALL_SID)
    assert [r["method"] for r in http.requests] == ["GET"]


@override_settings(TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN="auth-token")
def test_twilio_is_built_from_the_settings(monkeypatch):
    monkeypatch.setattr(base, "_instances", {})
    provider = TwilioProvider()
    assert provider.client.username == ACCOUNT
    assert provider.client.password == "auth-token"
    assert get_provider("twilio").name == "twilio"


@override_settings(DIALLER_DIAL_THREADS=16)
@pytest.mark.parametrize("url", ["https://api.twilio.com/", "http://127.0.0.1:8099/"])
def test_twilios_connection_pool_holds_a_connection_per_dial_thread(url):
    # Its default (CPUs + 4) was smaller than the dial threads: "Connection pool is full,
    # discarding connection", and a new TLS connection for the next call.
    adapter = TwilioProvider().client.http_client.session.get_adapter(url)
    assert adapter.poolmanager.connection_pool_kw["maxsize"] == 16


def test_fetch_status_reads_twilios_call_resource():
    provider, http = provider_with(
        (
            200,
            call_resource(
                status="completed",
                duration="42",
                answered_by="human",
                end_time="Mon, 23 Nov 2026 12:00:42 +0000",
            ),
        )
    )
    assert provider.fetch_status(CALL_SID) == ProviderCall(
        "completed",
        duration=42,
        answered_by="human",
        ended_at=dt.datetime(2026, 11, 23, 12, 0, 42, tzinfo=dt.UTC),
    )
    (request,) = http.requests
    assert request["method"] == "GET"
    assert request["uri"] == CALLS_URI.replace("Calls.json", f"Calls/{CALL_SID}.json")


def test_fetch_status_of_a_live_call_has_no_end():
    provider, _ = provider_with((200, call_resource(status="in-progress")))
    assert provider.fetch_status(CALL_SID) == ProviderCall("in-progress")


def test_fetch_status_of_a_call_twilio_does_not_know_is_none():
    message = f"The requested resource /Calls/{CALL_SID}.json was not found"
    provider, _ = provider_with((404, twilio_error(20404, message, status=404)))
    assert provider.fetch_status(CALL_SID) is None


@pytest.mark.parametrize(
    "answer",
    [
        (503, twilio_error(20503, "Service Unavailable", status=503)),
        (429, twilio_error(20429, "Too Many Requests", status=429)),
        requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)"),
    ],
    ids=["503", "429", "timeout"],
)
def test_fetch_status_when_twilio_cannot_answer_is_an_outage(answer):
    provider, _ = provider_with(answer)
    with pytest.raises(ProviderUnavailable):
        provider.fetch_status(CALL_SID)


class RecordingAdapter(requests.adapters.BaseAdapter):
    """Under Twilio's own HTTP client, where requests would open a socket: records the URL."""

    def __init__(self, body):
        super().__init__()
        self.body = body
        self.urls = []

    def send(self, request, **kwargs):
        self.urls.append(request.url)
        response = requests.models.Response()
        response.status_code = 201
        response._content = json.dumps(self.body).encode()
        response.url = request.url
        return response

    def close(self):
        pass


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.twilio.com", CALLS_URI),
        (
            "http://127.0.0.1:8765/",
            f"http://127.0.0.1:8765/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
        ),
    ],
    ids=["default", "another-carrier"],
)
def test_the_calls_go_to_the_configured_api_base_url(attempt, settings, base_url, expected):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = ACCOUNT, "auth-token"
    settings.TWILIO_API_BASE_URL = base_url
    provider = TwilioProvider()
    adapter = RecordingAdapter(call_resource())
    for scheme in ("https://", "http://"):
        provider.client.http_client.session.mount(scheme, adapter)
    assert provider.place_call(attempt, call_urls(attempt)) == CALL_SID
    assert adapter.urls == [expected]
