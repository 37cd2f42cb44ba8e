"""The whole loop under load, measured from outside (issue 15): the dialler dials through the real
`twilio` client to a fake carrier speaking Twilio's API (bench/fake_carrier.py), which plays
each call back over HTTP to the app under its web server, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench BENCH=load
    .venv/bin/python -m bench.bench_load --pace 25,50,100 --seconds 60 [--chaos] [--workers 3]

Per pace, in a scratch database (vs_bench_load on DATABASE_URL's server, dropped afterwards):
migrate; 4 running campaigns with a 3-question survey (yes/no, a 1–5 scale, one digit) and
pace × seconds × 1.2 contacts in a zone where it is early afternoon; then the processes as
deployed: the web server with the Dockerfile's options (--server gunicorn or granian, 3
workers by default), `run_scheduler` with DIALLER_CALLS_PER_SECOND = the pace and
TELEPHONY_PROVIDER=twilio, TWILIO_API_BASE_URL at the fake carrier. The scheduler dials for
--seconds, is stopped (SIGTERM), the calls in flight drain, and the database is audited.

Reported per pace, beside the targets (100 calls/s at >= 95 % of the pace, webhook p99 < 100
ms, tick lag < 1 s, 0 double dials, 0 lost answers):
- the dial rate: calls the carrier accepted, from its first call to the scheduler's stop;
- webhook latency p50/p95/p99/max per kind (status, voice, gather), measured by the carrier
  (the server's backlog included), non-2xx and timeouts;
- tick duration and lag (the heartbeat row, polled): lag = how late a tick started after the
  previous one's interval;
- CPU seconds (utime+stime from /proc/<pid>/stat) of the carrier, the web server (master and
  workers), the scheduler(s) and the database's backends (pids from pg_stat_activity), over the
  run and its drain, and per call;
- the audit: contacts in a state their attempts explain, no contact with two live attempts, no
  attempt live after its call ended at the carrier, every answer the carrier gave (2xx) stored,
  every survey the carrier finished stored whole and its contact completed, no number dialled
  while its previous call was still up (double dial), the carrier's call count equal to the
  attempts with a SID, every attempt with a SID dialled (dialled_at set).

--chaos adds, while the load runs: the carrier drops 10 % of status callbacks, duplicates 10 %,
delivers 10 % late; its API answers 429/503 for 30 s (from 20 % of the run); the scheduler is
SIGKILLed (at 45 %) and another started; every backend of the app's database is terminated
with pg_terminate_backend (at 65 %) — the shared PostgreSQL server itself is not restarted.
The machine is shared: figures are noisy; run it on a quiet machine for numbers to keep."""

import argparse
import datetime as dt
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import psycopg

from bench import restart_postgres, scratch

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "var" / "bench-load"
DATABASE = os.environ.get("BENCH_LOAD_DATABASE", "vs_bench_load")
ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "bench-load-auth-token"
FROM_NUMBER = "+15005550006"
CAMPAIGNS = 4
QUESTIONS = 3
INTERVAL = 5.0  # DIALLER_TICK_INTERVAL, the default
DRAIN_SECONDS = 60  # at most, after the scheduler stops, for calls in flight to end
# --chaos runs the campaigns to their end: retries at once, two attempts, and a call quiet for
# 20 s (not 300) asked about at the carrier (time is compressed as the calls' are).
QUICK_RETRIES = {
    "max_attempts": 2,
    "retry_busy_minutes": 0,
    "retry_no_answer_minutes": 0,
    "retry_failed_minutes": 0,
    "retry_machine_minutes": 0,
    "completion_max_attempts": 2,
    "completion_retry_minutes": 0,
}
CHAOS_QUIET_SECONDS = 20
COMPLETE_SECONDS = 300  # at most, after the dialling time, for the campaigns to complete
TARGET_PACE, TARGET_DIAL_SHARE, TARGET_P99, TARGET_LAG = 100, 0.95, 0.100, 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {LOGS}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{name} did not listen on {port}")


def afternoon_zone(now: dt.datetime) -> str:
    """A fixed-offset zone where it is about 14:00 now, so the calling windows stay open for
    the run whatever the hour (Etc/GMT-3 is UTC+3)."""
    offset = (14 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


# --- the data (run in a child process with Django set up) ----------------------------------


def prepare(contacts: int, quick_retries: bool = False) -> None:
    """Migrate; CAMPAIGNS running campaigns with the survey; `contacts` contacts among them.
    `quick_retries` (--chaos): two attempts at most, retried at once, so a campaign can run to
    its end within the bench."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicesurvey.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, Question
    from contacts.models import Contact

    call_command("migrate", verbosity=0)
    now = timezone.now()
    zone = afternoon_zone(now)
    campaigns = []
    for n in range(CAMPAIGNS):
        campaign = Campaign.objects.create(
            name=f"load bench {n + 1}",
            status=Campaign.Status.RUNNING,
            timezone=zone,
            window_policy=Campaign.WindowPolicy.CONTACT,
            window_start=dt.time(8, 0),
            window_end=dt.time(21, 0),
            weekdays=list(range(7)),
            max_concurrent_calls=100_000,
            caller_id=FROM_NUMBER,
            machine_detection=True,
            intro_message="Hello {name|there}, this is a short survey about your delivery.",
            **(QUICK_RETRIES if quick_retries else {}),
        )
        Question.objects.bulk_create(
            [
                Question(campaign=campaign, position=1, kind="yes_no", prompt="Did it arrive?"),
                Question(
                    campaign=campaign,
                    position=2,
                    kind="scale",
                    min_value=1,
                    max_value=5,
                    prompt="From 1 to 5, how satisfied are you?",
                ),
                Question(
                    campaign=campaign,
                    position=3,
                    kind="digits",
                    valid_answers=["1", "2", "3"],
                    prompt="Press 1 for the courier, 2 for the post, 3 for a pick-up point.",
                ),
            ]
        )
        campaigns.append(campaign)
    Contact.objects.bulk_create(
        (
            Contact(
                campaign=campaigns[i % CAMPAIGNS],
                phone=f"+1212{2000000 + i:07d}",
                name=f"Person {i}",
                timezones=[zone],
                timezone_key=zone,
                next_attempt_at=now - dt.timedelta(minutes=1),
            )
            for i in range(contacts)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- processes -------------------------------------------------------------------------------


class Processes:
    """The run's processes, each logging to its own file; stopped by their own pids."""

    def __init__(self, env: dict, prefix: str):
        self.env = env
        self.prefix = prefix
        self.running: dict[str, subprocess.Popen] = {}
        LOGS.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(LOGS / f"{self.prefix}{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # killed as a group: granian's workers outlive their master
        )
        log.close()
        self.running[name] = process
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat and stat[0] == pid:
                found.append(int(entry))
    return found


def booted(pids, quiet: float = 1.0, timeout: float = 60) -> None:
    """Wait until the processes have stopped using CPU for `quiet` seconds: the workers have
    booted (they start after the master listens), so their boot is not counted as the run's
    CPU."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        used = sum(stat[1] for pid in pids() if (stat := read_stat(pid)))
        if used == last:
            return
        last = used
        time.sleep(quiet)


def descendants_of(pid: int) -> list[int]:
    """Children, grandchildren…: granian's workers are spawned through a helper process."""
    found, todo = [], [pid]
    while todo:
        children = children_of(todo.pop())
        found += children
        todo += children
    return found


# The web server as the Dockerfile runs it (`--server granian`, the default) or the documented
# alternative (gunicorn gthread), with the same options as there (tests/test_web_server.py
# holds the Dockerfile to its server's checks).
SERVERS = {
    "gunicorn": lambda port, workers: [
        "gunicorn",
        "voicesurvey.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
    ],
    "granian": lambda port, workers: [
        "granian",
        "--interface",
        "wsgi",
        "voicesurvey.wsgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        "4",
        "--no-ws",
        "--respawn-failed-workers",
    ],
}


def server_command(server: str, port: int, workers: int, extra: list[str]) -> list[str]:
    program, *args = SERVERS[server](port, workers)
    return [str(Path(sys.executable).parent / program), *args, *extra]


def read_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Watcher(threading.Thread):
    """Every half second: the heartbeat's last tick report, and the CPU each role has used
    (per pid: the last reading minus the first; a pid first seen during the run from 0)."""

    def __init__(self, url: str, roles):
        super().__init__(daemon=True)
        self.url = url
        self.roles = roles  # () -> {role: [pids]}, re-read each time (workers, backends come)
        self.ticks: dict[str, dict] = {}
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.role_of: dict[int, str] = {}
        self.stopped = threading.Event()
        self.started = False

    def baseline(self) -> None:
        for role, pids in self.roles().items():
            for pid in pids:
                if stat := read_stat(pid):
                    self.first[pid] = stat[1]
                    self.role_of[pid] = role

    def sample(self, conn) -> None:
        roles = self.roles()
        roles["postgres"] = [
            row[0]
            for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ]
        for role, pids in roles.items():
            for pid in pids:
                if stat := read_stat(pid):
                    self.first.setdefault(pid, 0.0)
                    self.last[pid] = stat[1]
                    self.role_of[pid] = role
        row = conn.execute("SELECT report FROM calls_diallerheartbeat WHERE id = 1").fetchone()
        if row and row[0]:
            self.ticks[row[0]["at"]] = row[0]

    def run(self) -> None:
        conn = None
        while not self.stopped.is_set():
            try:
                conn = conn or psycopg.connect(self.url, autocommit=True)
                self.sample(conn)
            except psycopg.Error:  # terminated with the others in --chaos: reconnect
                conn = None
            self.stopped.wait(0.5)
        if conn:
            conn.close()

    def cpu(self) -> dict[str, float]:
        used: Counter = Counter()
        for pid, last in self.last.items():
            used[self.role_of[pid]] += max(0.0, last - self.first.get(pid, 0.0))
        return dict(used)


# --- one pace --------------------------------------------------------------------------------


def carrier_get(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
        return json.load(response)


def run_pace(pace: float, args) -> dict:
    contacts = int(pace * args.seconds * 1.2) + 100
    url = scratch.create(DATABASE)
    web_port, carrier_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voicesurvey.settings",
        "DATABASE_URL": url,
        "PYTHONUNBUFFERED": "1",
        "DEBUG": "false",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "TELEPHONY_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{carrier_port}",
        "DIALLER_CALLS_PER_SECOND": str(pace),
        "DIALLER_TICK_INTERVAL": str(INTERVAL),
        "DIALLER_BATCH_SIZE": str(max(50, int(pace * INTERVAL))),
        "DIALLER_GLOBAL_MAX_CONCURRENT_CALLS": "100000",
    }
    if args.chaos:
        env["DIALLER_QUIET_CALL_SECONDS"] = str(CHAOS_QUIET_SECONDS)
    print(f"--- pace {pace:g} calls/s for {args.seconds} s: {contacts} contacts", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import bench.bench_load as b; b.prepare({contacts}, quick_retries={args.chaos})",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    procs = Processes(env, prefix=f"pace-{pace:g}-")
    for old in LOGS.glob(f"profile-{pace:g}-*.txt"):
        old.unlink()
    carrier_args = [sys.executable, "-m", "bench.fake_carrier", "--port", str(carrier_port)]
    carrier_args += ["--account", ACCOUNT, "--token", TOKEN, "--seed", str(int(pace))]
    if args.chaos:
        carrier_args.append("--chaos")
    if args.keep_alive:
        carrier_args.append("--keep-alive")
    carrier = procs.start("carrier", carrier_args)
    server_args = args.server_args if args.server_args is not None else args.gunicorn_args
    server = procs.start(
        "server", server_command(args.server, web_port, args.workers, shlex.split(server_args))
    )
    schedulers: list[subprocess.Popen] = []
    scheduler_cmd = [sys.executable, "manage.py", "run_scheduler"]

    def roles():
        return {
            "carrier": [carrier.pid],
            "server": [server.pid, *descendants_of(server.pid)],
            "scheduler": [p.pid for p in schedulers],
        }

    watcher = Watcher(url, roles)
    chaos_log: list[str] = []
    try:
        wait_for_port(carrier_port, carrier, "carrier")
        wait_for_port(web_port, server, args.server)
        booted(lambda: roles()["server"])
        watcher.baseline()
        watcher.start()
        started = time.time()
        load_before = os.getloadavg()[0]
        schedulers.append(procs.start("scheduler-1", scheduler_cmd))
        chaos_steps = chaos_plan(args.seconds) if args.chaos else []
        chaos_steps = restart_postgres.with_restarts(chaos_steps, args.seconds, args.cluster)
        profile_at = started + min(10.0, args.seconds / 4) if args.profile else None
        profilers: list[subprocess.Popen] = []
        while (elapsed := time.time() - started) < args.seconds:
            if chaos_steps and elapsed >= chaos_steps[0][0]:
                _, step = chaos_steps.pop(0)
                chaos_log.append(
                    f"{elapsed:5.1f}s "
                    + step(
                        procs=procs,
                        schedulers=schedulers,
                        cmd=scheduler_cmd,
                        url=url,
                        carrier_port=carrier_port,
                    )
                )
                print("    chaos:", chaos_log[-1], flush=True)
            if profile_at and time.time() >= profile_at:
                profile_at = None
                profilers = start_profilers(pace, roles(), seconds=args.seconds / 2)
            time.sleep(0.2)
        stopped = time.time()
        load_during = os.getloadavg()[0]
        if args.chaos:  # the retries dialled after the dialling time do not count in its rate
            chaos_log.append(wait_for_campaigns_to_complete(url, stopped))
            print("    chaos:", chaos_log[-1], flush=True)
        for profiler in profilers:
            profiler.wait()
        for name in [n for n in list(procs.running) if n.startswith("scheduler")]:
            procs.stop(name)
        drain_deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < drain_deadline:
            if carrier_get(carrier_port, "/_bench/stats")["active"] == 0:
                break
            time.sleep(1)
        time.sleep(6 if args.chaos else 1)  # late callbacks land
        drained = time.time()
        watcher.stopped.set()
        watcher.join()
        stats = carrier_get(carrier_port, "/_bench/stats")
        calls = carrier_get(carrier_port, "/_bench/calls")
    finally:
        watcher.stopped.set()
        procs.stop_all()
    result = {
        "pace": pace,
        "seconds": args.seconds,
        "window": (started, stopped, drained),
        "stats": stats,
        "calls": calls,
        "ticks": sorted(watcher.ticks.values(), key=lambda t: t["at"]),
        "cpu": watcher.cpu(),
        "chaos": chaos_log,
        "load": (load_before, load_during),
    }
    result["audit"] = audit(url, calls)
    if not args.keep:
        scratch.drop(url)
    report(result)
    return result


# --- profiles --------------------------------------------------------------------------------


def start_profilers(pace: float, roles: dict, *, seconds: float) -> list[subprocess.Popen]:
    """py-spy on every server worker and the scheduler, for `seconds`, as collapsed stacks
    (one file per process under var/bench-load/; `profile_summary` reads them)."""
    spy = Path(sys.executable).parent / "py-spy"
    targets = [("server", pid) for pid in roles["server"][1:]]  # the workers
    targets += [("scheduler", pid) for pid in roles["scheduler"]]
    return [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(LOGS / f"profile-{pace:g}-{role}-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for role, pid in targets
    ]


# The view functions a worker's samples are sorted by (the webhook kinds).
VIEWS = {"status_callback": "status", "voice": "voice", "gather": "gather"}


def profile_summary(paths: list[Path], top: int = 12) -> None:
    """Where a server worker's time goes, per webhook kind: the functions under which the
    samples fell (inclusive; the wrappers every sample passes through left out) and the
    functions running when sampled (self), as shares of that kind's samples."""
    inclusive: dict[str, Counter] = {}
    own: dict[str, Counter] = {}
    totals: Counter = Counter()
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [f.split(" (")[0] + " " + short(f) for f in stack.split(";")]
            names = [f.split(" ")[0] for f in frames]
            kind = next((VIEWS[n] for n in names if n in VIEWS), None)
            if kind is None:
                kind = "closing the connection" if "close_graceful" in names else "outside a view"
            totals[kind] += int(count)
            for frame in set(frames):
                inclusive.setdefault(kind, Counter())[frame] += int(count)
            own.setdefault(kind, Counter())[frames[-1]] += int(count)
    every = sum(totals.values())
    for kind, n in totals.most_common():
        print(f"  {kind}: {n / every:.0%} of the workers' samples")
        if kind not in VIEWS.values():
            continue
        shown = [(f, c) for f, c in inclusive[kind].most_common() if c < 0.97 * n][:top]
        for frame, c in shown:
            print(f"    {c / n:6.1%}  {frame}")
        print("    running when sampled:")
        for frame, c in own[kind].most_common(6):
            print(f"    {c / n:6.1%}  {frame}")


def short(frame: str) -> str:
    """A frame's file as package/module.py (site-packages and the project root cut off)."""
    where = frame.rpartition(" (")[2].rstrip(")")
    path = where.split(":")[0]
    for cut in ("site-packages/", str(ROOT) + "/", "lib/python3.11/"):
        if cut in path:
            path = path.split(cut, 1)[1]
    return f"({path})"


# --- chaos -----------------------------------------------------------------------------------


def chaos_plan(seconds: float) -> list:
    return [
        (0.20 * seconds, api_outage),
        (0.45 * seconds, kill_scheduler),
        (0.65 * seconds, terminate_backends),
    ]


def api_outage(*, carrier_port, **_) -> str:
    urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{carrier_port}/_bench/outage", method="POST")
    ).close()
    return "the carrier's API answers 429/503 for 30 s"


def kill_scheduler(*, procs, schedulers, cmd, **_) -> str:
    names = sorted(n for n in procs.running if n.startswith("scheduler"))
    procs.stop(names[-1], signal.SIGKILL)
    schedulers.append(procs.start(f"scheduler-{len(schedulers) + 1}", cmd))
    return f"{names[-1]} SIGKILLed, scheduler-{len(schedulers)} started"


def terminate_backends(*, url, **_) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    return f"pg_terminate_backend on all {killed} backends of the app's database"


def wait_for_campaigns_to_complete(url: str, since: float) -> str:
    """--chaos: the scheduler goes on until every campaign has completed (each contact dialled
    until it is done or out of attempts), at most COMPLETE_SECONDS after the dialling time."""
    deadline = time.monotonic() + COMPLETE_SECONDS
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            statuses = dict(
                conn.execute("SELECT status, count(*) FROM campaigns_campaign GROUP BY 1")
            )
            done = statuses.get("completed", 0)
            if done == sum(statuses.values()) or time.monotonic() >= deadline:
                break
            time.sleep(1)
    took = time.time() - since
    total = sum(statuses.values())
    return f"campaigns completed: {done} of {total}, {took:.0f} s after the dialling time"


# --- the audit -------------------------------------------------------------------------------


def audit(url: str, calls: list[dict]) -> dict:
    """What the database says after the drain, checked against what the carrier did."""
    live = "('queued', 'initiated', 'ringing', 'in_progress')"
    found: dict[str, int] = {}
    with psycopg.connect(url) as conn:

        def one(sql, *params):
            return conn.execute(sql, params).fetchone()[0]

        found["contacts in progress without a live attempt"] = one(
            f"""SELECT count(*) FROM contacts_contact c WHERE c.state = 'in_progress'
                AND NOT EXISTS (SELECT 1 FROM calls_callattempt a WHERE a.contact_id = c.id
                                AND a.status IN {live})"""
        )
        found["contacts with a live attempt but not in progress"] = one(
            f"""SELECT count(DISTINCT a.contact_id) FROM calls_callattempt a
                JOIN contacts_contact c ON c.id = a.contact_id
                WHERE a.status IN {live} AND c.state <> 'in_progress'"""
        )
        found["contacts with two live attempts"] = one(
            f"""SELECT count(*) FROM (SELECT contact_id FROM calls_callattempt
                WHERE status IN {live} GROUP BY contact_id HAVING count(*) > 1) x"""
        )
        attempts = {
            sid: (status, dialled, ended, finished, state, n_answers)
            for sid, status, dialled, ended, finished, state, n_answers in conn.execute(
                """SELECT a.provider_call_sid, a.status, a.dialled_at IS NOT NULL, a.ended_at,
                          a.survey_finished, c.state,
                          (SELECT count(*) FROM calls_answer w WHERE w.attempt_id = a.id)
                     FROM calls_callattempt a JOIN contacts_contact c ON c.id = a.contact_id
                    WHERE a.provider_call_sid IS NOT NULL"""
            )
        }
        answers = {
            (sid, position): value
            for sid, position, value in conn.execute(
                """SELECT a.provider_call_sid, q.position, w.raw_input FROM calls_answer w
                   JOIN calls_callattempt a ON a.id = w.attempt_id
                   JOIN campaigns_question q ON q.id = w.question_id"""
            )
        }
        # ended_at is the final callback's Timestamp, whole seconds: a second's leeway.
        found["answers stored over a second after their call had ended"] = one(
            """SELECT count(*) FROM calls_answer w JOIN calls_callattempt a
               ON a.id = w.attempt_id WHERE a.ended_at IS NOT NULL
               AND w.answered_at > a.ended_at + interval '1 second'"""
        )
        found["finished surveys (survey_finished) whose contact was not completed"] = one(
            """SELECT count(*) FROM calls_callattempt a JOIN contacts_contact c
               ON c.id = a.contact_id WHERE a.survey_finished AND a.status = 'completed'
               AND c.state NOT IN ('completed', 'in_progress')"""
        )
        found["attempts with a SID but no dialled_at"] = one(
            "SELECT count(*) FROM calls_callattempt "
            "WHERE provider_call_sid IS NOT NULL AND dialled_at IS NULL"
        )
        states = dict(conn.execute("SELECT state, count(*) FROM contacts_contact GROUP BY 1"))
        statuses = dict(conn.execute("SELECT status, count(*) FROM calls_callattempt GROUP BY 1"))
        lost = one("SELECT count(*) FROM calls_callattempt WHERE error_code = 'lost'")
    ended_at_carrier = {c["sid"] for c in calls if c["ended"] is not None}
    found["attempts live after their call ended"] = sum(
        1 for sid in ended_at_carrier if sid in attempts and attempts[sid][0] in live
    )
    found["of which the carrier dropped the final callback"] = sum(
        1
        for c in calls
        if c["final_dropped"] and c["sid"] in attempts and attempts[c["sid"]][0] in live
    )
    found["answers given (2xx) and not stored"] = sum(
        1 for c in calls for position, _ in c["answers"] if (c["sid"], position) not in answers
    )
    finished = [c for c in calls if c["survey_done"]]
    # Whole: marked finished, with an answer for each question the carrier answered (the app
    # skips a question after its re-prompts are spent: 3 silences in a row, ~1 survey in 3,000).
    found["finished surveys not stored whole"] = sum(
        1
        for c in finished
        if c["sid"] not in attempts
        or not attempts[c["sid"]][3]
        or attempts[c["sid"]][5] < len({position for position, _ in c["answers"]})
    )
    found["finished surveys whose contact was settled otherwise than completed"] = sum(
        1
        for c in finished
        if c["sid"] in attempts and attempts[c["sid"]][4] not in ("completed", "in_progress")
    )
    found["double dials (a number called while its last call was up)"] = double_dials(calls)
    found["carrier calls minus attempts with a SID"] = len(calls) - len(attempts)
    found["carrier calls unknown to the database"] = sum(
        1 for c in calls if c["sid"] not in attempts
    )
    return {
        "checks": found,
        "contacts": states,
        "attempts": statuses,
        "lost": lost,
        "finished": len(finished),
    }


def double_dials(calls: list[dict]) -> int:
    by_number: dict[str, list[dict]] = {}
    for call in calls:
        by_number.setdefault(call["to"], []).append(call)
    overlapping = 0
    for number_calls in by_number.values():
        number_calls.sort(key=lambda c: c["created"])
        for earlier, later in zip(number_calls, number_calls[1:], strict=False):
            if earlier["ended"] is None or later["created"] < earlier["ended"]:
                overlapping += 1
    return overlapping


# --- the report ------------------------------------------------------------------------------


def cuts(values: list[float]) -> tuple[float, float, float, float]:
    if len(values) < 2:
        value = values[0] if values else 0.0
        return value, value, value, value
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[94], q[98], max(values)


def summary(result: dict) -> dict:
    """The figures of one pace, as the report and docs/benchmarks-load.md show them."""
    started, stopped, drained = result["window"]
    calls = result["calls"]
    created = sorted(c["created"] for c in calls if c["created"] <= stopped)
    dial_seconds = stopped - created[0] if created else 0.0
    rate = len(created) / dial_seconds if dial_seconds else 0.0
    stats = result["stats"]
    latency = {kind: cuts(values) for kind, values in stats["latencies"].items()}
    non_2xx = Counter()
    for kind, status, n in stats["statuses"]:
        if not (status.isdigit() and 200 <= int(status) < 300):
            non_2xx[f"{kind} {status}"] += n
    ticks = result["ticks"]
    at = [dt.datetime.fromisoformat(t["at"]).timestamp() for t in ticks]
    lags = [max(0.0, b - a - INTERVAL) for a, b in zip(at, at[1:], strict=False)]
    durations = [t["seconds"] for t in ticks]
    skipped = Counter()
    for t in ticks:
        skipped.update(t.get("skipped", {}))
    requests = sum(len(v) for v in stats["latencies"].values())
    return {
        "rate": rate,
        "share": rate / result["pace"],
        "calls": len(calls),
        "requests": requests,
        "latency": latency,
        "non_2xx": dict(non_2xx),
        "tick_p50": statistics.median(durations) if durations else 0.0,
        "tick_max": max(durations, default=0.0),
        "lag_max": max(lags, default=0.0),
        "lag_p50": statistics.median(lags) if lags else 0.0,
        "ticks": len(ticks),
        "skipped": dict(skipped),
        "cpu": result["cpu"],
        "wall": drained - started,
    }


def report(result: dict) -> None:
    s = summary(result)
    pace = result["pace"]
    ok = "met" if s["share"] >= TARGET_DIAL_SHARE else "NOT met"
    print(
        f"dial rate        {s['rate']:7.1f} calls/s = {s['share']:.1%} of {pace:g}"
        f"   (target >= {TARGET_DIAL_SHARE:.0%} at {TARGET_PACE}/s: {ok})"
    )
    print(f"calls            {s['calls']} placed, {s['requests']} webhook requests")
    before, during = result["load"]
    print(
        f"machine          load average {before:.1f} before, {during:.1f} at the end of the "
        "dialling (2 cores, shared: anything above ~2 is someone else's work too)"
    )
    for kind in ("status", "voice", "gather"):
        if kind in s["latency"]:
            p50, p95, p99, top = (x * 1000 for x in s["latency"][kind])
            ok = "met" if p99 < TARGET_P99 * 1000 else "NOT met"
            print(
                f"{kind + ' latency':<16} p50 {p50:6.1f}  p95 {p95:7.1f}  p99 {p99:7.1f}  "
                f"max {top:7.1f} ms   (target p99 < {TARGET_P99 * 1000:.0f} ms: {ok})"
            )
    print(f"non-2xx/errors   {s['non_2xx'] or 0}")
    ok = "met" if s["lag_max"] < TARGET_LAG else "NOT met"
    print(
        f"ticks            {s['ticks']}: duration p50 {s['tick_p50']:.2f} s, max "
        f"{s['tick_max']:.2f} s; lag p50 {s['lag_p50']:.2f} s, max {s['lag_max']:.2f} s   "
        f"(target lag < {TARGET_LAG:.0f} s: {ok}); skipped {s['skipped'] or 'none'}"
    )
    cpu = s["cpu"]
    app = sum(cpu.values()) - cpu.get("carrier", 0)
    calls, requests = max(s["calls"], 1), max(s["requests"], 1)
    print(
        "CPU seconds      "
        + ", ".join(f"{role} {cpu.get(role, 0):.1f}" for role in ROLES)
        + f" (of {s['wall']:.0f} s wall x 2 cores)"
    )
    print(
        "CPU per call     "
        + ", ".join(f"{role} {cpu.get(role, 0) / calls * 1000:.1f} ms" for role in ROLES)
        + f"; the app's per webhook request {app / requests * 1000:.2f} ms"
    )
    if result["chaos"]:
        print("chaos            " + "; ".join(result["chaos"]))
        print(f"                 carrier: {result['stats']['chaos']}")
    a = result["audit"]
    print(f"contacts         {a['contacts']}")
    print(f"attempts         {a['attempts']}; closed as lost: {a['lost']}")
    print(f"audit            ({a['finished']} surveys finished at the carrier)")
    for check, n in a["checks"].items():
        print(f"  {'ok ' if n == 0 else 'BAD'} {n:6d}  {check}")
    print(flush=True)


ROLES = ("carrier", "server", "scheduler", "postgres")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pace", default="25", help="calls/s, comma-separated (25,50,100)")
    parser.add_argument("--seconds", type=float, default=20, help="dialling time per pace")
    parser.add_argument("--chaos", action="store_true", help="faults while the load runs")
    parser.add_argument("--workers", type=int, default=3, help="server workers (Dockerfile: 3)")
    parser.add_argument(
        "--server", choices=sorted(SERVERS), default="granian", help="the WSGI server"
    )
    parser.add_argument("--server-args", help="more options for the server")
    parser.add_argument("--gunicorn-args", default="", help="the same, its old name")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="the carrier reuses its connections (with --gunicorn-args '-k gthread …')",
    )
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the workers and the scheduler mid-run"
    )
    restart_postgres.add_argument(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    args.cluster = None
    if args.restart_postgres or args.private_postgres:
        tuned = restart_postgres.DURABLE_TUNED if args.private_postgres else None
        cluster = restart_postgres.use_private_cluster(tuned)
        args.cluster = cluster if args.restart_postgres else None
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("bench_load: skipped, set DATABASE_URL to a PostgreSQL server")
        return
    if args.chaos and args.seconds < 60:
        print("bench_load: --chaos needs --seconds >= 60 (a 30 s outage inside the run)")
        return
    results = [run_pace(float(p), args) for p in args.pace.split(",")]
    if args.profile:
        for result in results:
            pace = result["pace"]
            print(f"--- profile at {pace:g} calls/s (py-spy, inclusive share of samples)")
            profile_summary(sorted(LOGS.glob(f"profile-{pace:g}-server-*.txt")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                [{**r, "summary": summary(r), "calls": len(r["calls"])} for r in results],
                f,
                indent=1,
                default=str,
            )


if __name__ == "__main__":
    main()
