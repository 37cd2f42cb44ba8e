"""Step 1 of the tick: close attempts nobody will finish, so no contact stays in progress.

An attempt still `queued`/`initiated` past the dial lease (the dialler died between claim and
dial, or the provider never called back), or `ringing`/`in_progress` past the longest possible
call, is closed as `failed` with error code `lost`, and its contact settled (released for a
retry, or exhausted). The close is one guarded UPDATE (status still live AND still old), so an
attempt that a callback finished a moment before is left alone."""

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from calls.models import CallAttempt, CallEvent
from calls.outcomes import settle_contact

S = CallAttempt.Status
BEFORE_PROVIDER = (S.QUEUED, S.INITIATED)
ON_THE_LINE = (S.RINGING, S.IN_PROGRESS)


def lost(now: dt.datetime) -> Q:
    """Attempts presumed lost at `now` (served by the partial attempt_live_idx, whose size is
    the number of live calls, not the history)."""
    lease = now - dt.timedelta(seconds=settings.DIALLER_DIAL_LEASE_SECONDS)
    longest_call = now - dt.timedelta(seconds=settings.DIALLER_MAX_CALL_SECONDS)
    return Q(status__in=BEFORE_PROVIDER, created_at__lt=lease) | Q(
        status__in=ON_THE_LINE, created_at__lt=longest_call
    )


def find_lost_attempts(*, now: dt.datetime, limit: int = 500) -> list:
    """Ids of the attempts to rescue at `now`, oldest first."""
    return list(
        CallAttempt.objects.filter(lost(now))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def close_lost_attempt(attempt_id, *, now: dt.datetime) -> bool:
    """Close one lost attempt and settle its contact, atomically. False when the attempt is no
    longer lost (a callback finished or moved it since it was found): nothing is changed."""
    with transaction.atomic():
        closed = (
            CallAttempt.objects.filter(lost(now), pk=attempt_id)
            .filter(status__in=CallAttempt.LIVE_STATUSES)
            .update(
                status=S.FAILED,
                error_code="lost",
                error_message="No answer from the provider or the dialler in time; presumed lost.",
                ended_at=now,
            )
        )
        if not closed:
            return False
        attempt = CallAttempt.objects.select_related("campaign").get(pk=attempt_id)
        new_state = settle_contact(attempt, now=now)
        CallEvent.objects.create(
            attempt=attempt,
            kind="lost",
            message="Closed by recovery as lost; contact "
            + (f"moved to {new_state}." if new_state else "already moved on, left alone."),
            actor="dialler",
            at=now,
        )
    return True


def recover_lost_attempts(*, now: dt.datetime) -> int:
    """Close every lost attempt; returns how many were closed."""
    return sum(close_lost_attempt(pk, now=now) for pk in find_lost_attempts(now=now))
