"""python manage.py run_scheduler [--interval SECONDS] [--once]: the dialler's loop (with the
contact tallies' reconcile every TALLY_RECONCILE_MINUTES), and beside it on a thread of its own
the sender of outbound webhooks (hooks.sending: `make run` starts no django-q2 cluster)."""

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from calls.dialler.tick import tick
from contacts.tallies import reconcile_every, reconcile_when_due
from hooks.sending import send_due_deliveries, start_sender

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the dialler tick in a loop (or once); SIGTERM/SIGINT stop after the tick in flight."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.DIALLER_TICK_INTERVAL,
            help="Seconds between tick starts (default: DIALLER_TICK_INTERVAL).",
        )
        parser.add_argument("--once", action="store_true", help="Run one tick and exit.")

    def handle(self, *args, interval: float, once: bool, **options):
        # The command prints each report itself; the tick's own log line (kept for the
        # django-q2 path and log shipping) would only say it twice on the console.
        if options["verbosity"] < 2:
            logging.getLogger("calls.dialler.tick").setLevel(logging.WARNING)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        sender = None if once else start_sender(stop)
        try:
            self.loop(stop, interval=interval, once=once)
        finally:  # whatever ended the loop, the sender finishes its sends in flight and stops
            if sender is not None:
                stop.set()
                sender.join()  # within WEBHOOK_TIMEOUT_SECONDS
        if sender is None:
            send_due_deliveries()  # --once: the deliveries due, after the tick
        self.stdout.write("run_scheduler stopped.")

    def loop(self, stop: threading.Event, *, interval: float, once: bool) -> None:
        while True:
            started = time.monotonic()
            try:
                report = tick(timezone.now(), interval=interval)
            except Exception:  # a database blip must not end the loop; the next tick retries
                logger.exception("dialler tick failed")
            else:
                self.stdout.write(str(report))
            try:
                reconcile_when_due(timezone.now(), every=reconcile_every())
            except Exception:
                logger.exception("contact tallies reconcile failed")
            if once or stop.is_set():
                return
            close_old_connections()
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
            if stop.is_set():
                return
