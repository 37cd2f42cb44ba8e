"""Making and changing subscriptions, and sending deliveries again: what the admin and the API
both call."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from hooks.addresses import RefusedAddress, check_url
from hooks.emitting import enqueue_send
from hooks.models import EVENT_TYPES, WebhookDelivery, WebhookSubscription

FIELDS = ("url", "description", "event_types", "enabled")


def clean_event_types(value) -> list[str]:
    """A non-empty list of known event types, without repeats, in the documented order."""
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationError({"event_types": gettext("Give a list of event types.")})
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(
            {
                "event_types": gettext("Unknown event type '%(type)s'; use %(types)s.")
                % {"type": unknown[0], "types": ", ".join(EVENT_TYPES)}
            }
        )
    if not value:
        raise ValidationError({"event_types": gettext("Choose at least one event type.")})
    return [name for name in EVENT_TYPES if name in value]


def clean_url(url: str) -> str:
    try:
        check_url(url)
    except RefusedAddress as exc:
        raise ValidationError({"url": str(exc)}) from None
    return url


@transaction.atomic
def save_subscription(
    *, subscription: WebhookSubscription, fields: dict, by=None, now: dt.datetime | None = None
) -> WebhookSubscription:
    """Create or change a subscription (ValidationError on a refused URL or an unknown event).
    A new one gets its secret here; enabling a disabled one clears its failure record, so it
    starts afresh (its waiting deliveries go out at the next sweep)."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"Not a subscription field: {sorted(unknown)}")
    if "url" in fields:
        fields["url"] = clean_url(fields["url"])
    if "event_types" in fields:
        fields["event_types"] = clean_event_types(fields["event_types"])
    enabling = fields.get("enabled") and not subscription.enabled and subscription.pk
    for name, value in fields.items():
        setattr(subscription, name, value)
    if enabling:
        subscription.consecutive_failures, subscription.failing_since = 0, None
        subscription.disabled_at, subscription.disabled_reason = None, ""
    if subscription.pk is None and getattr(by, "is_authenticated", False):
        subscription.created_by = by
    subscription.full_clean(exclude=["secret", "created_by"])
    subscription.save()
    return subscription


@transaction.atomic
def send_again(deliveries, *, now: dt.datetime | None = None) -> int:
    """Queue deliveries to be sent once more, now, whatever their status (a delivered one is
    sent again with the same event id; receivers dedupe). A delivery keeps its attempts: one
    that had run out of retries is tried once. Returns how many were queued."""
    now = now or timezone.now()
    ids = [d.pk for d in deliveries]
    queued = WebhookDelivery.objects.filter(pk__in=ids).update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=now
    )
    event_ids = set(WebhookDelivery.objects.filter(pk__in=ids).values_list("event_id", flat=True))
    for event_id in event_ids:
        transaction.on_commit(lambda e=event_id: enqueue_send(e), robust=True)
    return queued
