"""How many calls a tick places: caps, batch size, fair shares between campaigns, the pace."""

import pytest

from calls.dialler.claim import share_capacity
from calls.dialler.pace import TokenBucket
from calls.models import CallAttempt
from tests.factories import CallAttemptFactory, ContactFactory, RunningCampaignFactory
from tests.fakes import FakeClock


def campaign_with_contacts(now, n, **campaign_kw):
    campaign = RunningCampaignFactory(**campaign_kw)
    ContactFactory.create_batch(n, campaign=campaign, next_attempt_at=now)
    return campaign


def live_call(campaign, now):
    contact = ContactFactory(campaign=campaign, state="in_progress", last_attempt_number=1)
    return CallAttemptFactory(contact=contact, attempt_number=1, status="ringing", created_at=now)


def dialled_per_campaign(provider):
    counts = {}
    for call in provider.calls:
        counts[call["campaign"]] = counts.get(call["campaign"], 0) + 1
    return counts


@pytest.mark.django_db
def test_campaign_cap_counts_the_calls_already_live(open_now, run_tick, provider):
    campaign = campaign_with_contacts(open_now, 10, max_concurrent_calls=3)
    live_call(campaign, open_now)
    live_call(campaign, open_now)
    assert run_tick(open_now).dialled == 1
    assert run_tick(open_now).skipped == {"campaign_cap": 1}
    assert CallAttempt.objects.filter(status__in=CallAttempt.LIVE_STATUSES).count() == 3


@pytest.mark.django_db
def test_global_cap_counts_live_calls_of_every_campaign(
    open_now, run_tick, provider, dialler_settings
):
    dialler_settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = 5
    busy = campaign_with_contacts(open_now, 0)
    live_call(busy, open_now)
    live_call(busy, open_now)
    campaign_with_contacts(open_now, 10)
    assert run_tick(open_now).dialled == 3
    assert run_tick(open_now).skipped == {"global_cap": 1, "no_callable_contacts": 1}


@pytest.mark.django_db
def test_batch_size_limits_each_campaign_per_tick(open_now, run_tick, provider, dialler_settings):
    dialler_settings.DIALLER_BATCH_SIZE = 4
    campaign_with_contacts(open_now, 10)
    campaign_with_contacts(open_now, 10)
    assert run_tick(open_now).dialled == 8
    assert sorted(dialled_per_campaign(provider).values()) == [4, 4]


@pytest.mark.django_db
def test_pace_budget_limits_a_tick_to_what_the_pace_can_dial(
    open_now, run_tick, provider, dialler_settings
):
    dialler_settings.DIALLER_CALLS_PER_SECOND = 1.0
    campaign_with_contacts(open_now, 20)
    assert run_tick(open_now, interval=5).dialled == 5


@pytest.mark.django_db
def test_busy_campaign_does_not_starve_the_others(open_now, run_tick, provider, dialler_settings):
    dialler_settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = 12
    big = campaign_with_contacts(open_now, 200, max_concurrent_calls=100)
    small = campaign_with_contacts(open_now, 20, max_concurrent_calls=100)
    third = campaign_with_contacts(open_now, 20, max_concurrent_calls=100)
    run_tick(open_now)
    assert dialled_per_campaign(provider) == {big.pk: 4, small.pk: 4, third.pk: 4}


@pytest.mark.django_db
def test_share_a_campaign_cannot_use_goes_to_the_others(
    open_now, run_tick, provider, dialler_settings
):
    dialler_settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = 10
    nearly_done = campaign_with_contacts(open_now, 2)
    big = campaign_with_contacts(open_now, 50)
    assert run_tick(open_now).dialled == 10
    assert dialled_per_campaign(provider) == {nearly_done.pk: 2, big.pk: 8}


def test_share_capacity_deals_round_robin_within_each_room():
    assert share_capacity({1: 50, 2: 50, 3: 50}, 10, [3, 1, 2]) == {1: 3, 2: 3, 3: 4}
    assert share_capacity({1: 1, 2: 50}, 10, [1, 2]) == {1: 1, 2: 9}
    assert share_capacity({1: 2, 2: 3}, 100, [1, 2]) == {1: 2, 2: 3}
    assert share_capacity({1: 5}, 0, [1]) == {1: 0}


def test_token_bucket_never_runs_ahead_of_the_pace():
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)
    start = clock()
    times = []
    for _ in range(11):
        bucket.acquire()
        times.append(clock() - start)
    assert times[-1] == pytest.approx(2.0)
    assert all(t >= i / 5 - 1e-9 for i, t in enumerate(times))


@pytest.mark.django_db
def test_dialling_follows_the_calls_per_second_pace(open_now, dialler_settings):
    from calls.dialler.tick import tick
    from tests.fakes import FakeProvider

    dialler_settings.DIALLER_CALLS_PER_SECOND = 4.0
    clock = FakeClock()
    provider = FakeProvider(clock=clock)
    campaign_with_contacts(open_now, 8)
    start = clock()
    report = tick(
        open_now, provider=provider, pace=TokenBucket(4.0, clock=clock, sleep=clock.sleep)
    )
    assert report.dialled == 8
    call_times = sorted(call["at"] - start for call in provider.calls)
    # Call i can only start once i tokens have been earned at 4 a second.
    assert all(t >= i / 4 - 1e-9 for i, t in enumerate(call_times))
    assert clock() - start == pytest.approx(7 / 4)
