"""After PostgreSQL drops the app's connections (a restart, a failover, pg_terminate_backend),
the next webhook and the next tick reconnect by themselves: nothing to restart by hand."""

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connection

from calls.models import CallAttempt
from tests.postgres_restart import terminate_backends
from tests.webhook_helpers import live_attempt, send_status

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def drop_our_connection() -> None:
    """What a server restart does to an open connection: the server ends it."""
    assert terminate_backends([connection.connection.info.backend_pid]) == 1


def test_a_webhook_after_the_server_dropped_the_connection_is_served(
    needs_postgres, client, now, settings
):
    settings.CONN_MAX_AGE = 60  # the production setting: a connection kept between requests
    connection.settings_dict["CONN_MAX_AGE"] = 60
    attempt = live_attempt(now=now)
    assert send_status(client, attempt, "ringing", sequence=1).status_code == 204
    connection.ensure_connection()
    drop_our_connection()
    # A request starts with close_old_connections (the request_started signal, which the test
    # client leaves out), and the health check (CONN_HEALTH_CHECKS) then finds the connection
    # dead and opens another: the provider gets its 204, the callback is not lost.
    close_old_connections()
    assert send_status(client, attempt, "in-progress", sequence=2).status_code == 204
    attempt.refresh_from_db()
    assert attempt.status == CallAttempt.Status.IN_PROGRESS


def test_the_scheduler_loop_survives_a_dropped_connection(needs_postgres, capsys, monkeypatch):
    # Three ticks of the real loop; the database drops the connection before the second. The
    # loop's close_old_connections between ticks lets the health check (CONN_HEALTH_CHECKS)
    # find the dead connection and open another: no tick is lost.
    from calls.management.commands import run_scheduler

    ticks, backends = [], []
    real_tick = run_scheduler.tick

    def tick(now, **kwargs):
        ticks.append(now)
        if len(ticks) == 2:
            connection.ensure_connection()
            drop_our_connection()
        report = real_tick(now, **kwargs)
        backends.append(connection.connection.info.backend_pid)
        return report

    monkeypatch.setattr(run_scheduler, "tick", tick)

    class Stop(Exception):
        pass

    real_wait = run_scheduler.threading.Event.wait

    def wait(self, timeout=None):  # the loop's pause between ticks: stop after the third tick
        if run_scheduler.threading.current_thread() is not run_scheduler.threading.main_thread():
            return real_wait(self, timeout)  # another thread's (the webhook sender's) pause
        if len(ticks) >= 3:
            raise Stop
        return False

    monkeypatch.setattr(run_scheduler.threading.Event, "wait", wait)
    with pytest.raises(Stop):
        call_command("run_scheduler", "--interval", "0")
    reports = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tick at")]
    assert len(reports) == 3
    assert backends[0] != backends[1] == backends[2]  # a new connection from the second on
