"""No phone number reaches a log line in clear, whichever logger writes it."""

import io
import json
import logging

import pytest
import requests
from django.db import IntegrityError
from twilio.rest import Client

from calls.telephony.base import call_urls
from calls.telephony.twilio import ProviderMisconfigured, TwilioProvider, pooled_http_client
from contacts.phones import mask_phones_in
from tests.factories import CallAttemptFactory, ContactFactory
from tests.test_twilio_provider import ACCOUNT, call_resource, provider_with, twilio_error

NUMBER = "+12125550100"


def lines_written(logger_name: str, emit) -> str:
    """What a plain handler on `logger_name` writes while `emit` runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_number_in_a_log_message_or_its_arguments_is_masked():
    text = lines_written(
        "some.library",
        lambda log: (log.warning("calling %s", NUMBER), log.warning(f"calling {NUMBER} again")),
    )
    assert NUMBER not in text and "12125550100" not in text
    assert text.count("+121*****100") == 2


def test_a_database_error_traceback_quoting_the_number_is_masked():
    def emit(log):
        try:
            raise IntegrityError(f"Key (campaign_id, phone)=(1, {NUMBER}) already exists.")
        except IntegrityError:
            log.exception("tick failed")

    text = lines_written("calls.management.commands.run_scheduler", emit)
    assert "Traceback" in text and "IntegrityError" in text
    assert NUMBER not in text and "+121*****100" in text


def test_the_development_servers_access_line_masks_a_number_in_the_query_string():
    text = lines_written(
        "django.server",
        lambda log: log.info(
            '"%s" %s %s', "GET /api/v1/exclusions/check/?phone=%2B12125550100 HTTP/1.1", 200, 31
        ),
    )
    assert "2125550100" not in text and "phone=%2B121*****100" in text


@pytest.mark.django_db
def test_twilio_refusing_our_request_logs_its_message_with_the_number_masked(caplog):
    contact = ContactFactory(phone=NUMBER)
    attempt = CallAttemptFactory(contact=contact, attempt_number=1)
    provider, _ = provider_with(
        (400, twilio_error(21210, f"The source phone number provided, {NUMBER}, is not verified"))
    )
    with caplog.at_level(logging.ERROR), pytest.raises(ProviderMisconfigured) as caught:
        provider.place_call(attempt, call_urls(attempt))
    assert NUMBER not in caplog.text and "+121*****100" in caplog.text
    assert NUMBER not in str(caught.value)  # stored on the attempt and its events


@pytest.mark.parametrize(
    "text",
    [
        "tick at 2026-12-02 01:13:02Z claimed=50 in 0.123s",
        "attempt 8a1f4c2e-0d9b-4c1e-9f0a-1234567890ab, 8a1f4c2e-0d9b-4c1e-9f0a-123456789012",
        "call CA0123456789abcdef0123456789abcdef at 1733101982.123",
    ],
)
def test_dates_uuids_and_sids_are_left_readable(text):
    assert mask_phones_in(text) == text


def twilio_over_a_fake_wire(answer: dict) -> tuple[TwilioProvider, list]:
    """The Twilio adapter with the library's own HTTP client (pooled_http_client, which logs
    each request), only its connection's send replaced: nothing leaves the machine."""
    http = pooled_http_client()
    adapter = http.session.get_adapter("https://api.twilio.com/")
    sent = []

    def send(request, **kwargs):
        sent.append(request)
        response = requests.Response()
        response.status_code, response._content = 201, json.dumps(answer).encode()
        response.headers["Content-Type"] = "application/json"
        response.request, response.url = request, request.url
        return response

    adapter.send = send
    return TwilioProvider(Client(ACCOUNT, "auth-token", http_client=http)), sent


@pytest.mark.django_db
def test_dialling_through_twilio_logs_no_request_lines_and_no_number(caplog):
    attempt = CallAttemptFactory(contact=ContactFactory(phone=NUMBER), attempt_number=1)
    provider, sent = twilio_over_a_fake_wire(call_resource(to=NUMBER))
    with caplog.at_level(logging.DEBUG):
        assert provider.place_call(attempt, call_urls(attempt)).startswith("CA")
    assert len(sent) == 1 and NUMBER.removeprefix("+") in sent[0].body  # it was in the request
    # The library's dozen INFO lines per call (settings.LOGGING quiets twilio.http_client).
    assert [r for r in caplog.records if r.name.startswith("twilio")] == []
    assert "12125550100" not in caplog.text


@pytest.mark.django_db
def test_twilios_request_lines_carry_no_number_when_turned_up(caplog):
    # An operator debugging the client turns its logger up: still no number in clear.
    attempt = CallAttemptFactory(contact=ContactFactory(phone=NUMBER), attempt_number=1)
    provider, _ = twilio_over_a_fake_wire(call_resource(to=NUMBER))
    with caplog.at_level(logging.INFO, logger="twilio.http_client"):
        provider.place_call(attempt, call_urls(attempt))
        provider.client.http_client.logger.info("To: %s", NUMBER)
    assert [r for r in caplog.records if r.name == "twilio.http_client"]
    assert "12125550100" not in caplog.text
