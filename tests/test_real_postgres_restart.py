"""PostgreSQL restarted for real under the running app (issue 15, "Survive faults"), on a private
cluster (tests/private_postgres.py; the shared server is never restarted): gunicorn serves the
webhooks as the Dockerfile runs it, `run_scheduler` dials through the real `twilio` client to
the fake carrier (bench/fake_carrier.py), which plays each call back with signed webhooks.
The server is restarted with `pg_ctl restart -m fast`, stopped for a moment, and restarted with
`-m immediate` (a crash, recovered from the WAL). Nobody restarts a process: each webhook after
a restart is served, the scheduler keeps ticking, everyone is dialled once, and the audit of
the load bench (bench.bench_load.audit) finds nothing inconsistent.

It runs in the PostgreSQL pass (DATABASE_URL=postgres://…, as `.ci/run` sets it); the SQLite
pass leaves it to that one. Without PostgreSQL's server programs it skips, or fails in CI."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from twilio.request_validator import RequestValidator

from bench.bench_load import audit, children_of
from tests import private_postgres
from tests.private_postgres import PrivatePostgres, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "AC" + "7" * 32
TOKEN = "real-restart-token"
CONTACTS = 18
PACE = 4  # calls/s: the dialling (CONTACTS / PACE = 4.5 s) spans the restarts
LIVE = ("queued", "initiated", "ringing", "in_progress")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


@pytest.fixture(scope="module")
def cluster():
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass (DATABASE_URL=postgres://…)")
    if problem := private_postgres.unavailable():
        if in_ci():
            pytest.fail(f"The PostgreSQL restart tests must run in CI, but {problem}.")
        pytest.skip(problem)
    with PrivatePostgres() as cluster:
        yield cluster


class Deployment:
    """The processes as deployed, on the private cluster, each logging to its own file."""

    def __init__(self, url: str, logs: Path):
        self.url = url
        self.logs = logs
        self.web_port, self.carrier_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "voicesurvey.settings",
            "DATABASE_URL": url,
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}",
            "TELEPHONY_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_API_BASE_URL": f"http://127.0.0.1:{self.carrier_port}",
            "DIALLER_CALLS_PER_SECOND": str(PACE),
            "DIALLER_TICK_INTERVAL": "0.5",
            "DIALLER_DIAL_THREADS": "4",
            # A final callback answered 503 during the outage is not sent again (Twilio's
            # way): the tick asks the carrier about calls quiet this long.
            "DIALLER_QUIET_CALL_SECONDS": "3",
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.api_key = ""

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (the child holds it)
        child = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes[name] = child
        return child

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for child in self.processes.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.processes.values():
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    # --- what the test reads and sends ---------------------------------------------------

    def query(self, sql: str, *params):
        """One query on a connection of its own (the server may have restarted since)."""
        with psycopg.connect(self.url, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def last_tick(self) -> str | None:
        rows = self.query("SELECT last_tick_at FROM calls_diallerheartbeat WHERE id = 1")
        return rows[0][0] if rows else None

    def carrier(self, path: str):
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.carrier_port}/_bench/{path}", timeout=30
        ) as response:
            return json.load(response)

    def get(self, path: str) -> tuple[int, dict]:
        headers = {"Authorization": f"Token {self.api_key}"}
        return self.request(
            urllib.request.Request(self.env["PUBLIC_BASE_URL"] + path, headers=headers)
        )

    def status_callback(self, call_id: str, sid: str) -> tuple[int, dict]:
        """A signed status callback as Twilio sends it: a stale `ringing` (sequence 0) for a
        call, which the app logs and otherwise ignores."""
        url = f"{self.env['PUBLIC_BASE_URL']}/webhooks/status/{call_id}/"
        params = {"CallSid": sid, "CallStatus": "ringing", "SequenceNumber": "0"}
        signature = RequestValidator(TOKEN).compute_signature(url, params)
        body = "&".join(f"{k}={v}" for k, v in params.items()).encode()
        headers = {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return self.request(urllib.request.Request(url, data=body, headers=headers))

    @staticmethod
    def request(request) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        try:
            return status, json.loads(body) if body else {}
        except ValueError:
            return status, {"body": body.decode(errors="replace")[:500]}


def wait_until(condition, *, timeout: float, what: str, state=None) -> None:
    """Poll `condition` (the processes are real: they take the time they take); on a timeout,
    say what `state()` finds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}" + (f": {state()}" if state else "")
            )
        time.sleep(0.1)


def wait_for_port(port: int, child: subprocess.Popen, name: str) -> None:
    def listening() -> bool:
        assert child.poll() is None, f"{name} exited"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
        except urllib.error.HTTPError:
            pass
        except OSError:
            return False
        return True

    wait_until(listening, timeout=30, what=f"{name} to listen")


PREPARE = """
import bench.bench_load as bench
bench.prepare({contacts})
from django.contrib.auth.models import User
from voicesurvey.accounts.models import issue_token
print(issue_token(User.objects.create(username="boss", is_staff=True, is_superuser=True))[1])
"""


@pytest.fixture
def deployment(cluster, tmp_path):
    url = cluster.create_database("voicesurvey")
    deployment = Deployment(url, tmp_path)
    # The load bench's data (migrated, 4 running campaigns with a 3-question survey, the
    # contacts due now in a zone where it is early afternoon) and an operator's API token.
    done = subprocess.run(
        [sys.executable, "-c", PREPARE.format(contacts=CONTACTS)],
        cwd=ROOT,
        env=deployment.env,
        check=True,
        capture_output=True,
        text=True,
    )
    deployment.api_key = done.stdout.split()[-1]
    try:
        yield deployment
    finally:
        deployment.stop_all()


def test_the_app_and_the_scheduler_ride_through_real_postgresql_restarts(cluster, deployment):
    d = deployment
    carrier = d.start(
        "carrier",
        *(sys.executable, "-m", "bench.fake_carrier", "--port", str(d.carrier_port)),
        *("--account", ACCOUNT, "--token", TOKEN),
    )
    # As the Dockerfile runs it (two workers, not three: the machine has two cores).
    gunicorn = d.start(
        "gunicorn",
        str(Path(sys.executable).parent / "gunicorn"),
        *("voicesurvey.wsgi:application", "--bind", f"127.0.0.1:{d.web_port}"),
        *("--workers", "2", "--worker-class", "gthread", "--threads", "4"),
    )
    wait_for_port(d.carrier_port, carrier, "the carrier")
    wait_for_port(d.web_port, gunicorn, "gunicorn")
    scheduler = d.start("scheduler", sys.executable, "manage.py", "run_scheduler")

    def dialled_call():
        rows = d.query(
            "SELECT call_id, provider_call_sid FROM calls_callattempt"
            " WHERE provider_call_sid IS NOT NULL ORDER BY dialled_at LIMIT 1"
        )
        return rows[0] if rows else None

    wait_until(dialled_call, timeout=30, what="the first call")
    call_id, sid = dialled_call()
    call_id = str(call_id)
    assert d.status_callback(call_id, sid)[0] == 204
    workers = sorted(children_of(gunicorn.pid))
    assert len(workers) == 2

    def ticks_after(beat):
        return lambda: (d.last_tick() or beat) > beat

    # 1. An operator restarts PostgreSQL: every connection is ended under the processes.
    beat = d.last_tick()
    cluster.restart("fast")
    assert d.status_callback(call_id, sid)[0] == 204  # the next webhook is served
    wait_until(ticks_after(beat), timeout=15, what="a tick after the fast restart")

    # 2. While it is down: the webhooks and the API say 503 (no 500, no traceback), and so
    # does the health check.
    cluster.stop("fast")
    status, body = d.status_callback(call_id, sid)
    assert (status, body["error"]["code"]) == (503, "database_unavailable")
    status, body = d.get("/api/v1/campaigns/")
    assert (status, body["error"]["code"]) == (503, "database_unavailable")
    status, body = d.get("/healthz")
    assert (status, body["database"]) == (503, "down")
    cluster.start()
    assert d.status_callback(call_id, sid)[0] == 204

    # 3. It crashes (immediate: no checkpoint; the start recovers from the WAL).
    beat = d.last_tick()
    cluster.restart("immediate")
    assert d.status_callback(call_id, sid)[0] == 204
    wait_until(ticks_after(beat), timeout=15, what="a tick after the crash restart")

    # 4. The run ends by itself: everyone dialled, every call ended at the carrier and settled
    # here (what a 503 lost, the tick recovered by asking the carrier).
    def finished() -> bool:
        stats = d.carrier("stats")
        (live,) = d.query(
            "SELECT count(*) FROM calls_callattempt WHERE status = ANY(%s)", list(LIVE)
        )[0]
        return stats["calls"] >= CONTACTS and stats["active"] == 0 and live == 0

    def where_it_stands() -> str:
        attempts = d.query(
            "SELECT status, provider_call_sid IS NOT NULL, error_code, count(*)"
            " FROM calls_callattempt GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        contacts = d.query("SELECT state, count(*) FROM contacts_contact GROUP BY 1 ORDER BY 1")
        idle = "claimed=0 dialled=0 failed=0 released=0"
        lines = [line for line in d.log("scheduler").splitlines() if idle not in line]
        tail = "\n".join(lines[-60:])
        return f"carrier {d.carrier('stats')}, attempts {attempts}, contacts {contacts}\n{tail}"

    wait_until(
        finished, timeout=90, what="every contact dialled and settled", state=where_it_stands
    )
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(timeout=30) == 0
    calls = d.carrier("calls")
    stats = d.carrier("stats")

    found = audit(d.url, calls)
    assert found["checks"] == dict.fromkeys(found["checks"], 0), found
    assert len(calls) == CONTACTS  # nobody dialled twice, nobody left out
    assert len({call["to"] for call in calls}) == CONTACTS
    # The carrier's webhooks: 2xx, or 503 while the server was down; never a 500.
    refused = {status for kind, status, n in stats["statuses"] if not status.startswith("2")}
    assert refused <= {"503"}, stats["statuses"]
    # Nobody restarted anything: the same gunicorn workers and the one scheduler throughout.
    assert gunicorn.poll() is None and sorted(children_of(gunicorn.pid)) == workers
    assert "Traceback" not in d.log("gunicorn")
