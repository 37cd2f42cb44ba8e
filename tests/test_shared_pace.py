"""The pace shared by every scheduler on one PostgreSQL database (calls.dialler.pace.SharedPace)."""

import datetime as dt

import pytest
from django.db import connection

from calls.dialler.pace import SharedPace, TokenBucket, default_pace
from calls.models import DialPace
from tests.test_webhook_concurrency import run_together


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_schedulers_share_one_pace(needs_postgres):
    # Two schedulers (threads with their own connections) take 5 slots each at 5 calls/s. The
    # sleeps are recorded, not slept: each slot is 0.2 s after the one before, whoever took it.
    waits: list[float] = []

    def scheduler():
        pace = SharedPace(5.0, key="shared-test", sleep=waits.append)
        for _ in range(5):
            pace.acquire()

    assert run_together(2, scheduler) == [None, None]
    waits.sort()
    assert len(waits) == 9  # the first slot of all was free at once
    assert waits[-1] == pytest.approx(1.8, abs=0.15)
    gaps = [later - earlier for earlier, later in zip(waits, waits[1:], strict=False)]
    assert all(gap == pytest.approx(0.2, abs=0.05) for gap in gaps)


@pytest.mark.django_db
def test_an_idle_pace_starts_afresh_without_a_burst(needs_postgres):
    waits: list[float] = []
    pace = SharedPace(10.0, key="idle-test", sleep=waits.append)
    assert pace.acquire() == 0.0
    long_ago = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    DialPace.objects.filter(key="idle-test").update(next_slot=long_ago)
    # Slots left unused while idle are not owed: the next call goes now, the one after waits.
    assert pace.acquire() == 0.0
    assert pace.acquire() == pytest.approx(0.1, abs=0.05)
    assert len(waits) == 1


@pytest.mark.django_db
def test_the_default_pace_is_shared_on_postgresql_and_per_process_on_sqlite(settings):
    settings.DIALLER_CALLS_PER_SECOND = 3.0
    pace = default_pace()
    expected = SharedPace if connection.vendor == "postgresql" else TokenBucket
    assert isinstance(pace, expected)
    with pytest.raises(ValueError):
        SharedPace(0)
