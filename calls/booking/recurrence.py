"""The repetitions the back office's booking form offers, as RFC 5545 rules and back.

The form never asks for a rule's text: it asks how often, on which days and until when, and
`build_rrule` writes the rule (`calls.booking.scheduling.parse_rrule` reads it, as it reads
the API's). `read_rrule` turns a stored rule back into the form's choices, or None for a rule
the form cannot show (one set through the API with other parts), which is then kept as is."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY")
DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # index = datetime.weekday()


def build_rrule(
    *,
    frequency: str,
    interval: int = 1,
    weekdays: list[int] | tuple[int, ...] = (),
    until: dt.date | None = None,
    count: int | None = None,
) -> str:
    """The rule for "every `interval` days/weeks/months [on these weekdays] [until a day, or
    `count` times]"; '' for a call that does not repeat (`frequency` ''). `until` is a day in
    the call's own zone, its last occurrence included."""
    if not frequency:
        return ""
    if frequency not in FREQUENCIES:
        raise ValueError(_("Unknown frequency %(frequency)r.") % {"frequency": frequency})
    if until is not None and count is not None:
        raise ValueError(_("A rule ends on a day or after a count, not both."))
    parts = [f"FREQ={frequency}"]
    if interval and interval > 1:
        parts.append(f"INTERVAL={interval}")
    if frequency == "WEEKLY" and weekdays:
        parts.append("BYDAY=" + ",".join(DAY_CODES[d] for d in sorted(set(weekdays))))
    if until is not None:
        # Local wall-clock time, the end of that day: parse_rrule reads an UNTIL without Z
        # in the call's zone.
        parts.append(f"UNTIL={until:%Y%m%d}T235959")
    if count is not None:
        parts.append(f"COUNT={count}")
    return ";".join(parts)


def read_rrule(text: str, *, zone: str) -> dict | None:
    """The form's choices for a stored rule: {"frequency", "interval", "weekdays", "until",
    "count"}; {"frequency": ""} for no rule; None when the rule has parts the form lacks."""
    body = (text or "").strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body:
        return {"frequency": "", "interval": 1, "weekdays": [], "until": None, "count": None}
    parts = {}
    for part in body.split(";"):
        key, _, value = part.partition("=")
        parts[key.strip().upper()] = value.strip().upper()
    if set(parts) - {"FREQ", "INTERVAL", "BYDAY", "UNTIL", "COUNT"}:
        return None
    frequency = parts.get("FREQ", "")
    if frequency not in FREQUENCIES:
        return None
    choices = {"frequency": frequency, "interval": 1, "weekdays": [], "until": None, "count": None}
    if "INTERVAL" in parts:
        if not parts["INTERVAL"].isdigit() or int(parts["INTERVAL"]) < 1:
            return None
        choices["interval"] = int(parts["INTERVAL"])
    if "BYDAY" in parts:
        days = parts["BYDAY"].split(",")
        if frequency != "WEEKLY" or any(day not in DAY_CODES for day in days):
            return None  # "1MO" (first Monday) and the like are the API's
        choices["weekdays"] = sorted(DAY_CODES.index(day) for day in days)
    if "COUNT" in parts:
        if not parts["COUNT"].isdigit():
            return None
        choices["count"] = int(parts["COUNT"])
    if "UNTIL" in parts:
        choices["until"] = _until_day(parts["UNTIL"], zone)
        if choices["until"] is None:
            return None
    return choices


def _until_day(value: str, zone: str) -> dt.date | None:
    """The local day an UNTIL ends on (a UTC one, …Z, read in the call's zone)."""
    if re.fullmatch(r"\d{8}", value):
        return dt.datetime.strptime(value, "%Y%m%d").date()
    if re.fullmatch(r"\d{8}T\d{6}", value):
        return dt.datetime.strptime(value, "%Y%m%dT%H%M%S").date()
    if re.fullmatch(r"\d{8}T\d{6}Z", value):
        instant = dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        return instant.astimezone(ZoneInfo(zone)).date()
    return None
