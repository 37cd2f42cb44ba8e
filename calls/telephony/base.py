"""The provider protocol: place a call, cancel one, ask how one went; errors split by what the
dialler does next."""

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from calls.models import CallAttempt


class ProviderError(Exception):
    """A provider call failed. `code` is the provider's error code, when it gave one."""

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.code = code


class ProviderUnavailable(ProviderError):
    """Retryable: timeout, connection error, 5xx, rate limit. Not an attempt on the person."""


class NumberRejected(ProviderError):
    """The provider will not call this number (invalid, unreachable, blocked): contact invalid."""


@dataclass(frozen=True)
class CallUrls:
    voice: str  # TwiML for the survey, fetched when the call is answered
    status_callback: str  # status callbacks (initiated, ringing, answered, completed)


def call_urls(attempt: CallAttempt) -> CallUrls:
    """Our webhook URLs for one attempt, under PUBLIC_BASE_URL (what Twilio signs)."""
    base = settings.PUBLIC_BASE_URL
    return CallUrls(
        voice=f"{base}/webhooks/voice/{attempt.call_id}/",
        status_callback=f"{base}/webhooks/status/{attempt.call_id}/",
    )


@dataclass(frozen=True)
class ProviderCall:
    """What the provider says of one call when asked (Twilio's Call resource)."""

    status: str  # Twilio's spelling: queued, ringing, in-progress, completed, busy, no-answer…
    duration: int | None = None  # seconds, once the call has ended
    answered_by: str | None = None  # Twilio's AnsweredBy, when machine detection ran
    ended_at: dt.datetime | None = None


class Provider(Protocol):
    name: str

    def place_call(self, attempt: CallAttempt, urls: CallUrls) -> str:
        """Ask the provider to call attempt.contact.phone; return the provider's call SID.
        Raises ProviderUnavailable or NumberRejected."""

    def cancel(self, sid: str) -> None:
        """Hang up or cancel a call the provider is placing."""

    def fetch_status(self, provider_call_id: str) -> ProviderCall | None:
        """How the call with this SID stands at the provider; None when the provider has no
        such call. Raises ProviderUnavailable when it cannot tell now."""


PROVIDERS = {
    "twilio": "calls.telephony.twilio.TwilioProvider",
    "simulated": "calls.telephony.simulated.SimulatedProvider",
}

_instances: dict[str, Provider] = {}


def get_provider(name: str | None = None) -> Provider:
    """The configured provider (settings.TELEPHONY_PROVIDER), built once per process."""
    name = name or settings.TELEPHONY_PROVIDER
    if name not in _instances:
        _instances[name] = import_string(PROVIDERS[name])()
    return _instances[name]
