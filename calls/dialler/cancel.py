"""Cancelling a campaign or a booked series stops what is live: its calls are hung up through
the provider (`Provider.cancel`), each with an event on its attempt.

The provider is called outside any transaction, after the cancellation has committed: a
hang-up that fails (the provider is down) leaves an event saying so, and the call ends as
calls do, by the provider's status callback (or recovery)."""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from calls.booking.scheduling import ACTIVE as BOOKED
from calls.booking.scheduling import actor_name, booking_event, cancel_scheduled_call
from calls.models import CallAttempt, CallEvent, ScheduledCall
from calls.telephony.base import Provider, get_provider
from campaigns.models import Campaign
from contacts.phones import mask_phones_in

logger = logging.getLogger(__name__)


@dataclass
class HangUps:
    hung_up: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # phone numbers masked

    def __str__(self) -> str:
        """What the admin's message says (the events themselves stay in English)."""
        text = gettext("%(n)d live call(s) hung up") % {"n": self.hung_up}
        if self.failed:
            text += gettext(", %(n)d could not be (see their events)") % {"n": self.failed}
        return text


def hang_up_calls(
    attempts, *, why: str, now: dt.datetime, by=None, provider: Provider | None = None
) -> HangUps:
    """Ask the provider to end each live attempt of `attempts` (a queryset) that it has
    placed, and record a `hung_up` or `hang_up_failed` event on each. An attempt not placed
    yet has no provider call to end. `provider`: the one to use (tests); by default each
    attempt's own."""
    done = HangUps()
    events = []
    live = (
        attempts.filter(status__in=CallAttempt.LIVE_STATUSES, provider_call_sid__isnull=False)
        .only("pk", "provider", "provider_call_sid")
        .order_by("created_at")
    )
    for attempt in live:
        try:
            (provider or provider_of(attempt)).cancel(attempt.provider_call_sid)
        except Exception as exc:  # the provider's error, whatever it is, goes on the attempt
            message = mask_phones_in(f"Could not hang up ({why}): {exc}")
            kind = "hang_up_failed"
            done.failed += 1
            done.errors.append(message)
            logger.warning("attempt %s: %s", attempt.pk, message)
        else:
            message, kind = f"Hung up: {why}.", "hung_up"
            done.hung_up += 1
        events.append(
            CallEvent(
                attempt=attempt,
                kind=kind,
                message=message,
                payload={"provider_call_sid": attempt.provider_call_sid},
                actor=actor_name(by),
                at=now,
            )
        )
    CallEvent.objects.bulk_create(events)
    return done


def provider_of(attempt: CallAttempt) -> Provider:
    """The provider that placed the attempt (LookupError for one this process does not know)."""
    try:
        return get_provider(attempt.provider)
    except KeyError:
        raise LookupError(f"no provider {attempt.provider!r} here") from None


def cancel_campaign(
    campaign: Campaign, *, now: dt.datetime, by=None, provider: Provider | None = None
) -> HangUps:
    """Cancel the campaign (IllegalTransition when it is already over), cancel its booked
    calls, then hang up its live calls."""
    with transaction.atomic():
        campaign.transition("cancel", now=now)
        bookings = list(
            ScheduledCall.objects.select_for_update()
            .filter(contact__campaign=campaign, status__in=BOOKED)
            .only("pk")
        )
        ScheduledCall.objects.filter(pk__in=[call.pk for call in bookings]).update(
            status=ScheduledCall.Status.CANCELLED, next_run_at=None, updated_at=timezone.now()
        )
        message = f"The campaign {campaign.name!r} was cancelled."
        CallEvent.objects.bulk_create(
            booking_event(
                call, "cancelled", at=now, by=actor_name(by), scope="series", message=message
            )
            for call in bookings
        )
    why = f"campaign {campaign.name!r} cancelled by {actor_name(by)}"
    return hang_up_calls(
        CallAttempt.objects.filter(campaign=campaign), why=why, now=now, by=by, provider=provider
    )


def cancel_booking(
    call: ScheduledCall,
    *,
    scope: str = "series",
    now: dt.datetime,
    by=None,
    reason: str = "",
    provider: Provider | None = None,
) -> ScheduledCall:
    """cancel_scheduled_call, then, for the whole series, hang up its call in progress."""
    call = cancel_scheduled_call(call, scope=scope, now=now, by=by, reason=reason)
    if scope == "series":
        why = f"scheduled call {call.pk} cancelled by {actor_name(by)}"
        hang_up_calls(call.attempts.all(), why=why, now=now, by=by, provider=provider)
    return call
