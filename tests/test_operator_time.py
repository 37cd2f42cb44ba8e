"""The admin shows times in the operator's own zone (a per-user setting, else TIME_ZONE),
labelled with it; the callee's local time beside it."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from voicesurvey.accounts.models import OperatorProfile
from voicesurvey.accounts.timezones import operator_zone, set_operator_zone
from voicesurvey.times import callee_time, operator_time

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 11, 23, 17, 0, 5, tzinfo=dt.UTC)


def test_a_new_operator_reads_times_in_the_projects_zone(admin_client, admin_user, settings):
    settings.TIME_ZONE = "America/New_York"
    assert operator_zone(admin_user) == "America/New_York"
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="operator-zone"' in page and "Times in America/New_York" in page


def test_the_time_zone_page_saves_the_operators_zone(admin_client, admin_user):
    page = admin_client.get(reverse("operator_time_zone"))
    assert page.status_code == 200 and 'value="Europe/Paris"' in page.content.decode()
    response = admin_client.post(reverse("operator_time_zone"), {"time_zone": "Europe/Paris"})
    assert response.status_code == 302
    assert operator_zone(admin_user) == "Europe/Paris"
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert "Times in Europe/Paris" in index


def test_an_unknown_zone_is_refused(admin_client, admin_user):
    response = admin_client.post(reverse("operator_time_zone"), {"time_zone": "Mars/Olympus"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not OperatorProfile.objects.exists()
    with pytest.raises(Exception, match="Unknown time zone"):
        set_operator_zone(user=admin_user, zone="Mars/Olympus")


def test_the_time_zone_page_needs_a_staff_login(client):
    response = client.get(reverse("operator_time_zone"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_admin_lists_show_times_in_the_operators_zone(admin_client, admin_user, now):
    from tests.factories import ContactFactory

    set_operator_zone(user=admin_user, zone="Asia/Tokyo")
    ContactFactory(phone="+12125550148", last_attempt_at=AT)
    with time_machine.travel(now, tick=False):
        admin_client.force_login(admin_user)  # a session of the travelled time, not expired
        body = admin_client.get(reverse("admin:contacts_contact_changelist")).content.decode()
    assert "2026-11-24 02:00 JST" in body  # 17:00 UTC is 02:00 next day in Tokyo
    assert "Times in Asia/Tokyo" in body


def test_the_api_is_not_moved_to_the_operators_zone(admin_user, api_client):
    set_operator_zone(user=admin_user, zone="Asia/Tokyo")
    from tests.factories import ContactFactory

    contact = ContactFactory(last_attempt_at=AT)
    data = api_client.get(f"/api/v1/contacts/{contact.pk}/").json()
    assert data["last_attempt_at"].endswith(("Z", "+00:00"))


def test_operator_time_names_the_zone_and_keeps_seconds_when_asked():
    from django.utils import timezone

    with timezone.override("America/Chicago"):
        assert operator_time(AT) == "2026-11-23 11:00 CST"
        assert operator_time(AT, seconds=True) == "2026-11-23 11:00:05 CST"
    assert operator_time(None) == "–"


def test_callee_time_shows_the_callees_clock_and_the_date_when_it_differs():
    from django.utils import timezone

    with timezone.override("UTC"):
        assert callee_time(AT, ["America/New_York"]) == "12:00 EST"
        assert callee_time(AT, ["America/New_York"], named=True) == "12:00 EST, America/New_York"
        assert callee_time(AT, ["Asia/Tokyo"], seconds=True) == "2026-11-24 02:00:05 JST"
        several = callee_time(AT, ["America/Chicago", "America/New_York", "America/Denver"])
        assert several == "11:00 CST (America/Chicago and 2 more zones)"
    assert callee_time(None, ["UTC"]) == "–"


def test_the_zone_is_read_once_per_session(admin_client, admin_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    set_operator_zone(user=admin_user, zone="Europe/Paris")
    admin_client.get(reverse("admin:index"))
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(reverse("admin:index")).content.decode()
    assert "Times in Europe/Paris" in page
    assert not any("operatorprofile" in q["sql"] for q in queries.captured_queries)


def test_the_dashboard_names_the_operators_zone_beside_its_times(admin_client, admin_user):
    at = dt.datetime(2026, 11, 23, 17, 0, 5, tzinfo=dt.UTC)
    with time_machine.travel(at, tick=False):
        admin_client.force_login(admin_user)  # a session of the travelled time, not expired
        admin_client.post(reverse("operator_time_zone"), {"time_zone": "Asia/Tokyo"})
        page = admin_client.get(reverse("admin:dashboard")).content.decode()
        live = admin_client.get(reverse("admin:dashboard_live")).json()
    assert "02:00:05 JST" in page and "UTC</span>" not in page
    assert live["at_text"] == "02:00:05 JST"
