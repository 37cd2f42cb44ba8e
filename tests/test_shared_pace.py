"""The pace shared by every scheduler on one PostgreSQL database (calls.dialler.pace.SharedPace)."""

import datetime as dt

import pytest
from django.db import connection

from calls.dialler.pace import SharedPace, TokenBucket, default_pace
from calls.models import DialPace
from tests.test_webhook_concurrency import run_together

# The database's clock, stopped: every slot is worked out from this instant, so the waits are
# exact however slowly the test runs.
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def stopped_clock() -> dt.datetime:
    return NOW


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_schedulers_share_one_pace(needs_postgres):
    # Two schedulers (threads with their own connections) take 5 slots each at 5 calls/s. The
    # sleeps are recorded, not slept: each slot is 0.2 s after the one before, whoever took it.
    waits: list[float] = []

    def scheduler():
        pace = SharedPace(5.0, key="shared-test", sleep=waits.append, now=stopped_clock)
        for _ in range(5):
            pace.acquire()

    assert run_together(2, scheduler) == [None, None]
    waits.sort()
    assert len(waits) == 9  # the first slot of all was free at once
    assert waits == [pytest.approx(0.2 * n, abs=1e-5) for n in range(1, 10)]


@pytest.mark.django_db
def test_an_idle_pace_keeps_only_its_bank_of_slots(needs_postgres):
    waits: list[float] = []
    pace = SharedPace(10.0, key="idle-test", bank=0.5, sleep=waits.append, now=stopped_clock)
    assert pace.acquire() == 0.0
    long_ago = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    DialPace.objects.filter(key="idle-test").update(next_slot=long_ago)
    # A long pause is not owed: only the last half second's 5 slots and the one due now go at
    # once, then the pace holds again.
    assert [pace.acquire() for _ in range(6)] == [0.0] * 6
    assert pace.acquire() == pytest.approx(0.1, abs=1e-5)
    assert len(waits) == 1


@pytest.mark.django_db
def test_without_a_bank_an_idle_pace_starts_afresh_without_a_burst(needs_postgres):
    waits: list[float] = []
    pace = SharedPace(10.0, key="no-bank-test", sleep=waits.append, now=stopped_clock)
    assert pace.acquire() == 0.0
    long_ago = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    DialPace.objects.filter(key="no-bank-test").update(next_slot=long_ago)
    assert pace.acquire() == 0.0
    assert pace.acquire() == pytest.approx(0.1, abs=1e-5)
    assert len(waits) == 1


@pytest.mark.django_db
def test_a_short_pause_between_ticks_is_made_up_by_the_shared_pace(needs_postgres):
    # Dialling at 20 calls/s, then a pause of 0.3 s (a tick's claim): the six slots the pause
    # would have used go at once, and the pace then carries on where it was.
    waits: list[float] = []
    pace = SharedPace(20.0, key="pause-test", bank=1.0, sleep=waits.append, now=stopped_clock)
    pace.acquire()
    # The schedule as if it had been dialling till 0.3 s ago.
    DialPace.objects.filter(key="pause-test").update(next_slot=NOW - dt.timedelta(seconds=0.3))
    immediate = [pace.acquire() for _ in range(6)]
    assert immediate == [0.0] * 6
    assert pace.acquire() == 0.0  # the slot due now
    assert pace.acquire() == pytest.approx(0.05, abs=1e-5)


@pytest.mark.django_db
def test_the_default_pace_is_shared_on_postgresql_and_per_process_on_sqlite(settings):
    settings.DIALLER_CALLS_PER_SECOND = 3.0
    pace = default_pace()
    expected = SharedPace if connection.vendor == "postgresql" else TokenBucket
    assert isinstance(pace, expected)
    with pytest.raises(ValueError):
        SharedPace(0)


@pytest.mark.django_db
def test_each_provider_account_keeps_its_own_pace(settings):
    settings.DIALLER_PACE_BANK_SECONDS = 0
    waits: list[float] = []
    first, second = default_pace(1.0, key="AC-first"), default_pace(1.0, key="AC-second")
    first.sleep = second.sleep = waits.append
    first.acquire()
    second.acquire()  # not held back by the first account's call
    assert waits == []
    again = default_pace(1.0, key="AC-first")  # the next tick, the same account
    again.sleep = waits.append
    again.acquire()
    assert waits == [pytest.approx(1.0, abs=0.1)]
