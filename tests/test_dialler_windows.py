"""The calling window at dial time: edges, weekdays, midnight, DST, several zones, policies."""

import datetime as dt

import pytest

from campaigns.windows import window_open_at, zones_open
from tests.factories import ContactFactory, RunningCampaignFactory

UTC = dt.UTC
NY = ["America/New_York"]


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("utc_time", "open_"),
    [
        (at(2026, 11, 23, 13, 59), False),  # 08:59 in New York
        (at(2026, 11, 23, 14, 0), True),  # 09:00: the start is inside
        (at(2026, 11, 24, 0, 59), True),  # 19:59
        (at(2026, 11, 24, 1, 0), False),  # 20:00: the end is outside
    ],
)
def test_window_edges_in_the_callees_time(run_tick, provider, utc_time, open_):
    ContactFactory(timezones=NY, next_attempt_at=at(2026, 11, 20))
    assert run_tick(utc_time).dialled == (1 if open_ else 0)


@pytest.mark.django_db
def test_a_closed_window_is_reported_as_the_reason(run_tick):
    ContactFactory(timezones=NY, next_attempt_at=at(2026, 11, 20))
    assert run_tick(at(2026, 11, 23, 12, 0)).skipped == {"window_closed": 1}


@pytest.mark.django_db
def test_weekday_mask_is_read_on_the_callees_local_day(run_tick, provider):
    # Tuesdays only; Monday 23:30 UTC is already Tuesday 08:30 in Tokyo.
    campaign = RunningCampaignFactory(
        weekdays=[1], window_start=dt.time(8, 0), window_end=dt.time(20, 0)
    )
    ContactFactory(campaign=campaign, timezones=["Asia/Tokyo"], next_attempt_at=at(2026, 11, 1))
    assert run_tick(at(2026, 11, 23, 3, 0)).claimed == 0  # Monday 12:00 in Tokyo
    assert run_tick(at(2026, 11, 23, 23, 30)).dialled == 1


@pytest.mark.django_db
def test_number_with_several_zones_waits_until_all_are_open(run_tick, provider):
    ContactFactory(
        timezones=["America/New_York", "America/Los_Angeles"], next_attempt_at=at(2026, 11, 20)
    )
    assert run_tick(at(2026, 11, 23, 15, 0)).claimed == 0  # 10:00 NY, 07:00 LA
    assert run_tick(at(2026, 11, 23, 17, 0)).dialled == 1  # 12:00 NY, 09:00 LA


@pytest.mark.django_db
def test_spring_forward_day_opens_at_nine_local_time(run_tick, provider):
    # 8 March 2026: New York moves from UTC-5 to UTC-4 at 02:00; nine o'clock is 13:00 UTC.
    ContactFactory(timezones=NY, next_attempt_at=at(2026, 3, 1))
    assert run_tick(at(2026, 3, 8, 12, 59)).claimed == 0
    assert run_tick(at(2026, 3, 8, 13, 0)).dialled == 1


@pytest.mark.django_db
def test_fall_back_day_opens_an_hour_later_in_utc(run_tick, provider):
    # 1 November 2026: back to UTC-5; 13:30 UTC is 08:30 there (it was 09:30 the day before).
    ContactFactory(timezones=NY, next_attempt_at=at(2026, 10, 1))
    assert run_tick(at(2026, 11, 1, 13, 30)).claimed == 0
    assert run_tick(at(2026, 11, 1, 14, 0)).dialled == 1


@pytest.mark.django_db
def test_campaign_policy_reads_the_window_in_the_campaign_zone(run_tick, provider):
    campaign = RunningCampaignFactory(window_policy="campaign", timezone="America/New_York")
    ContactFactory(
        campaign=campaign, timezones=["America/Chicago"], next_attempt_at=at(2026, 11, 20)
    )
    # 19:30 in New York is inside; 18:30 in Chicago too.
    assert run_tick(at(2026, 11, 24, 0, 30)).dialled == 1


@pytest.mark.django_db
def test_campaign_policy_closed_in_the_campaign_zone_dials_nobody(run_tick, provider):
    campaign = RunningCampaignFactory(window_policy="campaign", timezone="America/New_York")
    ContactFactory(
        campaign=campaign, timezones=["America/Los_Angeles"], next_attempt_at=at(2026, 11, 20)
    )
    # 20:30 in New York (closed there), 17:30 in Los Angeles (open there).
    assert run_tick(at(2026, 11, 24, 1, 30)).skipped == {"window_closed": 1}
    assert provider.calls == []


@pytest.mark.django_db
def test_legal_window_holds_in_the_callees_zone_whatever_the_policy(run_tick, provider):
    campaign = RunningCampaignFactory(window_policy="campaign", timezone="America/New_York")
    ContactFactory(
        campaign=campaign, timezones=["America/Los_Angeles"], next_attempt_at=at(2026, 11, 20)
    )
    # 10:30 in New York (campaign window open), 07:30 in Los Angeles (before 08:00).
    assert run_tick(at(2026, 11, 23, 15, 30)).claimed == 0
    assert run_tick(at(2026, 11, 23, 16, 0)).dialled == 1  # 08:00 in Los Angeles


@pytest.mark.django_db
def test_legal_window_bounds_a_campaign_window_stored_before_the_rule(run_tick, provider):
    campaign = RunningCampaignFactory(window_start=dt.time(6, 0), window_end=dt.time(23, 0))
    ContactFactory(campaign=campaign, timezones=NY, next_attempt_at=at(2026, 11, 20))
    assert run_tick(at(2026, 11, 23, 12, 30)).claimed == 0  # 07:30 in New York
    assert run_tick(at(2026, 11, 24, 2, 30)).claimed == 0  # 21:30
    assert run_tick(at(2026, 11, 23, 13, 0)).dialled == 1  # 08:00


class NightCampaign:
    """A window crossing midnight, Mondays only (needs a legal window that allows nights)."""

    window_policy = "contact"
    window_start = dt.time(22, 0)
    window_end = dt.time(2, 0)
    weekdays = [0]
    timezone = "UTC"


@pytest.mark.parametrize(
    ("utc_time", "open_"),
    [
        (at(2026, 11, 23, 21, 59), False),  # Monday, before it opens
        (at(2026, 11, 23, 22, 0), True),  # Monday 22:00
        (at(2026, 11, 24, 1, 59), True),  # Tuesday 01:59: Monday's window still
        (at(2026, 11, 24, 2, 0), False),  # closes at 02:00
        (at(2026, 11, 23, 1, 0), False),  # Monday 01:00 belongs to Sunday's window
        (at(2026, 11, 24, 22, 30), False),  # Tuesday night: not a calling day
    ],
)
def test_window_crossing_midnight_belongs_to_the_day_it_opened(settings, utc_time, open_):
    settings.LEGAL_WINDOW_START, settings.LEGAL_WINDOW_END = "20:00", "04:00"
    assert zones_open(["UTC"], campaign=NightCampaign, now=utc_time) is open_


@pytest.mark.django_db
def test_midnight_crossing_window_dials_after_midnight(settings, run_tick, provider):
    settings.LEGAL_WINDOW_START, settings.LEGAL_WINDOW_END = "20:00", "04:00"
    campaign = RunningCampaignFactory(
        timezone="Europe/London",
        weekdays=[0],
        window_start=dt.time(22, 0),
        window_end=dt.time(2, 0),
    )
    ContactFactory(campaign=campaign, timezones=["Europe/London"], next_attempt_at=at(2026, 11, 1))
    assert run_tick(at(2026, 11, 24, 0, 30)).dialled == 1  # Tuesday 00:30, Monday's window


def test_window_open_at_is_start_inclusive_end_exclusive():
    monday = dt.datetime(2026, 11, 23, 9, 0)
    assert window_open_at(monday, dt.time(9), dt.time(20), [0])
    assert not window_open_at(monday.replace(hour=20), dt.time(9), dt.time(20), [0])
    assert not window_open_at(monday, dt.time(9), dt.time(20), [1, 2, 3, 4])


def test_unknown_zone_is_never_open():
    assert not zones_open(["Mars/Olympus_Mons"], campaign=NightCampaign, now=at(2026, 11, 23))
