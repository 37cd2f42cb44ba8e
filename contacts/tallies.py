"""How many contacts each campaign has in each state, without counting the contacts.

The progress figures (the campaign list, the contact list's count, the dashboard, the stats
API, the campaign.completed event) used to GROUP BY over the whole contacts table on every page
load: O(contacts), a million rows. They read these tallies instead: O(campaigns × states).

- **Triggers keep them.** A contact's state changes in many places, several in raw SQL (the
  claim, the status webhook's settle, exclusions, resets, the import's COPY), and a contact
  may be inserted, deleted or moved to another campaign. Database triggers on the contacts
  table (migration contacts/0007) see every one of them, so no code path can forget.
- **The table is append-only deltas.** A trigger only INSERTs rows `(campaign, state, ±n)`;
  it never updates a counter row, so a settle and a claim never wait on each other for a hot
  counter row, and no deadlock can form between them. A count is SUM(n) GROUP BY campaign,
  state over a table that the fold keeps tiny.
- PostgreSQL: statement-level AFTER INSERT / UPDATE / DELETE triggers with transition tables
  (one per event, as PostgreSQL requires): one grouped row per (campaign, state) and
  statement, so a 500-row claim writes two rows, not a thousand. The UPDATE one joins the old
  and new rows by id and counts only those whose state or campaign changed, so an update of
  other columns writes nothing. COPY fires them; TRUNCATE does not (reconcile_tallies
  repairs it). SQLite: row-level triggers (its writers are serialised anyway).
- **fold_tallies** (each dialler tick) replaces the several rows of a (campaign, state) by one
  and drops the rows of deleted campaigns and the sums of zero; nothing to fold costs one scan
  of the small table.
- **reconcile_tallies** (hourly from the scheduler, `manage.py reconcile_tallies` for
  operators) counts the contacts and sums the tallies in one statement, hence one snapshot,
  and inserts the differences as correction rows; a drift is logged as a warning.

Only the rows of existing campaigns are read (a deleted campaign's deltas wait for the fold).
A later migration that makes SQLite rebuild the contacts table drops its triggers with the old
table: `ensure_sqlite_triggers` (after every migrate) puts them back and reconciles."""

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Sum

from campaigns.models import Campaign
from contacts.models import Contact, StateTally

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock keys: one fold at a time (the others skip it), one reconcile at a time.
FOLD_LOCK = 7_215_001
RECONCILE_LOCK = 7_215_002

TRIGGERS = ("contact_tally_ins", "contact_tally_upd", "contact_tally_del")

# Changing the triggers needs a migration of its own that drops and creates them again
# (migration 0007 runs these statements).
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION contact_tally_ins() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO contacts_statetally (campaign_id, state, n)
        SELECT campaign_id, state, count(*) FROM new_rows GROUP BY campaign_id, state;
        RETURN NULL;
    END $$""",
    """CREATE FUNCTION contact_tally_del() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO contacts_statetally (campaign_id, state, n)
        SELECT campaign_id, state, -count(*) FROM old_rows GROUP BY campaign_id, state;
        RETURN NULL;
    END $$""",
    # Transition tables cannot go with a column list (UPDATE OF state): every update of the
    # contacts fires this, and the join keeps the rows whose state or campaign changed.
    """CREATE FUNCTION contact_tally_upd() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO contacts_statetally (campaign_id, state, n)
        SELECT d.campaign_id, d.state, sum(d.n)
          FROM old_rows o JOIN new_rows nw ON nw.id = o.id
         CROSS JOIN LATERAL (VALUES (o.campaign_id, o.state, -1),
                                    (nw.campaign_id, nw.state, 1)) AS d(campaign_id, state, n)
         WHERE o.state <> nw.state OR o.campaign_id <> nw.campaign_id
         GROUP BY d.campaign_id, d.state
        HAVING sum(d.n) <> 0;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER contact_tally_ins AFTER INSERT ON contacts_contact
       REFERENCING NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION contact_tally_ins()""",
    """CREATE TRIGGER contact_tally_upd AFTER UPDATE ON contacts_contact
       REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION contact_tally_upd()""",
    """CREATE TRIGGER contact_tally_del AFTER DELETE ON contacts_contact
       REFERENCING OLD TABLE AS old_rows
       FOR EACH STATEMENT EXECUTE FUNCTION contact_tally_del()""",
]
POSTGRES_DROP = [
    *(f"DROP TRIGGER IF EXISTS {name} ON contacts_contact" for name in TRIGGERS),
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in TRIGGERS),
]

SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS contact_tally_ins AFTER INSERT ON contacts_contact
       BEGIN
           INSERT INTO contacts_statetally (campaign_id, state, n)
           VALUES (NEW.campaign_id, NEW.state, 1);
       END""",
    """CREATE TRIGGER IF NOT EXISTS contact_tally_upd
       AFTER UPDATE OF state, campaign_id ON contacts_contact
       WHEN OLD.state IS NOT NEW.state OR OLD.campaign_id IS NOT NEW.campaign_id
       BEGIN
           INSERT INTO contacts_statetally (campaign_id, state, n)
           VALUES (OLD.campaign_id, OLD.state, -1), (NEW.campaign_id, NEW.state, 1);
       END""",
    """CREATE TRIGGER IF NOT EXISTS contact_tally_del AFTER DELETE ON contacts_contact
       BEGIN
           INSERT INTO contacts_statetally (campaign_id, state, n)
           VALUES (OLD.campaign_id, OLD.state, -1);
       END""",
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS]

# The true counts minus the tallies, per (campaign, state): what reconcile_tallies inserts.
# One statement, so both sides are read in one snapshot even in READ COMMITTED (what a
# REPEATABLE READ transaction would give, and it also works inside a caller's transaction).
DRIFT_SQL = """
    SELECT campaign_id, state, CAST(SUM(n) AS BIGINT) FROM (
        SELECT campaign_id, state, COUNT(*) AS n FROM contacts_contact
         GROUP BY campaign_id, state
        UNION ALL
        SELECT campaign_id, state, -n FROM contacts_statetally
    ) d
    GROUP BY campaign_id, state
    HAVING SUM(n) <> 0
"""

# The (campaign, state) pairs worth folding: several rows, a sum of zero, or a campaign gone.
FOLDABLE_SQL = """
    SELECT campaign_id, state FROM contacts_statetally
     GROUP BY campaign_id, state
    HAVING COUNT(*) > 1 OR SUM(n) = 0
        OR NOT EXISTS (SELECT 1 FROM campaigns_campaign c WHERE c.id = campaign_id)
"""

# PostgreSQL, in READ COMMITTED: the DELETE removes the rows its snapshot sees and returns
# exactly the rows it removed; their sums go back as one row each. A delta committed by a
# trigger meanwhile is not in the snapshot, so it is neither deleted nor counted, and stays.
# A second fold running at once would block on the rows this one deletes and then skip them
# (already gone), but the advisory lock keeps it from trying at all (and two DELETEs that
# visit the rows in different orders from deadlocking).
FOLD_POSTGRES_SQL = f"""
    WITH foldable AS ({FOLDABLE_SQL}),
    gone AS (
        DELETE FROM contacts_statetally t USING foldable f
         WHERE t.campaign_id = f.campaign_id AND t.state = f.state
        RETURNING t.campaign_id, t.state, t.n
    ),
    kept AS (
        INSERT INTO contacts_statetally (campaign_id, state, n)
        SELECT g.campaign_id, g.state, SUM(g.n) FROM gone g
         WHERE EXISTS (SELECT 1 FROM campaigns_campaign c WHERE c.id = g.campaign_id)
         GROUP BY g.campaign_id, g.state
        HAVING SUM(g.n) <> 0
        RETURNING 1
    )
    SELECT (SELECT COUNT(*) FROM gone) - (SELECT COUNT(*) FROM kept)
"""


def _existing_campaigns():
    return StateTally.objects.filter(Exists(Campaign.objects.filter(pk=OuterRef("campaign_id"))))


def counts_by_campaign(campaign_ids=None) -> dict[int, dict[str, int]]:
    """{campaign id: {state: contacts}} for these campaigns (or every campaign); states with
    no contact are left out, as a GROUP BY over the contacts would."""
    tallies = _existing_campaigns()
    if campaign_ids is not None:
        tallies = tallies.filter(campaign_id__in=list(campaign_ids))
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    rows = tallies.values("campaign_id", "state").annotate(total=Sum("n")).order_by()
    for row in rows.exclude(total=0):
        counts[row["campaign_id"]][row["state"]] = row["total"]
    return dict(counts)


def counts_by_state(campaign_id: int | None = None) -> dict[str, int]:
    """{state: contacts} of one campaign, or of all of them; states with none left out."""
    tallies = _existing_campaigns()
    if campaign_id is not None:
        tallies = tallies.filter(campaign_id=campaign_id)
    rows = tallies.values("state").annotate(total=Sum("n")).order_by().exclude(total=0)
    return {row["state"]: row["total"] for row in rows}


def count_contacts(*, campaign_id: int | None = None, state: str | None = None) -> int:
    """The number of contacts of a campaign and/or in a state (either may be None: any)."""
    tallies = _existing_campaigns()
    if campaign_id is not None:
        tallies = tallies.filter(campaign_id=campaign_id)
    if state is not None:
        tallies = tallies.filter(state=state)
    return tallies.aggregate(total=Sum("n"))["total"] or 0


def true_counts() -> dict[tuple[int, str], int]:
    """The contacts counted (the reference the tallies must equal): O(contacts)."""
    rows = Contact.objects.values_list("campaign_id", "state").annotate(total=Count("id"))
    return {(campaign_id, state): n for campaign_id, state, n in rows}


def fold_tallies() -> int:
    """Replace each (campaign, state)'s several rows by one, drop zero sums and the rows of
    deleted campaigns; the sums do not change. Returns the rows removed (0 when another fold
    is running, or there was nothing to fold)."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK])
            if not cursor.fetchone()[0]:
                return 0
            cursor.execute(FOLD_POSTGRES_SQL)
            return cursor.fetchone()[0]
        # SQLite: this transaction holds the database's write lock (BEGIN IMMEDIATE, see
        # settings), so nothing writes between these statements.
        cursor.execute(
            f"""SELECT t.campaign_id, t.state, SUM(t.n), COUNT(*) FROM contacts_statetally t
                 WHERE (t.campaign_id, t.state) IN ({FOLDABLE_SQL})
                 GROUP BY t.campaign_id, t.state"""
        )
        sums = cursor.fetchall()
        if not sums:
            return 0
        cursor.execute(
            f"DELETE FROM contacts_statetally WHERE (campaign_id, state) IN ({FOLDABLE_SQL})"
        )
        alive = set(Campaign.objects.filter(pk__in={c for c, *_ in sums}).values_list("pk"))
        kept = [
            StateTally(campaign_id=c, state=s, n=n) for c, s, n, _ in sums if n and (c,) in alive
        ]
        StateTally.objects.bulk_create(kept)
        return sum(rows for *_, rows in sums) - len(kept)


def reconcile_tallies() -> dict[tuple[int, str], int]:
    """Make the tallies equal the contacts counted, by inserting correction rows; returns
    the drift found {(campaign id, state): true count - tally} (empty when none). No lock on
    the contacts: changes made meanwhile write their own deltas, which do not change the
    drift. One reconcile at a time, so two do not correct the same drift twice."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECONCILE_LOCK])
        cursor.execute(DRIFT_SQL)
        drift = {(campaign_id, state): n for campaign_id, state, n in cursor.fetchall()}
        StateTally.objects.bulk_create(
            StateTally(campaign_id=campaign_id, state=state, n=n)
            for (campaign_id, state), n in drift.items()
        )
    if drift:
        logger.warning(
            "contact tallies drifted, corrected: %s",
            ", ".join(f"campaign {c} {s} {n:+d}" for (c, s), n in sorted(drift.items())),
        )
    return drift


_reconciled_at: dt.datetime | None = None


def reconcile_every() -> dt.timedelta:
    return dt.timedelta(minutes=settings.TALLY_RECONCILE_MINUTES)


def reconcile_when_due(now: dt.datetime, *, every: dt.timedelta) -> bool:
    """The schedulers' hourly reconcile: run it when this process has not for `every` (and
    at its first call, which catches a drift left by a restore or a TRUNCATE)."""
    global _reconciled_at
    if _reconciled_at is not None and dt.timedelta(0) <= now - _reconciled_at < every:
        return False
    reconcile_tallies()
    _reconciled_at = now
    return True


def ensure_sqlite_triggers(using: str = "default", **kwargs) -> None:
    """After migrate, on SQLite: put back the triggers a table rebuild dropped (an ALTER
    SQLite cannot do in place copies the table to a new one), then reconcile."""
    from django.db import connections

    conn = connections[using]
    if conn.vendor != "sqlite":
        return
    tables = conn.introspection.table_names()
    if "contacts_statetally" not in tables or "contacts_contact" not in tables:
        return
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (%s, %s, %s)",
            list(TRIGGERS),
        )
        if cursor.fetchone()[0] == len(TRIGGERS):
            return
        for statement in SQLITE_TRIGGERS:
            cursor.execute(statement)
    reconcile_tallies()
