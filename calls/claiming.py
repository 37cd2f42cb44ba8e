"""Step 3 of the tick: who is called now, and claiming them.

Eligibility (DESIGN.md §4): the contact is pending or not reached, has attempts left
(`attempts_count < max_attempts + completion_attempts_count`), is due (`next_attempt_at <= now`),
is not on the do-not-call list now (global or the campaign's own, not expired), and the calling
window is open in its zone set (see campaigns.windows.zones_open). The campaign is running and
inside its dates. Zone sets are worked out in Python once per tick from the campaign's few
distinct zone keys; the claim filters on the open ones in SQL."""

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from calls.models import CallAttempt, DiallerHeartbeat, ScheduledCall
from calls.scheduling import ACTIVE as BOOKED
from calls.scheduling import claim_due_scheduled_calls
from campaigns.models import Campaign
from campaigns.windows import campaign_zone_open, open_zone_keys
from contacts.models import Contact, active_exclusions


def running_campaigns(now: dt.datetime) -> QuerySet[Campaign]:
    """Campaigns the dialler works for at `now` (campaign_status_idx)."""
    return (
        Campaign.objects.filter(status=Campaign.Status.RUNNING)
        .filter(Q(start_at__isnull=True) | Q(start_at__lte=now))
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=now))
        .order_by("pk")
    )


def campaign_zone_keys(campaign_id: int) -> list[str]:
    """The distinct zone keys of a campaign's callable contacts.

    A skip scan (one index probe per distinct key on contact_claim_idx), so it costs the
    number of zone sets, not the number of contacts: a plain DISTINCT would read every
    callable contact of the campaign on every tick."""
    table = connection.ops.quote_name(Contact._meta.db_table)
    callable_states = "state IN ('pending', 'not_reached')"  # the index's own predicate
    sql = f"""
        WITH RECURSIVE zone_keys(zkey) AS (
            SELECT MIN(timezone_key) FROM {table}
             WHERE campaign_id = %s AND {callable_states}
            UNION ALL
            SELECT (SELECT MIN(c.timezone_key) FROM {table} c
                     WHERE c.campaign_id = %s AND c.{callable_states}
                       AND c.timezone_key > zone_keys.zkey)
              FROM zone_keys WHERE zone_keys.zkey IS NOT NULL
        )
        SELECT zkey FROM zone_keys WHERE zkey IS NOT NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign_id, campaign_id])
        return [row[0] for row in cursor.fetchall()]


def eligible_contacts(campaign: Campaign, *, now: dt.datetime, zone_keys) -> QuerySet[Contact]:
    """Contacts of `campaign` that may be dialled at `now`, restricted to open zone keys."""
    on_do_not_call_list = active_exclusions(now, campaign.pk).filter(phone=OuterRef("phone"))
    # A contact with a booked call is called by its booking, at the time it was booked for.
    booked = ScheduledCall.objects.filter(contact=OuterRef("pk"), status__in=BOOKED)
    return Contact.objects.filter(
        ~Exists(on_do_not_call_list),
        ~Exists(booked),
        campaign=campaign,
        state__in=Contact.CALLABLE_STATES,
        timezone_key__in=list(zone_keys),
        next_attempt_at__lte=now,
        attempts_count__lt=F("completion_attempts_count") + campaign.max_attempts,
    )


def live_calls_by_campaign() -> dict[int, int]:
    """Live attempts per campaign, counted in SQL on the partial attempt_live_idx."""
    rows = (
        CallAttempt.objects.filter(status__in=CallAttempt.LIVE_STATUSES)
        .order_by()
        .values("campaign_id")
        .annotate(n=Count("pk"))
    )
    return {row["campaign_id"]: row["n"] for row in rows}


def share_capacity(rooms: dict[int, int], total: int, order: list[int]) -> dict[int, int]:
    """Deal `total` calls out one at a time, round robin in `order`, each campaign up to its
    room: equal shares, and what a small campaign cannot use goes to the others."""
    shares = dict.fromkeys(rooms, 0)
    left = total
    hungry = [cid for cid in order if rooms[cid] > 0]
    while left > 0 and hungry:
        each = max(1, left // len(hungry))
        for cid in list(hungry):
            give = min(each, rooms[cid] - shares[cid], left)
            shares[cid] += give
            left -= give
            if shares[cid] >= rooms[cid]:
                hungry.remove(cid)
            if left == 0:
                break
    return shares


def lock_eligible_contacts(
    campaign: Campaign,
    *,
    now: dt.datetime,
    zone_keys: list[str],
    limit: int,
    already: list[Contact] = (),
) -> list[Contact]:
    """Lock up to `limit` eligible contacts of `campaign`, skipping rows another worker holds.

    Must run inside the caller's transaction. One zone key at a time, each an ordered range of
    contact_claim_idx (oldest due first), so due contacts in closed zones are never read; keys
    come in a random order so no zone set is always served last."""
    contacts: list[Contact] = []
    taken = [c.pk for c in already]  # locked by this transaction's earlier pass
    for key in random.sample(zone_keys, len(zone_keys)):
        need = limit - len(contacts)
        if need <= 0:
            break
        contacts += list(
            eligible_contacts(campaign, now=now, zone_keys=[key])
            .exclude(pk__in=taken)
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True, of=("self",))[:need]
        )
    return contacts


def queue_attempts(
    contacts: list[Contact], *, campaigns: dict[int, Campaign], now: dt.datetime, provider: str
) -> list[CallAttempt]:
    """Create the queued attempts of locked contacts and mark them in progress: one INSERT and
    one UPDATE for the whole batch, in the caller's transaction.

    The INSERT is written by hand (INSERT … SELECT from the contact and campaign rows): the
    ORM's bulk_create spends more time compiling a thousand rows than the database spends
    storing them. The attempt number and the call settings are read in SQL from the rows this
    transaction has locked."""
    if not contacts:
        return []
    attempts = []
    for contact in contacts:
        campaign = campaigns[contact.campaign_id]
        contact.campaign = campaign
        attempt = CallAttempt(
            contact=contact,
            campaign=campaign,
            attempt_number=contact.last_attempt_number + 1,
            provider=provider,
            caller_id=campaign.caller_id,
            machine_detection=campaign.machine_detection,
            status=CallAttempt.Status.QUEUED,
            created_at=now,
            contact_state_before=contact.state,
        )
        attempt._state.adding, attempt._state.db = False, connection.alias
        attempts.append(attempt)
    opts, quote = CallAttempt._meta, connection.ops.quote_name
    rows = ", ".join(["(%s, %s, %s)"] * len(attempts))
    params = [
        value
        for a in attempts
        for value in (opts.pk.get_db_prep_value(a.pk, connection), a.call_id, a.contact_id)
    ]
    created_at = opts.get_field("created_at").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH v(id, call_id, contact_id) AS (VALUES {rows})
                INSERT INTO {quote(opts.db_table)} (id, call_id, contact_id, campaign_id,
                    attempt_number, provider, status, answered_by, caller_id, machine_detection,
                    survey_finished, opted_out, error_code, error_message, created_at,
                    contact_state_before)
                SELECT v.id, v.call_id, c.id, c.campaign_id, c.last_attempt_number + 1, %s,
                       'queued', 'unknown', camp.caller_id, camp.machine_detection,
                       FALSE, FALSE, '', '', %s, c.state
                  FROM v
                  JOIN {quote(Contact._meta.db_table)} c ON c.id = v.contact_id
                  JOIN {quote(Campaign._meta.db_table)} camp ON camp.id = c.campaign_id""",
            [*params, provider, created_at],
        )
        if cursor.rowcount not in (-1, len(attempts)):  # sqlite3 says -1 after WITH
            raise RuntimeError("queue_attempts: an attempt row was not created")
    Contact.objects.filter(pk__in=[c.pk for c in contacts]).update(
        state=Contact.State.IN_PROGRESS,
        last_attempt_number=F("last_attempt_number") + 1,
        last_attempt_at=now,
        updated_at=now,
    )
    for contact in contacts:
        contact.state = Contact.State.IN_PROGRESS
        contact.last_attempt_number += 1
        contact.last_attempt_at = now
    return attempts


@dataclass
class Claim:
    attempts: list[CallAttempt] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # campaigns left out this tick, by reason


def lock_dialler(now: dt.datetime) -> None:
    """Serialise the claim steps of all ticks on all machines on one row (the heartbeat).

    The caps are read-then-write rules: two ticks reading the same live count at once would
    both fill the same free capacity. The lock is held for the claim's short transaction only;
    the skip-locked claim still keeps clear of contacts that callbacks are settling."""
    if DiallerHeartbeat.objects.select_for_update().filter(pk=1).exists():
        return
    DiallerHeartbeat.objects.get_or_create(pk=1, defaults={"last_tick_at": now})
    DiallerHeartbeat.objects.select_for_update().filter(pk=1).exists()


def claim_batch(*, now: dt.datetime, provider_name: str, budget: int) -> Claim:
    """Claim this tick's contacts across running campaigns, fairly, within the caps: lock
    them (FOR UPDATE SKIP LOCKED), create their queued attempts and mark them in progress, in
    one transaction.

    capacity = min(campaign cap - its live calls, batch size) per campaign, and at most
    min(global cap - all live calls, the pace budget) in all, dealt round robin."""
    claim = Claim()
    keys_by_campaign: dict[int, list[str]] = {}
    campaigns = {c.pk: c for c in running_campaigns(now)}
    for campaign in campaigns.values():
        if campaign.window_policy == Campaign.WindowPolicy.CAMPAIGN and not campaign_zone_open(
            campaign, now=now
        ):
            claim.skipped["window_closed"] += 1
            continue
        all_keys = campaign_zone_keys(campaign.pk)
        keys = open_zone_keys(campaign, all_keys, now=now)
        if keys:
            keys_by_campaign[campaign.pk] = keys
        else:
            claim.skipped["window_closed" if all_keys else "no_callable_contacts"] += 1
    with transaction.atomic():
        lock_dialler(now)
        live = live_calls_by_campaign()
        global_room = settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS - sum(live.values())
        # Booked calls first: they are due at a precise time, and count against the same caps.
        booked_room = {
            cid: c.max_concurrent_calls - live.get(cid, 0) for cid, c in campaigns.items()
        }
        booked, why = claim_due_scheduled_calls(
            now=now,
            limit=min(global_room, budget),
            provider=provider_name,
            campaign_room=booked_room,
        )
        claim.attempts += booked
        claim.skipped.update({f"booked_{reason}": n for reason, n in why.items()})
        for attempt in booked:
            live[attempt.campaign_id] = live.get(attempt.campaign_id, 0) + 1
        global_room -= len(booked)
        budget -= len(booked)
        if not keys_by_campaign:
            return claim
        rooms = {}
        for cid in keys_by_campaign:
            room = min(
                campaigns[cid].max_concurrent_calls - live.get(cid, 0),
                settings.DIALLER_BATCH_SIZE,
            )
            if room > 0:
                rooms[cid] = room
            else:
                claim.skipped["campaign_cap"] += 1
        if global_room <= 0:
            if rooms:
                claim.skipped["global_cap"] += len(rooms)
            return claim
        total = min(global_room, budget)
        order = random.sample(list(rooms), len(rooms))
        shares = share_capacity(rooms, total, order)
        if starved := sum(1 for cid in rooms if shares[cid] == 0):
            claim.skipped["paced_or_capped"] += starved
        got: dict[int, int] = Counter()
        locked: list[Contact] = []
        # Second pass: what a campaign with few eligible contacts left unused goes to the
        # campaigns that filled their share.
        for _ in range(2):
            for cid in order:
                if shares[cid] - got[cid] <= 0:
                    continue
                contacts = lock_eligible_contacts(
                    campaigns[cid],
                    now=now,
                    zone_keys=keys_by_campaign[cid],
                    limit=shares[cid] - got[cid],
                    already=[c for c in locked if c.campaign_id == cid],
                )
                got[cid] += len(contacts)
                locked += contacts
            left = total - len(locked)
            full = {cid: rooms[cid] - got[cid] for cid in order if got[cid] == shares[cid]}
            if left <= 0 or not any(full.values()):
                break
            extra = share_capacity(full, left, [cid for cid in order if cid in full])
            shares = {cid: got[cid] + extra.get(cid, 0) for cid in order}
        claim.attempts += queue_attempts(
            locked, campaigns=campaigns, now=now, provider=provider_name
        )
    return claim
