"""The global concurrency cap and the calls-per-second pace: per provider account, changed in
the admin or the API, read by the tick each time (no restart)."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calls.dialler import tick as tick_module
from calls.dialler.limits import current_limits
from calls.dialler.pace import TokenBucket
from calls.models import CallAttempt, ProviderAccount
from tests.factories import ContactFactory, RunningCampaignFactory
from tests.fakes import FakeProvider
from tests.test_api_campaigns import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/provider-accounts/"
TWILIO_ACCOUNT = "AC" + "1" * 32


@pytest.fixture
def simulated(settings):
    """The dialler calls through the simulated provider (a fake one that says so)."""
    settings.TELEPHONY_PROVIDER = "simulated"
    provider = FakeProvider()
    provider.name = "simulated"
    return provider


@pytest.fixture
def waiting(dialler_settings):
    campaign = RunningCampaignFactory(max_concurrent_calls=50)
    ContactFactory.create_batch(20, campaign=campaign)
    return campaign


def live_calls():
    return CallAttempt.objects.filter(status__in=CallAttempt.LIVE_STATUSES).count()


# --- which limits are in force ----------------------------------------------------------------


def test_without_a_row_the_settings_are_the_limits(settings):
    settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS, settings.DIALLER_CALLS_PER_SECOND = 42, 3.5
    limits = current_limits("simulated")
    assert (limits.max_concurrent_calls, limits.calls_per_second, limits.row) == (42, 3.5, None)


def test_a_limit_left_empty_takes_its_setting(settings):
    settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS, settings.DIALLER_CALLS_PER_SECOND = 42, 3.5
    ProviderAccount.objects.create(provider="simulated", calls_per_second=7)
    limits = current_limits("simulated")
    assert (limits.max_concurrent_calls, limits.calls_per_second) == (42, 7)


def test_the_limits_follow_the_twilio_account_in_use(settings):
    settings.TWILIO_ACCOUNT_SID = TWILIO_ACCOUNT
    ProviderAccount.objects.create(provider="twilio", account="", max_concurrent_calls=30)
    ProviderAccount.objects.create(provider="twilio", account="AC" + "2" * 32, calls_per_second=5)
    assert current_limits("twilio").max_concurrent_calls == 30  # no row of its own: the default
    mine = ProviderAccount.objects.create(
        provider="twilio", account=TWILIO_ACCOUNT, max_concurrent_calls=10, calls_per_second=2
    )
    limits = current_limits("twilio")
    assert limits.row == mine and (limits.max_concurrent_calls, limits.calls_per_second) == (10, 2)
    assert current_limits("simulated").row is None  # another provider's rows do not apply


# --- the tick reads them each time ------------------------------------------------------------


def test_a_new_cap_holds_from_the_next_tick_without_a_restart(
    api_client, waiting, simulated, run_tick, open_now
):
    created = api_client.post(
        URL, {"provider": "simulated", "max_concurrent_calls": 2}, format="json"
    )
    assert created.status_code == 201, created.content
    run_tick(open_now, provider=simulated)
    assert live_calls() == 2
    run_tick(open_now, provider=simulated)
    assert live_calls() == 2  # held at the cap
    changed = api_client.patch(
        f"{URL}{created.json()['id']}/", {"max_concurrent_calls": 5}, format="json"
    )
    assert changed.status_code == 200, changed.content
    run_tick(open_now, provider=simulated)
    assert live_calls() == 5


def test_a_new_pace_holds_from_the_next_tick_without_a_restart(
    api_client, waiting, simulated, run_tick, open_now, fake_clock, monkeypatch
):
    paces = []

    def default_pace(rate=None, *, key="default"):
        paces.append(rate)
        return TokenBucket(rate, clock=fake_clock, sleep=fake_clock.sleep)

    monkeypatch.setattr(tick_module, "default_pace", default_pace)
    account = ProviderAccount.objects.create(provider="simulated", calls_per_second=0.4)
    report = run_tick(open_now, provider=simulated, pace=None, interval=5)
    assert report.claimed == 2  # what 0.4 calls a second dials in the 5 s to the next tick
    api_client.patch(f"{URL}{account.pk}/", {"calls_per_second": 1.2}, format="json")
    report = run_tick(open_now, provider=simulated, pace=None, interval=5)
    assert report.claimed == 6
    assert paces == [0.4, 1.2]


def test_the_tick_keeps_the_pace_of_the_account_it_calls_through(
    settings, waiting, simulated, run_tick, open_now, fake_clock, monkeypatch
):
    # The calls-per-second limit is the account's: another account's calls do not use it up.
    keys = []

    def default_pace(rate=None, *, key="default"):
        keys.append(key)
        return TokenBucket(rate, clock=fake_clock, sleep=fake_clock.sleep)

    monkeypatch.setattr(tick_module, "default_pace", default_pace)
    run_tick(open_now, provider=simulated, pace=None)
    settings.TELEPHONY_PROVIDER, settings.TWILIO_ACCOUNT_SID = "twilio", TWILIO_ACCOUNT
    twilio = FakeProvider()
    twilio.name = "twilio"
    run_tick(open_now, provider=twilio, pace=None)
    assert keys == ["simulated", TWILIO_ACCOUNT]
    assert current_limits("twilio").pace_key == TWILIO_ACCOUNT


# --- the API ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_concurrent_calls": 0}, "max_concurrent_calls"),
        ({"max_concurrent_calls": -3}, "max_concurrent_calls"),
        ({"max_concurrent_calls": 100_001}, "max_concurrent_calls"),
        ({"max_concurrent_calls": "many"}, "max_concurrent_calls"),
        ({"calls_per_second": 0}, "calls_per_second"),
        ({"calls_per_second": -1}, "calls_per_second"),
        ({"calls_per_second": 1000.5}, "calls_per_second"),
        ({"calls_per_second": "NaN"}, "calls_per_second"),
        ({"calls_per_second": "Infinity"}, "calls_per_second"),
        ({"calls_per_second": "1e400"}, "calls_per_second"),
        ({"provider": "carrier-pigeon"}, "provider"),
        ({"provider": ""}, "provider"),
    ],
)
def test_bad_limits_are_400_naming_the_field(api_client, body, field):
    request = {"provider": "simulated", "max_concurrent_calls": 10, **body}
    error = assert_error(api_client.post(URL, request, format="json"), 400, "invalid")
    assert field in error["details"], error
    assert not ProviderAccount.objects.exists()


def test_an_account_listed_twice_is_a_400(api_client):
    ProviderAccount.objects.create(provider="twilio", account=TWILIO_ACCOUNT)
    again = {"provider": "twilio", "account": TWILIO_ACCOUNT, "calls_per_second": 2}
    assert_error(api_client.post(URL, again, format="json"), 400, "invalid")
    assert ProviderAccount.objects.count() == 1


def test_the_api_shows_which_limits_are_in_force(api_client, admin_user, settings):
    settings.TELEPHONY_PROVIDER = "simulated"
    settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = 100
    current = api_client.get(f"{URL}current/").json()
    assert current["provider_account"] is None and current["max_concurrent_calls"] == 100
    row = api_client.post(URL, {"provider": "simulated", "calls_per_second": 4}, format="json")
    body = row.json()
    assert body["in_force"] is True and body["updated_by"] == admin_user.username
    current = api_client.get(f"{URL}current/").json()
    assert current == {
        "provider": "simulated",
        "account": "",
        "max_concurrent_calls": 100,
        "calls_per_second": 4.0,
        "provider_account": body["id"],
    }
    other = api_client.post(URL, {"provider": "twilio", "max_concurrent_calls": 3}, format="json")
    assert other.json()["in_force"] is False
    assert api_client.delete(f"{URL}{body['id']}/").status_code == 204
    settings.DIALLER_CALLS_PER_SECOND = 1.5
    assert api_client.get(f"{URL}current/").json()["calls_per_second"] == 1.5  # the setting


def test_a_viewer_reads_the_limits_but_cannot_change_them(viewer_client, anon_client):
    account = ProviderAccount.objects.create(provider="simulated", max_concurrent_calls=5)
    assert viewer_client.get(URL).status_code == 200
    assert viewer_client.get(f"{URL}current/").status_code == 200
    assert_error(viewer_client.patch(f"{URL}{account.pk}/", {"max_concurrent_calls": 9}), 403)
    assert_error(viewer_client.post(URL, {"provider": "twilio"}), 403)
    assert_error(anon_client.get(URL), 401)
    account.refresh_from_db()
    assert account.max_concurrent_calls == 5


# --- the admin --------------------------------------------------------------------------------


ADD = "/admin/calls/provideraccount/add/"


def test_the_admin_sets_limits_and_refuses_bad_ones(admin_client, admin_user, settings):
    settings.TELEPHONY_PROVIDER = "simulated"
    bad = admin_client.post(
        ADD, {"provider": "simulated", "account": "", "max_concurrent_calls": "0"}
    )
    assert bad.status_code == 200 and "greater than or equal to 1" in bad.content.decode()
    too_fast = admin_client.post(ADD, {"provider": "simulated", "calls_per_second": "5000"})
    assert "less than or equal to 1000" in too_fast.content.decode()
    assert not ProviderAccount.objects.exists()
    done = admin_client.post(
        ADD, {"provider": "simulated", "account": "", "max_concurrent_calls": "7"}
    )
    assert done.status_code == 302, done.content.decode()[-2000:]
    account = ProviderAccount.objects.get()
    assert account.max_concurrent_calls == 7 and account.updated_by == admin_user
    assert current_limits("simulated").max_concurrent_calls == 7
    page = admin_client.get(reverse("admin:calls_provideraccount_change", args=[account.pk]))
    assert "at most 7 live calls" in page.content.decode()
    assert admin_client.get(reverse("admin:calls_provideraccount_changelist")).status_code == 200


def test_the_admin_needs_the_same_permissions_as_the_api(client, django_user_model):
    user = django_user_model.objects.create_user("desk", password="pw-for-tests-1", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_provideraccount"))
    client.force_login(user)
    assert client.get(reverse("admin:calls_provideraccount_changelist")).status_code == 200
    assert client.get(ADD).status_code == 403


def test_the_admin_list_reads_the_limits_in_force_once(admin_client, admin_user, settings):
    """The "In force now" and "Updated by" columns cost no query per row."""
    settings.TELEPHONY_PROVIDER = "simulated"
    url = reverse("admin:calls_provideraccount_changelist")
    for n in range(3):
        ProviderAccount.objects.create(provider="twilio", account=f"AC{n}", updated_by=admin_user)
    admin_client.get(url)  # the first page of a session also reads the session's caches
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    for n in range(3, 25):
        ProviderAccount.objects.create(provider="twilio", account=f"AC{n}", updated_by=admin_user)
    in_force = ProviderAccount.objects.create(provider="simulated", updated_by=admin_user)
    with CaptureQueriesContext(connection) as many:
        page = admin_client.get(url)
    assert len(many) == len(few)
    rows = re.findall(r"<tr>.*?</tr>", page.content.decode(), re.S)
    shown = [row for row in rows if 'alt="True"' in row]
    assert len(shown) == 1 and f"/{in_force.pk}/change/" in shown[0]
