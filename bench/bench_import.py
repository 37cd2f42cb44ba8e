"""Contact import speed on PostgreSQL, beside PostgreSQL's own COPY of the same file.

Creates a scratch database (vs_bench_import, on the server of DATABASE_URL or the local one),
writes a CSV of 1,000,000 contacts (70% E.164, 30% national formats like "(212) 555-0123"),
imports it with contacts.importing.import_contacts, then COPYs the same file into a plain table
with no index, and prints both with the targets. It also COPYs the import's finished rows into
contacts_contact for a second campaign: the floor under any import into that table. The
import runs in a child process so its peak memory (ru_maxrss) is its own.
`python -m bench.bench_import [rows]`, or BENCH_IMPORT_ROWS=100000 for `python -m bench import`.

Besides wall-clock times it prints the CPU time each side used: the import process's and,
when PostgreSQL runs on this machine, its server processes' (read from /proc). On a machine
shared with other work, wall-clock figures swing with the load; CPU seconds do much less."""

import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", 1_000_000))
SCRATCH_DB = "vs_bench_import"
TARGET_ROWS_PER_SECOND = 20_000
TARGET_COPY_RATIO = 5.0
TARGET_PEAK_MB = 300


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return url


def scratch_url() -> str:
    parts = urlsplit(server_url())
    return urlunsplit(parts._replace(path=f"/{SCRATCH_DB}"))


def admin_connection():
    import psycopg

    parts = urlsplit(server_url())
    return psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True)


def write_csv(path: Path, rows: int) -> None:
    """Unique, valid US numbers; some E.164, some as people type them."""
    import phonenumbers

    areas = [
        a
        for a in range(201, 990)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}2000000"))
        and phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}9999999"))
    ][:100]
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,name,external_id,segment\n")
        for n in range(rows):
            area = areas[n % len(areas)]
            local = 2000000 + n // len(areas)
            if n % 10 < 7:
                phone = f"+1{area}{local}"
            else:
                text = str(local)
                phone = f"({area}) {text[:3]}-{text[3:]}"
            out.write(f"{phone},Person {n},ext-{n},s{n % 7}\n")


def child(csv_path: str) -> None:
    """In the scratch database: migrate, import, COPY; print one line of figures."""
    import django

    os.environ["DATABASE_URL"] = scratch_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicesurvey.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from campaigns.models import Campaign
    from contacts.importing import import_contacts
    from contacts.models import Contact

    call_command("migrate", verbosity=0)
    campaign = Campaign.objects.create(name="bench")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    server = ServerCpu()
    client_cpu = time.process_time()
    start = time.perf_counter()
    with open(csv_path, "rb") as stream:
        report = import_contacts(campaign=campaign, stream=stream, default_region="US")
    import_seconds = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    import_server_cpu = server.stop()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stored = Contact.objects.filter(campaign=campaign).count()

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE copy_reference (phone text, name text, external_id text, segment text)"
        )
        server = ServerCpu()
        copy_cpu = time.process_time()
        start = time.perf_counter()
        with (
            open(csv_path, "rb") as stream,
            cursor.cursor.copy(
                "COPY copy_reference FROM STDIN WITH (FORMAT csv, HEADER true)"
            ) as copy,
        ):
            while chunk := stream.read(1 << 20):
                copy.write(chunk)
        copy_seconds = time.perf_counter() - start
        copy_cpu = time.process_time() - copy_cpu
        copy_server_cpu = server.stop()
    floor_seconds = copy_finished_rows(campaign, Path(csv_path).parent / "finished.copy")
    print(
        f"RESULT {report.rows} {report.created} {report.rejected} {stored} "
        f"{import_seconds:.3f} {copy_seconds:.3f} {peak_kb} {before} "
        f"{client_cpu:.3f} {import_server_cpu:.3f} {copy_cpu:.3f} {copy_server_cpu:.3f} "
        f"{floor_seconds:.3f}"
    )


def copy_finished_rows(campaign, path: Path) -> float:
    """Seconds to COPY the import's own finished rows (no reading, checking or normalising
    left to do) into contacts_contact for a second, empty campaign: the floor any import into
    this table stands on, with its indexes, constraints and foreign key."""
    from django.db import connection, transaction

    from campaigns.models import Campaign
    from contacts.models import Contact

    second = Campaign.objects.create(name="bench floor")
    columns = [f.column for f in Contact._meta.concrete_fields if not f.primary_key]
    listed = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(str(second.pk) if c == "campaign_id" else f'"{c}"' for c in columns)
    table = Contact._meta.db_table
    select = f"SELECT {values} FROM {table} WHERE campaign_id = {campaign.pk}"
    with connection.cursor() as cursor:
        with path.open("wb") as out, cursor.cursor.copy(f"COPY ({select}) TO STDOUT") as copy:
            for chunk in copy:
                out.write(chunk)
        start = time.perf_counter()
        with (
            transaction.atomic(),  # the deferred foreign key checks run at its commit
            path.open("rb") as rows,
            cursor.cursor.copy(f"COPY {table} ({listed}) FROM STDIN") as copy,
        ):
            while chunk := rows.read(1 << 20):
                copy.write(chunk)
        return time.perf_counter() - start


class ServerCpu:
    """CPU seconds used by PostgreSQL's processes serving this database (the import's writer
    thread has its own connection), read from /proc every 0.2 s; -1 when the server is not
    on this machine. A connection that ends between two readings loses at most 0.2 s."""

    def __init__(self):
        import psycopg

        self._conn = psycopg.connect(scratch_url(), autocommit=True)
        self._own_pid = self._conn.info.backend_pid
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._done = threading.Event()
        self._available = self._read() is not None
        self._start = dict(self._last)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self):
        pids = self._conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> %s",
            [self._own_pid],
        ).fetchall()
        tick = os.sysconf("SC_CLK_TCK")
        for (pid,) in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                return None
            self._last[pid] = (int(fields[11]) + int(fields[12])) / tick
        return self._last

    def _run(self):
        while self._available and not self._done.wait(0.2):
            self._read()

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        if self._available:
            self._read()
        self._conn.close()
        if not self._available:
            return -1.0
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._last.items())


def main(rows: int = ROWS) -> None:
    with admin_connection() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
        conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "contacts.csv"
            write_csv(path, rows)
            size_mb = path.stat().st_size / 1e6
            result = subprocess.run(
                [sys.executable, "-m", "bench.bench_import", "--child", str(path)],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
            )
            line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT")), None)
            if line is None:
                print(result.stdout, result.stderr, sep="\n")
                raise SystemExit("bench_import: the import child failed")
        fields = line.split()[1:]
        read, created, rejected, stored, import_s, copy_s, peak_kb, base_kb = fields[:8]
        client_cpu, server_cpu, copy_cpu, copy_server_cpu, floor_s = map(float, fields[8:13])
        import_s, copy_s = float(import_s), float(copy_s)
        rate, copy_rate = int(read) / import_s, int(read) / copy_s
        ratio = import_s / copy_s
        peak_mb = int(peak_kb) / 1024
        ok = lambda good: "ok" if good else "MISSED"  # noqa: E731
        print(f"file: {int(read):,} rows, {size_mb:.0f} MB (70% E.164, 30% national format)")
        print(
            f"import_contacts: {import_s:.1f} s, {rate:,.0f} rows/s; created {int(created):,}, "
            f"rejected {int(rejected):,}, in the table {int(stored):,}"
        )
        print(
            f"  CPU used by the import process: {client_cpu:.1f} s, "
            f"{int(read) / client_cpu:,.0f} rows per CPU-second (PostgreSQL's share runs in "
            "its own processes, beside the parsing)"
        )
        if server_cpu >= 0:
            print(
                f"  CPU used by PostgreSQL for the import: {server_cpu:.1f} s "
                f"({int(read) / max(server_cpu, 0.001):,.0f} rows per CPU-second)"
            )
        print(f"COPY into a plain table: {copy_s:.1f} s, {copy_rate:,.0f} rows/s")
        print(f"import / COPY time: {ratio:.1f}x")
        if server_cpu >= 0:
            import_total, copy_total = client_cpu + server_cpu, copy_cpu + copy_server_cpu
            print(
                f"  CPU, both sides: import {import_total:.1f} s, COPY {copy_total:.1f} s: "
                f"{import_total / max(copy_total, 0.001):.1f}x"
            )
        print(
            f"COPY of the import's finished rows into contacts_contact (its indexes, "
            f"constraints and foreign key): {floor_s:.1f} s, {floor_s / copy_s:.1f}x the plain "
            f"COPY: the floor under any import into this table"
        )
        print(
            f"peak memory of the import process (ru_maxrss): {peak_mb:.0f} MB "
            f"(before the import: {int(base_kb) / 1024:.0f} MB)"
        )
        print("targets:")
        print(f"  >= {TARGET_ROWS_PER_SECOND:,} rows/s ... {ok(rate >= TARGET_ROWS_PER_SECOND)}")
        print(f"  within {TARGET_COPY_RATIO:.0f}x COPY ... {ok(ratio <= TARGET_COPY_RATIO)}")
        print(f"  peak < {TARGET_PEAK_MB} MB ... {ok(peak_mb < TARGET_PEAK_MB)}")
        print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    finally:
        with admin_connection() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS)
