"""Sending deliveries: sign, POST, record the answer, retry with backoff, disable an endpoint
that keeps failing.

The WebhookDelivery row is the queue: a delivery waits (pending, or failed and due for a
retry) until `next_attempt_at`, and whoever sends it first claims it by moving
`next_attempt_at` a lease ahead (skip-locked on PostgreSQL), so any number of senders may run
at once and each send happens once (a sender that dies mid-send leaves the delivery to be
sent again when the lease ends: receivers dedupe by event id). Three things send:

- `send_event`, the django-q2 task `emit` queues when the event's transaction commits: with a
  cluster running (`manage.py qcluster`, docker-compose) an event goes out within a moment.
- `run_sweep`, the django-q2 schedule "webhook deliveries" (every minute, migration
  hooks/0002): the retries as they come due, and anything a task missed.
- `start_sender`, a thread of `manage.py run_scheduler` sweeping every
  WEBHOOK_SWEEP_INTERVAL seconds: `make run` starts no cluster, and the scheduler may run
  alone in production too, so the scheduler sends deliveries itself. It is a thread of its own,
  because a receiver that is slow to answer must not hold the dialler's tick back.

Without a cluster the tasks `emit` queues wait unserved in django-q2's queue; when a cluster
later runs them they find their deliveries already sent and do nothing. Retries are not
django-q2 schedules of their own (one Schedule row per retry, polled every 30 s by the
cluster's scheduler only): a failed delivery's `next_attempt_at` is its retry, sent by the
sweeps in either set-up and shown in the delivery log."""

import datetime as dt
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from hooks.addresses import RefusedAddress, check_destination
from hooks.models import WebhookDelivery, WebhookSubscription
from hooks.signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    signature_header,
)

log = logging.getLogger(__name__)

D = WebhookDelivery.Status
# Longer than any send can take (connect and read timeouts): a claim outlives its send.
LEASE = dt.timedelta(minutes=2)
BATCH_SIZE = 100
SWEEP_BUDGET_SECONDS = 45.0  # a scheduled run ends before the next minute's is due
PRUNE_EVERY = dt.timedelta(hours=1)
USER_AGENT = "voicesurvey-webhooks/1"


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    status_code: int | None = None
    error: str = ""


# --- claiming ----------------------------------------------------------------------------------


def claim_due(*, now: dt.datetime, limit: int, event_id=None) -> list[WebhookDelivery]:
    """Claim up to `limit` deliveries due by `now` (of one event, when given) whose subscription
    is enabled, oldest due first, with their subscriptions."""
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(
            status__in=WebhookDelivery.WAITING, next_attempt_at__lte=now, subscription__enabled=True
        )
        if event_id is not None:
            due = due.filter(event_id=event_id)
        ids = list(
            due.order_by("next_attempt_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return []
        WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now + LEASE)
    return list(WebhookDelivery.objects.select_related("subscription").filter(pk__in=ids))


# --- one send ----------------------------------------------------------------------------------


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def post_delivery(delivery: WebhookDelivery, *, timestamp: int | None = None) -> SendResult:
    """POST the delivery, signed, to its subscription's URL. Touches no database (it runs on
    the sweep's threads). Redirects are not followed: a 3xx is a failure."""
    try:
        return _post(delivery, timestamp=timestamp)
    except Exception as exc:  # a bug here must not lose the other sends' records
        log.exception("webhook delivery %s could not be sent", delivery.pk)
        return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:500])


def _post(delivery: WebhookDelivery, *, timestamp: int | None) -> SendResult:
    subscription = delivery.subscription
    try:
        check_destination(subscription.url)
    except RefusedAddress as exc:
        return SendResult(False, error=str(exc))
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: str(delivery.event_id),
        EVENT_TYPE_HEADER: delivery.event_type,
        SIGNATURE_HEADER: signature_header(subscription.secret, body, timestamp=timestamp),
    }
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        with requests.post(
            subscription.url,
            data=body,
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,  # the receiver's body is not ours to download
        ) as response:
            code = response.status_code
            if 200 <= code < 300:
                return SendResult(True, code)
            text = first_words(response)
    except requests.RequestException as exc:
        return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:500])
    return SendResult(False, code, (f"HTTP {code}: {text}" if text else f"HTTP {code}")[:500])


def first_words(response: requests.Response) -> str:
    """The start of a refusal's body, for the delivery log (a receiver's error page)."""
    try:
        return (response.raw.read(200, decode_content=True) or b"").decode(errors="replace").strip()
    except Exception:  # a reset or a timeout while reading: the status code says enough
        return ""


# --- recording what happened ---------------------------------------------------------------------


def retry_delay(attempts: int) -> dt.timedelta | None:
    """The wait after the `attempts`-th failed send, or None: give up."""
    delays = settings.WEBHOOK_RETRY_MINUTES
    if attempts > len(delays):
        return None
    return dt.timedelta(minutes=delays[attempts - 1])


def record_result(delivery: WebhookDelivery, result: SendResult, *, now: dt.datetime) -> str:
    """Write a send's outcome on the delivery and its subscription's failure count; returns the
    delivery's new status."""
    with transaction.atomic():
        rows = WebhookDelivery.objects.filter(pk=delivery.pk)
        attempted = {
            "attempts": F("attempts") + 1,
            "last_status_code": result.status_code,
            "last_attempt_at": now,
        }
        if result.delivered:
            status = D.DELIVERED
            rows.exclude(status=D.DELIVERED).update(
                status=status, last_error="", delivered_at=now, next_attempt_at=None, **attempted
            )
            WebhookSubscription.objects.filter(
                pk=delivery.subscription_id, consecutive_failures__gt=0
            ).update(consecutive_failures=0, failing_since=None)
        else:
            delay = retry_delay(delivery.attempts + 1)
            status = D.FAILED if delay is not None else D.GIVEN_UP
            rows.filter(status__in=WebhookDelivery.WAITING).update(
                status=status,
                last_error=result.error,
                next_attempt_at=now + delay if delay is not None else None,
                **attempted,
            )
            note_failure(delivery.subscription_id, error=result.error, now=now)
    log.info(
        "webhook delivery %s (%s, event %s) to subscription %s: %s%s",
        delivery.pk,
        delivery.event_type,
        delivery.event_id,
        delivery.subscription_id,
        status,
        f" ({result.status_code or result.error[:80]})" if not result.delivered else "",
    )
    return status


def note_failure(subscription_id: int, *, error: str, now: dt.datetime) -> None:
    """Count a failed send against the subscription; disable it once it has failed
    WEBHOOK_DISABLE_AFTER_FAILURES sends in a row over WEBHOOK_DISABLE_AFTER_HOURS. Its waiting
    deliveries stay as they are: enabling it again sends them."""
    subscription = WebhookSubscription.objects.select_for_update().filter(pk=subscription_id)
    subscription = subscription.first()
    if subscription is None:
        return  # deleted while its delivery was being sent
    subscription.consecutive_failures += 1
    subscription.failing_since = subscription.failing_since or now
    fields = ["consecutive_failures", "failing_since"]
    failing_for = now - subscription.failing_since
    if (
        subscription.enabled
        and subscription.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES
        and failing_for >= dt.timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)
    ):
        subscription.enabled = False
        subscription.disabled_at = now
        subscription.disabled_reason = (
            f"{subscription.consecutive_failures} failed sends in a row since "
            f"{subscription.failing_since:%Y-%m-%d %H:%M} UTC; the last: {error}"
        )[:500]
        fields += ["enabled", "disabled_at", "disabled_reason"]
        log.warning(
            "webhook subscription %s disabled after %s failed sends",
            subscription_id,
            subscription.consecutive_failures,
        )
    subscription.save(update_fields=[*fields, "updated_at"])


# --- the senders ---------------------------------------------------------------------------------


def send_claimed(deliveries: list[WebhookDelivery], *, now: dt.datetime | None = None) -> int:
    """Send claimed deliveries, several at once (the threads only talk HTTP), then record each
    outcome at `now` (default: when the sends are over). Returns how many were delivered."""
    if not deliveries:
        return 0
    threads = max(1, min(settings.WEBHOOK_SEND_THREADS, len(deliveries)))
    if threads == 1:
        results = [post_delivery(delivery) for delivery in deliveries]
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="webhook") as pool:
            results = list(pool.map(post_delivery, deliveries))
    at = now or timezone.now()
    statuses = [record_result(d, r, now=at) for d, r in zip(deliveries, results, strict=True)]
    return statuses.count(D.DELIVERED)


def send_due_deliveries(*, now: dt.datetime | None = None, limit: int = BATCH_SIZE) -> int:
    """One sweep: send up to `limit` deliveries due by `now`; returns how many were claimed."""
    now = now or timezone.now()
    deliveries = claim_due(now=now, limit=limit)
    send_claimed(deliveries, now=now)
    return len(deliveries)


def send_event(event_id: str) -> int:
    """The django-q2 task `emit` queues: send this event's deliveries that are still waiting."""
    deliveries = claim_due(now=timezone.now(), limit=BATCH_SIZE, event_id=event_id)
    return send_claimed(deliveries)


def run_sweep(budget: float = SWEEP_BUDGET_SECONDS) -> int:
    """The django-q2 schedule: sweep batch after batch while whole batches come back and the
    budget lasts, then prune old deliveries. Returns how many were sent."""
    deadline = time.monotonic() + budget
    sent = 0
    while True:
        claimed = send_due_deliveries()
        sent += claimed
        if claimed < BATCH_SIZE or time.monotonic() > deadline:
            break
    prune_deliveries(now=timezone.now())
    return sent


def prune_deliveries(*, now: dt.datetime, batch: int = 1000) -> int:
    """Delete delivered and given-up deliveries older than WEBHOOK_KEEP_DAYS, a batch at a time
    (the log grows with every call's end)."""
    cutoff = now - dt.timedelta(days=settings.WEBHOOK_KEEP_DAYS)
    old = WebhookDelivery.objects.filter(
        created_at__lt=cutoff, status__in=[D.DELIVERED, D.GIVEN_UP]
    )
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:batch]):
        deleted += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
    return deleted


def start_sender(stop: threading.Event, *, interval: float | None = None) -> threading.Thread:
    """run_scheduler's sender: a thread sweeping every `interval` seconds (at once again after
    a full batch) until `stop` is set, pruning old deliveries hourly."""
    interval = settings.WEBHOOK_SWEEP_INTERVAL if interval is None else interval

    def run():
        pruned_at = None
        try:
            while not stop.is_set():
                claimed = 0
                try:
                    claimed = send_due_deliveries()
                    now = timezone.now()
                    if pruned_at is None or now - pruned_at >= PRUNE_EVERY:
                        prune_deliveries(now=now)
                        pruned_at = now
                except Exception:  # a database blip must not end the thread
                    log.exception("webhook sweep failed")
                close_old_connections()
                if claimed < BATCH_SIZE:
                    stop.wait(interval)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run, name="webhook-sender", daemon=True)
    thread.start()
    return thread
