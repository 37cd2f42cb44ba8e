"""A contact's state is never typed: it moves through the domain's functions (retry now,
reset, do not call, call now), offered as buttons on the contact page and as bulk actions,
each checked against the user's permissions."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from calls.models import ScheduledCall
from campaigns.models import Campaign
from contacts.editing import exclude_contacts, reset_contacts, retry_contacts_now
from contacts.models import Contact, Exclusion
from tests.factories import ContactFactory, ExclusionFactory, SurveyCampaignFactory
from tests.staff import staff_client

pytestmark = pytest.mark.django_db

LIST = reverse("admin:contacts_contact_changelist")
LATER = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen(open_now):
    with time_machine.travel(open_now, tick=False):
        yield


def change_url(contact):
    return reverse("admin:contacts_contact_change", args=[contact.pk])


# --- the domain functions ----------------------------------------------------------------------


def test_retry_now_makes_only_waiting_contacts_due(open_now):
    waiting = ContactFactory(state="not_reached", next_attempt_at=open_now + dt.timedelta(hours=2))
    done = ContactFactory(state="completed", next_attempt_at=open_now + dt.timedelta(hours=2))
    moved = retry_contacts_now(Contact.objects.all(), now=open_now)
    assert moved == 1
    waiting.refresh_from_db(), done.refresh_from_db()
    assert waiting.next_attempt_at == open_now
    assert done.next_attempt_at == open_now + dt.timedelta(hours=2)


def test_reset_gives_a_fresh_budget_but_not_to_who_said_no(open_now):
    exhausted = ContactFactory(
        state="exhausted", attempts_count=3, last_attempt_number=4, completion_attempts_count=1
    )
    refused = ContactFactory(state="refused", attempts_count=1, last_attempt_number=1)
    on_a_call = ContactFactory(state="in_progress", attempts_count=1, last_attempt_number=1)
    finished = ContactFactory(
        state="exhausted",
        attempts_count=3,
        last_attempt_number=3,
        campaign__status=Campaign.Status.COMPLETED,
    )
    assert reset_contacts(Contact.objects.all(), now=open_now) == 1
    exhausted.refresh_from_db()
    assert (exhausted.state, exhausted.attempts_count, exhausted.completion_attempts_count) == (
        "pending",
        0,
        0,
    )
    assert exhausted.last_attempt_number == 4  # the next call still gets a new number
    assert exhausted.next_attempt_at == open_now
    for contact, state in (
        (refused, "refused"),
        (on_a_call, "in_progress"),
        (finished, "exhausted"),
    ):
        contact.refresh_from_db()
        assert contact.state == state


def test_do_not_call_lists_each_number_once_in_the_scope_asked(admin_user):
    first = ContactFactory(phone="+12125550101")
    other_campaign = ContactFactory(phone="+12125550101")
    second = ContactFactory(phone="+12125550102")
    ExclusionFactory(phone="+12125550102")  # already on the global list
    added, excluded = exclude_contacts(
        Contact.objects.filter(pk__in=[first.pk, second.pk]), everywhere=True, by=admin_user
    )
    assert added == 1  # +12125550102 was listed already
    assert excluded == 1
    assert Exclusion.objects.get(phone="+12125550101").campaign is None
    other_campaign.refresh_from_db()
    assert other_campaign.state == "excluded"  # global: every campaign's contact


def test_do_not_call_in_the_contacts_own_campaign_only(admin_user):
    contact = ContactFactory(phone="+12125550101")
    elsewhere = ContactFactory(phone="+12125550101")
    exclude_contacts(
        Contact.objects.filter(pk=contact.pk), everywhere=False, reason="complaint", by=admin_user
    )
    entry = Exclusion.objects.get()
    assert (entry.campaign_id, entry.reason, entry.created_by) == (
        contact.campaign_id,
        "complaint",
        admin_user,
    )
    elsewhere.refresh_from_db()
    assert elsewhere.state == "pending"


# --- the contact page ----------------------------------------------------------------------------


def test_the_state_is_shown_not_typed(admin_client):
    contact = ContactFactory()
    page = admin_client.get(change_url(contact)).content.decode()
    assert 'name="state"' not in page and 'name="next_attempt_at_0"' not in page
    assert 'name="attempts_count"' not in page
    assert "Pending" in page  # shown read-only


def test_a_posted_state_is_ignored(admin_client):
    contact = ContactFactory(phone="+12125550101", name="Ada")
    data = {
        "phone": "+12125550101",
        "region": "US",
        "name": "Ada L.",
        "external_id": "",
        "language": "",
        "attributes": "{}",
        "state": "completed",
    }
    response = admin_client.post(change_url(contact), data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    contact.refresh_from_db()
    assert (contact.name, contact.state) == ("Ada L.", "pending")


def test_the_contact_page_offers_the_moves(admin_client):
    contact = ContactFactory(state="not_reached")
    page = admin_client.get(change_url(contact)).content.decode()
    for tool in ("call-now-button", "book-call-link", "retry-now-button", "reset-button"):
        assert f'id="{tool}"' in page, tool
    assert 'id="do-not-call-link"' in page
    assert f"/admin/calls/scheduledcall/add/?contact={contact.pk}" in page


def test_retry_now_button(admin_client, open_now):
    contact = ContactFactory(state="not_reached", next_attempt_at=open_now + dt.timedelta(hours=1))
    response = admin_client.post(reverse("admin:contact_retry", args=[contact.pk]), follow=True)
    assert "1 contact due now" in response.content.decode()
    contact.refresh_from_db()
    assert contact.next_attempt_at == open_now


def test_reset_button_says_when_nothing_moved(admin_client):
    contact = ContactFactory(state="refused")
    response = admin_client.post(reverse("admin:contact_reset", args=[contact.pk]), follow=True)
    body = response.content.decode()
    assert "0 contacts reset to pending." in body and "who opted out" in body
    contact.refresh_from_db()
    assert contact.state == "refused"


def test_the_do_not_call_page_asks_where_and_why(admin_client, admin_user):
    contact = ContactFactory(phone="+12125550101")
    url = reverse("admin:contact_do_not_call", args=[contact.pk])
    page = admin_client.get(url).content.decode()
    assert "+12125550101" in page and "in every campaign (global)" in page
    response = admin_client.post(url, {"everywhere": "0", "reason": "asked on the phone"})
    assert response.status_code == 302 and response["Location"] == change_url(contact)
    entry = Exclusion.objects.get()
    assert (entry.campaign_id, entry.reason) == (contact.campaign_id, "asked on the phone")
    contact.refresh_from_db()
    assert contact.state == "excluded"


def test_call_now_is_refused_while_a_call_is_live(admin_client):
    contact = ContactFactory(
        state="in_progress", last_attempt_number=1, campaign=SurveyCampaignFactory()
    )
    response = admin_client.post(reverse("admin:contact_call_now", args=[contact.pk]), follow=True)
    assert "A call to this contact is live now." in response.content.decode()
    assert not ScheduledCall.objects.exists()


def test_call_now_books_a_call_for_the_next_tick(admin_client, admin_user, open_now):
    contact = ContactFactory(phone="+12125550101", campaign=SurveyCampaignFactory())
    response = admin_client.post(reverse("admin:contact_call_now", args=[contact.pk]), follow=True)
    assert "Booked for now" in response.content.decode()
    call = ScheduledCall.objects.get()
    assert (call.contact, call.next_run_at, call.created_by) == (contact, open_now, admin_user)
    assert call.timezone == "America/New_York"


def test_call_now_is_refused_while_the_campaign_is_paused(admin_client):
    contact = ContactFactory(campaign=SurveyCampaignFactory(status=Campaign.Status.PAUSED))
    response = admin_client.post(reverse("admin:contact_call_now", args=[contact.pk]), follow=True)
    assert "Not called:" in response.content.decode()
    assert "is paused: resume it first" in response.content.decode()
    assert not ScheduledCall.objects.exists()


def test_call_now_is_refused_outside_the_legal_window(admin_client):
    contact = ContactFactory(phone="+12125550101", campaign=SurveyCampaignFactory())
    with time_machine.travel(dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.UTC), tick=False):
        response = admin_client.post(
            reverse("admin:contact_call_now", args=[contact.pk]), follow=True
        )
    assert "outside the legal calling window" in response.content.decode()
    assert not ScheduledCall.objects.exists()


# --- bulk actions ---------------------------------------------------------------------------


def post_action(client, action, *contacts):
    return client.post(
        LIST, {"action": action, "_selected_action": [c.pk for c in contacts]}, follow=True
    )


def test_bulk_actions_move_the_selected_contacts(admin_client, open_now):
    later = open_now + dt.timedelta(hours=3)
    waiting = [ContactFactory(state="not_reached", next_attempt_at=later) for _ in range(2)]
    response = post_action(admin_client, "retry_now", *waiting)
    assert "2 contacts due now" in response.content.decode()
    exhausted = ContactFactory(state="exhausted", attempts_count=3, last_attempt_number=3)
    post_action(admin_client, "reset", exhausted)
    exhausted.refresh_from_db()
    assert exhausted.state == "pending"
    post_action(admin_client, "do_not_call_everywhere", *waiting)
    assert Exclusion.objects.filter(campaign=None).count() == 2
    assert set(
        Contact.objects.filter(pk__in=[c.pk for c in waiting]).values_list("state", flat=True)
    ) == {"excluded"}


def test_moves_need_their_permissions(client, django_user_model, open_now):
    contact = ContactFactory(state="not_reached", next_attempt_at=open_now + dt.timedelta(hours=1))
    viewer = staff_client(client, django_user_model, "contacts.view_contact")
    page = viewer.get(change_url(contact)).content.decode()
    for tool in ("call-now", "book-call", "retry-now", "reset", "do-not-call"):
        assert f'id="{tool}-' not in page, tool
    actions = viewer.get(LIST).content.decode()
    assert "retry_now" not in actions and "do_not_call_everywhere" not in actions
    for name in ("contact_retry", "contact_reset", "contact_call_now", "contact_do_not_call"):
        assert viewer.post(reverse(f"admin:{name}", args=[contact.pk])).status_code == 403, name
    contact.refresh_from_db()
    assert contact.next_attempt_at == open_now + dt.timedelta(hours=1)
    assert not Exclusion.objects.exists() and not ScheduledCall.objects.exists()


def test_a_user_who_may_exclude_but_not_change_gets_only_that(client, django_user_model):
    contact = ContactFactory()
    user = staff_client(
        client, django_user_model, "contacts.view_contact", "contacts.add_exclusion"
    )
    page = user.get(change_url(contact)).content.decode()
    assert 'id="do-not-call-link"' in page and 'id="reset-button"' not in page
    actions = user.get(LIST).content.decode()
    assert "do_not_call_everywhere" in actions and '"reset"' not in actions


def test_the_list_says_when_a_contact_is_due(admin_client, open_now):
    ContactFactory(name="Due", next_attempt_at=open_now - dt.timedelta(minutes=1))
    later = open_now + dt.timedelta(hours=2)
    ContactFactory(name="Later", state="not_reached", next_attempt_at=later)
    body = admin_client.get(LIST).content.decode()
    assert "due now (in its calling window)" in body
    assert "2026-11-23 19:00 UTC" in body and "14:00 EST callee" in body  # later: both clocks
