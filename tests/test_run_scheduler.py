"""The doors the tick runs through: `run_scheduler` and the django-q2 schedule."""

import importlib
from io import StringIO

import pytest
import time_machine
from django.apps import apps
from django.core.management import call_command
from django_q.models import Schedule

from calls.dialler.qcluster import SCHEDULE_FUNC, SCHEDULE_NAME, run_dialler_for_a_minute
from calls.models import CallAttempt, DiallerHeartbeat
from calls.telephony import base
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def installed_provider(monkeypatch, provider, dialler_settings):
    """The fake provider stands in for the configured one (what get_provider returns)."""
    monkeypatch.setattr(base, "_instances", {dialler_settings.TELEPHONY_PROVIDER: provider})
    return provider


def test_run_scheduler_once_ticks_and_prints_the_report(open_now, installed_provider):
    ContactFactory.create_batch(2, next_attempt_at=open_now)
    out = StringIO()
    with time_machine.travel(open_now, tick=False):
        call_command("run_scheduler", "--once", stdout=out)
    assert "claimed=2 dialled=2" in out.getvalue()
    assert len(installed_provider.calls) == 2
    assert DiallerHeartbeat.objects.get(pk=1).last_tick_at == open_now


def test_run_scheduler_keeps_going_without_an_installed_provider(
    open_now, monkeypatch, dialler_settings
):
    monkeypatch.setitem(base.PROVIDERS, "simulated", "calls.telephony.not_installed.Provider")
    monkeypatch.setattr(base, "_instances", {})
    dialler_settings.TELEPHONY_PROVIDER = "simulated"
    ContactFactory(next_attempt_at=open_now)
    out = StringIO()
    with time_machine.travel(open_now, tick=False):
        call_command("run_scheduler", "--once", stdout=out)
    assert "no_provider:1" in out.getvalue()
    assert CallAttempt.objects.count() == 0


def test_dialler_schedule_runs_the_tick_task_every_minute_on_any_cluster():
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert schedule.func == SCHEDULE_FUNC == "calls.dialler.qcluster.run_dialler_for_a_minute"
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)
    assert schedule.cluster is None


def test_creating_the_schedule_again_changes_nothing():
    migration = importlib.import_module("calls.migrations.0004_dialler_schedule")
    migration.create_dialler_schedule(apps, None)
    migration.create_dialler_schedule(apps, None)
    assert Schedule.objects.filter(name=SCHEDULE_NAME).count() == 1


def test_scheduled_task_ticks_and_stops_before_its_minute_is_up(open_now, installed_provider):
    ContactFactory.create_batch(3, next_attempt_at=open_now)
    with time_machine.travel(open_now, tick=False):
        assert run_dialler_for_a_minute(seconds=0) == 3  # one tick, then its time is up


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_scheduler_stops_cleanly_on_sigterm():
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the child process needs a database server it can share")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    child = subprocess.Popen(
        [sys.executable, "manage.py", "run_scheduler", "--interval", "0.2"],
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "ERROR"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().startswith("tick at ")  # the loop is running
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0
    assert out.rstrip().endswith("run_scheduler stopped.")
