"""The event the contacts app sends to webhook subscribers: a number put on the do-not-call list
by an operator or an API client (the callee's own opt-out is sent by calls.hook_events, with
the same payload shape)."""

from contacts.models import Exclusion
from hooks.emitting import emit


def number_excluded(exclusion: Exclusion) -> None:
    """`contact_id`, `campaign_id` and `attempt_id` are those of the call the opt-out happened
    on, and empty here: an entry is for a number, in every campaign (`scope_campaign_id` empty)
    or in one."""

    def payload():
        return {
            "contact_id": None,
            "phone": exclusion.phone,
            "external_id": "",
            "campaign_id": None,
            "attempt_id": None,
            "source": exclusion.source,
            "exclusion_id": exclusion.pk,
            "scope_campaign_id": exclusion.campaign_id,
            "reason": exclusion.reason,
            "expires_at": exclusion.expires_at,
            "at": exclusion.created_at,
        }

    emit("contact.opted_out", payload, key=f"exclusion/{exclusion.pk}", at=exclusion.created_at)
