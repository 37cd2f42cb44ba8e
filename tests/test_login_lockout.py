"""The admin's login is throttled (django-axes): too many wrong passwords lock that username
from that address until the cool-off has passed, even with the right password."""

import datetime as dt

import pytest
import time_machine

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def lockout(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=15)
    return settings


def log_in(client, password, *, ip="203.0.113.7", username="boss"):
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
    )
    return response.status_code == 302 and "_auth_user_id" in client.session


def test_after_the_limit_even_the_right_password_is_refused_until_the_cool_off(
    client, admin_user, lockout
):
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(3):
            assert not log_in(client, "wrong")
        assert not log_in(client, "pw-for-tests-1")
        response = client.get("/admin/")
        assert response.status_code == 302  # still the login page

        clock.move_to(START + dt.timedelta(minutes=16))
        assert log_in(client, "pw-for-tests-1")
        assert client.get("/admin/").status_code == 200


def test_an_attempt_during_the_lockout_starts_the_cool_off_again(client, admin_user, lockout):
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(3):
            log_in(client, "wrong")
        clock.move_to(START + dt.timedelta(minutes=14))
        assert not log_in(client, "pw-for-tests-1")
        clock.move_to(START + dt.timedelta(minutes=16))
        assert not log_in(client, "pw-for-tests-1")  # a guesser keeps itself locked out
        clock.move_to(START + dt.timedelta(minutes=14 + 16 + 16))
        assert log_in(client, "pw-for-tests-1")


def test_the_lock_holds_that_username_from_that_address_only(
    client, admin_user, lockout, django_user_model
):
    django_user_model.objects.create_superuser("other", "o@example.com", "pw-other-1")
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            log_in(client, "wrong")
        assert not log_in(client, "pw-for-tests-1")
        assert log_in(client, "pw-for-tests-1", ip="198.51.100.9")  # the operator, elsewhere
        client.logout()
        assert log_in(client, "pw-other-1", username="other")  # a colleague, same office


def test_a_right_password_below_the_limit_logs_in_and_clears_the_count(client, admin_user, lockout):
    with time_machine.travel(START, tick=False):
        for _ in range(2):
            log_in(client, "wrong")
        assert log_in(client, "pw-for-tests-1")
        client.logout()
        for _ in range(2):
            log_in(client, "wrong")
        assert log_in(client, "pw-for-tests-1")  # the earlier failures were forgotten


def test_the_test_clients_login_and_api_tokens_still_work(client, admin_user, api_client):
    assert client.login(username="boss", password="pw-for-tests-1")
    assert client.get("/admin/").status_code == 200
    assert api_client.get("/api/v1/campaigns/").status_code == 200
