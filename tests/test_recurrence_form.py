"""Booking a call in the admin: the repetition is chosen (how often, which days, until when)
and the rule is written for the operator; the contact is found by search; the zone defaults
to the contact's own."""

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from calls.booking.recurrence import build_rrule, read_rrule
from calls.booking.scheduling import next_occurrences
from calls.models import ScheduledCall
from tests.factories import ContactFactory, SurveyCampaignFactory, book
from tests.test_admin_scheduled_calls import form

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

ADD = reverse("admin:calls_scheduledcall_add")


@pytest.fixture
def contact():
    return ContactFactory(
        phone="+13125550148", name="Grace", campaign=SurveyCampaignFactory()
    )  # Chicago


@pytest.mark.parametrize(
    ("choices", "rule"),
    [
        ({"frequency": ""}, ""),
        ({"frequency": "DAILY"}, "FREQ=DAILY"),
        ({"frequency": "WEEKLY", "weekdays": [2, 0]}, "FREQ=WEEKLY;BYDAY=MO,WE"),
        ({"frequency": "WEEKLY", "interval": 2, "count": 4}, "FREQ=WEEKLY;INTERVAL=2;COUNT=4"),
        (
            {"frequency": "MONTHLY", "until": dt.date(2027, 3, 31)},
            "FREQ=MONTHLY;UNTIL=20270331T235959",
        ),
    ],
)
def test_the_rule_is_built_from_the_choices_and_read_back(choices, rule):
    assert build_rrule(**choices) == rule
    back = read_rrule(rule, zone="America/Chicago")
    assert back["frequency"] == choices["frequency"]
    for name in ("interval", "weekdays", "until", "count"):
        if name in choices:
            assert back[name] == (sorted(choices[name]) if name == "weekdays" else choices[name])


def test_a_rule_the_form_cannot_show_is_recognised():
    assert read_rrule("FREQ=MONTHLY;BYDAY=1MO", zone="UTC") is None
    assert read_rrule("FREQ=YEARLY", zone="UTC") is None
    assert read_rrule("FREQ=DAILY;BYHOUR=9", zone="UTC") is None
    # A UTC UNTIL is read as the day it falls on in the call's zone.
    until = read_rrule("FREQ=DAILY;UNTIL=20261201T030000Z", zone="America/Chicago")["until"]
    assert until == dt.date(2026, 11, 30)


def test_until_includes_the_last_days_call(contact, now):
    rule = build_rrule(frequency="DAILY", until=dt.date(2026, 11, 26))
    call = book(contact, now, rrule=rule, timezone="America/Chicago")
    times = next_occurrences(call, after=now, count=10)
    assert [t.date().isoformat() for t in times] == [
        "2026-11-23",
        "2026-11-24",
        "2026-11-25",
        "2026-11-26",
    ]


def test_the_admin_books_a_weekly_call_on_ticked_days_until_a_day(admin_client, contact):
    data = form(
        contact,
        timezone="America/Chicago",
        run_at_1="18:00:00",
        repeat="WEEKLY",
        days=["0", "2"],
        ends="until",
        until="2026-12-09",
    )
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    call = ScheduledCall.objects.get()
    assert call.rrule == "FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20261209T235959"
    times = next_occurrences(call, after=call.run_at, count=10)
    # From Tue 24 Nov, the ticked days (Chicago 18:00 is 00:00 UTC the next day) up to and
    # including Wed 9 Dec.
    assert [f"{t:%m-%d %H:%M}" for t in times] == [
        "11-26 00:00",
        "12-01 00:00",
        "12-03 00:00",
        "12-08 00:00",
        "12-10 00:00",
    ]
    page = admin_client.get(reverse("admin:calls_scheduledcall_change", args=[call.pk]))
    body = page.content.decode()
    assert '<code id="rrule-preview"' in body and "FREQ=WEEKLY;BYDAY=MO,WE;UNTIL" in body
    assert 'name="rrule"' not in body  # shown, never typed
    assert 'value="WEEKLY" selected' in body or 'value="WEEKLY" selected>' in body


def test_an_end_without_its_day_or_count_is_refused(admin_client, contact):
    response = admin_client.post(ADD, form(contact, repeat="DAILY", ends="until", until=""))
    assert response.status_code == 200
    assert "Give the last day" in response.content.decode()
    assert not ScheduledCall.objects.exists()


def test_editing_only_the_note_keeps_a_rule_set_through_the_api(admin_client, contact, now):
    call = book(contact, now, rrule="FREQ=MONTHLY;BYDAY=1MO")
    url = reverse("admin:calls_scheduledcall_change", args=[call.pk])
    page = admin_client.get(url).content.decode()
    assert 'value="keep" selected' in page and "FREQ=MONTHLY;BYDAY=1MO" in page
    data = form(contact, run_at_0="2026-11-23", run_at_1="14:00:00", repeat="keep", note="Hi")
    assert admin_client.post(url, data).status_code == 302
    call.refresh_from_db()
    assert (call.rrule, call.note) == ("FREQ=MONTHLY;BYDAY=1MO", "Hi")


def test_changing_the_repetition_replaces_the_rule(admin_client, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY")
    url = reverse("admin:calls_scheduledcall_change", args=[call.pk])
    data = form(contact, run_at_0="2026-11-23", run_at_1="14:00:00", repeat="DAILY")
    data.update(ends="count", count="2")
    assert admin_client.post(url, data).status_code == 302
    call.refresh_from_db()
    assert call.rrule == "FREQ=DAILY;COUNT=2"
    assert call.events.last().kind == "edited"


def test_the_zone_defaults_to_the_contacts_own(admin_client, contact):
    page = admin_client.get(ADD, {"contact": contact.pk}).content.decode()
    assert 'name="timezone" value="America/Chicago"' in page
    assert f'<option value="{contact.pk}" selected>' in page  # the contact, chosen
    response = admin_client.post(ADD, form(contact, timezone="", run_at_1="18:30:00"))
    assert response.status_code == 302, response.content.decode()[-2000:]
    call = ScheduledCall.objects.get()
    assert call.timezone == "America/Chicago"
    assert call.next_run_at == dt.datetime(2026, 11, 25, 0, 30, tzinfo=dt.UTC)


def test_the_contact_is_chosen_by_searching_its_name_or_number(admin_client, contact):
    page = admin_client.get(ADD).content.decode()
    assert "admin-autocomplete" in page and 'name="contact"' in page
    assert "vForeignKeyRawIdAdminField" not in page
    ContactFactory(phone="+12125550199", name="Someone else")
    found = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "term": "(312) 555-0148",
            "app_label": "calls",
            "model_name": "scheduledcall",
            "field_name": "contact",
        },
    ).json()
    assert [r["id"] for r in found["results"]] == [str(contact.pk)]


def test_the_first_call_is_read_on_the_calls_clock_not_the_operators(
    admin_client, admin_user, contact
):
    """02:30 on 29 March 2026 does not exist in Paris (clocks go forward); for a call in
    Chicago it is a time like any other."""
    from voicesurvey.accounts.timezones import set_operator_zone

    set_operator_zone(user=admin_user, zone="Europe/Paris")
    with time_machine.travel(dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC), tick=False):
        data = form(contact, timezone="America/Chicago", run_at_0="2026-03-29", run_at_1="02:30")
        response = admin_client.post(ADD, data)
    assert response.status_code == 200  # refused, but by the legal window, in Chicago's time
    assert "02:30 in America/Chicago is outside the legal calling window" in (
        response.content.decode()
    )
    data["run_at_1"] = "10:30:00"
    with time_machine.travel(dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC), tick=False):
        assert admin_client.post(ADD, data).status_code == 302
    assert ScheduledCall.objects.get().run_at == dt.datetime(2026, 3, 29, 15, 30, tzinfo=dt.UTC)
