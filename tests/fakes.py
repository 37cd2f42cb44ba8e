"""Test doubles for what leaves the machine: a telephony provider implementing the protocol."""

import itertools
import threading
import time

from calls.telephony.base import CallUrls, NumberRejected, ProviderCall, ProviderUnavailable


class FakeProvider:
    """Records every call it is asked to place and answers like a provider would.

    `outages` and `rejected` are phone numbers that fail that way; `latency` seconds per call;
    `statuses` (by SID) is what fetch_status answers;
    `clock` (a callable) timestamps each call, to check the pace without sleeping; `gate`, a
    threading.Event, blocks every call until set (a dial that hangs)."""

    name = "fake"

    def __init__(self, *, outages=(), rejected=(), latency=0.0, clock=None, gate=None):
        self.outages = set(outages)
        self.rejected = set(rejected)
        self.latency = latency
        self.clock = clock
        self.gate = gate
        self.calls: list[dict] = []
        self.cancelled: list[str] = []
        self.statuses: dict[str, ProviderCall | Exception] = {}  # fetch_status's answers
        self.fetched: list[str] = []
        self._lock = threading.Lock()
        self._sids = itertools.count(1)

    def place_call(self, attempt, urls: CallUrls) -> str:
        if self.gate is not None:
            self.gate.wait()
        if self.latency:
            time.sleep(self.latency)  # the provider's own latency, not a wait in a test
        phone = attempt.contact.phone
        with self._lock:
            self.calls.append(
                {
                    "attempt": attempt.pk,
                    "contact": attempt.contact_id,
                    "campaign": attempt.campaign_id,
                    "phone": phone,
                    "urls": urls,
                    "at": self.clock() if self.clock else None,
                }
            )
            sid = f"CA{next(self._sids):032d}"
        if phone in self.outages:
            raise ProviderUnavailable("HTTP 503 from the provider", code="503")
        if phone in self.rejected:
            raise NumberRejected("Invalid 'To' phone number: " + phone, code="21211")
        return sid

    def cancel(self, sid: str) -> None:
        self.cancelled.append(sid)

    def fetch_status(self, provider_call_id: str) -> ProviderCall | None:
        """What `statuses` says of the call (a ProviderCall, or an exception to raise); a
        call not in it is unknown to the provider (None)."""
        with self._lock:
            self.fetched.append(provider_call_id)
        answer = self.statuses.get(provider_call_id)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def dialled_phones(self) -> list[str]:
        return [c["phone"] for c in self.calls]


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
