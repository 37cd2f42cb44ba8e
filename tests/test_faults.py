"""The fast parts of surviving faults: the app and the scheduler reconnect after PostgreSQL
drops their connections (a restart, emulated here with pg_terminate_backend on the test
database; the real restart under gunicorn and run_scheduler is
tests/test_real_postgres_restart.py), final callbacks the carrier dropped are recovered by the
tick, and a `failed` callback that overtakes the dial's write-back loses nothing."""

import datetime as dt
import io
import random
from urllib.parse import urlencode, urlsplit
from wsgiref.util import setup_testing_defaults

import pytest
import time_machine
from django.core.handlers.wsgi import WSGIHandler
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.test import Client
from twilio.request_validator import RequestValidator

from calls.dialler import tick as tick_module
from calls.models import CallAttempt
from calls.telephony.simulated import SimulatedProvider
from calls.webhooks.signatures import webhook_auth_token
from contacts.models import Contact
from tests.factories import ContactFactory, QuestionFactory, RunningCampaignFactory
from tests.fakes import FakeProvider
from tests.postgres_restart import terminate_backends
from tests.webhook_helpers import live_attempt, send_status, status_url


def restart_postgresql() -> int:
    """What a PostgreSQL restart does to its clients: every other backend on this database is
    terminated. Returns how many were."""
    return terminate_backends()


def wsgi_post(url: str, params: dict) -> int:
    """POST a signed webhook the way gunicorn hands it to Django (its WSGI handler, with the
    request signals that health-check the connection), not through the test client."""
    body = urlencode(params).encode()
    signature = RequestValidator(webhook_auth_token()).compute_signature(url, params)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": urlsplit(url).path,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "testserver",
        "HTTP_X_TWILIO_SIGNATURE": signature,
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    statuses = []
    response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
    b"".join(response)
    response.close()  # request_finished: the connection is kept for the next request
    return int(statuses[0].split()[0])


@pytest.mark.django_db(transaction=True)
def test_webhooks_reconnect_after_postgresql_restarts(needs_postgres, now):
    attempt = live_attempt(now=now, status="ringing")
    params = {"CallSid": attempt.provider_call_sid, "To": attempt.contact.phone}
    assert wsgi_post(status_url(attempt), {**params, "CallStatus": "in-progress"}) == 204
    assert connection.connection is not None  # kept open for the next request (CONN_MAX_AGE)

    assert restart_postgresql() >= 1

    done = {**params, "CallStatus": "completed", "CallDuration": "30"}
    assert wsgi_post(status_url(attempt), done) == 204
    attempt.refresh_from_db()
    attempt.contact.refresh_from_db()
    assert (attempt.status, attempt.contact.state) == ("completed", "not_reached")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("when", ["between ticks", "during a tick"])
def test_the_tick_reconnects_after_postgresql_restarts(
    needs_postgres, open_now, run_tick, provider, when
):
    ContactFactory(next_attempt_at=open_now)
    assert run_tick(open_now).dialled == 1
    ContactFactory(next_attempt_at=open_now)
    if when == "between ticks":
        close_old_connections()  # run_scheduler's loop, after each tick

    restart_postgresql()
    if when == "during a tick":  # the tick fails; run_scheduler logs it and goes on
        with pytest.raises((OperationalError, InterfaceError)):
            run_tick(open_now)
        close_old_connections()

    assert run_tick(open_now).dialled == 1
    assert len(provider.calls) == 2


class RestartsWhileDialling(FakeProvider):
    """A carrier that takes the call while PostgreSQL restarts: the tick's connection is ended
    before the call's SID is written back."""

    def __init__(self, tick_backend: int):
        super().__init__()
        self.tick_backend = tick_backend

    def place_call(self, attempt, urls):
        self.sid = super().place_call(attempt, urls)
        assert terminate_backends([self.tick_backend]) == 1
        return self.sid


@pytest.mark.django_db(transaction=True)
def test_a_dial_write_back_cut_by_a_restart_is_made_on_a_new_connection(
    needs_postgres, open_now, run_tick, monkeypatch
):
    monkeypatch.setattr(tick_module, "DATABASE_RETRIES", (0.0,))  # the server is back at once
    contact = ContactFactory(next_attempt_at=open_now)
    connection.ensure_connection()
    provider = RestartsWhileDialling(connection.connection.info.backend_pid)

    assert run_tick(open_now, provider=provider).dialled == 1
    attempt = CallAttempt.objects.get(contact=contact)
    assert (attempt.provider_call_sid, attempt.dialled_at) == (provider.sid, open_now)
    assert attempt.status == "initiated"


class DropsFinalCallbacks(SimulatedProvider):
    """A carrier that plays each call but loses its final status callback on the way."""

    def _post(self, p, url, params):
        if url == p.urls.status_callback and params["CallStatus"] in (
            "completed",
            "busy",
            "no-answer",
            "failed",
            "canceled",
        ):
            return ""
        return super()._post(p, url, params)


@pytest.mark.django_db
def test_final_callbacks_the_carrier_dropped_are_recovered_by_the_tick(
    open_now, run_tick, settings
):
    campaign = RunningCampaignFactory(max_concurrent_calls=20)
    QuestionFactory(campaign=campaign, position=1, kind="yes_no")
    ContactFactory.create_batch(12, campaign=campaign, next_attempt_at=open_now)
    carrier = DropsFinalCallbacks(
        rng=random.Random(7),
        delay=(0, 0),
        outcomes={"completed": 2, "busy": 1, "no_answer": 1, "hangup": 1},
        background=False,
    )
    with time_machine.travel(open_now, tick=False) as clock:
        assert run_tick(open_now, provider=carrier).dialled == 12
        carrier.run_pending()
        assert Contact.objects.filter(state="in_progress").count() == 12  # no end heard

        later = open_now + dt.timedelta(seconds=settings.DIALLER_QUIET_CALL_SECONDS + 1)
        clock.move_to(later)
        report = run_tick(later, provider=carrier)

    assert (report.checked, report.reconciled, report.recovered) == (12, 12, 0)
    assert not CallAttempt.objects.filter(status__in=CallAttempt.LIVE_STATUSES).exists()
    assert not Contact.objects.filter(state="in_progress").exists()
    finished = CallAttempt.objects.filter(survey_finished=True)
    assert finished.exists()
    assert set(Contact.objects.filter(attempts__in=finished).values_list("state", flat=True)) == {
        "completed"
    }


class CallsBackBeforeReturning(FakeProvider):
    """A carrier whose `failed` callback reaches us before its answer to the dial does."""

    def place_call(self, attempt, urls):
        sid = super().place_call(attempt, urls)
        attempt.provider_call_sid = sid
        response = send_status(Client(), attempt, "failed", CallSid=sid, ErrorCode="32009")
        assert response.status_code == 204
        return sid


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_failed_callback_ahead_of_the_dial_write_back_keeps_sid_and_dial_time(
    needs_postgres, open_now, run_tick
):
    contact = ContactFactory(next_attempt_at=open_now)
    report = run_tick(open_now, provider=CallsBackBeforeReturning())
    assert report.dialled == 1
    attempt = CallAttempt.objects.get(contact=contact)
    assert (attempt.status, attempt.error_code) == ("failed", "32009")  # not reopened
    assert attempt.provider_call_sid and attempt.dialled_at == open_now
    contact.refresh_from_db()
    assert (contact.state, contact.attempts_count) == ("not_reached", 1)
