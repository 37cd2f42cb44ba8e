"""The calls-per-second pace: a token bucket the dial step takes a token from per call.

The pace banks the slots of a short pause (DIALLER_PACE_BANK_SECONDS): between two ticks'
dialling, recovery and the claim dial nothing, and without the bank each tick lost that time
for good (at 50 calls/s a 0.6 s pause every 5 s tick left the rate at 89 % of the pace). With it
the next tick's first calls take the pause's slots at once, and the rate over a tick is the pace.
In any W seconds at most pace × (W + bank) + 1 calls start."""

import datetime as dt
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection

from calls.db import prepared
from calls.models import DialPace


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


# Reserve the next free slot: the row holds the time of the next free slot; taking one moves
# it one interval past the later of itself and `bank` seconds ago (a virtual-schedule rate
# limiter, GCRA, whose tolerance is the bank: a slot left unused that recently is still
# taken). Times are the database's, so schedulers on machines with skewed clocks still share
# one pace (tests pass `now`). Returns the seconds to wait for the slot taken (negative: it is
# past, go now).
RESERVE_SLOT = f"""
WITH clock AS (SELECT COALESCE(%(now)s::timestamptz, clock_timestamp()) AS now)
INSERT INTO "{DialPace._meta.db_table}" AS pace (key, next_slot)
SELECT %(key)s, now + %(interval)s * interval '1 second' FROM clock
ON CONFLICT (key) DO UPDATE SET next_slot = GREATEST(
    pace.next_slot, (SELECT now FROM clock) - %(bank)s * interval '1 second'
) + %(interval)s * interval '1 second'
RETURNING EXTRACT(EPOCH FROM pace.next_slot - (SELECT now FROM clock)) - %(interval)s
"""


class SharedPace:
    """The pace of every scheduler process on this PostgreSQL database together: each call
    takes the next free slot from one row (one UPDATE, on an unlogged table) and sleeps until
    it. Same interface as TokenBucket; the sleep and the clock (`now`, default the database's)
    are injectable for tests."""

    def __init__(
        self,
        rate: float,
        *,
        key: str = "default",
        bank: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], dt.datetime] | None = None,
    ):
        if rate <= 0:
            raise ValueError("The pace must be a positive number of calls per second.")
        self.interval = 1.0 / rate
        self.key = key
        self.bank = max(bank, 0.0)
        self.sleep = sleep
        self.now = now

    def acquire(self) -> float:
        """Take the next slot, sleeping until it comes; returns the seconds waited."""
        params = {
            "key": self.key,
            "interval": self.interval,
            "bank": self.bank,
            "now": self.now() if self.now else None,
        }
        (wait,) = prepared.fetch_one(RESERVE_SLOT, params)
        wait = float(wait)
        if wait > 0:
            self.sleep(wait)
        return max(wait, 0.0)


_buckets: dict[tuple[str, float, float], TokenBucket] = {}
_buckets_lock = threading.Lock()


def default_pace(rate: float | None = None, *, key: str = "default") -> TokenBucket | SharedPace:
    """The pace of `rate` calls per second (default: settings.DIALLER_CALLS_PER_SECOND; the
    tick passes the limit in force, calls.dialler.limits) for the provider account `key`: the
    limit is the account's, so each account keeps its own pace. On PostgreSQL it is shared by
    every scheduler on the database (SharedPace), so several machines together keep the
    account's calls-per-second limit. On SQLite (one machine) it is the process's bucket,
    shared by consecutive ticks so a tick that starts right after another does not burst
    past it."""
    rate = rate or settings.DIALLER_CALLS_PER_SECOND
    bank = settings.DIALLER_PACE_BANK_SECONDS
    if connection.vendor == "postgresql":
        return SharedPace(rate, key=key, bank=bank)
    with _buckets_lock:
        if (key, rate, bank) not in _buckets:
            _buckets[key, rate, bank] = TokenBucket(rate, burst=banked_burst(rate, bank))
        return _buckets[key, rate, bank]


def banked_burst(rate: float, bank: float) -> float:
    """The TokenBucket burst that banks `bank` seconds of slots, as SharedPace does: the slot
    due now and those of the last `bank` seconds."""
    return 1.0 + rate * max(bank, 0.0)


def pace_budget(interval: float, rate: float | None = None) -> int:
    """Calls one tick may claim: what the pace (`rate`, default the setting) can dial before
    the next tick is due, so a claimed attempt never waits in the queue for long (recovery's
    lease stays far away)."""
    return max(1, int((rate or settings.DIALLER_CALLS_PER_SECOND) * interval))
