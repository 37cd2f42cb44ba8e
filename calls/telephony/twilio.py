"""Twilio, through the official client: place a call with our webhook URLs, cancel one, fetch
one's status.

Errors are sorted by what the dialler should do next (calls.telephony.base): Twilio down, slow
or rate-limiting us -> ProviderUnavailable (retry later, not an attempt on the person); Twilio
refusing this very number -> NumberRejected (contact invalid); Twilio refusing us (bad
credentials, a From number we may not use…) -> ProviderMisconfigured, a ProviderUnavailable:
our own mistake must never mark people's numbers invalid."""

import datetime as dt
import logging
from contextlib import contextmanager

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from calls.models import CallAttempt
from calls.telephony.base import (
    CallUrls,
    NumberRejected,
    ProviderCall,
    ProviderError,
    ProviderUnavailable,
)
from contacts.phones import mask_phones_in

try:  # RFC 9457 errors, from twilio 9.9 on
    from twilio.base.exceptions import TwilioServiceException
except ImportError:  # pragma: no cover
    TwilioServiceException = TwilioRestException

log = logging.getLogger(__name__)

# Seconds we wait for Twilio's API before calling it an outage.
API_TIMEOUT = 10
# Where the twilio library sends its REST requests; TWILIO_API_BASE_URL may move them elsewhere
# (a carrier speaking Twilio's API, the load bench's fake carrier).
TWILIO_API = "https://api.twilio.com"

# Twilio error codes that are about the number called (https://www.twilio.com/docs/api/errors).
NUMBER_ERRORS = {
    13223: "Dial: invalid phone number format",
    13224: "Dial: Twilio does not support calling this number or the number is invalid",
    13225: "Dial: forbidden phone number",
    13226: "Dial: invalid country code",
    21211: "Invalid 'To' phone number",
    21214: "'To' phone number cannot be reached",
    21215: "Geo permissions do not allow calling this number",
    21216: "Call blocked by Twilio",
    21217: "Phone number does not appear to be valid",
    21401: "Invalid phone number",
    21407: "This phone number type does not support voice",
    21610: "The number has unsubscribed (STOP)",
    21612: "The 'To' number is not reachable",
    21614: "'To' number is not a valid mobile number",
}


class ProviderMisconfigured(ProviderUnavailable):
    """Twilio refused our request for a reason of ours (credentials, From number, account):
    retry later like an outage, and tell the operator; the callee's number is not at fault."""


class TwilioProvider:
    name = "twilio"

    def __init__(self, client: Client | None = None):
        self.client = client or Client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            http_client=pooled_http_client(),
        )

    def place_call(self, attempt: CallAttempt, urls: CallUrls) -> str:
        """Ask Twilio to call the contact; the survey and the status callbacks come back to
        our webhooks. Returns the call SID."""
        options = {
            "to": attempt.contact.phone,
            "from_": attempt.caller_id or settings.TWILIO_FROM_NUMBER,
            "url": urls.voice,
            "method": "POST",
            "status_callback": urls.status_callback,
            "status_callback_event": ["initiated", "ringing", "answered", "completed"],
            "status_callback_method": "POST",
        }
        if attempt.machine_detection:
            # To leave a voicemail we must wait for the greeting's end (the beep); to hang up
            # on a machine, knowing it is one is enough.
            leaves_message = attempt.campaign.machine_policy == "voicemail"
            options["machine_detection"] = "DetectMessageEnd" if leaves_message else "Enable"
        with twilio_errors():
            return self.client.calls.create(**options).sid

    def fetch_status(self, provider_call_id: str) -> ProviderCall | None:
        """The call's Calls resource: its status, and once it has ended its duration, who
        answered and when it ended. None when Twilio has no such call (404)."""
        with twilio_errors():
            try:
                call = self.client.calls(provider_call_id).fetch()
            except (TwilioRestException, TwilioServiceException) as exc:
                if int(exc.status or 0) == 404:
                    return None
                raise
        duration = str(call.duration or "")
        return ProviderCall(
            status=str(call.status),
            duration=int(duration) if duration.isdigit() else None,
            answered_by=str(call.answered_by) if call.answered_by else None,
            ended_at=call.end_time if isinstance(call.end_time, dt.datetime) else None,
        )

    def cancel(self, sid: str) -> None:
        """Stop a call: cancel it while it is queued or ringing, hang it up once answered."""
        with twilio_errors():
            call = self.client.calls(sid).fetch()
            status = "completed" if call.status == "in-progress" else "canceled"
            if call.status in ("queued", "ringing", "in-progress", "initiated"):
                self.client.calls(sid).update(status=status)


def pooled_http_client() -> "TwilioApiHttpClient":
    """Twilio's HTTP client with a connection per dial thread: its default pool (CPUs + 4)
    is smaller than the dial threads, and each call over it opened a new TLS connection."""
    return TwilioApiHttpClient(
        base_url=settings.TWILIO_API_BASE_URL, pool_size=max(settings.DIALLER_DIAL_THREADS, 1)
    )


class TwilioApiHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client (the library's documented seam for a custom client), pooled,
    and sending the API's requests to `base_url` instead of https://api.twilio.com: the path
    (/2010-04-01/Accounts/…/Calls.json) and everything else are the library's."""

    def __init__(self, *, base_url: str = TWILIO_API, pool_size: int = 16):
        super().__init__(timeout=API_TIMEOUT)
        self.base_url = base_url.rstrip("/")
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def request(self, method: str, url: str, *args, **kwargs):
        if self.base_url != TWILIO_API and url.startswith(TWILIO_API + "/"):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


@contextmanager
def twilio_errors():
    """Raise what the twilio library raises as our provider errors (error_for), and a Twilio
    we cannot reach, or a client that fails, as an outage."""
    try:
        yield
    except (TwilioRestException, TwilioServiceException) as exc:
        raise error_for(exc) from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        raise ProviderUnavailable(f"Twilio unreachable: {exc}") from exc
    except TwilioException as exc:
        raise ProviderUnavailable(mask_phones_in(f"Twilio client error: {exc}")) from exc


def error_for(exc: TwilioException) -> ProviderError:
    """Sort a Twilio API error: outage, rejected number, or our own misconfiguration."""
    status = int(exc.status or 0)
    code = int(exc.code) if str(exc.code or "").isdigit() else None
    message = getattr(exc, "msg", "") or getattr(exc, "detail", "") or str(code)
    # Twilio's messages quote the numbers involved ("The number +1555... is unverified").
    text = mask_phones_in(f"Twilio {status} error {code}: {message}")
    if status >= 500 or status == 429 or code == 20429:
        return ProviderUnavailable(text, code=str(code or status))
    if code in NUMBER_ERRORS:
        return NumberRejected(f"{text} ({NUMBER_ERRORS[code]})", code=str(code))
    log.error("Twilio refused our request, check the configuration: %s", text)
    return ProviderMisconfigured(text, code=str(code or status))
