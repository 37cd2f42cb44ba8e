"""Admin actions that cannot be undone ask on an intermediate page first, as Django's own bulk
delete does: the first POST only asks, and nothing changes until the confirming POST."""

import re

import pytest
import time_machine
from django.urls import reverse

from contacts.models import Exclusion
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ExclusionFactory,
    SurveyCampaignFactory,
    book,
)

pytestmark = pytest.mark.django_db

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def choose(client, url, action, objects):
    return client.post(url, {"action": action, "_selected_action": [o.pk for o in objects]})


def confirm(client, url, page):
    """Press "Yes, I'm sure": post the page's own form back."""
    data: dict[str, list[str]] = {}
    for name, value in HIDDEN.findall(page.content.decode()):
        data.setdefault(name, []).append(value)
    return client.post(url, data, follow=True)


def test_cancelling_campaigns_asks_first_and_changes_nothing_until_confirmed(admin_client):
    url = reverse("admin:campaigns_campaign_changelist")
    running = CampaignFactory(name="Spring poll", status="running")
    paused = CampaignFactory(name="Autumn poll", status="paused")
    page = choose(admin_client, url, "cancel_campaigns", [running, paused])
    assert page.status_code == 200
    body = page.content.decode()
    assert "cannot be resumed" in body and "Spring poll" in body and "Autumn poll" in body
    for campaign in (running, paused):
        campaign.refresh_from_db()
    assert (running.status, paused.status) == ("running", "paused")

    done = confirm(admin_client, url, page)
    for campaign in (running, paused):
        campaign.refresh_from_db()
    assert (running.status, paused.status) == ("cancelled", "cancelled")
    assert "now cancelled" in done.content.decode()


def test_the_reversible_campaign_actions_do_not_ask(admin_client):
    campaign = CampaignFactory(status="running")
    url = reverse("admin:campaigns_campaign_changelist")
    assert choose(admin_client, url, "pause_campaigns", [campaign]).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "paused"


def test_cancelling_scheduled_series_asks_first(client, admin_user, now):
    url = reverse("admin:calls_scheduledcall_changelist")
    with time_machine.travel(now, tick=False):
        admin_client = client
        admin_client.force_login(admin_user)  # at the travelled time: the session is fresh
        contact = ContactFactory(phone="+12125550142", campaign=SurveyCampaignFactory())
        call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
        page = choose(admin_client, url, "cancel_series", [call])
        assert page.status_code == 200 and "cannot be resumed" in page.content.decode()
        call.refresh_from_db()
        assert call.status == "scheduled"

        confirm(admin_client, url, page)
        call.refresh_from_db()
        assert call.status == "cancelled"


def test_deleting_exclusions_in_bulk_asks_first(admin_client):
    url = reverse("admin:contacts_exclusion_changelist")
    entries = [ExclusionFactory(), ExclusionFactory()]
    page = choose(admin_client, url, "delete_selected", entries)
    assert page.status_code == 200 and "Are you sure" in page.content.decode()
    assert Exclusion.objects.count() == 2

    confirm(admin_client, url, page)
    assert not Exclusion.objects.exists()
