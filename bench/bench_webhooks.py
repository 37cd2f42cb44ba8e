"""Status callbacks per second through the real app under gunicorn on PostgreSQL.

A mixed stream — each call's initiated, ringing, in-progress, completed, with duplicates and
some finals arriving before ringing — is sent signed to /webhooks/status/ over keep-alive
connections from one client thread,
then the same number of requests to a bare view that does one UPDATE, in the same run. Prints
callbacks/s and p50/p99 latency for both, and the targets: >= 500 callbacks/s, and within 2x
of the bare view. Runs in its own scratch database (BENCH_WEBHOOK_DATABASE, default
vs_bench_webhooks) on the server of DATABASE_URL, dropped afterwards.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench BENCH=webhooks
"""

import datetime as dt
import os
import random
import selectors
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from bench import scratch

ATTEMPTS = int(os.environ.get("BENCH_WEBHOOK_CALLS", "800"))
CONNECTIONS = 12
WORKER_CLASS = os.environ.get("BENCH_WEBHOOK_WORKER_CLASS", "gthread")
WORKERS = int(os.environ.get("BENCH_WEBHOOK_WORKERS", "3"))
THREADS = int(os.environ.get("BENCH_WEBHOOK_THREADS", "4"))
TARGET_RATE = 500
TARGET_RATIO = 2.0
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicesurvey.settings")
    import django

    django.setup()
    from django.db import connection

    return connection.vendor


def make_calls(n: int):
    """A running campaign with n contacts, each on a live attempt the dialler has placed."""
    from django.core.management import call_command
    from django.db import connection

    from calls.models import CallAttempt
    from campaigns.models import Campaign
    from contacts.models import Contact

    call_command("migrate", verbosity=0)
    now = dt.datetime.now(dt.UTC)
    Campaign.objects.filter(name="bench-webhooks").delete()
    campaign = Campaign.objects.create(name="bench-webhooks", status="running")
    contacts = Contact.objects.bulk_create(
        Contact(
            campaign=campaign,
            phone=f"+1212{5550000 + i:07d}",
            timezone_key="America/New_York",
            state="in_progress",
            attempts_count=1,
            last_attempt_number=1,
        )
        for i in range(n)
    )
    attempts = CallAttempt.objects.bulk_create(
        CallAttempt(
            contact=c,
            campaign=campaign,
            attempt_number=1,
            status="initiated",
            created_at=now,
            dialled_at=now,
            provider_call_sid=f"CA{i:032x}",
            answered_by="human",
        )
        for i, c in enumerate(contacts)
    )
    with connection.cursor() as cursor:  # fresh rows: give the planner real statistics
        cursor.execute("ANALYZE calls_callattempt; ANALYZE contacts_contact;")
    return campaign, attempts


def stream_for(attempt, rng: random.Random, base: str, path_of) -> list[tuple[str, bytes, dict]]:
    """One call's callbacks as Twilio might deliver them: duplicates, sometimes out of order."""
    from calls.webhooks.signatures import sign

    events = [
        ("initiated", {}),
        ("ringing", {}),
        ("in-progress", {"AnsweredBy": "human"}),
        ("completed", {"CallDuration": str(rng.randint(5, 300)), "AnsweredBy": "human"}),
    ]
    if rng.random() < 0.15:  # final before ringing
        events[1], events[3] = events[3], events[1]
    for _ in range(rng.choice([0, 0, 1, 2])):  # duplicates
        events.insert(rng.randrange(len(events) + 1), rng.choice(events))
    requests = []
    for seq, (status, extra) in enumerate(events):
        params = {
            "CallSid": attempt.provider_call_sid,
            "AccountSid": "AC" + "0" * 32,
            "CallStatus": status,
            "SequenceNumber": str(seq),
            "To": attempt.contact.phone,
            "From": "+15005550006",
            "Direction": "outbound-api",
            **extra,
        }
        path = path_of(attempt)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(base + path, params),
        }
        requests.append((path, urlencode(params).encode(), headers))
    return requests


def status_path(attempt) -> str:
    return f"/webhooks/status/{attempt.call_id}/"


def bare_path(attempt) -> str:
    return f"/bench/bare/{attempt.call_id}/"


def encode(path: str, body: bytes, headers: dict) -> bytes:
    """One HTTP/1.1 request as bytes, built before the clock starts."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """A keep-alive connection taking call streams from the shared list as it finishes them, so
    every connection stays busy to the end; one request in flight."""

    def __init__(self, port: int, streams: list[list[bytes]]):
        self.port = port
        self.sock = self.connect()
        self.streams = streams
        self.requests: list[bytes] = []
        self.buffer = b""
        self.started = 0.0

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return sock

    def send(self) -> bool:
        if not self.requests:
            if not self.streams:
                return False
            self.requests = self.streams.pop()[::-1]
        self.started = time.perf_counter()
        self.sock.sendall(self.requests.pop())  # small: fits the socket buffer
        return True

    def receive(self) -> int | None:
        """The status of the response once it is whole, else None."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return None
        length, self.closing = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                self.closing = value.strip().lower() == b"close"
        if len(rest) < length:
            return None
        self.buffer = rest[length:]
        return int(head.split(b" ", 2)[1])


def run_load(port: int, streams: list[list]) -> tuple[float, list[float], int]:
    """Send each call's stream in order over CONNECTIONS keep-alive connections from one thread
    (a thread per connection with http.client took a tenth of the machine's two cores away from
    the server). Returns (seconds, latencies, errors)."""
    work = [[encode(*request) for request in stream] for stream in reversed(streams)]
    latencies: list[float] = []
    errors = 0
    with selectors.DefaultSelector() as selector:
        start = time.perf_counter()
        for _ in range(CONNECTIONS):
            connection = Connection(port, work)
            if connection.send():
                selector.register(connection.sock, selectors.EVENT_READ, connection)
        while selector.get_map():
            for key, _ in selector.select():
                connection = key.data
                status = connection.receive()
                if status is None:
                    continue
                latencies.append(time.perf_counter() - connection.started)
                errors += status >= 300
                if connection.closing:  # a server without keep-alive (gunicorn's sync workers)
                    selector.unregister(connection.sock)
                    connection.sock.close()
                    connection.sock = connection.connect()
                    selector.register(connection.sock, selectors.EVENT_READ, connection)
                if not connection.send():
                    selector.unregister(connection.sock)
                    connection.sock.close()
        seconds = time.perf_counter() - start
    return seconds, latencies, errors


def report(name: str, seconds: float, latencies: list[float], errors: int) -> float:
    rate = len(latencies) / seconds
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<18} {len(latencies):>6} requests in {seconds:6.2f}s: {rate:7.0f}/s, "
        f"p50 {cuts[49] * 1000:6.1f} ms, p99 {cuts[98] * 1000:6.1f} ms, errors {errors}",
        flush=True,
    )
    return rate


def start_gunicorn(port: int, env: dict) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "voicesurvey.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            WORKER_CLASS,
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def main() -> None:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("bench_webhooks: skipped, set DATABASE_URL to a PostgreSQL server")
        return
    url = scratch.create(os.environ.get("BENCH_WEBHOOK_DATABASE", "vs_bench_webhooks"))
    os.environ["DATABASE_URL"] = url
    try:
        run()
    finally:
        from django.db import connections

        connections.close_all()
        scratch.drop(url)


def run() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.webhooks_settings"
    setup_django()
    from django.conf import settings
    from django.db.models import Count

    from calls.models import CallAttempt
    from contacts.models import Contact

    rng = random.Random(4)
    campaign, attempts = make_calls(ATTEMPTS)
    attempts = list(CallAttempt.objects.filter(campaign=campaign).select_related("contact"))
    base = settings.PUBLIC_BASE_URL
    webhook = [
        stream_for(a, rng, base, lambda a: f"/webhooks/status/{a.call_id}/") for a in attempts
    ]
    bare = [stream_for(a, rng, base, lambda a: f"/bench/bare/{a.call_id}/") for a in attempts]

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.webhooks_settings"}
    env["LOG_LEVEL"] = "WARNING"
    server = start_gunicorn(port, env)
    try:
        run_load(port, bare[:50])  # warm up the workers and their connections
        print(f"{ATTEMPTS} calls, {CONNECTIONS} connections, {WORKER_CLASS} {WORKERS}x{THREADS}")
        rate = report("status callbacks", *run_load(port, webhook))
        reference = report("bare UPDATE view", *run_load(port, bare[50:] + bare[:50]))
    finally:
        server.terminate()
        server.wait(timeout=30)

    states = dict(
        Contact.objects.filter(campaign=campaign).values_list("state").annotate(n=Count("id"))
    )
    live = CallAttempt.objects.filter(campaign=campaign, status__in=CallAttempt.LIVE_STATUSES)
    print(f"contacts after the stream: {states}; attempts still live: {live.count()}")
    print(
        f"target >= {TARGET_RATE}/s: {'met' if rate >= TARGET_RATE else 'NOT met'}; "
        f"within {TARGET_RATIO:.0f}x of the bare view: {reference / rate:.2f}x "
        f"({'met' if reference / rate <= TARGET_RATIO else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
