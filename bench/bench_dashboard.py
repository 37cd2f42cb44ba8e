"""Dashboard render time on PostgreSQL with 1,000,000 contacts and 3,000,000 attempts.

Creates its own scratch database (BENCH_DASHBOARD_DB, default vs_bench_dashboard) on the server
of BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), migrates it, loads
the rows with INSERT … SELECT generate_series (a minute or two), then renders the dashboard
through Django's test client as a logged-in staff user, several times, and prints the median,
the number of queries, and beside them the same client's time for a bare view and for the
admin index as the reference; then the same for the dashboard's live JSON view (the figures
its script fetches every few seconds). Target: under 300 ms for each.

The data: 10 campaigns (8 running, 2 paused) of 100,000 contacts each, three attempts per
contact spread over the last 14 days (about 214,000 in the last 24 hours), a few hundred live.
"""

import os
import statistics
import time
from pathlib import Path

from bench import scratch

CONTACTS = int(os.environ.get("BENCH_CONTACTS", 1_000_000))
ATTEMPTS_PER_CONTACT = 3
CAMPAIGNS = 10
RUNS = 7
DB_NAME = os.environ.get("BENCH_DASHBOARD_DB", "vs_bench_dashboard")


def main() -> None:
    scratch.run_child("bench.bench_dashboard", DB_NAME, "BENCH_DASHBOARD_CHILD")


LOAD_SQL = [
    # Campaigns: 8 running, 2 paused.
    """
    INSERT INTO campaigns_campaign (
        name, description, status, timezone, window_policy, window_start, window_end, weekdays,
        max_attempts, retry_busy_minutes, retry_no_answer_minutes, retry_failed_minutes,
        retry_machine_minutes, completion_max_attempts, completion_retry_minutes,
        max_concurrent_calls, caller_id, machine_detection, machine_policy, voicemail_message,
        intro_message, closing_message, voice, language, opt_out_key, callback_key,
        callback_delay_minutes, opt_out_message, callback_message, ad_hoc_key, created_at,
        updated_at)
    SELECT 'Bench campaign ' || i, '', CASE WHEN i > 8 THEN 'paused' ELSE 'running' END,
        'America/New_York', 'contact', '09:00', '20:00', '[0,1,2,3,4]', 5, 15, 60, 30, 120,
        2, 30, 50, '', true, 'hang_up', '', 'Hello {name|there}.', 'Goodbye.', 'alice',
        'en-US', '9', '', 120, 'Goodbye.', 'We will call you back.', '', now(), now()
    FROM generate_series(1, %(campaigns)s) AS i
    """,
    # Contacts: spread evenly over the campaigns, states in realistic shares.
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
        3, 3, 0, now() - interval '1 hour', now() + interval '1 hour', now(), now()
    FROM c, generate_series(1, %(contacts)s) AS i
    """,
    # Attempts: three per contact over the last 14 days; the newest few hundred still live.
    """
    INSERT INTO calls_callattempt (
        id, call_id, contact_id, campaign_id, attempt_number, provider, status, answered_by,
        caller_id, machine_detection, survey_finished, opted_out, error_code, error_message,
        created_at, dialled_at, answered_at, ended_at, duration, contact_state_before)
    SELECT gen_random_uuid(), 'b' || k.id || '-' || n, k.id, k.campaign_id, n, 'simulated',
        s.status, s.answered_by, '', true, s.finished, s.opted_out, '', '',
        t.at, t.at, CASE WHEN s.status = 'completed' THEN t.at END,
        CASE WHEN s.status NOT IN ('ringing') THEN t.at + interval '90 seconds' END,
        CASE WHEN s.status = 'completed' THEN 90 END, 'pending'
    FROM contacts_contact k
    CROSS JOIN generate_series(1, %(per_contact)s) AS n
    CROSS JOIN LATERAL (
        SELECT now() - ((k.id * 7919 + n * 104729) %% 1209600) * interval '1 second' AS at
    ) t
    CROSS JOIN LATERAL (
        SELECT CASE WHEN t.at > now() - interval '3 minutes' THEN 'ringing'
                    WHEN (k.id + n) %% 10 < 4 THEN 'completed'
                    WHEN (k.id + n) %% 10 < 6 THEN 'no_answer'
                    WHEN (k.id + n) %% 10 < 8 THEN 'busy'
                    ELSE 'failed' END AS status,
               CASE WHEN (k.id + n) %% 20 = 0 THEN 'machine' ELSE 'human' END AS answered_by,
               (k.id + n) %% 3 <> 0 AS finished,
               (k.id + n) %% 50 = 0 AS opted_out
    ) s
    """,
    """
    INSERT INTO calls_diallerheartbeat (id, last_tick_at, worker, report)
    VALUES (1, now(), 'bench', '{"claimed": 50, "dialled": 50, "recovered": 0}')
    """,
]


def load() -> float:
    from django.db import connection

    started = time.perf_counter()
    params = {"campaigns": CAMPAIGNS, "contacts": CONTACTS, "per_contact": ATTEMPTS_PER_CONTACT}
    with connection.cursor() as cursor:
        for sql in LOAD_SQL:
            cursor.execute(sql, params)
    connection.set_autocommit(True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does soon after a load
    return time.perf_counter() - started


def backend_cpu_ms(pid: int) -> float:
    """CPU time (user + system) the PostgreSQL backend `pid` has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(client, url: str) -> dict:
    """Medians over RUNS renders (after one warm-up): wall time, and the CPU time spent on it
    by this process (Django) and by the database backend; and the queries of one render.

    CPU time is what a render costs whatever else the machine runs (wall time on a shared
    machine also counts the waiting for a core). The session runs without parallel workers so
    that all the database's work is in the one backend measured."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert client.get(url).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    wall, django_cpu, db_cpu = [], [], []
    for _ in range(RUNS):
        started, cpu, db = time.perf_counter(), time.process_time(), backend_cpu_ms(pid)
        response = client.get(url)
        wall.append((time.perf_counter() - started) * 1000)
        django_cpu.append((time.process_time() - cpu) * 1000)
        db_cpu.append(backend_cpu_ms(pid) - db)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return {
        "wall": statistics.median(wall),
        "django_cpu": statistics.median(django_cpu),
        "db_cpu": statistics.median(db_cpu),
        "queries": len(queries),
    }


def explain_aggregates() -> list[str]:
    """Each of the dashboard's queries with its own execution time (EXPLAIN ANALYZE)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from calls.reports.dashboard import build_dashboard

    with CaptureQueriesContext(connection) as queries:
        build_dashboard(now=timezone.now())
    lines = []
    with connection.cursor() as cursor:
        for query in queries:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT TEXT) " + query["sql"])
            plan = [row[0] for row in cursor.fetchall()]
            total = next((p for p in plan if p.startswith("Execution Time")), "")
            access = next((p.strip() for p in plan if "Scan" in p), plan[0].strip())
            lines.append(f"  {total:<28} {access[:90]}  <- {query['sql'][:60]}…")
    return lines


def run() -> None:
    import django

    reuse = os.environ.get("BENCH_DASHBOARD_REUSE") == "1"  # keep the rows of the last run
    if not reuse:
        scratch.recreate_on_server(DB_NAME)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    seconds = 0.0 if reuse else load()
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="bench").delete()

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings, setup_test_environment
    from django.urls import reverse

    setup_test_environment()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_contact")
        contacts = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM calls_callattempt")
        attempts = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM calls_callattempt WHERE created_at >= now() - interval '1 day'"
        )
        recent = cursor.fetchone()[0]
    staff = get_user_model().objects.create_user("bench", password="x", is_staff=True)
    staff.is_superuser = True
    staff.save()
    client = Client()
    client.force_login(staff)
    with connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
    with override_settings(ROOT_URLCONF="bench.urls_reference"):
        figures = {
            "bare Django view (reference)": timed(client, "/bench/bare/"),
            "admin index (reference)": timed(client, reverse("admin:index")),
            "dashboard": timed(client, reverse("admin:dashboard")),
            "dashboard live JSON": timed(client, reverse("admin:dashboard_live")),
        }
    load_average = Path("/proc/loadavg").read_text().split()[0]

    print(
        f"PostgreSQL, {contacts:,} contacts, {attempts:,} attempts ({recent:,} in the last "
        f"24 h), {CAMPAIGNS} campaigns on the dashboard; loaded in {seconds:.0f} s "
        f"(database {settings.DATABASES['default']['NAME']}); load average {load_average}."
    )
    print(f"medians of {RUNS} renders through the test client, logged in as staff:")
    print(f"  {'':30} {'wall':>9} {'CPU: Django':>12} {'+ database':>11} {'queries':>8}")
    for name, f in figures.items():
        print(
            f"  {name:30} {f['wall']:6.1f} ms {f['django_cpu']:9.1f} ms {f['db_cpu']:8.1f} ms"
            f" {f['queries']:8d}"
        )
    for name in ("dashboard", "dashboard live JSON"):
        board = figures[name]
        cpu = board["django_cpu"] + board["db_cpu"]
        print(
            f"  target: {name} under 300 ms -> wall {board['wall']:.0f} ms "
            f"({'met' if board['wall'] < 300 else 'NOT met'}), CPU {cpu:.0f} ms "
            f"({'met' if cpu < 300 else 'NOT met'})"
        )
    print("the dashboard's own queries (EXPLAIN ANALYZE):")
    print("\n".join(explain_aggregates()))
    connection.close()


if __name__ == "__main__":
    # `python -m bench.bench_dashboard` alone works too: it starts the child with the settings.
    run() if os.environ.get("BENCH_DASHBOARD_CHILD") == "1" else main()
