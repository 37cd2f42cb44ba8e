"""Provider status callbacks: move an attempt forward, and settle its contact when it ends.

Twilio sends its status callbacks duplicated and in no promised order. Every move here is one
guarded UPDATE that only matches while the attempt is at an earlier stage, so a duplicate, a
late `ringing` after `completed` or a replay matches nothing and changes nothing; of two
callbacks racing to end one attempt exactly one wins, and only the winner settles the contact."""

import datetime as dt
import json
import logging
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest

from calls.db import prepared
from calls.db.instances import model_instances, select_columns
from calls.models import CallAttempt, CallEvent
from calls.outcomes import listed_for_good, settle_contact, settle_locked_contact
from campaigns.models import Campaign
from contacts.models import Contact

log = logging.getLogger(__name__)

S = CallAttempt.Status

# Twilio's CallStatus values -> ours ("answered" is the event name; its CallStatus is in-progress).
TWILIO_STATUSES = {
    "queued": S.QUEUED,
    "initiated": S.INITIATED,
    "ringing": S.RINGING,
    "in-progress": S.IN_PROGRESS,
    "answered": S.IN_PROGRESS,
    "completed": S.COMPLETED,
    "busy": S.BUSY,
    "no-answer": S.NO_ANSWER,
    "failed": S.FAILED,
    "canceled": S.CANCELED,
}

# Twilio's ErrorCodes on a "failed" callback that say the number itself is bad (invalid
# format, invalid number, forbidden number, invalid country code): calling again cannot work,
# so the attempt ends as when the provider refuses the number on dialling (contact `invalid`).
# https://www.twilio.com/docs/api/errors (13223-13226)
INVALID_NUMBER_ERRORS = ("13223", "13224", "13225", "13226")

# What a status move or the survey may have changed on the attempt row.
REFRESHED_FIELDS = [
    "status",
    "provider_call_sid",
    "answered_by",
    "survey_finished",
    "opted_out",
    "callback_requested_for",
    "error_code",
    "error_message",
    "last_sequence_number",
    "dialled_at",
    "answered_at",
    "ended_at",
    "duration",
]


def answered_by_from_twilio(value: str | None) -> str | None:
    """Twilio's AnsweredBy (human, machine_start, machine_end_beep, fax, unknown…) -> ours;
    None when it tells us nothing."""
    if not value:
        return None
    if value == "human":
        return CallAttempt.AnsweredBy.HUMAN
    if value.startswith("machine") or value == "fax":
        return CallAttempt.AnsweredBy.MACHINE
    return None


@dataclass(frozen=True)
class StatusResult:
    moved: bool  # the attempt changed stage
    status: str  # the attempt's status afterwards
    contact_state: str | None = None  # the contact's new state, when this callback ended the call


def status_changes(
    target: str,
    *,
    at: dt.datetime,
    sequence_number: int | None = None,
    answered_by: str | None = None,
    duration: int | None = None,
    sid: str = "",
    error_code: str = "",
    error_message: str = "",
) -> dict:
    """What a move to `target` writes, as plain values; None leaves a column as it is.
    `provider_call_sid` and `answered_at` only fill an empty column, `last_sequence_number`
    keeps the highest."""
    final = target in CallAttempt.FINAL_STATUSES
    if target == S.FAILED and error_code in INVALID_NUMBER_ERRORS:
        error_code, error_message = "number_rejected", f"Twilio {error_code}: {error_message}"
    answered_at = None
    if target == S.IN_PROGRESS:
        answered_at = at
    elif target == S.COMPLETED and duration:
        answered_at = at - dt.timedelta(seconds=duration)  # answered, even if "answered" never came
    return {
        "status": target,
        "provider_call_sid": sid or None,
        "last_sequence_number": sequence_number,
        "answered_by": answered_by_from_twilio(answered_by),
        "answered_at": answered_at,
        "ended_at": at if final else None,
        "duration": duration if final else None,
        "error_code": error_code[:64] if final and error_code else None,
        "error_message": error_message if final and error_code else None,
    }


def earlier_stages(target: str) -> list[str]:
    stage = CallAttempt.STAGE[target]
    return [s for s, st in CallAttempt.STAGE.items() if st < stage]


def apply_call_status(
    attempt: CallAttempt,
    *,
    status: str,
    now: dt.datetime,
    at: dt.datetime | None = None,
    sequence_number: int | None = None,
    answered_by: str | None = None,
    duration: int | None = None,
    sid: str = "",
    error_code: str = "",
    error_message: str = "",
) -> StatusResult:
    """Apply one provider status (Twilio's spelling or ours) to `attempt`.

    `at` is when the provider says it happened (defaults to `now`); `now` is when we learn it,
    from which retry delays count. A final status sets ended_at, the duration and who answered,
    then settles the contact. A status at or before the attempt's stage changes nothing, except
    that a final callback for an attempt the tick's recovery closed as lost fills in the
    duration it lacked (the contact stays where recovery put it)."""
    target = TWILIO_STATUSES.get(status, status)
    if target not in CallAttempt.STAGE:
        raise ValueError(f"Unknown call status {status!r}.")
    values = status_changes(
        target,
        at=at or now,
        sequence_number=sequence_number,
        answered_by=answered_by,
        duration=duration,
        sid=sid,
        error_code=error_code,
        error_message=error_message,
    )
    changes = {field: value for field, value in values.items() if value is not None}
    for field in ("provider_call_sid", "answered_at"):
        if field in changes:
            changes[field] = Coalesce(F(field), Value(changes[field]))
    if sequence_number is not None:
        changes["last_sequence_number"] = Greatest(
            Coalesce(F("last_sequence_number"), Value(-1)), Value(sequence_number)
        )
    final = target in CallAttempt.FINAL_STATUSES

    # No savepoint when a webhook's transaction holds this one: one round trip less each.
    with transaction.atomic(savepoint=False):
        # Stages only ever go forward, so an attempt loaded at or past this stage still is:
        # a duplicate or a late callback need not even try.
        loaded_before = CallAttempt.STAGE.get(attempt.status, 0) < CallAttempt.STAGE[target]
        moved = loaded_before and (
            CallAttempt.objects.filter(pk=attempt.pk, status__in=earlier_stages(target)).update(
                **changes
            )
        )
        if not moved:
            if final and duration is not None:
                _fill_lost_duration(CallAttempt.objects.filter(pk=attempt.pk), duration)
            return StatusResult(moved=False, status=attempt.status)
        if not final:
            # The webhook's own CallEvent already tells this move; nothing else to do.
            attempt.status = target
            return StatusResult(moved=True, status=target)
        # Only the attempt's own fields: the campaign and contact loaded with it stay cached.
        attempt.refresh_from_db(fields=REFRESHED_FIELDS)
        return _log_end(attempt, settle_contact(attempt, now=now), now=now)


# The status webhook in one statement: log the callback, and move the attempt while it is at
# an earlier stage (the guard). Both see the row as it was; a concurrent move of the same row
# makes the UPDATE wait, then re-check its guard on the new version (READ COMMITTED), so of
# racing finals exactly one returns a row.
ATTEMPTS, EVENTS = f'"{CallAttempt._meta.db_table}"', f'"{CallEvent._meta.db_table}"'
CONTACTS, CAMPAIGNS = f'"{Contact._meta.db_table}"', f'"{Campaign._meta.db_table}"'


LOG_AND_MOVE = f"""
WITH attempt AS (
    SELECT id, status, error_code = 'lost' AND duration IS NULL AS closed_blind
      FROM {ATTEMPTS} WHERE call_id = %(call_id)s
), logged AS (
    INSERT INTO {EVENTS} (attempt_id, kind, message, payload, actor, "at")
    SELECT id, 'webhook', %(message)s, %(payload)s::jsonb, 'provider', %(now)s FROM attempt
), moved AS (
    UPDATE {ATTEMPTS} SET
        status = %(status)s,
        provider_call_sid = COALESCE(provider_call_sid, %(provider_call_sid)s),
        last_sequence_number = GREATEST(last_sequence_number, %(last_sequence_number)s),
        answered_by = COALESCE(%(answered_by)s, answered_by),
        answered_at = COALESCE(answered_at, %(answered_at)s),
        ended_at = COALESCE(%(ended_at)s, ended_at),
        duration = COALESCE(%(duration)s, duration),
        error_code = COALESCE(%(error_code)s, error_code),
        error_message = COALESCE(%(error_message)s, error_message)
    WHERE call_id = %(call_id)s AND status = ANY(%(earlier)s)
    RETURNING *
)"""
LOG_AND_MOVE_ONLY = f"""{LOG_AND_MOVE}
SELECT attempt.status, moved.id FROM attempt LEFT JOIN moved ON true
"""
# A final one also locks the contact while it is still in progress on this attempt (the fence
# of calls.outcomes._lock_contact), and reads it and its campaign: the settlement needs no
# further read.
LOG_MOVE_AND_LOCK = f"""{LOG_AND_MOVE}, locked AS (
    SELECT contact.*, {listed_for_good("contact")}
      FROM {CONTACTS} contact JOIN moved ON contact.id = moved.contact_id
     WHERE contact.state = '{Contact.State.IN_PROGRESS}'
       AND contact.last_attempt_number = moved.attempt_number
       FOR UPDATE OF contact
)
SELECT attempt.status, attempt.closed_blind, {select_columns(CallAttempt, "moved")},
       {select_columns(Contact, "locked")}, {select_columns(Campaign, "campaign")}, locked.listed
  FROM attempt LEFT JOIN moved ON true LEFT JOIN locked ON true
  LEFT JOIN {CAMPAIGNS} campaign ON campaign.id = moved.campaign_id
"""


def record_call_status(
    call_id: str,
    *,
    event: CallEvent,
    status: str,
    now: dt.datetime,
    **details,
) -> StatusResult | None:
    """The status webhook's work: store `event` (the callback, phones masked) on the attempt
    with our `call_id`, and apply `status` to it as `apply_call_status` does (same `details`).
    Returns None, having written nothing, when no attempt has that call id; an unknown status
    is stored, then raises ValueError.

    On PostgreSQL a status that does not end the call is one statement and one commit; a final
    one adds the contact's settlement in the same transaction."""
    target = TWILIO_STATUSES.get(status, status)
    if connection.vendor != "postgresql" or target not in CallAttempt.STAGE:
        attempt = CallAttempt.objects.filter(call_id=call_id).first()
        if attempt is None:
            return None
        with transaction.atomic():
            event.attempt = attempt
            event.save()
            if target in CallAttempt.STAGE:
                return apply_call_status(attempt, status=status, now=now, **details)
        raise ValueError(f"Unknown call status {status!r}.")

    params = status_changes(target, at=details.pop("at", None) or now, **details)
    params.update(
        call_id=call_id,
        earlier=earlier_stages(target),
        message=event.message,
        payload=json.dumps(event.payload),
        now=event.at,
    )
    if target not in CallAttempt.FINAL_STATUSES:
        # Autocommit: the statement is its own transaction.
        row = prepared.fetch_one(LOG_AND_MOVE_ONLY, params)
        if row is None:
            return None
        moved = row[1] is not None
        return StatusResult(moved=moved, status=target if moved else row[0])
    with transaction.atomic():
        row = prepared.fetch_one(LOG_MOVE_AND_LOCK, params)
        if row is None:
            return None
        status, closed_blind, *columns, listed = row
        attempt, contact, campaign = model_instances(columns, CallAttempt, Contact, Campaign)
        if attempt is None:
            if closed_blind and params["duration"] is not None:
                attempts = CallAttempt.objects.filter(call_id=call_id)
                _fill_lost_duration(attempts, params["duration"])
            return StatusResult(moved=False, status=status)
        CallAttempt._meta.get_field("campaign").set_cached_value(attempt, campaign)
        if contact is not None:
            Contact._meta.get_field("campaign").set_cached_value(contact, campaign)
            contact.listed = listed
        return _log_end(attempt, settle_locked_contact(attempt, contact, now=now), now=now)


def _fill_lost_duration(attempts, duration: int) -> None:
    """Recovery closed the attempt blind; the provider knows how long it really lasted."""
    attempts.filter(error_code="lost", duration__isnull=True).update(duration=duration)


LOG_END = f"""
INSERT INTO {EVENTS} (attempt_id, kind, message, payload, actor, "at")
VALUES (%(attempt_id)s, 'status', %(message)s, '{{}}', 'provider', %(at)s)
"""


def _log_end(attempt: CallAttempt, contact_state: str | None, *, now) -> StatusResult:
    """The attempt has just ended (this caller moved it) and its contact is settled: log it."""
    message = (
        f"{attempt.status}, {attempt.outcome} (answered by {attempt.answered_by}); "
        f"contact {contact_state or 'not moved: it has moved on'}"
    )
    params = {
        "attempt_id": CallAttempt._meta.pk.get_db_prep_value(attempt.pk, connection),
        "message": message,
        "at": connection.ops.adapt_datetimefield_value(now),
    }
    prepared.execute(LOG_END, params)
    log.info(
        "attempt %s ended %s (%s); contact %s -> %s",
        attempt.pk,
        attempt.status,
        attempt.outcome,
        attempt.contact_id,
        contact_state or "unchanged (moved on)",
    )
    return StatusResult(moved=True, status=attempt.status, contact_state=contact_state)
