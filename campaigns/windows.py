"""Calling windows: when a campaign may ring someone, in whose local time."""

import datetime as dt
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings


def parse_hhmm(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def legal_window() -> tuple[dt.time, dt.time]:
    """The project-wide window (callee's local time) that bounds every campaign."""
    return parse_hhmm(settings.LEGAL_WINDOW_START), parse_hhmm(settings.LEGAL_WINDOW_END)


def window_minutes(start: dt.time, end: dt.time) -> list[tuple[int, int]]:
    """The window as minute ranges within one day; a window ending before it starts crosses
    midnight and becomes two ranges."""
    s, e = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    if s < e:
        return [(s, e)]
    if s == e:
        return []
    return [(s, 24 * 60), (0, e)]


def window_within(start: dt.time, end: dt.time, outer_start: dt.time, outer_end: dt.time) -> bool:
    """True when every minute of start-end also lies in outer_start-outer_end."""
    outer = window_minutes(outer_start, outer_end)
    return all(any(os <= s and e <= oe for os, oe in outer) for s, e in window_minutes(start, end))


def time_in_window(local: dt.time, start: dt.time, end: dt.time) -> bool:
    """Start inclusive, end exclusive; a window with end before start crosses midnight."""
    if start < end:
        return start <= local < end
    if start == end:
        return False
    return local >= start or local < end


def is_valid_zone(name: str) -> bool:
    return name in _zones()


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def local_now(now: dt.datetime, zone: str) -> dt.datetime:
    return now.astimezone(ZoneInfo(zone))


def window_open_at(local: dt.datetime, start: dt.time, end: dt.time, weekdays) -> bool:
    """Whether a daily window on the allowed weekdays is open at this local time.

    A window that crosses midnight belongs to the day it opened on: with 22:00-02:00 on
    Mondays only, Tuesday 01:00 is inside (Monday's window) and Monday 01:00 is not."""
    moment = local.time().replace(tzinfo=None)
    if not time_in_window(moment, start, end):
        return False
    opened_on = local.date()
    if start > end and moment < end:
        opened_on -= dt.timedelta(days=1)
    return opened_on.weekday() in weekdays


def zones_open(zones: list[str], *, campaign, now: dt.datetime) -> bool:
    """Whether `campaign` may ring a number whose callee lives in all of `zones` at `now`.

    The project's legal window holds in every one of the callee's zones whatever the
    campaign's policy; the campaign's own window (weekdays and hours) is read in each of the
    callee's zones (policy `contact`) or in the campaign's zone (policy `campaign`). A number
    with several zones is callable only when the window is open in all of them."""
    legal_start, legal_end = legal_window()
    for zone in zones:
        if not is_valid_zone(zone):
            return False
        local = local_now(now, zone)
        if not time_in_window(local.time().replace(tzinfo=None), legal_start, legal_end):
            return False
        if campaign.window_policy == "contact" and not window_open_at(
            local, campaign.window_start, campaign.window_end, campaign.weekdays
        ):
            return False
    if campaign.window_policy == "campaign":
        return campaign_zone_open(campaign, now=now)
    return bool(zones)


def campaign_zone_open(campaign, *, now: dt.datetime) -> bool:
    """The campaign's window read in the campaign's own zone (policy `campaign`)."""
    return window_open_at(
        local_now(now, campaign.timezone),
        campaign.window_start,
        campaign.window_end,
        campaign.weekdays,
    )


def open_zone_keys(campaign, zone_keys, *, now: dt.datetime) -> list[str]:
    """The zone keys (Contact.timezone_key) in which `campaign` may ring someone at `now`.

    Computed once per tick from the few distinct keys of the campaign's contacts; the claim
    then filters on them in SQL."""
    return [key for key in zone_keys if zones_open(key.split(), campaign=campaign, now=now)]
