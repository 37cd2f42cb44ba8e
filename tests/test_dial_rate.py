"""The dial rate holds the pace across ticks, though each tick spends time claiming before it
dials; and a claim the concurrent-call caps cut short says so in the tick's report."""

import datetime as dt

import pytest

from calls.dialler.pace import TokenBucket, banked_burst
from calls.dialler.tick import tick
from calls.reports.dashboard import tick_details
from tests.factories import CallAttemptFactory, ContactFactory, RunningCampaignFactory
from tests.fakes import FakeClock, FakeProvider

PACE, INTERVAL, OVERHEAD, TICKS = 50.0, 1.0, 0.1, 6


def run_scheduler(clock, provider, pace, now, *, ticks=TICKS):
    """run_scheduler's loop on a fake clock: each tick spends OVERHEAD seconds (recovery, the
    claim) before it dials; the next one starts INTERVAL after it, or at once if it ran
    longer. Returns the seconds the ticks took."""
    start = clock()
    for _ in range(ticks):
        started = clock()
        clock.sleep(OVERHEAD)
        at = now + dt.timedelta(seconds=clock() - start)
        tick(at, provider=provider, pace=pace, interval=INTERVAL)
        clock.sleep(max(0.0, started + INTERVAL - clock()))
    return clock() - start


@pytest.fixture
def plenty(open_now, dialler_settings):
    """More contacts than the ticks can dial, and no cap in the way."""
    dialler_settings.DIALLER_CALLS_PER_SECOND = PACE
    dialler_settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = 10_000
    dialler_settings.DIALLER_BATCH_SIZE = 10_000
    campaign = RunningCampaignFactory(max_concurrent_calls=10_000)
    ContactFactory.create_batch(int(PACE * INTERVAL * (TICKS + 1)), campaign=campaign)
    return dialler_settings


def drained(bucket: TokenBucket) -> TokenBucket:
    """The bucket of a dialler that has been dialling at full pace until now."""
    for _ in range(int(bucket.burst)):
        bucket.acquire()
    return bucket


@pytest.mark.django_db
def test_the_ticks_dial_at_the_pace_though_each_spends_time_claiming(open_now, plenty):
    clock = FakeClock()
    provider = FakeProvider(clock=clock)
    burst = banked_burst(PACE, plenty.DIALLER_PACE_BANK_SECONDS)
    pace = drained(TokenBucket(PACE, burst=burst, clock=clock, sleep=clock.sleep))

    seconds = run_scheduler(clock, provider, pace, open_now)

    rate = len(provider.calls) / seconds
    assert rate >= 0.95 * PACE
    # The pause's slots are taken at the next tick's start, never more than the bank holds:
    # in any second, at most the pace plus the bank's slots.
    times = sorted(call["at"] for call in provider.calls)
    for i, first in enumerate(times):
        in_a_second = sum(1 for t in times[i:] if t < first + 1.0)
        assert in_a_second <= PACE + burst


@pytest.mark.django_db
def test_without_a_bank_the_time_spent_claiming_is_lost_for_good(open_now, plenty):
    # Why the pace banks: with nothing kept, each tick's claim time is a gap in the dialling.
    clock = FakeClock()
    provider = FakeProvider(clock=clock)
    pace = drained(TokenBucket(PACE, burst=1.0, clock=clock, sleep=clock.sleep))
    seconds = run_scheduler(clock, provider, pace, open_now)
    assert len(provider.calls) / seconds < 0.95 * PACE


def live_calls(campaign, n, now):
    for _ in range(n):
        contact = ContactFactory(campaign=campaign, state="in_progress", last_attempt_number=1)
        CallAttemptFactory(contact=contact, attempt_number=1, status="ringing", created_at=now)


@pytest.mark.django_db
def test_a_claim_cut_short_by_the_campaigns_cap_is_reported(open_now, run_tick):
    campaign = RunningCampaignFactory(max_concurrent_calls=5)
    live_calls(campaign, 3, open_now)
    ContactFactory.create_batch(10, campaign=campaign, next_attempt_at=open_now)

    report = run_tick(open_now)

    assert report.dialled == 2
    assert report.skipped["at_cap"] == 1
    assert report.live_calls == 5
    rows = dict(tick_details(report.as_dict()))
    assert "filled up to a concurrent-call cap" in rows["Not called, and why"]
    assert rows["Live calls after the claim"] == "5"


@pytest.mark.django_db
def test_a_claim_cut_short_by_the_global_cap_is_reported(open_now, run_tick, dialler_settings):
    dialler_settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = 6
    busy = RunningCampaignFactory(max_concurrent_calls=100)
    live_calls(busy, 4, open_now)
    ContactFactory.create_batch(10, campaign=busy, next_attempt_at=open_now)

    report = run_tick(open_now)

    assert report.dialled == 2
    assert report.skipped["at_cap"] == 1
    assert report.live_calls == 6


@pytest.mark.django_db
def test_a_claim_that_runs_out_of_contacts_is_not_at_a_cap(open_now, run_tick):
    campaign = RunningCampaignFactory(max_concurrent_calls=5)
    ContactFactory.create_batch(2, campaign=campaign, next_attempt_at=open_now)
    report = run_tick(open_now)
    assert report.dialled == 2
    assert "at_cap" not in report.skipped
