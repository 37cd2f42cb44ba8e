"""What an attempt's end means for its contact: the retry rules, in one place.

The webhooks call `settle_contact` when a callback makes an attempt final; the tick's recovery
calls it after closing a lost attempt; the dial step calls it after an outage or a rejected
number. Each caller first moves the attempt to its final status with its own guarded UPDATE;
this module only moves the contact.

An answer the callee gave during the call may reach us after the final status callback (under
load the two requests are processed in either order). It is never thrown away: the gather
webhook locks the attempt row before it writes, so a final callback that comes later sees the
answer, and one that came first has its settlement corrected by `settle_late_answer`."""

import datetime as dt

from django.db import connection, transaction

from calls import hook_events
from calls.booking.scheduling import settle_scheduled_call
from calls.db import prepared
from calls.models import CallAttempt
from campaigns.models import Campaign
from contacts.models import Contact, Exclusion

# Outages and crashes before dialling are not calls to the person: the contact goes back to
# where it was after this short pause (the provider gets a moment to recover).
NOT_A_CALL_RETRY = dt.timedelta(minutes=1)
# Outcomes where the provider never placed the call.
NOT_CALLS = ("provider_unavailable", "lost", "rejected", "stopped")


def settle_contact(attempt: CallAttempt, *, now: dt.datetime) -> str | None:
    """Move the attempt's contact to the state its (final) outcome calls for.

    Fenced by attempt: the contact moves only while it is still `in_progress` on this very
    attempt (`last_attempt_number`), so a late callback of an old, rescued attempt never moves
    a contact that has gone on to a newer one. Returns the contact's new state, or None when
    the fence held it back.

    A booked call's attempt also moves its ScheduledCall on (done, quick retry, next
    occurrence, or failed), whether or not the fence held the contact back."""
    # Every caller holds its own transaction around this and lets errors roll it all back, so
    # a savepoint would only cost two round trips.
    with transaction.atomic(savepoint=False):
        return settle_locked_contact(attempt, _lock_contact(attempt), now=now)


def settle_locked_contact(
    attempt: CallAttempt, contact: Contact | None, *, now: dt.datetime
) -> str | None:
    """`settle_contact` for a caller that has already locked the contact as `_lock_contact`
    does (with `listed`), its campaign cached (the status webhook does it in the statement
    that ends the attempt); None: the fence held it back."""
    with transaction.atomic(savepoint=False):
        state = _settle_contact(attempt, contact, now=now) if contact else None
        if attempt.scheduled_call_id:
            settle_scheduled_call(attempt, now=now)
        hook_events.attempt_finished(attempt, contact, state, now=now)
    return state


CONTACTS = f'"{Contact._meta.db_table}"'
SETTLE = f"""
UPDATE {CONTACTS} SET
    updated_at = %(now)s,
    state = %(state)s,
    next_attempt_at = COALESCE(%(next_attempt_at)s, next_attempt_at),
    attempts_count = attempts_count - %(given_back)s,
    completion_attempts_count = completion_attempts_count + %(granted)s
WHERE id = %(id)s
"""


def _settle_contact(
    attempt: CallAttempt, contact: Contact, *, now: dt.datetime, given_back: int | None = None
) -> str:
    outcome = attempt.outcome
    campaign = contact.campaign
    budget = contact.attempt_budget()
    # The claim counted this attempt; a call the provider never placed is given back.
    if given_back is None:
        given_back = 1 if _not_a_call(attempt, outcome) else 0
    used = contact.attempts_count - given_back
    next_attempt_at = None  # unchanged
    granted = 0  # calls granted by the completion rule
    if outcome == "refused":
        state = Contact.State.REFUSED
    elif outcome == "completed":
        state = Contact.State.COMPLETED
    elif outcome == "rejected":
        state = Contact.State.INVALID
    elif attempt.scheduled_call_id and attempt.contact_state_before:
        # A booked call that did not reach the person: its own retry rule applies
        # (calls.booking.scheduling), the contact keeps its place in the campaign.
        state = attempt.contact_state_before
        if state in Contact.CALLABLE_STATES and used >= budget:
            state = Contact.State.EXHAUSTED  # the booked call used the last one
    elif outcome in ("provider_unavailable", "lost", "stopped") and not attempt.reached_provider:
        state = Contact.State.PENDING if used == 0 else Contact.State.NOT_REACHED
        next_attempt_at = now + NOT_A_CALL_RETRY
    elif outcome == "callback":
        # The person asked for a later call: it is theirs, not one of our retries.
        state = Contact.State.NOT_REACHED
        next_attempt_at = attempt.callback_requested_for
        granted = 1 if used >= budget else 0
    elif outcome == "incomplete" and (
        contact.completion_attempts_count < campaign.completion_max_attempts
    ):
        state = Contact.State.NOT_REACHED
        next_attempt_at = now + campaign.retry_delay("incomplete")
        granted = 1
    elif used < budget:
        state = Contact.State.NOT_REACHED
        next_attempt_at = now + campaign.retry_delay(outcome)
    else:
        state = Contact.State.EXHAUSTED
    if state in Contact.CALLABLE_STATES and contact.listed:
        # Put on the do-not-call list for good while this call was on: never called again.
        state = Contact.State.EXCLUDED
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "id": contact.pk,
        "now": adapt(now),
        "state": str(state),
        "next_attempt_at": adapt(next_attempt_at),
        "given_back": given_back,
        "granted": granted,
    }
    prepared.execute(SETTLE, params)
    return state


def _not_a_call(attempt: CallAttempt, outcome: str) -> bool:
    return outcome in NOT_CALLS and not attempt.reached_provider


# What an answer taken after the attempt ended can make of it: each settles the contact
# differently from the `incomplete` (or `lost`) it was settled as.
LATE_OUTCOMES = ("completed", "refused", "callback")
# Where a settlement leaves a contact that may still be corrected (`excluded`: the late
# opt-out itself excludes the number's waiting contacts).
SETTLED_STATES = (
    Contact.State.PENDING,
    Contact.State.NOT_REACHED,
    Contact.State.EXHAUSTED,
    Contact.State.EXCLUDED,
)


def settle_late_answer(attempt: CallAttempt, *, settled_as: str, now: dt.datetime) -> str | None:
    """The callee's answer (a finished survey, an opt-out, a call-back request) was taken after
    `attempt` had ended and its contact had been settled for the outcome `settled_as`: the
    gather was made while the call was live, so it counts. Settle the contact again for the
    outcome the attempt has now, under the contact's row lock, while the contact is still
    where this attempt left it (no newer attempt claimed it; not completed, refused or
    invalid since). Returns the new state, or None when nothing had to move.

    A booked call's ScheduledCall is not moved again: a late opt-out already stops it (the
    booking checks the do-not-call list), and a finished survey only spares it a retry."""
    outcome = attempt.outcome
    if outcome == settled_as or outcome not in LATE_OUTCOMES:
        return None
    with transaction.atomic(savepoint=False):
        contact = _lock_contact(attempt, states=SETTLED_STATES)
        if contact is None:
            return None
        # The first settlement gave back an attempt it took for no call: this one was a call.
        given_back = -1 if _not_a_call(attempt, settled_as) else 0
        return _settle_contact(attempt, contact, now=now, given_back=given_back)


def listed_for_good(contact: str) -> str:
    """SQL: whether the number of the contact row `contact` has a do-not-call entry that never
    expires, for every campaign or for its own (as `listed`)."""
    exclusions = connection.ops.quote_name(Exclusion._meta.db_table)
    return f"""EXISTS (
        SELECT 1 FROM {exclusions} x WHERE x.phone = {contact}.phone AND x.expires_at IS NULL
           AND (x.campaign_id IS NULL OR x.campaign_id = {contact}.campaign_id)
    ) AS listed"""


def _lock_contact(
    attempt: CallAttempt, *, states: tuple = (Contact.State.IN_PROGRESS,)
) -> Contact | None:
    """The attempt's contact, locked, while it is still on this attempt in one of `states`
    (else None), with its campaign and `listed` (listed_for_good). Written by hand: the ORM
    took longer to compile this query than the database took to run it, on every final
    callback."""
    lock = " FOR UPDATE OF c" if connection.features.has_select_for_update_of else ""
    in_states = ", ".join(["%s"] * len(states))
    found = list(
        Contact.objects.raw(
            f"SELECT c.*, {listed_for_good('c')} FROM {CONTACTS} c"
            f" WHERE c.id = %s AND c.state IN ({in_states}) AND c.last_attempt_number = %s" + lock,
            [attempt.contact_id, *[str(s) for s in states], attempt.attempt_number],
        )
    )
    if not found:
        return None
    contact = found[0]
    field = CallAttempt._meta.get_field("campaign")
    if field.is_cached(attempt):
        campaign = attempt.campaign
    else:
        campaigns = connection.ops.quote_name(Campaign._meta.db_table)
        campaign = Campaign.objects.raw(
            f"SELECT * FROM {campaigns} WHERE id = %s", [attempt.campaign_id]
        )[0]
        field.set_cached_value(attempt, campaign)
    Contact._meta.get_field("campaign").set_cached_value(contact, campaign)
    return contact
