"""Several machines over one PostgreSQL database: two `run_scheduler` processes and a django-q2
cluster running the dialler's task, all dialling through the real `twilio` client to a fake
carrier (bench/fake_carrier.py, which records each call and plays nothing back). Nobody is
dialled twice, and the pace is the pace of all of them together."""

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from bench.bench_load import afternoon_zone
from calls.models import CallAttempt
from contacts.models import Contact
from tests.factories import RunningCampaignFactory
from tests.test_dialler_crash import database_url

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "AC" + "5" * 32
PACE = 20  # calls per second, all processes together
RUN_SECONDS = 10  # of dialling, from the first call the carrier takes
WINDOW = 2.0  # seconds: the pace is checked over every window this long
BANK = 0.5  # DIALLER_PACE_BANK_SECONDS: the pace's promise is pace x (W + bank) + 1 in any W s
# What a shared 2-core machine adds: a call's request reaches the carrier a little after its
# slot (thread and process scheduling, the first connections), so a window may hold some calls
# of the one before: up to a second's worth. Three processes each at the pace would dial three
# times the pace, 120 calls in a window, against this bound of 71.
JITTER = 1.0


def most_calls_allowed(seconds: float) -> float:
    return PACE * (seconds + BANK + JITTER) + 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the fake carrier exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the fake carrier did not listen")


def carrier_calls(port: int) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/calls", timeout=30) as answer:
        return json.load(answer)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_schedulers_and_a_cluster_dial_nobody_twice_and_keep_one_pace(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("several processes need a database server they can share")
    Schedule.objects.all().delete()  # the cluster runs only the task queued below
    now = timezone.now()
    zone = afternoon_zone(now)  # the calling windows are open, whatever the hour
    campaign = RunningCampaignFactory(
        timezone=zone,
        weekdays=list(range(7)),
        window_start=dt.time(8),
        window_end=dt.time(21),
        max_concurrent_calls=10_000,
        machine_detection=False,
        caller_id="+15005550006",
    )
    Contact.objects.bulk_create(
        Contact(
            campaign=campaign,
            phone=f"+1212{3000000 + i:07d}",
            timezones=[zone],
            timezone_key=zone,
            next_attempt_at=now - dt.timedelta(minutes=1),
        )
        for i in range(PACE * RUN_SECONDS * 3)
    )

    carrier_port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voicesurvey.settings",
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "WARNING",
        "TELEPHONY_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": "several-machines",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{carrier_port}",
        "DIALLER_CALLS_PER_SECOND": str(PACE),
        "DIALLER_PACE_BANK_SECONDS": str(BANK),
        "DIALLER_TICK_INTERVAL": "1",
        "DIALLER_BATCH_SIZE": str(PACE),
        "DIALLER_DIAL_THREADS": "4",
        "DIALLER_GLOBAL_MAX_CONCURRENT_CALLS": "10000",
        "Q_WORKERS": "1",
    }
    env.pop("Q_REDIS_URL", None)  # the project's default broker: the ORM, this database

    def start(name, *args):
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (the child holds it)
        child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return child

    carrier = start(
        "carrier",
        *(sys.executable, "-m", "bench.fake_carrier", "--port", str(carrier_port)),
        *("--account", ACCOUNT, "--token", "several-machines", "--no-playback"),
    )
    children = [carrier]
    try:
        wait_for_port(carrier_port, carrier)
        # The cluster's share: the dialler's scheduled task, queued on the ORM broker.
        async_task("calls.dialler.qcluster.run_dialler_for_a_minute", RUN_SECONDS + 2.0)
        schedulers = [
            start(f"scheduler-{n}", sys.executable, "manage.py", "run_scheduler", "--interval", "1")
            for n in (1, 2)
        ]
        cluster = start("qcluster", sys.executable, "manage.py", "qcluster")
        children += [*schedulers, cluster]
        deadline = time.monotonic() + 20
        while not carrier_calls(carrier_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(RUN_SECONDS)
        for child in schedulers:
            child.send_signal(signal.SIGTERM)
        for child in schedulers:
            assert child.wait(timeout=30) == 0
        deadline = time.monotonic() + 20
        while not Task.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        calls = carrier_calls(carrier_port)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    # Each of the three dialled: both schedulers' ticks and the cluster's task.
    logs = {n: (tmp_path / f"scheduler-{n}.log").read_text() for n in (1, 2)}
    for n, log in logs.items():
        assert sum(map(int, re.findall(r"dialled=(\d+)", log))) > 0, f"scheduler-{n}: {log}"
    (task,) = Task.objects.all()
    assert task.success and task.result > 0, (tmp_path / "qcluster.log").read_text()

    # Nobody dialled twice: each number once at the carrier, one attempt per contact, and the
    # carrier's calls are the attempts that got a SID.
    numbers = [call["to"] for call in calls]
    assert len(numbers) == len(set(numbers))
    dialled = CallAttempt.objects.exclude(provider_call_sid=None)
    assert sorted(dialled.values_list("provider_call_sid", flat=True)) == sorted(
        call["sid"] for call in calls
    )
    assert CallAttempt.objects.values("contact").distinct().count() == CallAttempt.objects.count()

    # One pace for all: no window of WINDOW seconds holds more than the pace allows.
    times = sorted(call["created"] for call in calls)
    busiest = max(sum(1 for t in times[i:] if t < first + WINDOW) for i, first in enumerate(times))
    assert busiest <= most_calls_allowed(WINDOW), f"{busiest} calls in {WINDOW} s"
    span = times[-1] - times[0]
    assert len(times) <= most_calls_allowed(span)


def test_docker_compose_scales_web_and_scheduler():
    """`docker compose up --scale web=3 --scale scheduler=2` can start: no fixed container
    name or single host port on a scaled service, and migrations run once, not in each web."""
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("web", "scheduler"):
        assert "container_name" not in services[name]
    (ports,) = services["web"]["ports"]
    host = ports.rsplit(":", 1)[0]
    assert "-" in host  # a range: each replica takes a free port of it
    assert "migrate" not in services["web"]["command"]
    assert services["migrate"]["command"].endswith("migrate --noinput")
    for name in ("web", "scheduler", "qcluster"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
