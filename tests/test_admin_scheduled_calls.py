import datetime as dt

import pytest
from django.urls import reverse

from calls.models import ScheduledCall
from tests.factories import ContactFactory, SurveyCampaignFactory, book

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

ADD = reverse("admin:calls_scheduledcall_add")
LIST = reverse("admin:calls_scheduledcall_changelist")


@pytest.fixture
def contact():
    return ContactFactory(phone="+12125550142", campaign=SurveyCampaignFactory())  # New York


def form(contact, **fields):
    """The add/change form as the browser posts it (run_at split into date and time; the
    repetition chosen, not typed)."""
    return {
        "contact": contact.pk,
        "run_at_0": "2026-11-24",
        "run_at_1": "18:30:00",
        "timezone": "America/New_York",
        "repeat": "",
        "interval": "1",
        "ends": "never",
        "until": "",
        "count": "",
        "note": "",
        "max_retries": "2",
        "retry_delay_minutes": "5",
        "misfire_grace_seconds": "",
        **{
            f"{inline}-{name}": value
            for inline in ("attempts", "events")
            for name, value in [
                ("TOTAL_FORMS", "0"),
                ("INITIAL_FORMS", "0"),
                ("MIN_NUM_FORMS", "0"),
                ("MAX_NUM_FORMS", "1000"),
            ]
        },
        **fields,
    }


def test_add_form_books_in_the_given_zone(admin_client, admin_user, contact):
    response = admin_client.post(ADD, form(contact, repeat="WEEKLY", ends="count", count="3"))
    assert response.status_code == 302, response.content.decode()[-3000:]
    call = ScheduledCall.objects.get()
    assert call.next_run_at == dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC)  # 18:30 NY
    assert call.timezone == "America/New_York" and call.rrule == "FREQ=WEEKLY;COUNT=3"
    assert call.created_by == admin_user
    assert [(e.kind, e.actor) for e in call.events.all()] == [("created", admin_user.username)]
    page = admin_client.get(reverse("admin:calls_scheduledcall_change", args=[call.pk]))
    body = page.content.decode()
    for day in ("2026-11-24", "2026-12-01", "2026-12-08"):  # the next calls, in both zones
        assert f"{day} 23:30 UTC ({day} 18:30 America/New_York)" in body
    assert "FREQ=WEEKLY;COUNT=3" in body  # the rule, shown
    assert 'value="18:30:00"' in body  # run_at shown in its own zone


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"repeat": "WEEKLY", "ends": "count"}, "Give the number of calls"),
        ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"run_at_0": "2026-11-20"}, "no occurrence in the future"),
        ({"run_at_1": "23:00:00"}, "outside the legal calling window"),
    ],
)
def test_add_form_shows_the_domains_refusal(admin_client, contact, fields, message):
    response = admin_client.post(ADD, form(contact, **fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ScheduledCall.objects.exists()


def test_add_form_says_why_a_campaign_cannot_take_the_booking(admin_client, contact):
    contact.campaign.status = "paused"
    contact.campaign.save()
    response = admin_client.post(ADD, form(contact))
    assert response.status_code == 200
    assert "is paused: resume it first" in response.content.decode()
    assert not ScheduledCall.objects.exists()


def test_change_form_reschedules_through_the_domain(admin_client, contact, now):
    call = book(contact, now)
    url = reverse("admin:calls_scheduledcall_change", args=[call.pk])
    response = admin_client.post(url, form(contact, run_at_1="10:00:00", note="Moved"))
    assert response.status_code == 302, response.content.decode()[-3000:]
    call.refresh_from_db()
    assert call.next_run_at == dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    assert call.note == "Moved"
    assert call.events.last().kind == "edited"


def post_action(client, action, *calls):
    confirmed = {"confirmed": "yes"} if action == "cancel_series" else {}
    return client.post(
        LIST,
        {"action": action, "_selected_action": [c.pk for c in calls], **confirmed},
        follow=True,
    )


def test_actions_pause_resume_and_cancel_the_series(admin_client, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    for action, status in [
        ("pause_series", "paused"),
        ("resume_series", "scheduled"),
        ("cancel_series", "cancelled"),
    ]:
        response = post_action(admin_client, action, call)
        call.refresh_from_db()
        assert call.status == status
        assert f"1 scheduled call(s) {status if status != 'scheduled' else 'resumed'}" in (
            response.content.decode()
        )
    assert [e.kind for e in call.events.all()] == ["created", "paused", "resumed", "cancelled"]


def test_action_reports_each_refusal_and_applies_the_rest(admin_client, contact, now):
    paused = book(contact, now)
    admin_client.post(LIST, {"action": "pause_series", "_selected_action": [paused.pk]})
    scheduled = book(contact, now, run_at=dt.datetime(2026, 11, 25, 10, 0))
    body = post_action(admin_client, "pause_series", paused, scheduled).content.decode()
    assert "Cannot pause a call that is paused." in body
    assert "1 scheduled call(s) paused" in body
    scheduled.refresh_from_db()
    assert scheduled.status == "paused"


def test_pages_load_and_history_cannot_be_deleted(admin_client, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY")
    body = admin_client.get(LIST).content.decode()
    assert "2026-11-23 19:00" in body  # next run in UTC
    assert "2026-11-23 14:00 America/New_York" in body  # and in its zone
    assert "0 / 2" in body  # retries
    for query in (
        {"status__exact": "scheduled"},
        {"q": "0142"},
        {"next_run_at__gte": "2026-11-23 00:00:00+00:00"},
        {"contact__campaign__id__exact": contact.campaign_id},
    ):
        response = admin_client.get(LIST, query)
        assert response.status_code == 200 and "2026-11-23 19:00" in response.content.decode()
    assert admin_client.get(ADD).status_code == 200
    delete = reverse("admin:calls_scheduledcall_delete", args=[call.pk])
    assert admin_client.get(delete).status_code == 403
