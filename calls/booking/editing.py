"""Changing a booked scheduled call, and what the doors show of its future.

Kept apart from `calls.booking.scheduling` (booking, pause/resume/cancel and the tick's
claim) so the API and the admin share one way to edit a call: `edit_scheduled_call`."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from calls.booking.scheduling import (
    ACTIVE,
    IllegalScheduledCallTransition,
    actor_name,
    call_status,
    first_legal_occurrence,
    first_occurrence,
    localise,
    log_event,
    misfire_grace,
    next_occurrences,
)
from calls.models import ScheduledCall

S = ScheduledCall.Status
SETTINGS_FIELDS = ("note", "max_retries", "retry_delay_minutes", "misfire_grace_seconds")
TIMING_FIELDS = ("run_at", "timezone", "rrule")
EDITABLE_FIELDS = SETTINGS_FIELDS + TIMING_FIELDS


@transaction.atomic
def edit_scheduled_call(
    call: ScheduledCall, *, changes: dict, now: dt.datetime, by=None
) -> ScheduledCall:
    """Change a scheduled call's note, retry settings or timing (run_at, timezone, rrule).

    A new timing is checked as a new booking would be (a known zone, a valid rule, a future
    occurrence inside the legal window) and replaces the series: next_run_at is recomputed and
    the occurrences cancelled or held one by one are forgotten. A naive run_at is wall-clock
    time in the (new or kept) zone. Timing may change only while the call is scheduled or
    paused (IllegalScheduledCallTransition otherwise); the other fields at any time.
    Raises ValidationError with field names."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(
            {name: gettext("This field cannot be changed.") for name in sorted(unknown)}
        )
    call = ScheduledCall.objects.select_for_update().get(pk=call.pk)
    before = {name: _plain(getattr(call, name)) for name in changes}
    for name in SETTINGS_FIELDS:
        if name in changes:
            setattr(call, name, changes[name])
    timing = {name: changes[name] for name in TIMING_FIELDS if name in changes}
    if timing:
        if call.status not in (S.SCHEDULED, S.PAUSED):
            raise IllegalScheduledCallTransition(
                gettext("Cannot change the time of a call that is %(status)s.")
                % {"status": call_status(call)}
            )
        zone = timing.get("timezone", call.timezone)
        run_at = timing.get("run_at")
        if run_at is None:
            # Keep the wall-clock time of the first occurrence when only the zone changes.
            run_at = call.run_at.astimezone(ZoneInfo(call.timezone)).replace(tzinfo=None)
        call.run_at = localise(run_at, zone)
        call.timezone = zone
        call.rrule = timing.get("rrule", call.rrule).strip()
        call.skipped_occurrences = []
        call.retries_done = 0
        call.next_run_at = first_legal_occurrence(call, call.contact, now=now)
    call.full_clean(exclude=["contact", "created_by"])
    call.save()
    after = {name: _plain(getattr(call, name)) for name in changes}
    changed = {name: after[name] for name in changes if before[name] != after[name]}
    if changed:
        if timing:
            changed["next_run_at"] = _plain(call.next_run_at)
        log_event(call, "edited", at=now, by=actor_name(by), before=before, changes=changed)
    return call


def _plain(value):
    return value.isoformat() if isinstance(value, dt.datetime) else value


def upcoming_occurrences(call: ScheduledCall, *, now: dt.datetime, count: int = 5):
    """The occurrences the dialler will place next (UTC): none for a finished call; for a
    paused one, those a resume now would keep."""
    if call.status not in ACTIVE or call.next_run_at is None:
        return []
    first = call.next_run_at
    if call.status == S.PAUSED and first < now - misfire_grace(call):
        first = first_occurrence(call, after=now - misfire_grace(call))
        if first is None:
            return []
    if count <= 1:
        return [first][:count]
    later = next_occurrences(call, after=first + dt.timedelta(microseconds=1), count=count - 1)
    return [first, *later]
