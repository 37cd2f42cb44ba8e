"""The demo `make run` loads: at any instant it is a running campaign the dialler calls at once."""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from calls.demo import (
    DEMO_CAMPAIGN,
    OPEN_FOR,
    daytime_regions,
    ensure_demo_superuser,
    load_demo_campaign,
)
from campaigns.models import ALL_WEEKDAYS, Campaign
from campaigns.windows import zones_open
from contacts.models import Contact

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# Two years and more, in UTC; plus the evening hours (18:00-24:00 UTC) when both US zones are
# in daytime and the demo used to give them the same numbers.
ANY_INSTANT = st.datetimes(
    min_value=dt.datetime(2026, 1, 1),
    max_value=dt.datetime(2028, 12, 31, 23, 59),
    timezones=st.just(UTC),
) | st.builds(
    lambda day, minute: dt.datetime.combine(day, dt.time(18), UTC) + dt.timedelta(minutes=minute),
    st.dates(dt.date(2026, 1, 1), dt.date(2028, 12, 31)),
    st.integers(0, 6 * 60 - 1),
)

# The instants a clock bug likes: the evening in UTC, night in UTC, the US and EU daylight-saving
# changes (around the hour the clocks move), 29 February, New Year's Eve 23:30 (UTC and New
# York), the southern hemisphere's changes.
AWKWARD_INSTANTS = [
    "2026-12-02T03:00:00Z",
    "2026-12-02T18:00:00Z",
    "2026-12-02T20:30:00Z",
    "2026-12-02T23:59:00Z",
    "2026-11-01T05:30:00Z",
    "2026-11-01T06:00:00Z",
    "2026-11-01T09:00:00Z",
    "2027-03-14T06:59:00Z",
    "2027-03-14T07:00:00Z",
    "2027-03-14T10:00:00Z",
    "2027-03-28T00:59:00Z",
    "2027-03-28T01:00:00Z",
    "2026-10-25T01:00:00Z",
    "2027-04-03T16:00:00Z",
    "2026-09-26T14:00:00Z",
    "2028-02-29T12:00:00Z",
    "2028-02-29T23:30:00Z",
    "2026-12-31T23:30:00Z",
    "2026-12-31T23:30:00-05:00",
]


def awkward_examples(test):
    for instant in AWKWARD_INSTANTS:
        test = example(instant=at(instant))(test)
    return test


@pytest.mark.django_db
def test_demo_leaves_a_running_campaign_with_questions_and_callable_contacts(now):
    campaign, created = load_demo_campaign(now=now)
    assert created and campaign.status == "running"
    assert campaign.questions.count() == 3
    contacts = list(campaign.contacts.all())
    assert len(contacts) == 24
    assert all(c.is_callable(now) for c in contacts)
    assert len({c.phone for c in contacts}) == 24
    daytime_zones = {zone for _, zone in daytime_regions(campaign, now)}
    assert {c.timezone_key for c in contacts} <= daytime_zones


@settings(max_examples=200, deadline=None)
@awkward_examples
@given(instant=ANY_INSTANT)
def test_demo_has_zones_where_the_window_stays_open_for_an_hour_at_any_instant(instant):
    campaign = Campaign(weekdays=ALL_WEEKDAYS)
    regions = daytime_regions(campaign, instant)
    assert regions
    for _, zone in regions:
        assert zones_open([zone], campaign=campaign, now=instant)
        assert zones_open(
            [zone], campaign=campaign, now=instant + OPEN_FOR - dt.timedelta(seconds=1)
        )


@pytest.mark.django_db
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@awkward_examples
@given(instant=ANY_INSTANT)
def test_demo_campaign_runs_and_the_tick_calls_at_once_at_any_instant(instant, run_tick):
    with transaction.atomic():
        campaign, created = load_demo_campaign(now=instant)
        assert created and campaign.status == "running"
        contacts = list(campaign.contacts.all())
        assert len(contacts) == 24
        assert len({c.phone for c in contacts}) == 24
        assert all(c.is_callable(instant) for c in contacts)
        assert all(zones_open(c.zones, campaign=campaign, now=instant) for c in contacts)
        report = run_tick(instant)
        assert (report.dialled, report.failed) == (campaign.max_concurrent_calls, 0)
        transaction.set_rollback(True)  # the next example loads the demo afresh


@pytest.mark.django_db
def test_demo_loader_is_idempotent(now):
    load_demo_campaign(now=now)
    _, created = load_demo_campaign(now=now)
    assert not created
    assert Contact.objects.filter(campaign__name=DEMO_CAMPAIGN).count() == 24


@pytest.mark.django_db
def test_demo_superuser_is_created_once_with_a_printed_password(tmp_path, django_user_model):
    first = ensure_demo_superuser(tmp_path / "pw")
    assert first.created and len(first.password) >= 12
    assert django_user_model.objects.get(username="admin").check_password(first.password)
    second = ensure_demo_superuser(tmp_path / "pw")
    assert not second.created and second.password == first.password
    assert django_user_model.objects.filter(is_superuser=True).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("instant", ["2026-11-23T12:00:00Z", "2026-12-02T20:30:00Z"])
def test_load_demo_command_prints_the_login(instant, settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    with time_machine.travel(at(instant), tick=False):
        call_command("load_demo")
    out = capsys.readouterr().out
    password = (tmp_path / "admin-password").read_text().strip()
    assert "Login: admin" in out and password in out
    assert "24 contacts, running" in out
