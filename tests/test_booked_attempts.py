"""A scheduled call shows the calls placed for it: in its API detail, in the admin, and as a
filter of the attempts list."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from calls.booking.scheduling import schedule_call
from calls.models import CallAttempt
from calls.webhooks.status import apply_call_status
from tests.factories import ContactFactory, SurveyCampaignFactory
from tests.fakes import FakeProvider
from tests.test_api_campaigns import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/scheduled-calls/"
ATTEMPTS = "/api/v1/attempts/"


@pytest.fixture
def tried_twice(open_now, run_tick):
    """A booking whose first call met a provider outage and whose retry was placed and not
    answered."""
    contact = ContactFactory(campaign=SurveyCampaignFactory(), phone="+12125550142")
    call = schedule_call(
        contact=contact,
        run_at=open_now,
        timezone="UTC",
        now=open_now - dt.timedelta(hours=1),
        retry_delay_minutes=5,
    )
    run_tick(open_now, provider=FakeProvider(outages=[contact.phone]))
    retry_at = open_now + dt.timedelta(minutes=5)
    run_tick(retry_at)
    second = CallAttempt.objects.get(scheduled_call=call, status="initiated")
    apply_call_status(second, status="no-answer", now=retry_at + dt.timedelta(seconds=30))
    return call


def test_detail_shows_each_attempt_with_its_provider_id_outcome_and_error(api_client, tried_twice):
    body = api_client.get(f"{URL}{tried_twice.pk}/").json()
    first, second = body["attempts"]
    assert first["provider_call_sid"] is None and first["outcome"] == "provider_unavailable"
    assert first["error_code"] == "provider_unavailable"
    assert "The provider is unavailable" in first["error_message"]
    assert second["provider_call_sid"].startswith("CA") and second["outcome"] == "no_answer"
    assert second["status"] == "no_answer" and second["error_message"] == ""
    assert first["created_at"] < second["created_at"]


def test_attempts_need_their_own_permission_in_the_detail(django_user_model, tried_twice):
    user = django_user_model.objects.create_user("booker", password="pw-for-tests-1")
    user.user_permissions.set(Permission.objects.filter(codename="view_scheduledcall"))
    client = APIClient()
    client.force_authenticate(user)
    body = client.get(f"{URL}{tried_twice.pk}/").json()
    assert body["attempts"] is None and body["events"]


def test_attempts_filter_by_scheduled_call(api_client, tried_twice, open_now, run_tick):
    ContactFactory(campaign=tried_twice.contact.campaign)  # dialled by the campaign itself
    run_tick(open_now + dt.timedelta(minutes=10))
    assert CallAttempt.objects.count() == 3
    rows = api_client.get(ATTEMPTS, {"scheduled_call": tried_twice.pk}).json()["results"]
    assert len(rows) == 2 and {row["scheduled_call"] for row in rows} == {tried_twice.pk}


@pytest.mark.parametrize("bad", ["abc", "999999", "-1"])
def test_a_bad_scheduled_call_filter_is_a_400(api_client, bad):
    error = assert_error(api_client.get(ATTEMPTS, {"scheduled_call": bad}), 400, "invalid")
    assert "scheduled_call" in error["details"]


def test_the_admin_page_lists_the_attempts(admin_client, tried_twice):
    page = admin_client.get(reverse("admin:calls_scheduledcall_change", args=[tried_twice.pk]))
    body = page.content.decode()
    second = CallAttempt.objects.get(scheduled_call=tried_twice, status="no_answer")
    assert second.provider_call_sid in body
    assert "The provider is unavailable" in body
    assert reverse("admin:calls_callattempt_change", args=[second.pk]) in body


def test_the_admin_page_hides_attempts_without_their_permission(
    client, django_user_model, tried_twice
):
    user = django_user_model.objects.create_user("desk", password="pw-for-tests-1", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_scheduledcall"))
    client.force_login(user)
    page = client.get(reverse("admin:calls_scheduledcall_change", args=[tried_twice.pk]))
    assert page.status_code == 200
    assert "The provider is unavailable" not in page.content.decode()
