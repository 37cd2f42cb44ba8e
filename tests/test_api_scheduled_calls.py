import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import CallEvent, ScheduledCall
from tests.factories import ContactFactory, SurveyCampaignFactory, book
from tests.test_api_campaigns import assert_error

# The API reads the clock: `frozen` stops it at Monday 2026-11-23 12:00 UTC (07:00 in New York).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen")]

URL = "/api/v1/scheduled-calls/"
PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")


@pytest.fixture
def contact():
    return ContactFactory(phone="+12125550142", campaign=SurveyCampaignFactory())  # New York


def utc(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- booking ----------------------------------------------------------------------------------


def test_book_a_one_off_call_in_the_callees_zone(api_client, admin_user, contact):
    response = api_client.post(
        URL,
        {
            "contact": contact.pk,
            "run_at": "2026-11-24T18:30:00",
            "timezone": "America/New_York",
            "note": "Asked for the manager",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "scheduled"
    assert body["campaign"] == contact.campaign_id
    assert utc(body["next_run_at"]) == dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC)
    assert body["next_run_at_local"].startswith("2026-11-24T18:30:00-05:00")
    assert body["next_occurrences"] == ["2026-11-24T23:30:00Z"]
    assert body["created_by"] == admin_user.username
    assert [e["kind"] for e in body["events"]] == ["created"]
    assert body["events"][0]["actor"] == admin_user.username


def test_an_aware_run_at_keeps_its_instant(api_client, contact):
    response = api_client.post(
        URL,
        {"contact": contact.pk, "run_at": "2026-11-24T15:00:00Z", "timezone": "Europe/Paris"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["next_occurrences"] == ["2026-11-24T15:00:00Z"]


def test_recurring_call_stays_at_local_time_across_dst(api_client, contact):
    """Weekdays at 18:00 Paris time from 22 October: 16:00 UTC until the clocks go back on the
    25th, 17:00 UTC after. (The callee is in New York: 12:00 or 13:00 there, in the window.)"""
    with time_machine.travel(dt.datetime(2026, 10, 1, tzinfo=dt.UTC), tick=False):
        response = api_client.post(
            URL,
            {
                "contact": contact.pk,
                "run_at": "2026-10-22T18:00:00",
                "timezone": "Europe/Paris",
                "rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10",
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    times = [utc(t) for t in response.json()["next_occurrences"]]
    assert [t.astimezone(PARIS).strftime("%a %d %H:%M") for t in times] == [
        "Thu 22 18:00",
        "Fri 23 18:00",
        "Mon 26 18:00",
        "Tue 27 18:00",
        "Wed 28 18:00",
    ]
    assert [t.hour for t in times] == [16, 16, 17, 17, 17]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
        ({"rrule": "FREQ=DAILY;COUNT=2;UNTIL=20261231"}, "rrule"),
        ({"rrule": "FREQ=HOURLY;COUNT=5"}, "rrule"),  # a person rung every hour
        ({"rrule": "RRULE:FREQ=MINUTELY"}, "rrule"),
        ({"rrule": "FREQ=DAILY;BYHOUR=9,10,11"}, "rrule"),  # three calls a day
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"run_at": "2026-11-20T14:00:00"}, "run_at"),  # in the past
        ({"run_at": "2026-11-24T23:00:00"}, "run_at"),  # 23:00 in New York: outside 08-21
        ({"run_at": "tomorrow"}, "run_at"),
        ({"contact": 999999}, "contact"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_bookings_are_400_with_the_field(api_client, contact, body, field):
    request = {"contact": contact.pk, "run_at": "2026-11-24T14:00:00"}
    request["timezone"] = "America/New_York"
    error = assert_error(api_client.post(URL, {**request, **body}, format="json"), 400, "invalid")
    assert field in error["details"]
    assert not ScheduledCall.objects.exists()


def test_a_booking_in_a_draft_campaign_is_a_400_with_the_reason(api_client, contact):
    contact.campaign.status = "draft"
    contact.campaign.save()
    request = {"contact": contact.pk, "run_at": "2026-11-24T14:00:00", "timezone": "UTC"}
    error = assert_error(api_client.post(URL, request, format="json"), 400, "invalid")
    assert "is a draft: start or schedule it first" in error["message"]
    assert error["details"]["contact"]
    assert not ScheduledCall.objects.exists()


def test_a_refused_contact_cannot_be_booked(api_client):
    refused = ContactFactory(state="refused")
    error = assert_error(
        api_client.post(URL, {"contact": refused.pk, "run_at": "2026-11-24T15:00:00Z"}), 400
    )
    assert "refused" in error["details"]["contact"][0]


# --- reading and filters ----------------------------------------------------------------------


def test_list_filters_by_status_contact_campaign_and_next_run(api_client, contact, now):
    first = book(contact, now)  # 14:00 New York on the 23rd
    later = book(contact, now, run_at=dt.datetime(2026, 11, 25, 10, 0))
    other = book(
        ContactFactory(campaign=SurveyCampaignFactory(), phone="+12125550143"),
        now,
        run_at=dt.datetime(2026, 11, 24, 10, 0),
    )
    api_client.post(f"{URL}{later.pk}/pause/", {}, format="json")

    def ids(**query):
        response = api_client.get(URL, query)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [first.pk, other.pk, later.pk]  # by next run
    assert ids(status="paused") == [later.pk]
    assert ids(status=["scheduled", "paused"], contact=contact.pk) == [first.pk, later.pk]
    assert ids(campaign=other.contact.campaign_id) == [other.pk]
    assert ids(next_run_after="2026-11-24T00:00:00Z", next_run_before="2026-11-25T00:00:00Z") == [
        other.pk
    ]
    assert ids(ordering="-next_run_at") == [later.pk, other.pk, first.pk]
    assert_error(api_client.get(URL, {"next_run_after": "soon"}), 400, "invalid")
    assert_error(api_client.get(URL, {"status": "asleep"}), 400, "invalid")


def test_list_queries_do_not_grow_with_the_rows(api_client, contact, now):
    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            response = api_client.get(URL)
        assert response.status_code == 200
        return len(queries)

    book(contact, now, rrule="FREQ=DAILY;COUNT=9")
    few = count_queries()
    for day in range(24, 29):
        book(contact, now, run_at=dt.datetime(2026, 11, day, 10, 0), rrule="FREQ=WEEKLY")
    assert count_queries() == few
    row = api_client.get(URL).json()["results"][0]
    assert row["events_count"] == 1 and "events" not in row
    assert len(row["next_occurrences"]) == 5


def test_detail_has_events_and_next_occurrences(api_client, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    body = api_client.get(f"{URL}{call.pk}/").json()
    assert [t[:16] for t in body["next_occurrences"]] == [
        "2026-11-23T19:00",
        "2026-11-24T19:00",
        "2026-11-25T19:00",
    ]
    assert [e["kind"] for e in body["events"]] == ["created"]
    assert_error(api_client.get(f"{URL}999999/"), 404, "not_found")


# --- pause, resume, cancel --------------------------------------------------------------------


def test_pause_and_resume_the_series(api_client, admin_user, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    paused = api_client.post(f"{URL}{call.pk}/pause/", {"scope": "series"}, format="json")
    assert paused.status_code == 200, paused.content
    assert paused.json()["status"] == "paused"
    assert len(paused.json()["next_occurrences"]) == 3  # what a resume now would keep
    again = api_client.post(f"{URL}{call.pk}/pause/", {}, format="json")
    assert_error(again, 409, "illegal_transition")
    resumed = api_client.post(f"{URL}{call.pk}/resume/", {}, format="json").json()
    assert resumed["status"] == "scheduled"
    assert [e["kind"] for e in resumed["events"]] == ["created", "paused", "resumed"]
    assert resumed["events"][1]["actor"] == admin_user.username
    assert_error(api_client.post(f"{URL}{call.pk}/resume/", {}, format="json"), 409)


def test_hold_and_give_back_the_next_occurrence(api_client, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    held = api_client.post(f"{URL}{call.pk}/pause/", {"scope": "occurrence"}, format="json")
    assert held.json()["status"] == "scheduled"
    assert [t[:10] for t in held.json()["next_occurrences"]] == ["2026-11-24", "2026-11-25"]
    back = api_client.post(f"{URL}{call.pk}/resume/", {"scope": "occurrence"}, format="json")
    assert back.status_code == 200, back.content
    assert len(back.json()["next_occurrences"]) == 3


def test_cancel_one_occurrence_then_the_series(api_client, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    one = api_client.post(
        f"{URL}{call.pk}/cancel/", {"scope": "occurrence", "reason": "holiday"}, format="json"
    ).json()
    assert one["status"] == "scheduled"
    assert [t[:10] for t in one["next_occurrences"]] == ["2026-11-24", "2026-11-25"]
    assert one["events"][-1]["message"] == "holiday"
    whole = api_client.post(f"{URL}{call.pk}/cancel/", {"scope": "series"}, format="json").json()
    assert whole["status"] == "cancelled" and whole["next_occurrences"] == []
    error = assert_error(api_client.post(f"{URL}{call.pk}/cancel/", {}, format="json"), 409)
    assert "cancelled" in error["message"]


def test_a_bad_scope_is_400(api_client, contact, now):
    call = book(contact, now)
    error = assert_error(
        api_client.post(f"{URL}{call.pk}/pause/", {"scope": "week"}, format="json"), 400
    )
    assert "scope" in error["details"]
    assert ScheduledCall.objects.get(pk=call.pk).status == "scheduled"


def test_delete_cancels_and_keeps_the_history(api_client, contact, now):
    call = book(contact, now)
    assert api_client.delete(f"{URL}{call.pk}/").status_code == 204
    body = api_client.get(f"{URL}{call.pk}/").json()
    assert body["status"] == "cancelled"
    assert [e["kind"] for e in body["events"]] == ["created", "cancelled"]
    assert_error(api_client.delete(f"{URL}{call.pk}/"), 409, "illegal_transition")


# --- editing ----------------------------------------------------------------------------------


def test_patch_changes_the_note_and_retries_and_logs_it(api_client, contact, now):
    call = book(contact, now)
    response = api_client.patch(
        f"{URL}{call.pk}/", {"note": "Ask for Ana", "max_retries": 4}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["note"] == "Ask for Ana" and body["max_retries"] == 4
    assert body["events"][-1]["kind"] == "edited"
    assert body["events"][-1]["payload"]["changes"] == {"note": "Ask for Ana", "max_retries": 4}


def test_patch_reschedules_the_series(api_client, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    api_client.post(f"{URL}{call.pk}/cancel/", {"scope": "occurrence"}, format="json")
    body = api_client.patch(
        f"{URL}{call.pk}/",
        {"run_at": "2026-11-30T09:00:00", "rrule": "FREQ=WEEKLY;COUNT=2"},
        format="json",
    ).json()
    assert body["next_occurrences"] == ["2026-11-30T14:00:00Z", "2026-12-07T14:00:00Z"]
    assert body["skipped_occurrences"] == []  # the old series' skips do not apply any more
    assert body["timezone"] == "America/New_York"


def test_patching_only_the_zone_keeps_the_wall_clock_time(api_client, contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=2")  # 14:00 New York = 19:00 UTC
    body = api_client.patch(
        f"{URL}{call.pk}/", {"timezone": "America/Chicago"}, format="json"
    ).json()
    assert body["next_occurrences"] == ["2026-11-23T20:00:00Z", "2026-11-24T20:00:00Z"]
    assert body["next_run_at_local"].startswith("2026-11-23T14:00:00-06:00")
    assert body["events"][-1]["payload"]["changes"]["timezone"] == "America/Chicago"


def test_bad_patches_are_refused(api_client, contact, now):
    call = book(contact, now)
    error = assert_error(api_client.patch(f"{URL}{call.pk}/", {"contact": 1}, format="json"), 400)
    assert "contact" in error["details"]
    error = assert_error(
        api_client.patch(f"{URL}{call.pk}/", {"run_at": "2026-11-24T03:00:00"}, format="json"),
        400,
    )
    assert "outside the legal calling window" in error["details"]["run_at"][0]
    assert_error(api_client.put(f"{URL}{call.pk}/", {}, format="json"), 405)
    call.refresh_from_db()
    assert call.next_run_at == dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)
    api_client.post(f"{URL}{call.pk}/cancel/", {}, format="json")
    error = assert_error(
        api_client.patch(f"{URL}{call.pk}/", {"timezone": "Europe/Paris"}, format="json"), 409
    )
    assert "cancelled" in error["message"]
    assert CallEvent.objects.filter(scheduled_call=call, kind="edited").count() == 0


# --- who may do what --------------------------------------------------------------------------


def test_a_viewer_reads_but_cannot_write(viewer_client, contact, now):
    call = book(contact, now)
    assert viewer_client.get(URL).status_code == 200
    assert viewer_client.get(f"{URL}{call.pk}/").status_code == 200
    body = {"contact": contact.pk, "run_at": "2026-11-24T15:00:00Z"}
    assert_error(viewer_client.post(URL, body, format="json"), 403, "permission_denied")
    for verb in ("pause", "resume", "cancel"):
        assert_error(viewer_client.post(f"{URL}{call.pk}/{verb}/", {}, format="json"), 403)
    assert_error(viewer_client.patch(f"{URL}{call.pk}/", {"note": "x"}, format="json"), 403)
    assert_error(viewer_client.delete(f"{URL}{call.pk}/"), 403)
    call.refresh_from_db()
    assert call.status == "scheduled" and call.note == ""


def test_anonymous_is_401(anon_client, contact, now):
    call = book(contact, now)
    assert_error(anon_client.get(URL), 401)
    assert_error(anon_client.post(f"{URL}{call.pk}/cancel/", {}, format="json"), 401)
