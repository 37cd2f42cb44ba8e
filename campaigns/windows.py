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
