"""Outbound webhooks: the endpoints API clients subscribe, and each event's delivery to them.

This app imports nothing from campaigns, contacts or calls: they call `hooks.emitting.emit`
with a payload they build themselves."""

import secrets
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

# The events a subscription may choose, and what each means (docs/webhooks-out.md has the
# payloads).
EVENT_TYPES = {
    "attempt.finished": "A call attempt ended (any outcome).",
    "survey.completed": "A callee answered the last question of a survey.",
    "contact.opted_out": "A number was put on the do-not-call list (by the callee or an operator).",
    "campaign.completed": "A campaign completed (all contacts done, or past its end).",
    "booking.missed": "A booked call's occurrence was not placed in time (misfire grace).",
    "booking.completed": "A booked call's occurrence is over (its retries included).",
}

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """256 random bits, Stripe's way of writing them (the prefix says what it is)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class WebhookSubscription(models.Model):
    """An endpoint of an API client, the events it wants, and the secret its deliveries are
    signed with. The secret is shown once, when the subscription is made; it has to be kept in
    clear here (HMAC signing needs it), but no page or API answer shows it again."""

    url = models.URLField(max_length=2000, help_text=_("http(s) URL the events are POSTed to."))
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list, help_text=f"Some of: {', '.join(EVENT_TYPES)}.")
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    enabled = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(
        default=0, editable=False, help_text=_("Failed sends since the last success.")
    )
    failing_since = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("First failure since the last success.")
    )
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=500, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("webhook subscription")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.event_types)})"

    @property
    def masked_secret(self) -> str:
        return f"{self.secret[: len(SECRET_PREFIX) + 4]}…" if self.secret else ""


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending (not sent yet)")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed (will retry)")
    GIVEN_UP = "given_up", _("Given up")


class WebhookDelivery(models.Model):
    """One event for one subscription: the body as signed and sent, and how sending it went."""

    Status = DeliveryStatus
    WAITING = (Status.PENDING, Status.FAILED)  # the sender's to send when next_attempt_at comes

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField(encoder=DjangoJSONEncoder, help_text=_("The body sent."))
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0, help_text=_("Sends tried."))
    last_status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("The receiver's HTTP status at the last send.")
    )
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it is (re)sent next; empty once delivered.")
    )
    created_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            # An event reaches a subscription once (emit inserts with ignore_conflicts).
            models.UniqueConstraint(
                fields=["subscription", "event_id"], name="delivery_once_per_event"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in DeliveryStatus]),
                name="delivery_status_valid",
            ),
        ]
        indexes = [
            # The sender's sweep: waiting deliveries due by now, oldest first (partial, so it
            # holds only what is still to send).
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "failed"]),
                name="delivery_due_idx",
            ),
            # The delivery log, newest first, and the pruning of old rows.
            models.Index(fields=["created_at"], name="delivery_created_idx"),
            models.Index(fields=["event_id"], name="delivery_event_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.subscription_id} ({self.status})"
