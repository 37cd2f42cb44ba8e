import datetime as dt

import pytest


@pytest.fixture
def now():
    """A fixed Monday noon UTC; tests pass it to the domain functions instead of sleeping."""
    return dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-for-tests-1")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client
