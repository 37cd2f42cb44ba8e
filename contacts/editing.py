"""Adding and changing single contacts and do-not-call entries (the CSV import is importing.py)."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from campaigns.models import Campaign
from contacts.hook_events import number_excluded
from contacts.models import (
    Contact,
    Exclusion,
    active_exclusions,
    exclude_listed_contacts,
    in_force,
    is_excluded,
    release_unlisted_contacts,
)


@transaction.atomic
def add_contact(*, campaign: Campaign, fields: dict, now: dt.datetime | None = None) -> Contact:
    """A new contact of `campaign`; `excluded` straight away when its number is on the
    do-not-call list (as the import does), else `pending` and due now."""
    now = now or timezone.now()
    contact = Contact(campaign=campaign, next_attempt_at=now, **fields)
    contact.fill_derived()
    if is_excluded(contact.phone, campaign_id=campaign.pk, now=now):
        contact.state = Contact.State.EXCLUDED
    contact.save()
    return contact


@transaction.atomic
def update_contact(*, contact: Contact, fields: dict) -> Contact:
    """Change a contact's details. A new phone number without zones gets its zones derived
    again (the old number's zones would be wrong)."""
    if "phone" in fields and fields["phone"] != contact.phone and "timezones" not in fields:
        fields = {**fields, "timezones": []}
    for name, value in fields.items():
        setattr(contact, name, value)
    contact.save()
    return contact


@transaction.atomic
def add_exclusion(
    *,
    phone: str,
    campaign: Campaign | None = None,
    reason: str = "",
    source: str = Exclusion.Source.MANUAL,
    expires_at: dt.datetime | None = None,
    created_by=None,
) -> Exclusion:
    """Put a number (E.164) on the do-not-call list, for every campaign or for one. A number
    already listed in that scope is refused (ValidationError)."""
    scope = Exclusion.objects.filter(phone=phone)
    scope = (
        scope.filter(campaign__isnull=True) if campaign is None else scope.filter(campaign=campaign)
    )
    if scope.exists():
        if campaign is None:
            message = gettext("This number is already excluded from every campaign.")
        else:
            message = gettext("This number is already excluded from campaign %(id)s.") % {
                "id": campaign.pk
            }
        raise ValidationError({"phone": message})
    exclusion = Exclusion.objects.create(
        phone=phone,
        campaign=campaign,
        reason=reason,
        source=source,
        expires_at=expires_at,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    apply_exclusion(exclusion)
    return exclusion


def apply_exclusion(
    exclusion: Exclusion, *, was: str | None = None, now: dt.datetime | None = None
) -> int:
    """After an entry is saved (`was`: its phone before a change, None for a new entry): a
    changed entry first releases the contacts no longer listed for good
    (release_unlisted_contacts), then a never-expiring entry excludes the number's contacts
    still waiting to be called (exclude_listed_contacts). Returns how many it excluded."""
    now = now or timezone.now()
    if was is not None:
        release_unlisted_contacts({exclusion.phone, was}, now=now)
    else:
        number_excluded(exclusion)
    if exclusion.expires_at is not None:
        return 0
    return exclude_listed_contacts([exclusion.phone], campaign_id=exclusion.campaign_id, now=now)


@transaction.atomic
def remove_exclusions(exclusions, now: dt.datetime | None = None) -> int:
    """Take entries off the do-not-call list; their numbers' contacts that no other
    never-expiring entry holds wait to be called again. Returns how many were released."""
    exclusions = list(exclusions)
    Exclusion.objects.filter(pk__in=[e.pk for e in exclusions]).delete()
    return release_unlisted_contacts([e.phone for e in exclusions], now=now or timezone.now())


def exclusions_for(phone: str, *, campaign_id: int | None, now: dt.datetime) -> list[Exclusion]:
    """The entries in force at `now` for this number (E.164): with a campaign, the global ones
    and that campaign's; without, every scope."""
    if campaign_id is not None:
        rows = active_exclusions(now, campaign_id)
    else:
        rows = in_force(now)
    return list(rows.filter(phone=phone).select_related("campaign", "created_by"))


# --- an operator's moves on contacts (the admin's buttons and bulk actions) -----------------

# A reset gives back a fresh attempt budget. Not to a contact on a call (its call decides), who
# opted out, whose number is on the do-not-call list or is not valid: those are decisions of
# the callee or of the list, not something to undo by a reset.
RESETTABLE_STATES = (
    Contact.State.PENDING,
    Contact.State.NOT_REACHED,
    Contact.State.COMPLETED,
    Contact.State.EXHAUSTED,
)


def retry_contacts_now(contacts, *, now: dt.datetime) -> int:
    """The contacts waiting for their retry delay are due now: the next tick may call them
    (inside their calling window). Others are left as they are. Returns how many moved."""
    return contacts.filter(state__in=Contact.CALLABLE_STATES, next_attempt_at__gt=now).update(
        next_attempt_at=now, updated_at=now
    )


def reset_contacts(contacts, *, now: dt.datetime) -> int:
    """Call these contacts again from the start: `pending`, due now, with the campaign's whole
    attempt budget again (their calls and answers stay in the history). Only contacts in
    RESETTABLE_STATES of a campaign that is not over move. Returns how many moved."""
    from campaigns.models import Campaign

    return (
        contacts.filter(state__in=RESETTABLE_STATES)
        .exclude(campaign__status__in=Campaign.FINAL_STATUSES)
        .update(
            state=Contact.State.PENDING,
            attempts_count=0,
            completion_attempts_count=0,
            next_attempt_at=now,
            updated_at=now,
        )
    )


@transaction.atomic
def exclude_contacts(contacts, *, everywhere: bool, reason: str = "", by=None) -> tuple[int, int]:
    """Put the contacts' numbers on the do-not-call list: for every campaign (`everywhere`)
    or for each contact's own campaign. A number already listed in that scope is left as it
    is. Returns (entries added, selected contacts it moved to `excluded`)."""
    before = contacts.filter(state=Contact.State.EXCLUDED).count()
    wanted = set(contacts.values_list("phone", "campaign_id").order_by())
    if everywhere:
        wanted = {(phone, None) for phone, _ in wanted}
    listed = set(
        Exclusion.objects.filter(phone__in={phone for phone, _ in wanted}).values_list(
            "phone", "campaign_id"
        )
    )
    campaigns = {c.pk: c for c in Campaign.objects.filter(pk__in={c for _, c in wanted if c})}
    added = 0
    for phone, campaign_id in sorted(wanted, key=lambda pair: (pair[0], pair[1] or 0)):
        if (phone, campaign_id) in listed:
            continue
        add_exclusion(
            phone=phone,
            campaign=campaigns.get(campaign_id),
            reason=reason,
            source=Exclusion.Source.MANUAL,
            created_by=by,
        )
        added += 1
    return added, contacts.filter(state=Contact.State.EXCLUDED).count() - before
