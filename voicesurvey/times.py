"""Times as the back office shows them: in the operator's zone (activated per request by
voicesurvey.accounts.middleware) and labelled with it, the callee's own local time, and how
long something lasted."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext as _


def operator_time(at: dt.datetime | None, *, seconds: bool = False) -> str:
    """`at` in the operator's zone, with the zone's abbreviation: "2026-11-23 13:00:05 CET"."""
    if at is None:
        return "–"
    local = timezone.localtime(at)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    return f"{local:%Y-%m-%d} {local.strftime(clock)} {local.tzname()}"


def callee_time(
    at: dt.datetime | None, zones: list[str], *, seconds: bool = False, named: bool = False
) -> str:
    """`at` on the callee's clock: "07:00 EST" (`named`: "07:00 EST, America/New_York"); the
    date too when it is not the operator's date; a number in several zones (a toll-free one)
    shows the first and how many more."""
    if at is None or not zones:
        return "–"
    local = at.astimezone(ZoneInfo(zones[0]))
    clock = local.strftime("%H:%M:%S" if seconds else "%H:%M")
    if local.date() != timezone.localtime(at).date():
        clock = f"{local:%Y-%m-%d} {clock}"
    text = f"{clock} {local.tzname()}"
    if named and len(zones) == 1:
        text += f", {zones[0]}"
    if len(zones) > 1:
        text += " " + _("(%(zone)s and %(more)d more zones)") % {
            "zone": zones[0],
            "more": len(zones) - 1,
        }
    return text


def duration_text(seconds: float | None) -> str:
    """42 -> '42 s'; 125 -> '2 min 05 s'; 7260 -> '2 h 01 min'; 200000 -> '2 days 7 h'; None
    (a call that never talked) -> '–'."""
    if seconds is None:
        return "–"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return _("%(s)d s") % {"s": seconds}
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return _("%(m)d min %(s)02d s") % {"m": minutes, "s": secs}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return _("%(d)d days %(h)d h") % {"d": days, "h": hours}
