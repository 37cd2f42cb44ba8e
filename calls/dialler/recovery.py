"""Step 1 of the tick: settle attempts whose end we have not heard of, so no contact stays in
progress.

A call the provider took (it has a SID) is asked about before anything is presumed of it
(`check_quiet_calls`, Twilio's Calls resource): once it is past the dial lease while still
queued/initiated, or ringing/in progress with nothing heard of it (no callback, no gather) for
DIALLER_QUIET_CALL_SECONDS — a final callback can be dropped, and Twilio does not retry it.
A final answer settles the attempt as the callback would have; a live one moves it on and is
noted (a `provider_check` event), and the call is asked about again once it has been quiet as
long again; a provider with no such call makes it lost. At most
DIALLER_PROVIDER_CHECKS_PER_TICK calls are asked about per tick, on a few threads, for at most
CHECK_SECONDS, so a slow provider does not stall the tick.

Closed as `failed` with error code `lost` without asking, and its contact settled (released
for a retry, or exhausted): an attempt still queued/initiated past the dial lease that the
provider cannot be asked about (no SID: the dialler died between claim and dial), and any
attempt still live past the longest possible call (DIALLER_MAX_CALL_SECONDS), which is where a
provider that keeps failing to answer leaves its calls. Each close is one guarded UPDATE (status
still live AND still old), so an attempt that a callback finished a moment before is left
alone."""

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Exists, OuterRef, Q

from calls.models import CallAttempt, CallEvent
from calls.outcomes import settle_contact
from calls.telephony.base import Provider, ProviderCall, ProviderError
from calls.webhooks.status import TWILIO_STATUSES, apply_call_status

log = logging.getLogger(__name__)

S = CallAttempt.Status
BEFORE_PROVIDER = (S.QUEUED, S.INITIATED)
ON_THE_LINE = (S.RINGING, S.IN_PROGRESS)
# The longest the tick waits for the provider's answers; the rest are asked next tick.
CHECK_SECONDS = 3.0


def askable(provider_name: str | None) -> Q:
    """Attempts the provider `provider_name` can be asked about: it placed them (a SID)."""
    if provider_name is None:
        return Q(pk__in=[])
    return Q(provider=provider_name, provider_call_sid__isnull=False)


def lost(now: dt.datetime, *, provider_name: str | None = None) -> Q:
    """Attempts presumed lost at `now` when `provider_name` (None: no provider) can be asked
    about its own calls (served by the partial attempt_live_idx, whose size is the number of
    live calls, not the history)."""
    lease = now - dt.timedelta(seconds=settings.DIALLER_DIAL_LEASE_SECONDS)
    longest_call = now - dt.timedelta(seconds=settings.DIALLER_MAX_CALL_SECONDS)
    return Q(status__in=BEFORE_PROVIDER, created_at__lt=lease) & ~askable(provider_name) | Q(
        status__in=CallAttempt.LIVE_STATUSES, created_at__lt=longest_call
    )


def find_lost_attempts(
    *, now: dt.datetime, provider_name: str | None = None, limit: int = 500
) -> list:
    """Ids of the attempts to rescue at `now`, oldest first."""
    return list(
        CallAttempt.objects.filter(lost(now, provider_name=provider_name))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def close_lost_attempt(
    attempt_id,
    *,
    now: dt.datetime,
    provider_name: str | None = None,
    unknown_to_provider: bool = False,
) -> bool:
    """Close one lost attempt and settle its contact, atomically. False when the attempt is no
    longer lost (a callback finished or moved it since it was found): nothing is changed.
    `unknown_to_provider`: the provider said it has no such call; it is lost while live."""
    if unknown_to_provider:
        still_lost = Q(status__in=CallAttempt.LIVE_STATUSES)
        why = "The provider has no such call; presumed lost."
    else:
        still_lost = lost(now, provider_name=provider_name)
        why = "No answer from the provider or the dialler in time; presumed lost."
    with transaction.atomic():
        closed = (
            CallAttempt.objects.filter(still_lost, pk=attempt_id)
            .filter(status__in=CallAttempt.LIVE_STATUSES)
            .update(status=S.FAILED, error_code="lost", error_message=why, ended_at=now)
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


def recover_lost_attempts(*, now: dt.datetime, provider_name: str | None = None) -> int:
    """Close every lost attempt; returns how many were closed."""
    found = find_lost_attempts(now=now, provider_name=provider_name)
    return sum(close_lost_attempt(pk, now=now, provider_name=provider_name) for pk in found)


# --- asking the provider ---------------------------------------------------------------------


def quiet(now: dt.datetime) -> Q:
    """Live attempts nothing has been heard of for too long: past the dial lease before the
    provider's first callback, or on the line and quiet for DIALLER_QUIET_CALL_SECONDS. Every
    callback, gather and check logs a CallEvent, so the newest event is the last news."""
    lease = now - dt.timedelta(seconds=settings.DIALLER_DIAL_LEASE_SECONDS)
    hush = now - dt.timedelta(seconds=settings.DIALLER_QUIET_CALL_SECONDS)

    def heard_since(since):
        return Exists(CallEvent.objects.filter(attempt=OuterRef("pk"), at__gte=since))

    return Q(status__in=BEFORE_PROVIDER, created_at__lt=lease) & ~heard_since(lease) | Q(
        status__in=ON_THE_LINE, created_at__lt=hush
    ) & ~heard_since(hush)


@dataclass
class Checked:
    asked: int = 0  # calls the provider was asked about
    settled: int = 0  # ended by the provider's answer, contact settled
    lost: int = 0  # unknown to the provider: closed as lost
    unanswered: int = 0  # the provider failed or was too slow: asked again next tick


def check_quiet_calls(*, now: dt.datetime, provider: Provider, limit: int | None = None) -> Checked:
    """Ask the provider about the quiet calls it placed (oldest first, at most `limit`,
    default DIALLER_PROVIDER_CHECKS_PER_TICK) and act on each answer."""
    checked = Checked()
    limit = settings.DIALLER_PROVIDER_CHECKS_PER_TICK if limit is None else limit
    if limit <= 0:
        return checked
    attempts = list(
        CallAttempt.objects.filter(askable(provider.name), quiet(now)).order_by("created_at")[
            :limit
        ]
    )
    if not attempts:
        return checked
    answers = fetch_statuses(provider.fetch_status, [a.provider_call_sid for a in attempts])
    failure = None
    for attempt in attempts:
        checked.asked += 1
        answer = answers.get(attempt.provider_call_sid, TimeoutError("no answer in time"))
        if isinstance(answer, Exception):
            checked.unanswered += 1
            failure = failure or answer
            continue
        result = act_on_provider_answer(attempt, answer, now=now)
        checked.settled += result == "settled"
        checked.lost += result == "lost"
    if failure is not None:  # one line per tick, not one per call, during an outage
        log.warning("%d provider checks unanswered, e.g.: %s", checked.unanswered, failure)
    return checked


def fetch_statuses(fetch, sids: list[str]) -> dict[str, ProviderCall | None | Exception]:
    """fetch(sid) for each SID on a few threads; what has not come back after CHECK_SECONDS
    is left out (the threads finish on their own, within the provider client's timeout)."""
    threads = max(1, min(settings.DIALLER_DIAL_THREADS, len(sids)))

    def ask(sid):
        try:
            return fetch(sid)
        except ProviderError as exc:
            return exc
        except Exception as exc:  # an unexpected provider error: asked again next tick
            log.exception("provider check of call %s failed", sid)
            return exc
        finally:
            connections.close_all()  # a provider that touched the DB leaves no connection

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="provider-check")
    futures = {pool.submit(ask, sid): sid for sid in sids}
    done, _ = wait(futures, timeout=CHECK_SECONDS)
    pool.shutdown(wait=False, cancel_futures=True)
    return {futures[future]: future.result() for future in done}


def act_on_provider_answer(attempt: CallAttempt, answer: ProviderCall | None, *, now) -> str:
    """Settle, move on or close `attempt` by what the provider said of its call; returns
    "settled", "lost", or "live"."""
    if answer is None:
        closed = close_lost_attempt(attempt.pk, now=now, unknown_to_provider=True)
        return "lost" if closed else "live"
    target = TWILIO_STATUSES.get(answer.status)
    if target is None:
        log.warning("attempt %s: unknown provider status %r", attempt.pk, answer.status)
        target = S.QUEUED
    with transaction.atomic():
        CallEvent.objects.create(
            attempt=attempt,
            kind="provider_check",
            message=f"asked the provider: {answer.status}",
            payload={"status": answer.status, "duration": answer.duration},
            actor="dialler",
            at=now,
        )
        result = apply_call_status(
            attempt,
            status=target,
            now=now,
            at=answer.ended_at if target in CallAttempt.FINAL_STATUSES else None,
            answered_by=answer.answered_by,
            duration=answer.duration,
        )
    if target in CallAttempt.FINAL_STATUSES and result.moved:
        return "settled"
    return "live"
