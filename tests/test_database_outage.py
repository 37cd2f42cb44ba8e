"""While the database cannot be reached, a webhook or an API request is a 503 in the error shape
(Retry-After, one log line), not a 500 page with a traceback; the request after it is served.
The real thing, a PostgreSQL restart under gunicorn: tests/test_real_postgres_restart.py."""

import logging
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import OperationalError, ProgrammingError, connections

from tests.webhook_helpers import live_attempt, send_status

pytestmark = pytest.mark.django_db

REFUSED = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: refused'


@contextmanager
def database_raising(error: Exception):
    """Every attempt to use the connection raises `error`."""
    with mock.patch.object(connections["default"], "ensure_connection", side_effect=error):
        yield


def database_down():
    """What the driver raises while PostgreSQL restarts: no connection can be made."""
    return database_raising(OperationalError(REFUSED))


def assert_database_unavailable(response) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {
            "code": "database_unavailable",
            "message": "The database cannot be reached just now; try again shortly.",
            "details": {},
        }
    }


def test_a_webhook_while_the_database_is_down_is_a_503_and_the_next_one_is_served(
    client, now, caplog
):
    attempt = live_attempt(now=now, status="ringing")
    with database_down(), caplog.at_level(logging.WARNING):
        assert_database_unavailable(send_status(client, attempt, "in-progress", sequence=2))
    (record,) = [r for r in caplog.records if r.name == "voicesurvey.database_outage"]
    assert record.exc_info is None  # one line, not a traceback per request
    assert record.getMessage() == (
        f"database unavailable: POST /webhooks/status/{attempt.call_id}/ answered 503 "
        f"(OperationalError: {REFUSED})"
    )

    # The database is back: Twilio does not retry, but the next callback is served.
    assert (
        send_status(client, attempt, "completed", sequence=3, CallDuration="30").status_code == 204
    )
    attempt.refresh_from_db()
    assert attempt.status == "completed"


def test_an_api_request_while_the_database_is_down_is_a_503(api_client):
    with database_down():
        assert_database_unavailable(api_client.get("/api/v1/campaigns/"))
    assert api_client.get("/api/v1/campaigns/").status_code == 200


def test_a_database_error_that_is_a_bug_is_still_a_500(api_client):
    api_client.raise_request_exception = False
    with database_raising(ProgrammingError('relation "campaigns_campaign" does not exist')):
        response = api_client.get("/api/v1/campaigns/")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"


def test_the_back_office_keeps_its_error_page(admin_client):
    admin_client.raise_request_exception = False
    with database_down():
        response = admin_client.get("/admin/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
