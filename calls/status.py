"""Provider status callbacks: move an attempt forward, and settle its contact when it ends.

Twilio sends its status callbacks duplicated and in no promised order. Every move here is one
guarded UPDATE that only matches while the attempt is at an earlier stage, so a duplicate, a
late `ringing` after `completed` or a replay matches nothing and changes nothing; of two
callbacks racing to end one attempt exactly one wins, and only the winner settles the contact."""

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest

from calls.models import CallAttempt, CallEvent
from calls.outcomes import settle_contact

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
    at = at or now
    stage = CallAttempt.STAGE[target]
    earlier = [s for s, st in CallAttempt.STAGE.items() if st < stage]
    changes: dict = {"status": target}
    if sid:
        changes["provider_call_sid"] = Coalesce(F("provider_call_sid"), Value(sid))
    if sequence_number is not None:
        changes["last_sequence_number"] = Greatest(
            Coalesce(F("last_sequence_number"), Value(-1)), Value(sequence_number)
        )
    who = answered_by_from_twilio(answered_by)
    if who:
        changes["answered_by"] = who
    if target == S.IN_PROGRESS:
        changes["answered_at"] = Coalesce(F("answered_at"), Value(at))
    final = target in CallAttempt.FINAL_STATUSES
    if final:
        changes["ended_at"] = at
        if duration is not None:
            changes["duration"] = duration
        if error_code:
            changes["error_code"] = error_code[:64]
            changes["error_message"] = error_message
        if target == S.COMPLETED and duration:
            # Answered, even if the "answered" callback never came.
            changes["answered_at"] = Coalesce(
                F("answered_at"), Value(at - dt.timedelta(seconds=duration))
            )

    # No savepoint when a webhook's transaction holds this one: one round trip less each.
    with transaction.atomic(savepoint=False):
        # Stages only ever go forward, so an attempt loaded at or past this stage still is:
        # a duplicate or a late callback need not even try.
        loaded_before = CallAttempt.STAGE.get(attempt.status, 0) < stage
        moved = loaded_before and (
            CallAttempt.objects.filter(pk=attempt.pk, status__in=earlier).update(**changes)
        )
        if not moved:
            if final and duration is not None:
                # Recovery closed it blind; the provider knows how long it really lasted.
                CallAttempt.objects.filter(
                    pk=attempt.pk, error_code="lost", duration__isnull=True
                ).update(duration=duration)
            return StatusResult(moved=False, status=attempt.status)
        if not final:
            # The webhook's own CallEvent already tells this move; nothing else to do.
            attempt.status = target
            return StatusResult(moved=True, status=target)
        # Only the attempt's own fields: the campaign and contact loaded with it stay cached.
        attempt.refresh_from_db(fields=REFRESHED_FIELDS)
        contact_state = settle_contact(attempt, now=now)
        CallEvent.objects.create(
            attempt=attempt,
            kind="status",
            message=f"{target}, {attempt.outcome} (answered by {attempt.answered_by}); "
            f"contact {contact_state or 'not moved: it has moved on'}",
            actor="provider",
            at=now,
        )
    log.info(
        "attempt %s ended %s (%s); contact %s -> %s",
        attempt.pk,
        target,
        attempt.outcome,
        attempt.contact_id,
        contact_state or "unchanged (moved on)",
    )
    return StatusResult(moved=True, status=target, contact_state=contact_state)
