"""The provider protocol: place a call, cancel one; errors split by what the dialler does next."""

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


class Provider(Protocol):
    name: str

    def place_call(self, attempt: CallAttempt, urls: CallUrls) -> str:
        """Ask the provider to call attempt.contact.phone; return the provider's call SID.
        Raises ProviderUnavailable or NumberRejected."""

    def cancel(self, sid: str) -> None:
        """Hang up or cancel a call the provider is placing."""


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
