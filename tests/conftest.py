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


# --- API (tests/test_api_*.py) ----------------------------------------------------------------


@pytest.fixture
def api_client(admin_user):
    """A DRF client authenticated with the superuser's token."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    return client


@pytest.fixture
def viewer_client(django_user_model):
    """A DRF client for an operator who holds every view_* permission and nothing else."""
    from django.contrib.auth.models import Permission
    from rest_framework.test import APIClient

    user = django_user_model.objects.create_user("viewer", password="pw-for-tests-1")
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def anon_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2's million rounds cost about a second per user created; tests need no strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
