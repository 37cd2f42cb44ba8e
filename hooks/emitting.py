"""`emit`: what the other apps call when something a client may subscribe to happens.

It runs on the dialler's hot paths (every call's end, at up to 100 calls a second), so it
costs one query when nobody subscribes to the event, and builds the payload only when someone
does: a payload may be given as a function."""

import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from hooks.models import EVENT_TYPES, WebhookDelivery, WebhookSubscription

log = logging.getLogger(__name__)

SEND_TASK = "hooks.sending.send_event"


def event_id_for(event_type: str, key) -> uuid.UUID:
    """The event's id derived from what it is about (`key`: an attempt's id, a campaign's…),
    so the same event emitted twice (a replayed callback) is one event: its second delivery
    to a subscription is refused by delivery_once_per_event."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{settings.PUBLIC_BASE_URL}/events/{event_type}/{key}")


def emit(
    event_type: str,
    payload: dict | Callable[[], dict],
    *,
    key=None,
    at: dt.datetime | None = None,
    on_commit: bool = True,
) -> uuid.UUID | None:
    """Queue `event_type` for every enabled subscription to it: one WebhookDelivery each, in
    the caller's transaction (rolled back with it), sent once it commits. Returns the event id,
    or None when nobody subscribes (then `payload`, if a function, is never called).

    `key` makes the event id stable (see event_id_for); without it each call is a new event.
    `at` is when it happened (default: now). `on_commit=False` asks for the send at once."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}.")
    subscribed = subscribers(event_type)
    if not subscribed:
        return None
    at = at or timezone.now()
    event_id = event_id_for(event_type, key) if key is not None else uuid.uuid4()
    data = payload() if callable(payload) else payload
    body = {"id": event_id, "type": event_type, "created_at": at, "data": data}
    # Datetimes, UUIDs and decimals as JSON writes them, once: stored and sent as they are.
    body = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                subscription_id=pk,
                event_id=event_id,
                event_type=event_type,
                payload=body,
                created_at=at,
                next_attempt_at=at,
            )
            for pk in subscribed
        ],
        ignore_conflicts=True,
    )
    if on_commit:
        transaction.on_commit(partial(enqueue_send, event_id), robust=True)
    else:
        enqueue_send(event_id)
    return event_id


SUBSCRIBERS = "SELECT id, event_types FROM {table} WHERE enabled"


def subscribers(event_type: str) -> list[int]:
    """Ids of the enabled subscriptions to `event_type`. Written by hand: the ORM took several
    times longer to compile this query than the database took to answer it, on every call's
    end. There are few subscriptions: the event types are matched here, not in SQL (SQLite
    has no JSON containment)."""
    field = WebhookSubscription._meta.get_field("event_types")
    table = connection.ops.quote_name(WebhookSubscription._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(SUBSCRIBERS.format(table=table))
        rows = cursor.fetchall()
    return [pk for pk, types in rows if event_type in field.from_db_value(types, None, connection)]


def enqueue_send(event_id: uuid.UUID) -> None:
    """Ask a django-q2 worker to send the event's deliveries now (hooks.sending explains why
    the sender's sweep would send them anyway). The task's success is not stored: the
    delivery row is the record."""
    from django_q.tasks import async_task

    try:
        async_task(SEND_TASK, str(event_id), q_options={"save": False, "group": "webhooks"})
    except Exception:  # the broker is down: the sweep sends it
        log.exception("could not queue the sending of event %s", event_id)
