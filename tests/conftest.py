import datetime as dt

import pytest
import time_machine


@pytest.fixture(autouse=True)
def english_after_each_test():
    """A page asked for in French leaves French active in the thread (Django activates a
    request's language and never deactivates it); the next test starts in English again."""
    yield
    from django.utils import translation

    translation.activate("en")


@pytest.fixture
def now():
    """A fixed Monday noon UTC; tests pass it to the domain functions instead of sleeping."""
    return dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen(now):
    """The clock stopped at `now`, for what reads it (pages, the API, webhooks). List it
    before a client that logs in, so the session is made at that time too."""
    with time_machine.travel(now, tick=False):
        yield now


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-for-tests-1")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def staff_with(client, django_user_model):
    """Log in a staff user holding exactly these permissions ("app.codename")."""
    from tests.staff import staff_client

    return lambda *perms: staff_client(client, django_user_model, *perms)


# --- API (tests/test_api_*.py) ----------------------------------------------------------------


@pytest.fixture
def api_client(admin_user):
    """A DRF client authenticated with the superuser's token."""
    from rest_framework.test import APIClient

    from voicesurvey.accounts.models import issue_token

    _, key = issue_token(admin_user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
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


# --- the dialler ----------------------------------------------------------------------------


@pytest.fixture
def open_now():
    """Monday 2026-11-23 17:00 UTC: noon in New York, inside every default calling window."""
    return dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)


@pytest.fixture
def dialler_settings(settings):
    """Limits roomy enough that only the rule a test is about holds calls back."""
    settings.DIALLER_CALLS_PER_SECOND = 1000.0
    settings.DIALLER_BATCH_SIZE = 50
    settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = 100
    settings.DIALLER_DIAL_THREADS = 4
    return settings


@pytest.fixture
def fake_clock():
    from tests.fakes import FakeClock

    return FakeClock()


@pytest.fixture
def provider():
    from tests.fakes import FakeProvider

    return FakeProvider()


@pytest.fixture
def run_tick(dialler_settings, provider, fake_clock):
    """Run one tick with the fake provider and a pace on a fake clock (nothing sleeps)."""
    from calls.dialler.pace import TokenBucket
    from calls.dialler.tick import tick

    def run(now, **kw):
        kw.setdefault("provider", provider)
        kw.setdefault(
            "pace",
            TokenBucket(
                dialler_settings.DIALLER_CALLS_PER_SECOND,
                clock=fake_clock,
                sleep=fake_clock.sleep,
            ),
        )
        return tick(now, **kw)

    return run


@pytest.fixture
def needs_postgres():
    """Skip on SQLite: row locks, races and the shared pace are proven on PostgreSQL."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("proven on PostgreSQL (row locks, races, the shared pace)")


# --- outbound webhooks ----------------------------------------------------------------------


@pytest.fixture
def receiver(settings):
    """A live HTTP receiver on 127.0.0.1 (tests/webhook_receiver.py); loopback URLs allowed."""
    from tests.webhook_receiver import running_receiver

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with running_receiver() as state:
        yield state
