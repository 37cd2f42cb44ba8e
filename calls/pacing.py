"""The calls-per-second pace: a token bucket the dial step takes a token from per call."""

import threading
import time
from collections.abc import Callable

from django.conf import settings


class TokenBucket:
    """At most `rate` acquisitions per second on average, `burst` at once.

    The clock and the sleep are injectable so tests check the pace without waiting."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError("The pace must be a positive number of calls per second.")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, sleeping until one is available."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            wait = (1 - self._tokens) / self.rate
            self.sleep(wait)
            # The token is earned at now + wait, whatever the clock's resolution says.
            self._tokens = 0.0
            self._updated = now + wait


_buckets: dict[float, TokenBucket] = {}
_buckets_lock = threading.Lock()


def default_pace() -> TokenBucket:
    """The process's bucket for settings.DIALLER_CALLS_PER_SECOND, shared by consecutive ticks
    so a tick that starts right after another does not burst past the pace. (Several processes
    each keep their own pace: run one scheduler per provider account, or divide the setting.)"""
    rate = settings.DIALLER_CALLS_PER_SECOND
    with _buckets_lock:
        if rate not in _buckets:
            _buckets[rate] = TokenBucket(rate)
        return _buckets[rate]


def pace_budget(interval: float) -> int:
    """Calls one tick may claim: what the pace can dial before the next tick is due, so a
    claimed attempt never waits in the queue for long (recovery's lease stays far away)."""
    return max(1, int(settings.DIALLER_CALLS_PER_SECOND * interval))
