"""The dialler as a django-q2 schedule: `python manage.py qcluster` runs the same tick.

django-q2's scheduler wakes about every 30 s and its shortest interval is one minute, so the
scheduled task keeps ticking at DIALLER_TICK_INTERVAL for just under its minute and stops before
the next one is due. Q_CLUSTER's timeout (90 s) is above that minute and below retry (120 s),
and catch_up is off, so a slow minute is neither killed mid-tick nor handed out twice. Two
clusters, or a cluster and run_scheduler, may overlap: the claim's locks keep them from
dialling a contact twice. Each worker process also reconciles the contact tallies every
TALLY_RECONCILE_MINUTES (contacts.tallies.reconcile_when_due)."""

import time

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from calls.dialler.tick import tick
from contacts.tallies import reconcile_every, reconcile_when_due

SCHEDULE_NAME = "dialler tick"
SCHEDULE_FUNC = "calls.dialler.qcluster.run_dialler_for_a_minute"
MINUTE_BUDGET = 55.0  # seconds of ticking per scheduled run, leaving the minute's end free


def run_dialler_for_a_minute(seconds: float = MINUTE_BUDGET) -> int:
    """Tick every DIALLER_TICK_INTERVAL seconds until `seconds` are nearly used; returns the
    number of calls dialled. The first tick always runs."""
    interval = settings.DIALLER_TICK_INTERVAL
    deadline = time.monotonic() + seconds
    dialled = 0
    while True:
        started = time.monotonic()
        dialled += tick(timezone.now(), interval=interval).dialled
        reconcile_when_due(timezone.now(), every=reconcile_every())
        close_old_connections()
        next_start = started + interval
        if next_start + interval > deadline:  # the next tick would not finish in time
            return dialled
        time.sleep(max(0.0, next_start - time.monotonic()))
