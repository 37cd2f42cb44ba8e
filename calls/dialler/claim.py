"""Step 3 of the tick: who is called now, and claiming them.

Eligibility (DESIGN.md §4): the contact is pending or not reached, has attempts left
(`attempts_count < max_attempts + completion_attempts_count`), is due (`next_attempt_at <= now`),
is not on the do-not-call list now (global or the campaign's own, not expired), has no booked
call (its booking calls it), and the calling window is open in its zone set (see
campaigns.windows.zones_open). The campaign is running and inside its dates, and not an
ad-hoc one (calls.booking.ad_hoc: those place only their bookings). Zone sets are
worked out in Python once per tick from the campaigns' few distinct zone keys; the claim filters
on the open ones in SQL.

The claim is written in SQL by hand (ELIGIBLE_SQL): on PostgreSQL one statement locks the
whole tick's contacts across campaigns and zone keys; elsewhere (SQLite, where writers are
serialised anyway) the same query runs once per campaign and zone key. Built with the ORM, a
thousand claims spent more time compiling queries and building model instances than the
database spent on them."""

import datetime as dt
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet

from calls.booking.scheduling import ACTIVE as BOOKED
from calls.booking.scheduling import claim_due_scheduled_calls
from calls.db.rows import rows_cte
from calls.models import CallAttempt, DiallerHeartbeat, ScheduledCall, new_call_id
from campaigns.models import Campaign
from campaigns.windows import campaign_zone_open, open_zone_keys
from contacts.models import Contact, Exclusion


def running_campaigns(now: dt.datetime) -> QuerySet[Campaign]:
    """Campaigns the dialler works for at `now` (campaign_status_idx)."""
    return (
        Campaign.objects.filter(status=Campaign.Status.RUNNING)
        .filter(Q(start_at__isnull=True) | Q(start_at__lte=now))
        .filter(Q(end_at__isnull=True) | Q(end_at__gt=now))
        .order_by("pk")
    )


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "contacts": quote(Contact._meta.db_table),
        "exclusions": quote(Exclusion._meta.db_table),
        "scheduled": quote(ScheduledCall._meta.db_table),
        "attempts": quote(CallAttempt._meta.db_table),
        "campaigns": quote(Campaign._meta.db_table),
    }


CALLABLE_SQL = "state IN ('pending', 'not_reached')"  # contact_claim_idx's own predicate

# A campaign's distinct zone keys among its callable contacts: a skip scan (one probe of
# contact_claim_idx per distinct key), so it costs the number of zone sets, not the number of
# contacts, as a plain DISTINCT would on every tick.
ZONE_KEYS_SQL = """
    WITH RECURSIVE zone_keys(zkey) AS (
        SELECT MIN(timezone_key) FROM {contacts}
         WHERE campaign_id = {campaign} AND {callable}
        UNION ALL
        SELECT (SELECT MIN(c.timezone_key) FROM {contacts} c
                 WHERE c.campaign_id = {campaign} AND c.{callable}
                   AND c.timezone_key > zone_keys.zkey)
          FROM zone_keys WHERE zone_keys.zkey IS NOT NULL
    )
    SELECT zkey FROM zone_keys WHERE zkey IS NOT NULL
"""


def zone_keys_by_campaign(campaign_ids: list[int]) -> dict[int, list[str]]:
    """The distinct zone keys of each campaign's callable contacts (campaigns with none are
    left out)."""
    keys: dict[int, list[str]] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            one = ZONE_KEYS_SQL.format(campaign="w.id", callable=CALLABLE_SQL, **_tables())
            cursor.execute(
                f"SELECT w.id, k.zkey FROM unnest(%s::bigint[]) AS w(id), LATERAL ({one}) k",
                [list(campaign_ids)],
            )
            rows = cursor.fetchall()
        else:
            one = ZONE_KEYS_SQL.format(campaign="%s", callable=CALLABLE_SQL, **_tables())
            rows = []
            for cid in campaign_ids:
                cursor.execute(one, [cid, cid])
                rows += [(cid, key) for (key,) in cursor.fetchall()]
    for cid, key in rows:
        keys.setdefault(cid, []).append(key)
    return keys


# The contacts of one campaign and one zone key that may be dialled at `now`, oldest due
# first: an ordered range of contact_claim_idx, so due contacts in closed zones are never read.
# A number with a call live in any campaign (another contact row in progress, found on
# contact_phone_idx) waits for it to end: one person, one call at a time.
# The placeholders in braces are filled per database (see claim_contacts).
ELIGIBLE_SQL = f"""
    SELECT {{columns}} FROM {{contacts}} c
     WHERE c.campaign_id = {{campaign}} AND c.{CALLABLE_SQL} AND c.timezone_key = {{key}}
       AND c.next_attempt_at <= %s
       AND c.attempts_count < c.completion_attempts_count + {{max_attempts}}
       AND NOT EXISTS (SELECT 1 FROM {{exclusions}} e
                        WHERE e.phone = c.phone
                          AND (e.campaign_id IS NULL OR e.campaign_id = c.campaign_id)
                          AND (e.expires_at IS NULL OR e.expires_at > %s))
       AND NOT EXISTS (SELECT 1 FROM {{scheduled}} s
                        WHERE s.contact_id = c.id
                          AND s.status IN ({", ".join(f"'{s}'" for s in BOOKED)}))
       AND NOT EXISTS (SELECT 1 FROM {{contacts}} o
                        WHERE o.phone = c.phone AND o.state = 'in_progress')
       {{not_taken}}
     ORDER BY c.next_attempt_at
     LIMIT {{limit}} {{lock}}
"""
# What the dial step needs of a claimed contact (the rest is loaded only if asked for).
CLAIMED_FIELDS = ("id", "campaign_id", "phone", "state", "last_attempt_number", "attempts_count")


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


def claim_contacts(
    wanted: dict[int, int],
    *,
    campaigns: dict[int, Campaign],
    keys_by_campaign: dict[int, list[str]],
    now: dt.datetime,
    provider: str,
    taken: list[int] = (),
) -> list[CallAttempt]:
    """Claim up to wanted[campaign id] eligible contacts of each campaign in its open zone
    keys: lock them (skipping rows another worker holds, and the ids in `taken`, claimed by
    an earlier pass), mark them in progress and create their queued attempts, in the
    caller's transaction. Returns the attempts, each with its contact and campaign.

    A campaign's zone keys are read one after the other, in a random order so no zone set is
    always served last. On PostgreSQL all of it is one statement (CLAIM_SQL); elsewhere the
    contacts are picked per campaign and zone key, then written with one INSERT and one
    UPDATE."""
    wanted = {cid: n for cid, n in wanted.items() if n > 0}
    if not wanted:
        return []
    keys = {cid: random.sample(keys_by_campaign[cid], len(keys_by_campaign[cid])) for cid in wanted}
    new = [(uuid.uuid4(), new_call_id()) for _ in range(sum(wanted.values()))]
    at = CallAttempt._meta.get_field("created_at").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            lock, params = lock_statement(
                wanted, campaigns=campaigns, keys=keys, now=now, taken=taken
            )
            ids, call_ids = zip(*new, strict=True)
            cursor.execute(
                CLAIM_SQL.format(lock=lock, columns=_claimed_columns("p"), **_tables()),
                [*params, list(ids), list(call_ids), at, at, provider, at],
            )
            rows = cursor.fetchall()
        else:
            picked = _pick(cursor, wanted, campaigns, keys, now, taken)
            rows = [(*row, *ids) for row, ids in zip(picked, new[: len(picked)], strict=True)]
            if rows:
                _queue(cursor, rows, at=at, provider=provider)
    return _claimed_attempts(rows, campaigns=campaigns, now=now, provider=provider)


# PostgreSQL's claim in one statement: lock the rows (the {lock} SELECT), keep one per number
# (the same person in two campaigns is called by one of them), pair each with a new attempt id
# and call id (made in Python, numbered), mark the contacts in progress and insert their
# attempts. Every part reads the locked rows as they were before the update.
CLAIM_SQL = """
    WITH picked AS (
        SELECT p.*, row_number() OVER () AS n
          FROM (SELECT DISTINCT ON (l.phone) l.* FROM ({lock}) l) p
    ), new(id, call_id, n) AS (
        SELECT * FROM unnest(%s::uuid[], %s::text[]) WITH ORDINALITY
    ), claimed AS (
        UPDATE {contacts} t
           SET state = 'in_progress', last_attempt_number = t.last_attempt_number + 1,
               attempts_count = t.attempts_count + 1, last_attempt_at = %s, updated_at = %s
          FROM picked WHERE t.id = picked.id
    ), queued AS (
        INSERT INTO {attempts} (id, call_id, contact_id, campaign_id, attempt_number, provider,
            status, answered_by, caller_id, machine_detection, survey_finished, opted_out,
            error_code, error_message, created_at, contact_state_before)
        SELECT new.id, new.call_id, p.id, p.campaign_id, p.last_attempt_number + 1, %s,
               'queued', 'unknown', camp.caller_id, camp.machine_detection, FALSE, FALSE,
               '', '', %s, p.state
          FROM picked p
          JOIN new ON new.n = p.n
          JOIN {campaigns} camp ON camp.id = p.campaign_id
    )
    SELECT {columns}, new.id, new.call_id FROM picked p JOIN new ON new.n = p.n
"""


def lock_statement(wanted, *, campaigns, keys, now, taken=()) -> tuple[str, list]:
    """PostgreSQL: the SELECT that locks the claim's contacts (sql, params). For each
    campaign, its zone keys in the order given, each an ordered range of contact_claim_idx,
    until the campaign has what it wants; rows are locked only as they are taken."""
    one = _eligible_sql(
        campaign="w.campaign_id",
        key="k.zkey",
        max_attempts="w.max_attempts",
        limit="w.lim",
        lock="FOR UPDATE OF c SKIP LOCKED",
        not_taken="AND c.id <> ALL(%s::bigint[])" if taken else "",
    )
    ids = list(wanted)
    at = connection.ops.adapt_datetimefield_value(now)
    sql = f"""SELECT q.* FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::text[])
                             AS w(campaign_id, lim, max_attempts, zkeys),
              LATERAL (SELECT r.* FROM unnest(string_to_array(w.zkeys, E'\\n')) AS k(zkey),
                       LATERAL ({one}) r LIMIT w.lim) q"""
    params = [
        ids,
        [wanted[cid] for cid in ids],
        [campaigns[cid].max_attempts for cid in ids],
        ["\n".join(keys[cid]) for cid in ids],
        at,
        at,
        *([list(taken)] if taken else []),
    ]
    return sql, params


def _eligible_sql(**placeholders) -> str:
    return ELIGIBLE_SQL.format(columns=_claimed_columns("c"), **_tables(), **placeholders)


def _claimed_columns(alias: str) -> str:
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(name)}" for name in _claimed_field_names())


def _pick(cursor, wanted, campaigns, keys, now, taken) -> list[tuple]:
    """Not PostgreSQL: the eligible contacts, one query per campaign and zone key, unlocked
    (SQLite lets one writer at a time in; the claim's transaction is that writer)."""
    at = connection.ops.adapt_datetimefield_value(now)
    one = _eligible_sql(
        campaign="%s",
        key="%s",
        max_attempts="%s",
        limit="%s",
        lock="",
        not_taken=f"AND c.id NOT IN ({', '.join(['%s'] * len(taken))})" if taken else "",
    )
    phone_at = _claimed_field_names().index("phone")
    rows, phones = [], set()  # one contact per number, as PostgreSQL's DISTINCT ON
    for cid, need in wanted.items():
        for key in keys[cid]:
            cursor.execute(one, [cid, key, at, campaigns[cid].max_attempts, at, *taken, need])
            found = [row for row in cursor.fetchall() if row[phone_at] not in phones]
            phones.update(row[phone_at] for row in found)
            rows += found
            need -= len(found)
            if need <= 0:
                break
    return rows


def _queue(cursor, rows, *, at, provider: str) -> None:
    """Not PostgreSQL: insert the picked contacts' attempts (read from their rows as they
    are) and mark the contacts in progress."""
    pk = CallAttempt._meta.pk
    columns = _claimed_field_names()
    id_at = columns.index("id")
    new, params = rows_cte(
        "v",
        [("id", "uuid"), ("call_id", "text"), ("contact_id", "bigint")],
        [(pk.get_db_prep_value(row[-2], connection), row[-1], row[id_at]) for row in rows],
    )
    tables = _tables()
    cursor.execute(
        f"""WITH {new}
            INSERT INTO {tables["attempts"]} (id, call_id, contact_id, campaign_id,
                attempt_number, provider, status, answered_by, caller_id, machine_detection,
                survey_finished, opted_out, error_code, error_message, created_at,
                contact_state_before)
            SELECT v.id, v.call_id, c.id, c.campaign_id, c.last_attempt_number + 1, %s,
                   'queued', 'unknown', camp.caller_id, camp.machine_detection,
                   FALSE, FALSE, '', '', %s, c.state
              FROM v
              JOIN {tables["contacts"]} c ON c.id = v.contact_id
              JOIN {tables["campaigns"]} camp ON camp.id = c.campaign_id""",
        [*params, provider, at],
    )
    claimed, params = rows_cte("v", [("id", "bigint")], [(row[id_at],) for row in rows])
    cursor.execute(
        f"""WITH {claimed}
            UPDATE {tables["contacts"]}
               SET state = 'in_progress', last_attempt_number = last_attempt_number + 1,
                   attempts_count = attempts_count + 1, last_attempt_at = %s, updated_at = %s
             WHERE id IN (SELECT id FROM v)""",
        [*params, at, at],
    )


def _claimed_field_names() -> list[str]:
    return [f.attname for f in Contact._meta.concrete_fields if f.attname in CLAIMED_FIELDS]


def _claimed_attempts(rows, *, campaigns, now, provider) -> list[CallAttempt]:
    """The claimed rows (contact columns as they were, new attempt id, call id) as model
    instances in their new state. Built with from_db: the ORM's keyword __init__ for two
    thousand instances cost more than the database's work on them."""
    names = _claimed_field_names()
    attempt_names = [f.attname for f in CallAttempt._meta.concrete_fields]
    defaults = {
        f.attname: None if f.has_default() and callable(f.default) else f.get_default()
        for f in CallAttempt._meta.concrete_fields
    }
    defaults.update(status=CallAttempt.Status.QUEUED, provider=provider, created_at=now)
    contact_field = CallAttempt._meta.get_field("contact")
    campaign_field = CallAttempt._meta.get_field("campaign")
    contact_campaign_field = Contact._meta.get_field("campaign")
    attempts = []
    for row in rows:
        contact = Contact.from_db(connection.alias, names, row[:-2])
        campaign = campaigns[contact.campaign_id]
        values = dict(
            defaults,
            id=row[-2],
            call_id=row[-1],
            contact_id=contact.pk,
            campaign_id=campaign.pk,
            attempt_number=contact.last_attempt_number + 1,
            caller_id=campaign.caller_id,
            machine_detection=campaign.machine_detection,
            contact_state_before=contact.state,
        )
        attempt = CallAttempt.from_db(
            connection.alias, attempt_names, [values[n] for n in attempt_names]
        )
        contact.state = Contact.State.IN_PROGRESS
        contact.last_attempt_number += 1
        contact.attempts_count += 1
        contact.last_attempt_at = now
        contact_campaign_field.set_cached_value(contact, campaign)
        contact_field.set_cached_value(attempt, contact)
        campaign_field.set_cached_value(attempt, campaign)
        attempts.append(attempt)
    return attempts


@dataclass
class Claim:
    attempts: list[CallAttempt] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # campaigns left out this tick, by reason
    live_calls: int = 0  # live calls when the claim was made, its own included


def lock_dialler(now: dt.datetime) -> None:
    """Serialise the claim steps of all ticks on all machines on one row (the heartbeat).

    The caps are read-then-write rules: two ticks reading the same live count at once would
    both fill the same free capacity. The lock is held for the claim's short transaction only;
    the skip-locked claim still keeps clear of contacts that callbacks are settling."""
    if DiallerHeartbeat.objects.select_for_update().filter(pk=1).exists():
        return
    DiallerHeartbeat.objects.get_or_create(pk=1, defaults={"last_tick_at": now})
    DiallerHeartbeat.objects.select_for_update().filter(pk=1).exists()


def claim_batch(
    *, now: dt.datetime, provider_name: str, budget: int, global_cap: int | None = None
) -> Claim:
    """Claim this tick's contacts across running campaigns, fairly, within the caps: lock
    them (FOR UPDATE SKIP LOCKED), create their queued attempts and mark them in progress, in
    one transaction.

    capacity = min(campaign cap - its live calls, batch size) per campaign, and at most
    min(global cap - all live calls, the pace budget) in all, dealt round robin. The global
    cap is the one in force (calls.dialler.limits); default, its setting."""
    if global_cap is None:
        global_cap = settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS
    claim = Claim()
    keys_by_campaign: dict[int, list[str]] = {}
    campaigns = {c.pk: c for c in running_campaigns(now)}
    in_window = []
    for campaign in campaigns.values():
        if campaign.is_ad_hoc:
            continue  # places only its bookings (calls.booking.ad_hoc)
        if campaign.window_policy == Campaign.WindowPolicy.CAMPAIGN and not campaign_zone_open(
            campaign, now=now
        ):
            claim.skipped["window_closed"] += 1
        else:
            in_window.append(campaign.pk)
    all_keys = zone_keys_by_campaign(in_window)
    for cid in in_window:
        keys = open_zone_keys(campaigns[cid], all_keys.get(cid, []), now=now)
        if keys:
            keys_by_campaign[cid] = keys
        else:
            claim.skipped["window_closed" if all_keys.get(cid) else "no_callable_contacts"] += 1
    with transaction.atomic():
        lock_dialler(now)
        live = live_calls_by_campaign()
        global_room = global_cap - sum(live.values())
        # Booked calls first: they are due at a precise time, and count against the same caps.
        booked_room = {
            cid: c.max_concurrent_calls - live.get(cid, 0) for cid, c in campaigns.items()
        }
        missed: set[int] = set()  # contacts whose booking just missed: never rung instead
        booked, why = claim_due_scheduled_calls(
            now=now,
            limit=min(global_room, budget),
            provider=provider_name,
            campaign_room=booked_room,
            held=missed,
        )
        claim.attempts += booked
        claim.skipped.update({f"booked_{reason}": n for reason, n in why.items()})
        for attempt in booked:
            live[attempt.campaign_id] = live.get(attempt.campaign_id, 0) + 1
        global_room -= len(booked)
        budget -= len(booked)
        claim.live_calls = sum(live.values())
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
        # Second pass: what a campaign with few eligible contacts left unused goes to the
        # campaigns that filled their share.
        for _ in range(2):
            claimed = claim_contacts(
                {cid: shares[cid] - got[cid] for cid in order},
                campaigns=campaigns,
                keys_by_campaign=keys_by_campaign,
                now=now,
                provider=provider_name,
                taken=[a.contact_id for a in claim.attempts] + list(missed),
            )
            got.update(a.campaign_id for a in claimed)
            claim.attempts += claimed
            left = total - sum(got.values())
            full = {cid: rooms[cid] - got[cid] for cid in order if got[cid] == shares[cid]}
            if left <= 0 or not any(full.values()):
                break
            extra = share_capacity(full, left, [cid for cid in order if cid in full])
            shares = {cid: got[cid] + extra.get(cid, 0) for cid in order}
        claimed = sum(got.values())
        claim.live_calls += claimed
        global_full = global_room < budget and claimed >= global_room
        if capped := _capped(campaigns, live, got, global_full=global_full):
            claim.skipped["at_cap"] += capped
    return claim


def _capped(campaigns, live, got, *, global_full: bool) -> int:
    """Campaigns this claim took up to a concurrent-call cap (their own, or the global one when
    it, not the pace, bounded the claim): they got calls, and would have got more."""
    capped = 0
    for cid, n in got.items():
        own_room = campaigns[cid].max_concurrent_calls - live.get(cid, 0)
        if n and (n >= own_room or global_full):
            capped += 1
    return capped
