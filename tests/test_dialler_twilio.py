"""The tick dialling through the real twilio client, its HTTP replaced at the library's own seam
(twilio.http.HttpClient) by one that answers per callee with Twilio's real response shapes."""

import datetime as dt
import json
import logging
import threading

import pytest
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from calls.models import CallAttempt, CallEvent
from calls.telephony.twilio import TwilioProvider
from tests.factories import ContactFactory, RunningCampaignFactory
from tests.test_twilio_provider import ACCOUNT, call_resource, twilio_error

OK, REJECTED, OUTAGE = "+12125550101", "+12125550102", "+12125550103"


class PerCalleeHttpClient(HttpClient):
    """Answers each Calls.create by its `To`: accepted, number rejected (21211), or a 503."""

    def __init__(self):
        super().__init__(logger=logging.getLogger("tests.twilio"), is_async=False)
        self.requests = []
        self.lock = threading.Lock()
        self.sids = iter(range(1, 10_000))
        self.ended = {}  # SID -> the Call resource's fields once the call has ended

    def request(self, method, uri, params=None, data=None, headers=None, auth=None, **kwargs):
        if method == "GET":  # a call's status: `ended` says how each call went
            sid = uri.rsplit("/", 1)[-1].removesuffix(".json")
            return Response(200, json.dumps(call_resource(sid=sid, **self.ended.get(sid, {}))))
        to = (data or {}).get("To")
        with self.lock:
            self.requests.append(dict(data or {}))
            sid = f"CA{next(self.sids):032d}"
        if to == REJECTED:
            return Response(
                400, json.dumps(twilio_error(21211, f"Invalid 'To' Phone Number: {to}"))
            )
        if to == OUTAGE:
            return Response(503, json.dumps(twilio_error(20503, "Service unavailable", 503)))
        return Response(201, json.dumps(call_resource(sid=sid, to=to)))


@pytest.fixture
def twilio_http(settings):
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    return PerCalleeHttpClient()


@pytest.mark.django_db
def test_success_rejected_number_and_outage_through_the_real_client(
    open_now, run_tick, twilio_http
):
    campaign = RunningCampaignFactory(caller_id="+12125550199")
    ok = ContactFactory(campaign=campaign, phone=OK)
    rejected = ContactFactory(campaign=campaign, phone=REJECTED)
    down = ContactFactory(campaign=RunningCampaignFactory(), phone=OUTAGE)
    provider = TwilioProvider(Client(ACCOUNT, "token", http_client=twilio_http))

    report = run_tick(open_now, provider=provider)

    assert (report.claimed, report.dialled, report.failed) == (3, 1, 2)
    sent = {r["To"]: r for r in twilio_http.requests}
    assert sent[OK]["From"] == "+12125550199"  # the campaign's caller id
    assert sent[OK]["StatusCallback"].endswith(
        "/status/" + CallAttempt.objects.get(contact=ok).call_id + "/"
    )
    for contact in (ok, rejected, down):
        contact.refresh_from_db()
    ok_attempt = CallAttempt.objects.get(contact=ok)
    assert ok_attempt.status == "initiated" and ok_attempt.provider_call_sid.startswith("CA")
    assert (ok.state, ok.attempts_count) == ("in_progress", 1)
    assert rejected.state == "invalid"
    assert CallAttempt.objects.get(contact=rejected).error_code == "number_rejected"
    # An outage is not a call to the person: back to pending, no attempt used.
    assert (down.state, down.attempts_count) == ("pending", 0)
    assert CallAttempt.objects.get(contact=down).error_code == "provider_unavailable"
    assert CallEvent.objects.filter(attempt__contact=down).exists()


@pytest.mark.django_db
def test_a_call_whose_final_callback_was_dropped_is_settled_by_asking_twilio(
    open_now, run_tick, twilio_http, settings
):
    ok = ContactFactory(campaign=RunningCampaignFactory(), phone=OK)
    provider = TwilioProvider(Client(ACCOUNT, "token", http_client=twilio_http))
    run_tick(open_now, provider=provider)
    attempt = CallAttempt.objects.get(contact=ok)
    # No callback ever reaches us; Twilio knows the call went unanswered.
    twilio_http.ended[attempt.provider_call_sid] = {"status": "no-answer", "duration": "0"}

    now = open_now + dt.timedelta(seconds=settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    report = run_tick(now, provider=provider)

    assert (report.checked, report.reconciled, report.recovered) == (1, 1, 0)
    attempt.refresh_from_db()
    ok.refresh_from_db()
    assert (attempt.status, attempt.error_code) == ("no_answer", "")
    assert ok.state == "not_reached"
    assert ok.next_attempt_at == now + attempt.campaign.retry_delay("no_answer")
