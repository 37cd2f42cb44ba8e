"""No phone number reaches a log line in clear, whichever logger writes it."""

import io
import logging

import pytest
from django.db import IntegrityError

from calls.telephony.base import call_urls
from calls.telephony.twilio import ProviderMisconfigured
from contacts.phones import mask_phones_in
from tests.factories import CallAttemptFactory, ContactFactory
from tests.test_twilio_provider import provider_with, twilio_error

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
