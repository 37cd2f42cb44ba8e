"""The dialler tick (DESIGN.md §4): recover, lifecycle, claim, dial, fold the tallies.

`tick(now)` is run every few seconds by `run_scheduler` or by the django-q2 schedule, on any
number of machines at once. Each step is its own short transaction; the provider is called
outside any transaction, after the claim has committed the attempts it dials."""

import datetime as dt
import logging
import os
import queue
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from itertools import zip_longest

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, connections, transaction

from calls.db.rows import rows_cte
from calls.dialler.claim import claim_batch
from calls.dialler.lifecycle import advance_campaigns
from calls.dialler.limits import current_limits
from calls.dialler.pace import SharedPace, TokenBucket, default_pace, pace_budget
from calls.dialler.recovery import check_quiet_calls, recover_lost_attempts
from calls.models import CallAttempt, CallEvent, DiallerHeartbeat
from calls.outcomes import settle_contact
from calls.telephony.base import (
    NumberRejected,
    Provider,
    ProviderError,
    ProviderUnavailable,
    call_urls,
    get_provider,
)
from campaigns.models import Campaign
from contacts.phones import mask_phone
from contacts.tallies import fold_tallies

logger = logging.getLogger(__name__)
quote = connection.ops.quote_name

S = CallAttempt.Status
# Successful dials are written in bulk: every FLUSH_SIZE results, or once the oldest waiting
# result is FLUSH_SECONDS old (an operator, or recovery, should soon see the call as placed).
# Each write is a commit, and a commit waits for the disk: a fast provider's thousand calls
# are written at once.
FLUSH_SIZE = 1000
FLUSH_SECONDS = 0.25
# How often the dial step reads its campaigns' statuses again: a campaign paused or cancelled
# after the claim gets no more calls from this tick (one query a second, whatever the pace).
STATUS_RECHECK_SECONDS = 1.0


@dataclass
class TickReport:
    at: dt.datetime
    recovered: int = 0  # closed as lost
    checked: int = 0  # quiet calls the provider was asked about
    reconciled: int = 0  # of those, ended by the provider's answer (a callback never came)
    started: list[int] = field(default_factory=list)  # campaign ids
    completed: list[int] = field(default_factory=list)  # campaign ids
    claimed: int = 0
    live_calls: int = 0  # after the claim, against DIALLER_GLOBAL_MAX_CONCURRENT_CALLS
    dialled: int = 0
    failed: int = 0  # provider outage or rejected number
    released: int = 0  # claimed, not dialled: the campaign backed off after an outage
    skipped: Counter = field(default_factory=Counter)  # why campaigns got no call this tick
    errors: list[str] = field(default_factory=list)  # phone numbers masked
    folded: int = 0  # contact tally rows folded away
    seconds: float = 0.0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["skipped"] = dict(self.skipped)
        data["seconds"] = round(self.seconds, 3)
        return data

    def __str__(self) -> str:
        parts = [
            f"tick at {self.at:%Y-%m-%d %H:%M:%S}Z",
            f"recovered={self.recovered}",
            f"claimed={self.claimed}",
            f"dialled={self.dialled}",
            f"failed={self.failed}",
            f"released={self.released}",
        ]
        if self.checked:
            parts.append(f"checked={self.checked} reconciled={self.reconciled}")
        if self.started:
            parts.append(f"started={self.started}")
        if self.completed:
            parts.append(f"completed={self.completed}")
        if self.skipped:
            parts.append("skipped=" + ",".join(f"{k}:{v}" for k, v in sorted(self.skipped.items())))
        if self.errors:
            parts.append("errors=" + "; ".join(self.errors[:5]))
        parts.append(f"in {self.seconds:.3f}s")
        return " ".join(parts)


def tick(
    now: dt.datetime,
    *,
    provider: Provider | None = None,
    pace: TokenBucket | SharedPace | None = None,
    interval: float | None = None,
) -> TickReport:
    """Run the dialler once at `now` and return what it did (also logged as one line, and
    written to the heartbeat row for /healthz)."""
    clock = time.monotonic()
    report = TickReport(at=now)
    if provider is None:
        try:
            provider = get_provider()
        except Exception as exc:  # e.g. the provider's module is not installed: claim nothing
            report.skipped["no_provider"] += 1
            report.errors.append(f"provider {settings.TELEPHONY_PROVIDER!r} unavailable: {exc}")

    # 1. Settle the calls we have heard nothing of (asking the provider), close lost ones.
    asked = None  # the provider that can be asked about its calls
    if provider is not None and hasattr(provider, "fetch_status"):
        asked = provider.name
        checked = check_quiet_calls(now=now, provider=provider)
        report.checked, report.reconciled = checked.asked, checked.settled
        report.recovered += checked.lost
    report.recovered += recover_lost_attempts(now=now, provider_name=asked)

    # 2. Start and complete campaigns.
    lifecycle = advance_campaigns(now=now)
    report.started, report.completed = lifecycle.started, lifecycle.completed
    report.errors += [f"campaign {pk}: {why}" for pk, why in lifecycle.refused.items()]

    if provider is not None:
        # 3. Claim this tick's contacts, within the limits in force now (an operator may have
        # changed them since the last tick).
        limits = current_limits(provider.name)
        claim = claim_batch(
            now=now,
            provider_name=provider.name,
            budget=pace_budget(
                interval or settings.DIALLER_TICK_INTERVAL, rate=limits.calls_per_second
            ),
            global_cap=limits.max_concurrent_calls,
        )
        report.claimed = len(claim.attempts)
        report.live_calls = claim.live_calls
        report.skipped.update(claim.skipped)

        # 4. Dial them, outside any transaction, at the pace.
        pace = pace or default_pace(limits.calls_per_second, key=limits.pace_key)
        dial_attempts(claim.attempts, provider=provider, now=now, pace=pace, report=report)

    # 5. Fold the contact tallies the claim and the settles since the last tick added to.
    report.folded = fold_tallies()

    report.seconds = time.monotonic() - clock
    write_heartbeat(report)
    logger.info("%s", report)
    return report


def write_heartbeat(report: TickReport) -> None:
    values = {
        "last_tick_at": report.at,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "report": report.as_dict(),
    }
    if not DiallerHeartbeat.objects.filter(pk=1).update(**values):
        DiallerHeartbeat.objects.update_or_create(pk=1, defaults=values)


# --- dialling -------------------------------------------------------------------------------

DIALLED, UNAVAILABLE, REJECTED, BACKED_OFF = "dialled", "unavailable", "rejected", "backed_off"
STOPPED = "stopped"


def stopped_campaigns(campaign_ids) -> set[int]:
    """Of these campaigns, those no longer running (paused, cancelled, completed since the
    claim): their claimed calls are not placed."""
    return set(
        Campaign.objects.filter(pk__in=campaign_ids)
        .exclude(status=Campaign.Status.RUNNING)
        .values_list("pk", flat=True)
    )


def dial_attempts(
    attempts: list[CallAttempt],
    *,
    provider: Provider,
    now: dt.datetime,
    pace: TokenBucket | SharedPace | None = None,
    report: TickReport,
) -> None:
    """Place the claimed calls, concurrently on DIALLER_DIAL_THREADS threads, never faster than
    the pace. After an outage a campaign backs off: its calls not yet placed are released
    without calling the provider."""
    if not attempts:
        return
    pace = pace or default_pace()
    backed_off: set[int] = set()  # campaign ids

    def place(attempt: CallAttempt):
        try:
            if attempt.campaign_id in backed_off:
                return attempt, BACKED_OFF, None
            return attempt, DIALLED, provider.place_call(attempt, call_urls(attempt))
        except NumberRejected as exc:
            return attempt, REJECTED, exc
        except ProviderUnavailable as exc:
            backed_off.add(attempt.campaign_id)
            return attempt, UNAVAILABLE, exc
        except Exception as exc:  # an unexpected provider error is treated as an outage
            logger.exception("provider %s failed on attempt %s", provider.name, attempt.pk)
            backed_off.add(attempt.campaign_id)
            return attempt, UNAVAILABLE, exc

    dialled: list[tuple[CallAttempt, str]] = []
    oldest_waiting = None

    def collect(attempt, result, detail):
        nonlocal oldest_waiting
        if result == DIALLED:
            dialled.append((attempt, detail))
            oldest_waiting = oldest_waiting or time.monotonic()
        else:
            across_restarts(
                "not-dialled write",
                record_not_dialled,
                attempt,
                result=result,
                error=detail,
                now=now,
                report=report,
            )

    def flush(force: bool = False):
        nonlocal oldest_waiting
        if dialled and (
            force
            or len(dialled) >= FLUSH_SIZE
            or time.monotonic() - oldest_waiting >= FLUSH_SECONDS
        ):
            report.dialled += across_restarts("dial write-back", record_dialled, dialled, now=now)
            dialled.clear()
            oldest_waiting = None

    # A plain pool: each thread takes attempts from `todo` and puts what came of them on
    # `done`. (A future per call cost more than a fast provider's call itself.)
    todo: queue.SimpleQueue = queue.SimpleQueue()
    done: queue.SimpleQueue = queue.SimpleQueue()

    def work():
        try:
            while (attempt := todo.get()) is not None:
                done.put(place(attempt))
        finally:
            connections.close_all()  # a provider that touched the DB leaves no connection

    campaign_ids = {attempt.campaign_id for attempt in attempts}
    stopped, checked_at = set(), None

    def campaign_stopped(campaign_id: int) -> bool:
        nonlocal stopped, checked_at
        if checked_at is None or time.monotonic() - checked_at >= STATUS_RECHECK_SECONDS:
            stopped = across_restarts("campaign status read", stopped_campaigns, campaign_ids)
            checked_at = time.monotonic()
        return campaign_id in stopped

    threads = max(1, min(settings.DIALLER_DIAL_THREADS, len(attempts)))
    pool = [threading.Thread(target=work, name=f"dial-{n}") for n in range(threads)]
    for thread in pool:
        thread.start()
    placed = 0
    try:
        for attempt in interleave_campaigns(attempts):
            if attempt.campaign_id in backed_off:
                collect(attempt, BACKED_OFF, None)
                continue
            across_restarts("shared pace", pace.acquire)
            if campaign_stopped(attempt.campaign_id):
                collect(attempt, STOPPED, None)
                continue
            todo.put(attempt)
            placed += 1
            while not done.empty():
                collect(*done.get())
                placed -= 1
            flush()
        while placed:
            collect(*done.get())
            placed -= 1
            flush()
    finally:
        for _ in pool:
            todo.put(None)
        for thread in pool:
            thread.join()
        # Calls placed while the loop above failed (the database restarting under it) are
        # written back all the same; the attempts not placed wait for recover_lost_attempts.
        while not done.empty():
            attempt, result, sid = done.get()
            if result == DIALLED:
                dialled.append((attempt, sid))
        flush(force=True)


def interleave_campaigns(attempts: list[CallAttempt]) -> list[CallAttempt]:
    """Round robin over campaigns, so the pace is shared fairly too."""
    by_campaign = defaultdict(list)
    for attempt in attempts:
        by_campaign[attempt.campaign_id].append(attempt)
    rounds = zip_longest(*by_campaign.values())
    return [attempt for round_ in rounds for attempt in round_ if attempt is not None]


# Pauses before each new try of a dial step's statement whose connection the database ended: a
# PostgreSQL restart takes a second or two, and the claimed calls (once placed, their SIDs) are
# at stake. Without these, the calls claimed but not yet placed would wait out the dial lease.
DATABASE_RETRIES = (0.2, 0.5, 1.0, 2.0, 4.0)


def across_restarts(what: str, call, *args, **kwargs):
    """call(*args, **kwargs), tried again on a new connection while the database cannot be
    reached (each of the dial step's writes is guarded: it lands once whichever try it is)."""
    for pause in DATABASE_RETRIES:
        try:
            return call(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            logger.warning("%s failed (%s); again in %s s", what, type(exc).__name__, pause)
            connection.close()
            time.sleep(pause)
    return call(*args, **kwargs)


def record_dialled(dialled: list[tuple[CallAttempt, str]], *, now: dt.datetime) -> int:
    """The provider accepted these calls: store each SID and mark them initiated (unless a
    callback already moved them on), in one statement whatever the batch. An attempt that
    recovery has already closed as lost is left as it is (its contact was given the attempt
    back); one a final callback ended first (a fast `failed`) still gets its dial time. (The
    claim counted the attempt on its contact; see calls.outcomes for when it is given back.)

    Each attempt is written back once, by the tick that dialled it, so the update needs no
    `dialled_at IS NULL` guard, and must not have one: the planner's statistics rarely hold
    any undialled attempt, and a one-row estimate made it compare every batch row with every
    queued attempt."""
    attempts = quote(CallAttempt._meta.db_table)
    pk = CallAttempt._meta.pk
    at = CallAttempt._meta.get_field("dialled_at").get_db_prep_value(now, connection)
    results, params = rows_cte(
        "v",
        [("id", "uuid"), ("sid", "text")],
        [(pk.get_db_prep_value(a.pk, connection), sid) for a, sid in dialled],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH {results}
                UPDATE {attempts}
                   SET provider_call_sid = v.sid, dialled_at = %s,
                       status = CASE WHEN {attempts}.status = 'queued' THEN 'initiated'
                                     ELSE {attempts}.status END
                  FROM v
                 WHERE {attempts}.id = v.id AND {attempts}.error_code <> 'lost'
             RETURNING {attempts}.id""",
            [*params, at],
        )
        written = {pk.to_python(row[0]) for row in cursor.fetchall()}
    # No CallEvent per successful dial: the attempt row holds the SID and dialled_at, and the
    # provider's callbacks log what follows; events are for what went wrong.
    recorded = [(a, sid) for a, sid in dialled if a.pk in written]
    for attempt, sid in recorded:
        attempt.provider_call_sid, attempt.dialled_at = sid, now
        attempt.status = S.INITIATED if attempt.status == S.QUEUED else attempt.status
    return len(recorded)


def record_not_dialled(
    attempt: CallAttempt,
    *,
    result: str,
    error: Exception | None,
    now: dt.datetime,
    report: TickReport,
) -> None:
    """Close an attempt the provider did not take, and settle its contact: an outage (or a
    back-off), or its campaign stopped since the claim, puts the contact back where it was
    without using an attempt; a rejected number makes it invalid."""
    phone = attempt.contact.phone
    status = S.FAILED
    if result == STOPPED:
        code, kind, status = "stopped", "released", S.CANCELED
        message = "Not dialled: the campaign was paused or cancelled after the call was claimed."
    elif result == REJECTED:
        code, kind = "number_rejected", "provider_error"
        message = f"The provider rejected the number: {error}"
    elif result == UNAVAILABLE:
        code, kind = "provider_unavailable", "provider_error"
        message = f"The provider is unavailable: {error}"
    else:
        code, kind = "provider_unavailable", "backed_off"
        message = "Not dialled: the provider failed on an earlier call of this campaign."
    message = message.replace(phone, mask_phone(phone))
    with transaction.atomic():
        closed = CallAttempt.objects.filter(
            pk=attempt.pk, status=S.QUEUED, dialled_at__isnull=True
        ).update(status=status, error_code=code, error_message=message, ended_at=now)
        if not closed:
            return
        attempt.status, attempt.error_code, attempt.error_message = status, code, message
        attempt.ended_at = now
        new_state = settle_contact(attempt, now=now)
        CallEvent.objects.create(
            attempt=attempt,
            kind=kind,
            message=f"{message} Contact {new_state or 'left alone (moved on)'}.",
            payload={
                "error_code": code,
                "provider_code": error.code if isinstance(error, ProviderError) else "",
            },
            actor="dialler",
            at=now,
        )
    if result in (BACKED_OFF, STOPPED):
        report.released += 1
    else:
        report.failed += 1
        report.errors.append(f"{mask_phone(phone)} {code}")
