"""A tick killed between claim and dial strands nobody: the next tick's recovery releases them."""

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import F

from calls.models import CallAttempt
from calls.outcomes import NOT_A_CALL_RETRY
from contacts.models import Contact
from tests.factories import ContactFactory, RunningCampaignFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The child runs a real tick against the test database with a provider that hangs on the
# line, tells the parent it is dialling, and is then killed with SIGKILL.
CHILD = """
import datetime as dt, os, threading
import django
django.setup()
from calls.dialler.tick import tick
from calls.dialler.pace import TokenBucket

printing = threading.Lock()  # dial threads print one whole line each

class HangingProvider:
    name = "hanging"
    def place_call(self, attempt, urls):
        with printing:
            print("dialling", flush=True)
        threading.Event().wait()
    def cancel(self, sid):
        pass

tick(dt.datetime.fromisoformat(os.environ["TICK_AT"]), provider=HangingProvider(),
     pace=TokenBucket(1e6))
"""


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_tick_killed_mid_batch_leaves_nobody_in_progress(open_now, run_tick, provider, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the child process needs a database server it can share")
    campaign = RunningCampaignFactory(max_concurrent_calls=50)
    contacts = ContactFactory.create_batch(12, campaign=campaign, next_attempt_at=open_now)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "voicesurvey.settings",
        "DATABASE_URL": database_url(),
        "TICK_AT": open_now.isoformat(),
        "DIALLER_CALLS_PER_SECOND": "1000",
        "DIALLER_DIAL_THREADS": "3",
        "LOG_LEVEL": "WARNING",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "dialling"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    # Killed after the claim committed: everyone in progress on a queued attempt.
    assert Contact.objects.filter(state="in_progress").count() == 12
    assert CallAttempt.objects.filter(status="queued").count() == 12

    # Recovery, once the lease has run out (timestamps moved back; nobody sleeps).
    lease = dt.timedelta(seconds=settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    CallAttempt.objects.update(created_at=F("created_at") - lease)
    report = run_tick(open_now)
    assert report.recovered == 12
    assert report.claimed == 0  # released for a retry a minute later, not dialled at once
    assert Contact.objects.filter(state="pending", attempts_count=0).count() == 12

    # Nothing is lost: the next tick calls them all, each on its second attempt row.
    assert run_tick(open_now + NOT_A_CALL_RETRY).dialled == 12
    assert sorted(provider.dialled_phones) == sorted(c.phone for c in contacts)
    assert set(
        CallAttempt.objects.filter(status="initiated").values_list("attempt_number", flat=True)
    ) == {2}
