"""Scheduled calls: one-off or recurring (RFC 5545) calls to one contact at a set time.

Occurrences are computed in the zone the call was booked in, on wall-clock time, so "every
weekday at 18:00 Europe/Paris" stays at 18:00 across daylight-saving changes; they are stored
and compared in UTC."""

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils.translation import gettext

from calls.hook_events import booking_completed, booking_missed
from calls.models import CallEvent, ScheduledCall
from campaigns import windows
from contacts.models import Contact

S = ScheduledCall.Status
ACTIVE = (S.SCHEDULED, S.PAUSED, S.RUNNING)
RRULE_FIELDS = {
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYHOUR",
    "BYMINUTE",
    "BYSETPOS",
    "WKST",
    "BYYEARDAY",
    "BYWEEKNO",
}
MAX_SCAN = 5000  # occurrences looked at before giving up on finding the next one


class IllegalScheduledCallTransition(Exception):
    """A pause/resume/cancel the scheduled call's status does not allow (API: 409)."""


# --- occurrences ----------------------------------------------------------------------------


def parse_rrule(text: str, *, dtstart: dt.datetime, zone: str):
    """The dateutil rule for `text`, evaluated on wall-clock time in `zone`.

    Raises ValidationError on anything that is not a plain RRULE body."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    parts = {}
    for part in filter(None, body.split(";")):
        key, _, value = part.partition("=")
        if key.upper() not in RRULE_FIELDS or not value:
            raise ValidationError(
                {
                    "rrule": gettext("Unsupported or malformed rule part '%(part)s'.")
                    % {"part": part}
                }
            )
        parts[key.upper()] = value
    if "FREQ" not in parts:
        raise ValidationError(
            {"rrule": gettext("The rule needs a FREQ (DAILY, WEEKLY, MONTHLY…).")}
        )
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValidationError({"rrule": gettext("Use COUNT or UNTIL, not both.")})
    for name in ("INTERVAL", "COUNT"):
        # dateutil takes 0 (the same time again) and fails on a negative one only later,
        # while the occurrences are computed.
        if name in parts and not (
            parts[name].isascii() and parts[name].isdigit() and int(parts[name]) >= 1
        ):
            raise ValidationError(
                {
                    "rrule": gettext("%(part)s must be a whole number from 1, not '%(value)s'.")
                    % {"part": name, "value": parts[name]}
                }
            )
    if "UNTIL" in parts:
        parts["UNTIL"] = _local_until(parts["UNTIL"], zone)
    local_start = dtstart.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    try:
        return rrulestr(";".join(f"{k}={v}" for k, v in parts.items()), dtstart=local_start)
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            {"rrule": gettext("Invalid rule: %(error)s.") % {"error": exc}}
        ) from exc


def _local_until(value: str, zone: str) -> str:
    """UNTIL in UTC (…Z) becomes the same instant in local wall-clock time."""
    if not re.fullmatch(r"\d{8}(T\d{6}Z?)?", value):
        raise ValidationError(
            {
                "rrule": gettext(
                    "UNTIL must look like 20261231 or 20261231T180000Z, not '%(value)s'."
                )
                % {"value": value}
            }
        )
    try:
        if value.endswith("Z"):
            instant = dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            return instant.astimezone(ZoneInfo(zone)).strftime("%Y%m%dT%H%M%S")
        dt.datetime.strptime(value, "%Y%m%dT%H%M%S" if "T" in value else "%Y%m%d")
    except (ValueError, OverflowError):  # 20271340, 20270229, year 0 or 10000 once local
        raise ValidationError(
            {"rrule": gettext("UNTIL is not a date: '%(value)s'.") % {"value": value}}
        ) from None
    return value


def occurrences(call: ScheduledCall, *, after: dt.datetime | None = None) -> Iterator[dt.datetime]:
    """The call's occurrences in UTC, from the first at or after `after`, skipped ones left out."""
    skipped = {entry["at"] for entry in call.skipped_occurrences}
    zone = ZoneInfo(call.timezone)
    if not call.rrule:
        times: Iterator = iter([call.run_at])
    else:
        rule = parse_rrule(call.rrule, dtstart=call.run_at, zone=call.timezone)
        times = (local.replace(tzinfo=zone) for local in rule)
    for index, at in enumerate(_until_out_of_range(times)):
        if index > MAX_SCAN:
            return
        if after is not None and at < after:
            continue
        if at.isoformat() in skipped:
            continue
        yield at


def _until_out_of_range(times: Iterator[dt.datetime]) -> Iterator[dt.datetime]:
    """The times in UTC, ending before the first that UTC cannot hold (past the end of 9999)."""
    for at in times:
        try:
            yield at.astimezone(dt.UTC)
        except OverflowError:
            return


def next_occurrences(
    call: ScheduledCall, *, after: dt.datetime, count: int = 5
) -> list[dt.datetime]:
    found = []
    for at in occurrences(call, after=after):
        found.append(at)
        if len(found) == count:
            break
    return found


def first_occurrence(call: ScheduledCall, *, after: dt.datetime) -> dt.datetime | None:
    return next(occurrences(call, after=after), None)


def misfire_grace(call: ScheduledCall) -> dt.timedelta:
    seconds = call.misfire_grace_seconds
    if seconds is None:
        seconds = settings.SCHEDULED_CALL_MISFIRE_GRACE_SECONDS
    return dt.timedelta(seconds=seconds)


def booking_event(
    call: ScheduledCall,
    kind: str,
    *,
    at: dt.datetime,
    by: str = "",
    message: str = "",
    attempt=None,
    **payload,
) -> CallEvent:
    """The event (unsaved) that tells what happened to a booked call."""
    return CallEvent(
        scheduled_call=call,
        attempt=attempt,
        kind=kind,
        at=at,
        actor=by,
        message=message,
        payload=payload,
    )


def log_event(call: ScheduledCall, kind: str, **details) -> None:
    booking_event(call, kind, **details).save()


def call_status(call: ScheduledCall) -> str:
    """The call's status as a sentence says it, in the operator's language ("paused")."""
    return str(ScheduledCall.Status(call.status).label).lower()


def actor_name(user) -> str:
    return user.get_username() if user is not None else "system"


# --- booking --------------------------------------------------------------------------------


def localise(run_at: dt.datetime, zone: str) -> dt.datetime:
    """A naive run_at is wall-clock time in `zone`; an aware one keeps its instant."""
    if not windows.is_valid_zone(zone):
        raise ValidationError(
            {"timezone": gettext("Unknown time zone '%(zone)s'.") % {"zone": zone}}
        )
    if run_at.tzinfo is None:
        run_at = run_at.replace(tzinfo=ZoneInfo(zone))
    try:
        return run_at.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31 23:00 in New York is already year 10000 in UTC
        raise ValidationError(
            {"run_at": gettext("The date is out of range once converted to UTC.")}
        ) from None


def check_legal_window(contact: Contact, at: dt.datetime) -> str:
    """'' when `at` is inside the legal window in all the callee's zones, else why not."""
    start, end = windows.legal_window()
    for zone in contact.zones:
        local = at.astimezone(ZoneInfo(zone))
        if not windows.time_in_window(local.time(), start, end):
            return gettext(
                "%(time)s in %(zone)s is outside the legal calling window %(start)s-%(end)s."
            ) % {
                "time": f"{local:%H:%M}",
                "zone": zone,
                "start": f"{start:%H:%M}",
                "end": f"{end:%H:%M}",
            }
    return ""


# A booked call is a person's own appointment: at most one a day. A rule that rings them
# hourly (or at several hours of a day) is refused when booked or edited.
SUB_DAILY = ("SECONDLY", "MINUTELY", "HOURLY")


def refuse_more_than_daily(rrule: str) -> None:
    body = rrule.upper().strip().removeprefix("RRULE:")
    parts = dict(part.partition("=")[::2] for part in body.split(";") if part)
    several = [key for key in ("BYHOUR", "BYMINUTE") if "," in parts.get(key, "")]
    if parts.get("FREQ") in SUB_DAILY or several:
        raise ValidationError(
            {"rrule": gettext("A booked call repeats at most once a day (DAILY, WEEKLY, MONTHLY).")}
        )


def first_legal_occurrence(call: ScheduledCall, contact: Contact, *, now) -> dt.datetime:
    """The call's first occurrence after `now`. Raises ValidationError (on run_at) when there
    is none, or when it falls outside the legal window; on rrule for a rule that would call
    more than once a day."""
    refuse_more_than_daily(call.rrule)
    upcoming = first_occurrence(call, after=now)
    if upcoming is None:
        raise ValidationError({"run_at": gettext("The call has no occurrence in the future.")})
    problem = check_legal_window(contact, upcoming)
    if problem:
        raise ValidationError({"run_at": problem})
    return upcoming


def campaign_refusal(campaign, first_at: dt.datetime) -> str:
    """'' when `campaign` will dial a booking due at `first_at`, else why it would not.

    A booking is placed only while its campaign is running (the tick skips it otherwise,
    until it is missed), so what is refused at booking time is what would surely be missed:
    a finished campaign, a draft (nobody has started it), a paused one (the operator stopped
    its calls: resume it first), a scheduled one that starts after the call, and a campaign
    with nothing to ask. A scheduled campaign that starts by then is accepted: it will run."""
    from campaigns.models import Campaign, status_word

    status, names = campaign.status, {"name": campaign.name}
    if campaign.is_final:
        return gettext(
            "The contact's campaign '%(name)s' is %(status)s: it places no more calls."
        ) % {**names, "status": status_word(status)}
    if status == Campaign.Status.DRAFT:
        return (
            gettext(
                "The contact's campaign '%(name)s' is a draft: start or schedule it first, or "
                "the call would never be placed."
            )
            % names
        )
    if status == Campaign.Status.PAUSED:
        return (
            gettext(
                "The contact's campaign '%(name)s' is paused: resume it first, or the call "
                "would be missed."
            )
            % names
        )
    if status == Campaign.Status.SCHEDULED and campaign.start_at and first_at < campaign.start_at:
        return gettext(
            "The contact's campaign '%(name)s' starts at %(start)s UTC: book the call for then "
            "or later."
        ) % {**names, "start": f"{campaign.start_at:%Y-%m-%d %H:%M}"}
    if campaign.end_at and first_at >= campaign.end_at:
        return gettext(
            "The contact's campaign '%(name)s' ends at %(end)s UTC, before the call."
        ) % {**names, "end": f"{campaign.end_at:%Y-%m-%d %H:%M}"}
    if not campaign.is_ad_hoc and not campaign.questions.exists():
        return (
            gettext(
                "The contact's campaign '%(name)s' has no questions: the call would have "
                "nothing to ask."
            )
            % names
        )
    return ""


@transaction.atomic
def schedule_call(
    *,
    contact: Contact,
    run_at: dt.datetime,
    timezone: str = "UTC",
    rrule: str = "",
    now: dt.datetime,
    by=None,
    note: str = "",
    max_retries: int | None = None,
    retry_delay_minutes: int | None = None,
    misfire_grace_seconds: int | None = None,
) -> ScheduledCall:
    """Book a call to `contact` at `run_at` (once, or on `rrule`). Raises ValidationError:
    a contact that cannot be called, a campaign that would not place the call
    (campaign_refusal), no future occurrence, or one outside the legal window."""
    if contact.state in (Contact.State.REFUSED, Contact.State.EXCLUDED, Contact.State.INVALID):
        state = str(Contact.State(contact.state).label).lower()
        raise ValidationError(
            {
                "contact": gettext("This contact cannot be called: it is %(state)s.")
                % {"state": state}
            }
        )
    call = ScheduledCall(
        contact=contact,
        run_at=localise(run_at, timezone),
        timezone=timezone,
        rrule=rrule.strip(),
        note=note,
        created_by=by,
        misfire_grace_seconds=misfire_grace_seconds,
    )
    if max_retries is not None:
        call.max_retries = max_retries
    if retry_delay_minutes is not None:
        call.retry_delay_minutes = retry_delay_minutes
    upcoming = first_legal_occurrence(call, contact, now=now)
    problem = campaign_refusal(contact.campaign, upcoming)
    if problem:
        raise ValidationError({"contact": problem})
    call.next_run_at = upcoming
    call.save()
    log_event(
        call,
        "created",
        at=now,
        by=actor_name(by),
        next_run_at=upcoming.isoformat(),
        rrule=call.rrule,
        timezone=call.timezone,
    )
    return call


# --- pause / resume / cancel ----------------------------------------------------------------


def _locked(call: ScheduledCall) -> ScheduledCall:
    return ScheduledCall.objects.select_for_update().get(pk=call.pk)


def _advance(call: ScheduledCall, *, now: dt.datetime, after: dt.datetime) -> None:
    """Point next_run_at at the first occurrence after `after`; none left: completed."""
    call.next_run_at = first_occurrence(call, after=after)
    call.retries_done = 0
    if call.next_run_at is None:
        call.status = S.COMPLETED
    elif call.status not in (S.PAUSED,):
        call.status = S.SCHEDULED


@transaction.atomic
def pause_scheduled_call(
    call: ScheduledCall, *, scope: str = "series", now: dt.datetime, by=None
) -> ScheduledCall:
    """Pause the whole series, or hold only its next occurrence (resumable until it passes)."""
    call = _locked(call)
    if scope == "series":
        if call.status != S.SCHEDULED:
            raise IllegalScheduledCallTransition(
                gettext("Cannot pause a call that is %(status)s.") % {"status": call_status(call)}
            )
        call.status = S.PAUSED
        call.save(update_fields=["status", "updated_at"])
        log_event(call, "paused", at=now, by=actor_name(by), scope=scope)
        return call
    if call.status != S.SCHEDULED or call.next_run_at is None:
        raise IllegalScheduledCallTransition(
            gettext("Cannot pause the next occurrence of a call that is %(status)s.")
            % {"status": call_status(call)}
        )
    held = call.next_run_at
    call.skipped_occurrences = [
        *call.skipped_occurrences,
        {"at": held.isoformat(), "how": "paused"},
    ]
    _advance(call, now=now, after=held)
    call.save()
    log_event(call, "paused", at=now, by=actor_name(by), scope=scope, occurrence=held.isoformat())
    return call


@transaction.atomic
def resume_scheduled_call(
    call: ScheduledCall, *, scope: str = "series", now: dt.datetime, by=None
) -> ScheduledCall:
    """Resume a paused series (occurrences that passed while paused are skipped, not made up
    for), or give back the held occurrences that are still in the future."""
    call = _locked(call)
    if scope == "series":
        if call.status != S.PAUSED:
            raise IllegalScheduledCallTransition(
                gettext("Cannot resume a call that is %(status)s.") % {"status": call_status(call)}
            )
        call.status = S.SCHEDULED
        passed = []
        while call.next_run_at is not None and call.next_run_at < now - misfire_grace(call):
            passed.append(call.next_run_at.isoformat())
            call.next_run_at = first_occurrence(
                call, after=call.next_run_at + dt.timedelta(seconds=1)
            )
        if call.next_run_at is None:
            call.status = S.COMPLETED
        call.save()
        log_event(
            call, "resumed", at=now, by=actor_name(by), scope=scope, skipped_while_paused=passed
        )
        return call
    held = [
        e
        for e in call.skipped_occurrences
        if e["how"] == "paused" and dt.datetime.fromisoformat(e["at"]) >= now
    ]
    if call.status not in (S.SCHEDULED, S.COMPLETED) or not held:
        raise IllegalScheduledCallTransition(gettext("There is no held occurrence to resume."))
    call.skipped_occurrences = [e for e in call.skipped_occurrences if e not in held]
    call.status = S.SCHEDULED
    _advance(call, now=now, after=now)
    call.save()
    log_event(
        call, "resumed", at=now, by=actor_name(by), scope=scope, occurrences=[e["at"] for e in held]
    )
    return call


@transaction.atomic
def cancel_scheduled_call(
    call: ScheduledCall, *, scope: str = "series", now: dt.datetime, by=None, reason: str = ""
) -> ScheduledCall:
    """Cancel the whole series, or only its next occurrence."""
    call = _locked(call)
    if call.status not in (S.SCHEDULED, S.PAUSED) and not (
        scope == "series" and call.status == S.RUNNING
    ):
        raise IllegalScheduledCallTransition(
            gettext("Cannot cancel a call that is %(status)s.") % {"status": call_status(call)}
        )
    if scope == "series":
        call.status = S.CANCELLED
        call.next_run_at = None
        call.save(update_fields=["status", "next_run_at", "updated_at"])
        log_event(call, "cancelled", at=now, by=actor_name(by), scope=scope, message=reason)
        return call
    if call.next_run_at is None:
        raise IllegalScheduledCallTransition(gettext("There is no next occurrence to cancel."))
    dropped = call.next_run_at
    call.skipped_occurrences = [
        *call.skipped_occurrences,
        {"at": dropped.isoformat(), "how": "cancelled"},
    ]
    _advance(call, now=now, after=dropped)
    if call.status == S.COMPLETED and call.next_run_at is None:
        call.status = S.CANCELLED
    call.save()
    log_event(
        call,
        "cancelled",
        at=now,
        by=actor_name(by),
        scope=scope,
        occurrence=dropped.isoformat(),
        message=reason,
    )
    return call


# --- the tick's part ------------------------------------------------------------------------


def _excluded_among(contacts: list[Contact], now: dt.datetime) -> set[int]:
    """Ids of the contacts whose number has a do-not-call entry in force, for every campaign
    or for the contact's own: one query for the whole batch."""
    from contacts.models import in_force

    entries = set(
        in_force(now)
        .filter(phone__in={contact.phone for contact in contacts})
        .values_list("phone", "campaign_id")
    )
    return {
        contact.pk
        for contact in contacts
        if (contact.phone, None) in entries or (contact.phone, contact.campaign_id) in entries
    }


def claim_due_scheduled_calls(
    *,
    now: dt.datetime,
    limit: int,
    provider: str = "",
    campaign_room: dict[int, int] | None = None,
    held: set[int] | None = None,
):
    """Claim up to `limit` due scheduled calls: for each, create a queued CallAttempt and mark
    its contact in_progress, in one short transaction with skip-locked row claims, so any
    number of ticks can run at once and each occurrence is dialled once.

    Occurrences later than their misfire grace are marked missed and never dialled late; calls
    to numbers on the do-not-call list are cancelled. `campaign_room` (campaign id -> free
    concurrent calls) is decremented as calls are claimed; the ids of contacts whose booking
    was just missed are added to `held`, for the caller's campaign claim to leave alone.
    Returns (attempts, skipped)."""
    from calls.models import CallAttempt
    from campaigns.models import Campaign

    attempts, skipped = [], {}

    def skip(reason):
        skipped[reason] = skipped.get(reason, 0) + 1

    if limit <= 0:
        return attempts, skipped
    with transaction.atomic():
        due = list(
            ScheduledCall.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("contact__campaign")
            .filter(status=S.SCHEDULED, next_run_at__lte=now)
            .order_by("next_run_at")[: limit * 2]
        )
        excluded = _excluded_among([call.contact for call in due], now) if due else set()
        for call in due:
            contact = call.contact
            campaign = contact.campaign
            if now - call.next_run_at > misfire_grace(call):
                _record_missed(call, now=now, reason="late by more than the misfire grace")
                if held is not None:
                    held.add(contact.pk)
                skip("missed")
                continue
            if contact.pk in excluded or contact.state in (
                Contact.State.REFUSED,
                Contact.State.EXCLUDED,
                Contact.State.INVALID,
            ):
                call.status, call.next_run_at = S.CANCELLED, None
                call.save(update_fields=["status", "next_run_at", "updated_at"])
                log_event(
                    call,
                    "cancelled",
                    at=now,
                    by="dialler",
                    message="The number is on the do-not-call list or cannot be called.",
                )
                skip("do_not_call")
                continue
            if campaign.status != Campaign.Status.RUNNING:
                skip("campaign_not_running")
                continue
            if check_legal_window(contact, now):
                skip("outside_legal_window")
                continue
            if len(attempts) >= limit or (
                campaign_room is not None and campaign_room.get(campaign.pk, 0) <= 0
            ):
                skip("no_capacity")
                continue
            number = contact.last_attempt_number + 1
            # Not while this person, or their number in another campaign, is on a call.
            on_a_call = Contact.objects.filter(
                phone=OuterRef("phone"), state=Contact.State.IN_PROGRESS
            )
            taken = (
                Contact.objects.filter(pk=contact.pk)
                .exclude(state=Contact.State.IN_PROGRESS)
                .exclude(Exists(on_a_call))
                .update(
                    state=Contact.State.IN_PROGRESS,
                    last_attempt_number=number,
                    attempts_count=F("attempts_count") + 1,
                    last_attempt_at=now,
                    updated_at=now,
                )
            )
            if not taken:
                skip("contact_busy")  # a call to this person is live: wait for it
                continue
            attempt = CallAttempt.objects.create(
                contact=contact,
                campaign=campaign,
                scheduled_call=call,
                attempt_number=number,
                provider=provider,
                created_at=now,
                caller_id=campaign.caller_id,
                machine_detection=campaign.machine_detection,
                contact_state_before=contact.state,
            )
            call.status = S.RUNNING
            call.save(update_fields=["status", "updated_at"])
            log_event(
                call,
                "dialled",
                at=now,
                by="dialler",
                attempt=attempt,
                occurrence=call.next_run_at.isoformat(),
            )
            if campaign_room is not None:
                campaign_room[campaign.pk] -= 1
            attempts.append(attempt)
    return attempts, skipped


def _record_missed(call: ScheduledCall, *, now: dt.datetime, reason: str) -> None:
    missed = call.next_run_at
    call.retries_done = 0
    call.next_run_at = first_occurrence(call, after=max(now, missed + dt.timedelta(seconds=1)))
    call.status = S.SCHEDULED if call.next_run_at else S.MISSED
    call.save(update_fields=["status", "next_run_at", "retries_done", "updated_at"])
    log_event(call, "missed", at=now, by="dialler", message=reason, occurrence=missed.isoformat())
    booking_missed(call, occurrence=missed, reason=reason, now=now)
    # The person was promised a call at a set time: a missed one must not turn into an unbooked
    # call by the campaign's own calling. The campaign may call again after its no-answer
    # delay, as after any call that did not reach them. (This tick's own claim also skips the
    # contact, through `held`: the delay may be zero.)
    hold_until = now + call.contact.campaign.retry_delay("no_answer")
    Contact.objects.filter(
        pk=call.contact_id,
        state__in=(Contact.State.PENDING, Contact.State.NOT_REACHED),
    ).exclude(next_attempt_at__gte=hold_until).update(next_attempt_at=hold_until, updated_at=now)


def settle_scheduled_call(attempt, *, now: dt.datetime) -> None:
    """After a scheduled call's attempt ends: done, retry quickly, or failed; a series moves on
    to its next occurrence."""
    with transaction.atomic():
        call = (
            ScheduledCall.objects.select_for_update()
            .filter(pk=attempt.scheduled_call_id, status=S.RUNNING)
            .first()
        )
        if call is None:
            return
        outcome = attempt.outcome
        log_event(call, "outcome", at=now, by="provider", attempt=attempt, outcome=outcome)
        reached = outcome in ("completed", "incomplete", "refused", "callback")
        if not reached and outcome != "rejected" and call.retries_done < call.max_retries:
            call.retries_done += 1
            call.status = S.SCHEDULED
            call.next_run_at = now + dt.timedelta(minutes=call.retry_delay_minutes)
            call.save(update_fields=["status", "next_run_at", "retries_done", "updated_at"])
            log_event(
                call,
                "retry",
                at=now,
                by="dialler",
                next_run_at=call.next_run_at.isoformat(),
                retry=call.retries_done,
            )
            return
        if outcome in ("refused", "rejected"):
            call.status, call.next_run_at = S.CANCELLED if outcome == "refused" else S.FAILED, None
        else:
            call.status = S.SCHEDULED
            _advance(call, now=now, after=max(now, attempt.created_at) + dt.timedelta(seconds=1))
            if call.status == S.COMPLETED and not reached and not call.rrule:
                call.status = S.FAILED
        call.save()
        log_event(
            call,
            call.status if call.status != S.SCHEDULED else "next_occurrence",
            at=now,
            by="dialler",
            next_run_at=call.next_run_at.isoformat() if call.next_run_at else None,
        )
        booking_completed(call, attempt, reached=reached, now=now)


def next_allowed_time(campaign, zones: list[str], at: dt.datetime) -> dt.datetime:
    """The first quarter hour from `at` when the campaign's window and the legal window are both
    open in every one of the callee's zones (at itself when they are)."""
    legal_start, legal_end = windows.legal_window()
    candidate = at
    for _ in range(7 * 24 * 4):
        if all(_open(campaign, zone, candidate, legal_start, legal_end) for zone in zones):
            return candidate
        candidate = (candidate + dt.timedelta(minutes=15)).replace(second=0, microsecond=0)
        candidate -= dt.timedelta(minutes=candidate.minute % 15)
    return at


def _open(campaign, zone, at, legal_start, legal_end) -> bool:
    local = at.astimezone(ZoneInfo(zone))
    if not windows.time_in_window(local.time(), legal_start, legal_end):
        return False
    window_zone = zone if campaign.window_policy == "contact" else campaign.timezone
    mine = at.astimezone(ZoneInfo(window_zone))
    return mine.weekday() in campaign.weekdays and windows.time_in_window(
        mine.time(), campaign.window_start, campaign.window_end
    )


def book_callback(*, attempt, now: dt.datetime) -> ScheduledCall:
    """The survey's "call me later" key: a one-off call after the campaign's callback delay,
    moved to the next time the windows allow."""
    contact, campaign = attempt.contact, attempt.campaign
    wanted = now + dt.timedelta(minutes=campaign.callback_delay_minutes)
    at = next_allowed_time(campaign, contact.zones, wanted)
    call = ScheduledCall(
        contact=contact,
        run_at=at,
        timezone=contact.zones[0],
        next_run_at=at,
        note=f"Asked to be called back during attempt {attempt.attempt_number}.",
    )
    call.save()
    log_event(call, "created", at=now, by="callee", attempt=attempt, next_run_at=at.isoformat())
    return call


@transaction.atomic
def call_now(*, contact: Contact, now: dt.datetime, by=None) -> ScheduledCall:
    """The back office's "Call now": a one-off call booked for now, placed by the next tick.
    Checked as any booking (schedule_call: the campaign must place it, the legal window must
    be open, the number not excluded), and refused while a call to the contact is live, for
    a finished contact (the page offers no button: reset it or book a call back) and while a
    booking of the contact is already due (a second press would dial the person twice)."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)  # one press at a time
    if contact.state == Contact.State.IN_PROGRESS:
        raise ValidationError({"contact": gettext("A call to this contact is live now.")})
    if contact.state in Contact.FINAL_STATES:
        state = str(Contact.State(contact.state).label).lower()
        raise ValidationError(
            {
                "contact": gettext(
                    "This contact is %(state)s: reset it first, or book a call back."
                )
                % {"state": state}
            }
        )
    due = ScheduledCall.objects.filter(
        contact=contact, status__in=(S.SCHEDULED, S.RUNNING), next_run_at__lte=now
    )
    if due.exists():
        raise ValidationError(
            {"contact": gettext("A call to this contact is already booked for now.")}
        )
    return schedule_call(
        contact=contact,
        run_at=now,
        timezone=contact.zones[0],
        now=now,
        by=by,
        note=gettext("Call now, from the back office."),
    )
