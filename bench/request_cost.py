"""What one webhook request costs, by kind (status, voice, gather), in CPU: the app's (Django's
whole stack, middleware and request signals included, in this process through Django's WSGI
handler as a server calls it, without the server's HTTP parsing) and the PostgreSQL
backend's (/proc/<backend pid>/stat). CPU time, unlike latency, stays meaningful on a busy
shared machine; the load bench (bench_load.py) measures the latencies. Then one more pass
under cProfile, on the CPU clock: the functions where each kind's CPU goes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.request_cost

BENCH_COST_CALLS (300) sets the number of calls; BENCH_COST_WHOLE_CHAIN=1 sends the webhooks
through all the middleware, as before voicesurvey/webhook_middleware.py.
"""

import cProfile
import datetime as dt
import io
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from bench import scratch
from bench.bench_load import CLOCK_TICKS, prepare

ROOT = Path(__file__).resolve().parent.parent
CALLS = int(os.environ.get("BENCH_COST_CALLS", "300"))


def backend_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def call_requests(attempt, base: str) -> list[tuple[str, str, dict]]:
    """One answered call's requests in Twilio's order: (kind, URL, parameters)."""
    common = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": attempt.provider_call_sid,
        "To": attempt.contact.phone,
        "From": "+15005550006",
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
    }
    status = f"{base}/webhooks/status/{attempt.call_id}/"
    gather = f"{base}/webhooks/gather/{attempt.call_id}"
    requests = []
    for seq, name in enumerate(["initiated", "ringing", "in-progress"]):
        params = {**common, "CallStatus": name, "SequenceNumber": str(seq)}
        requests.append(("status", status, params))
    voice = f"{base}/webhooks/voice/{attempt.call_id}/"
    answered = {**common, "CallStatus": "in-progress", "AnsweredBy": "human"}
    requests.append(("voice", voice, answered))
    for position, digits in ((1, "1"), (2, "4"), (3, "2")):
        params = {**common, "CallStatus": "in-progress", "Digits": digits}
        requests.append(("gather", f"{gather}/{position}/", params))
    final = {**common, "CallStatus": "completed", "SequenceNumber": "3", "CallDuration": "40"}
    requests.append(("status", status, final))
    return requests


def live_attempts(n: int):
    """n contacts of the prepared campaigns on a dialled attempt each, as the tick leaves them."""
    from calls.dialler.claim import claim_batch
    from calls.dialler.tick import record_dialled
    from calls.models import CallAttempt

    now = dt.datetime.now(dt.UTC)
    attempts = claim_batch(now=now, provider_name="twilio", budget=n).attempts
    record_dialled([(a, f"CA{i:032x}") for i, a in enumerate(attempts)], now=now)
    return list(
        CallAttempt.objects.filter(pk__in=[a.pk for a in attempts]).select_related("contact")
    )


def run() -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    from calls.webhooks.signatures import sign

    if os.environ.get("BENCH_COST_WHOLE_CHAIN"):  # before/after the webhook shortcut
        shortcut = "voicesurvey.webhook_middleware.WebhookShortcutMiddleware"
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != shortcut]
    application = WSGIHandler()
    base = settings.PUBLIC_BASE_URL
    host = urlsplit(base).netloc
    attempts = live_attempts(2 * CALLS)
    first, second = attempts[:CALLS], attempts[CALLS:]

    def request(url, params) -> dict:
        """The request as a WSGI server hands it over, signed (outside the measured part)."""
        body = urlencode(params).encode()  # as Twilio sends them
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": url[len(base) :],
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": host,
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_TWILIO_SIGNATURE": sign(url, params),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        return environ

    def post(environ):
        """Django's handler, request signals and all (the test client would add its own
        signal handlers and skip the health check)."""
        statuses = []
        response = application(environ, lambda status, headers: statuses.append(status))
        b"".join(response)
        response.close()
        assert statuses[0][:3] in ("200", "204"), (environ["PATH_INFO"], statuses[0])

    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    app: dict[str, list[float]] = defaultdict(list)
    database: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    for attempt in first:
        for kind, url, params in call_requests(attempt, base):
            environ = request(url, params)
            db_before, cpu_before = backend_cpu(pid), time.process_time()
            started = time.perf_counter()
            post(environ)
            wall[kind].append(time.perf_counter() - started)
            app[kind].append(time.process_time() - cpu_before)
            database[kind].append(backend_cpu(pid) - db_before)
    assert connection.connection.info.backend_pid == pid  # one backend throughout
    print(f"{CALLS} answered calls, {sum(map(len, app.values()))} requests, one at a time")
    print(f"{'kind':<8} {'requests':>8} {'app CPU mean':>13} {'PG CPU mean':>12} {'wall p50':>9}")
    for kind in ("status", "voice", "gather"):
        print(
            f"{kind:<8} {len(app[kind]):>8} {statistics.mean(app[kind]) * 1000:>10.2f} ms"
            f" {statistics.mean(database[kind]) * 1000:>9.2f} ms"
            f" {statistics.median(wall[kind]) * 1000:>6.2f} ms"
        )
    per_call = sum(sum(v) for v in app.values()) / CALLS
    per_call_db = sum(sum(v) for v in database.values()) / CALLS
    print(
        f"per answered call (8 requests): app {per_call * 1000:.1f} ms, "
        f"PG {per_call_db * 1000:.1f} ms"
    )

    # Where the CPU goes (the profiler's clock is this process's CPU time: waiting for
    # PostgreSQL counts for nothing): the same requests for other calls, one profile per kind.
    profiles = {kind: cProfile.Profile(time.process_time) for kind in ("status", "voice", "gather")}
    for attempt in second:
        for kind, url, params in call_requests(attempt, base):
            environ = request(url, params)
            profiles[kind].enable()
            post(environ)
            profiles[kind].disable()
    for kind, profile in profiles.items():
        print(f"--- {kind}: top functions by own time (cProfile, {CALLS} calls' requests)")
        stats = pstats.Stats(profile, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(10)
        print(f"--- {kind}: our functions by cumulative time")
        stats.sort_stats("cumulative").print_stats(f"{ROOT}/(calls|campaigns|contacts|voice)", 12)


def main() -> None:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("request_cost: skipped, set DATABASE_URL to a PostgreSQL server")
        return
    url = scratch.create(os.environ.get("BENCH_COST_DATABASE", "vs_bench_cost"))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "voicesurvey.settings"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("TWILIO_AUTH_TOKEN", "request-cost-token")  # as with Twilio
    os.environ["DIALLER_BATCH_SIZE"] = str(2 * CALLS)
    os.environ["DIALLER_GLOBAL_MAX_CONCURRENT_CALLS"] = str(4 * CALLS)
    try:
        prepare(2 * CALLS + 10)
        run()
    finally:
        from django.db import connections

        connections.close_all()
        scratch.drop(url)


if __name__ == "__main__":
    main()
