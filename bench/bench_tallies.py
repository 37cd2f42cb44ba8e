"""The contact tallies on PostgreSQL with 1,000,000 contacts over 20 campaigns: what the counts
cost read from the tallies beside the GROUP BY over the contacts they replace, and what the
triggers add to the writes that keep them.

Creates its own scratch database (BENCH_TALLIES_DB, default vs_bench_tallies) on the server of
BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), migrates it, loads the
contacts with one INSERT … SELECT generate_series (the triggers count them as they go in), folds
the tallies, then prints medians of RUNS:

- reads: the campaign list's progress query, the dashboard's contacts by state, the contact
  list's count (all contacts, one campaign), each the old way (over the contacts: the
  reference) and from the tallies;
- writes, with the triggers and with them disabled (ALTER TABLE … DISABLE TRIGGER USER): a
  500-row claim UPDATE (state to in_progress), a single-row settle UPDATE (state to completed),
  and a 500-row UPDATE of other columns only (retry now). Each runs in a transaction rolled
  back, so every run sees the same rows; the time is the statement's under EXPLAIN ANALYZE
  (commit not included), with and without turn about, and beside them the trigger's own time
  as EXPLAIN ANALYZE reports it.
"""

import os
import statistics
import time
from pathlib import Path

from bench import scratch

CONTACTS = int(os.environ.get("BENCH_CONTACTS", 1_000_000))
CAMPAIGNS = 20
RUNS = 15
WRITE_RUNS = 41
CLAIM_ROWS = 500
DB_NAME = os.environ.get("BENCH_TALLIES_DB", "vs_bench_tallies")


def main() -> None:
    scratch.run_child("bench.bench_tallies", DB_NAME, "BENCH_TALLIES_CHILD")


LOAD_SQL = [
    """
    INSERT INTO campaigns_campaign (
        name, description, status, timezone, window_policy, window_start, window_end, weekdays,
        max_attempts, retry_busy_minutes, retry_no_answer_minutes, retry_failed_minutes,
        retry_machine_minutes, completion_max_attempts, completion_retry_minutes,
        max_concurrent_calls, caller_id, machine_detection, machine_policy, voicemail_message,
        intro_message, closing_message, voice, language, opt_out_key, callback_key,
        callback_delay_minutes, opt_out_message, callback_message, ad_hoc_key, created_at,
        updated_at)
    SELECT 'Bench campaign ' || i, '', 'running', 'America/New_York', 'contact', '09:00',
        '20:00', '[0,1,2,3,4]', 5, 15, 60, 30, 120, 2, 30, 50, '', true, 'hang_up', '',
        'Hello {name|there}.', 'Goodbye.', 'alice', 'en-US', '9', '', 120, 'Goodbye.',
        'We will call you back.', '', now(), now()
    FROM generate_series(1, %(campaigns)s) AS i
    """,
    """
    WITH c AS (SELECT array_agg(id ORDER BY id) AS ids FROM campaigns_campaign)
    INSERT INTO contacts_contact (
        campaign_id, phone, name, external_id, language, attributes, timezones, timezone_key,
        state, attempts_count, last_attempt_number, completion_attempts_count, last_attempt_at,
        next_attempt_at, created_at, updated_at)
    SELECT c.ids[1 + (i - 1) * %(campaigns)s / %(contacts)s],
        '+1212' || lpad(i::text, 7, '0'), 'Contact ' || i, '', '', '{}',
        '["America/New_York"]', 'America/New_York',
        CASE WHEN i %% 100 < 40 THEN 'completed' WHEN i %% 100 < 60 THEN 'not_reached'
             WHEN i %% 100 < 75 THEN 'pending' WHEN i %% 100 < 85 THEN 'exhausted'
             WHEN i %% 100 < 90 THEN 'refused' WHEN i %% 100 < 95 THEN 'invalid'
             WHEN i %% 100 < 98 THEN 'excluded' ELSE 'in_progress' END,
        1, 1, 0, now() - interval '1 hour', now() - interval '1 minute', now(), now()
    FROM c, generate_series(1, %(contacts)s) AS i
    """,
]


def load() -> float:
    from django.db import connection

    from contacts.tallies import fold_tallies

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for sql in LOAD_SQL:
            cursor.execute(sql, {"campaigns": CAMPAIGNS, "contacts": CONTACTS})
    fold_tallies()
    connection.set_autocommit(True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def median_ms(work, runs: int = RUNS) -> float:
    work()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def reads() -> list[tuple[str, float, float]]:
    """(what, over the contacts, from the tallies), in ms."""
    from django.db.models import Count, Q

    from campaigns.admin import CampaignAdmin
    from campaigns.models import Campaign
    from contacts.models import Contact
    from contacts.tallies import count_contacts, counts_by_campaign

    done = ["completed", "refused", "exhausted", "invalid"]

    def campaign_list_before():
        list(
            Campaign.objects.annotate(
                contacts_callable=Count("contacts", filter=~Q(contacts__state="excluded")),
                contacts_done=Count("contacts", filter=Q(contacts__state__in=done)),
                contacts_completed=Count("contacts", filter=Q(contacts__state="completed")),
            )
        )

    def campaign_list_now():
        list(CampaignAdmin(Campaign, None).get_queryset(None))

    ids = list(Campaign.objects.values_list("pk", flat=True))
    one = ids[len(ids) // 2]

    def by_state_before():
        list(
            Contact.objects.filter(campaign_id__in=ids)
            .values("campaign_id", "state")
            .annotate(n=Count("*"))
            .order_by()
        )

    return [
        (
            "campaign list, progress columns",
            median_ms(campaign_list_before),
            median_ms(campaign_list_now),
        ),
        (
            "dashboard, contacts by state",
            median_ms(by_state_before),
            median_ms(lambda: counts_by_campaign(ids)),
        ),
        ("contact list count, all", median_ms(Contact.objects.count), median_ms(count_contacts)),
        (
            "contact list count, one campaign",
            median_ms(Contact.objects.filter(campaign_id=one).count),
            median_ms(lambda: count_contacts(campaign_id=one)),
        ),
    ]


def writes() -> list[tuple[str, float, float, float]]:
    """(what, with the triggers, without, the trigger's own time), in ms per statement."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM contacts_contact WHERE state = 'pending' ORDER BY id LIMIT %s",
            [CLAIM_ROWS],
        )
        batch = [row[0] for row in cursor.fetchall()]
    statements = {
        f"claim UPDATE, {CLAIM_ROWS} rows": (
            """UPDATE contacts_contact SET state = 'in_progress',
                      attempts_count = attempts_count + 1,
                      last_attempt_number = last_attempt_number + 1, last_attempt_at = now(),
                      updated_at = now()
                WHERE id = ANY(%s)""",
            [batch],
        ),
        "settle UPDATE, 1 row": (
            """UPDATE contacts_contact SET state = 'completed', next_attempt_at = now(),
                      updated_at = now()
                WHERE id = %s AND state = 'pending'""",
            [batch[0]],
        ),
        f"retry-now UPDATE (no state change), {CLAIM_ROWS} rows": (
            "UPDATE contacts_contact SET next_attempt_at = now(), updated_at = now()"
            " WHERE id = ANY(%s)",
            [batch],
        ),
    }

    def once(sql, params, *, triggers: bool) -> tuple[float, float]:
        """The statement's time, and its triggers' own time (EXPLAIN ANALYZE's "Triggers")."""
        with transaction.atomic(), connection.cursor() as cursor:
            if not triggers:
                cursor.execute("ALTER TABLE contacts_contact DISABLE TRIGGER USER")
            started = time.perf_counter()
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            took = (time.perf_counter() - started) * 1000
            plan = cursor.fetchone()[0]
            plan = plan[0] if isinstance(plan, list) else plan
            transaction.set_rollback(True)
        return took, sum(t["Time"] for t in plan.get("Triggers", []))

    rows = []
    for name, (sql, params) in statements.items():
        with_triggers, without, trigger_own = [], [], []
        for _ in range(WRITE_RUNS):  # turn about, so a change in the machine's speed hits both
            took, own = once(sql, params, triggers=True)
            with_triggers.append(took)
            trigger_own.append(own)
            without.append(once(sql, params, triggers=False)[0])
        rows.append(
            (
                name,
                statistics.median(with_triggers[1:]),
                statistics.median(without[1:]),
                statistics.median(trigger_own[1:]),
            )
        )
    return rows


def run() -> None:
    import django

    reuse = os.environ.get("BENCH_TALLIES_REUSE") == "1"
    if not reuse:
        scratch.recreate_on_server(DB_NAME)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    seconds = 0.0 if reuse else load()
    from django.db import connection

    from contacts.models import StateTally
    from contacts.tallies import reconcile_tallies

    with connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
        cursor.execute("SELECT count(*) FROM contacts_contact")
        contacts = cursor.fetchone()[0]
    load_average = Path("/proc/loadavg").read_text().split()[0]
    print(
        f"PostgreSQL, {contacts:,} contacts over {CAMPAIGNS} campaigns, loaded with the triggers"
        f" in {seconds:.0f} s; {StateTally.objects.count()} tally rows; load average "
        f"{load_average}. No parallel workers (one backend does all the work)."
    )
    print(f"reads, medians of {RUNS}:  {'over the contacts':>18} {'from the tallies':>17}")
    for name, before, now in reads():
        print(f"  {name:34} {before:12.1f} ms {now:13.2f} ms")
    print(
        f"writes, ms per statement (EXPLAIN ANALYZE), medians of {WRITE_RUNS}, turn about:"
        f" {'triggers':>9} {'none':>9} {'the trigger itself':>19}"
    )
    for name, with_triggers, without, own in writes():
        print(f"  {name:48} {with_triggers:7.3f} ms {without:7.3f} ms {own:16.3f} ms")
    started = time.perf_counter()
    drift = reconcile_tallies()
    print(
        f"reconcile_tallies: {(time.perf_counter() - started) * 1000:.0f} ms, "
        f"drift {drift or 'none'}"
    )
    connection.close()


if __name__ == "__main__":
    run() if os.environ.get("BENCH_TALLIES_CHILD") == "1" else main()
