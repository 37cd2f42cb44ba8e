"""Helpers for webhook tests: live attempts, and requests signed like Twilio signs them."""

import datetime as dt
import xml.etree.ElementTree as ET
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from twilio.request_validator import RequestValidator

from calls.models import CallAttempt
from calls.webhooks.signatures import webhook_auth_token
from tests.factories import CallAttemptFactory, ContactFactory


def live_attempt(
    *, now: dt.datetime, campaign=None, status="initiated", number=1, contact=None, **attempt_kw
) -> CallAttempt:
    """An attempt the dialler has placed: its contact is in_progress on it."""
    if contact is None:
        contact_kw = {"campaign": campaign} if campaign is not None else {}
        contact = ContactFactory(**contact_kw)
    contact.state = "in_progress"
    contact.attempts_count = number
    contact.last_attempt_number = number
    contact.save()
    return CallAttemptFactory(
        contact=contact,
        attempt_number=number,
        status=status,
        created_at=now,
        dialled_at=now,
        provider_call_sid=f"CA{number:02d}{contact.pk:030d}",
        **attempt_kw,
    )


def signed_post(client, url: str, params: dict, *, token: str | None = None, sign_url=None):
    """POST form-encoded `params` to the public `url` with Twilio's signature."""
    token = token or webhook_auth_token()
    signature = RequestValidator(token).compute_signature(sign_url or url, params)
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return client.post(
        path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )


def status_url(attempt) -> str:
    return f"{settings.PUBLIC_BASE_URL}/webhooks/status/{attempt.call_id}/"


def voice_url(attempt) -> str:
    return f"{settings.PUBLIC_BASE_URL}/webhooks/voice/{attempt.call_id}/"


def send_status(client, attempt, status: str, sequence: int | None = None, **extra):
    params = {"CallSid": attempt.provider_call_sid or "", "CallStatus": status, **extra}
    params.setdefault("To", attempt.contact.phone)
    params.setdefault("From", "+15005550006")
    if sequence is not None:
        params["SequenceNumber"] = str(sequence)
    return signed_post(client, status_url(attempt), params)


def twiml(response) -> ET.Element:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content)


def said(root: ET.Element) -> list[str]:
    """Everything the callee hears, in order (Say inside and outside Gather)."""
    return [el.text or "" for el in root.iter("Say")]
