import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from calls.booking.scheduling import (
    IllegalScheduledCallTransition,
    book_callback,
    cancel_scheduled_call,
    claim_due_scheduled_calls,
    next_allowed_time,
    next_occurrences,
    pause_scheduled_call,
    resume_scheduled_call,
    schedule_call,
    settle_scheduled_call,
)
from calls.models import CallAttempt, CallEvent, ScheduledCall
from calls.outcomes import settle_contact
from tests.factories import (
    CampaignFactory,
    ContactFactory,
    ExclusionFactory,
    SurveyCampaignFactory,
    book,
)

S = ScheduledCall.Status
PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")


def local(at, zone):
    return at.astimezone(zone)


@pytest.fixture
def contact():
    return ContactFactory(phone="+12125550142", campaign=SurveyCampaignFactory())  # New York


# --- occurrences ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "start", "dst_day"),
    [
        ("Europe/Paris", dt.datetime(2026, 10, 22, 18, 0), dt.date(2026, 10, 25)),
        ("America/New_York", dt.datetime(2026, 10, 29, 18, 0), dt.date(2026, 11, 1)),
    ],
)
def test_weekday_rule_stays_at_local_time_across_dst(contact, zone, start, dst_day):
    now = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    contact.timezones = [zone]
    contact.save()
    call = schedule_call(
        contact=contact,
        run_at=start,
        timezone=zone,
        rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=6",
        now=now,
    )
    times = next_occurrences(call, after=now, count=10)
    assert len(times) == 6
    assert all(local(t, ZoneInfo(zone)).hour == 18 for t in times)
    assert all(local(t, ZoneInfo(zone)).weekday() < 5 for t in times)
    offsets = {
        local(t, ZoneInfo(zone)).date() < dst_day: t.astimezone(ZoneInfo(zone)).utcoffset()
        for t in times
    }
    assert offsets[True] != offsets[False]  # the UTC instant moved with the clocks


@pytest.mark.django_db
def test_until_in_utc_and_count_bound_the_series(contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;UNTIL=20261126T235959Z")
    assert [local(t, NEW_YORK).day for t in next_occurrences(call, after=now, count=10)] == [
        23,
        24,
        25,
        26,
    ]
    call = book(contact, now, rrule="FREQ=DAILY;INTERVAL=2;COUNT=3")
    assert [local(t, NEW_YORK).day for t in next_occurrences(call, after=now, count=10)] == [
        23,
        25,
        27,
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=SOMETIMES",
        "BYDAY=MO",
        "FREQ=DAILY;COUNT=2;UNTIL=20270101",
        "FREQ=DAILY;X=1",
        "FREQ=DAILY;UNTIL=tomorrow",
    ],
)
def test_bad_rules_are_refused(contact, now, rule):
    with pytest.raises(ValidationError):
        book(contact, now, rrule=rule)
    assert not ScheduledCall.objects.exists()


@pytest.mark.django_db
def test_booking_in_the_past_or_outside_the_legal_window_is_refused(contact, now):
    with pytest.raises(ValidationError, match="future"):
        book(contact, now, run_at=dt.datetime(2026, 11, 22, 14, 0))
    with pytest.raises(ValidationError, match="legal calling window"):
        book(contact, now, run_at=dt.datetime(2026, 11, 23, 22, 30))
    with pytest.raises(ValidationError, match="time zone"):
        book(contact, now, timezone="Mars/Base")


@pytest.mark.django_db
def test_booking_keeps_the_zone_and_stores_utc(contact, now):
    call = book(contact, now, run_at=dt.datetime(2026, 11, 23, 14, 0))
    assert call.next_run_at == dt.datetime(2026, 11, 23, 19, 0, tzinfo=dt.UTC)
    assert call.timezone == "America/New_York"
    assert CallEvent.objects.filter(scheduled_call=call, kind="created").exists()


# --- pause / resume / cancel -----------------------------------------------------------------


@pytest.mark.django_db
def test_pause_then_resume_before_the_occurrence_skips_nothing_and_doubles_nothing(contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    before = next_occurrences(call, after=now)
    call = pause_scheduled_call(call, now=now)
    assert call.status == S.PAUSED
    assert claim_due_scheduled_calls(now=before[0], limit=10)[0] == []
    call = resume_scheduled_call(call, now=now + dt.timedelta(hours=1))
    assert call.status == S.SCHEDULED and call.next_run_at == before[0]
    assert next_occurrences(call, after=now) == before


@pytest.mark.django_db
def test_occurrences_passed_while_paused_are_skipped_not_made_up(contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=5")
    days = next_occurrences(call, after=now)
    call = pause_scheduled_call(call, now=now)
    call = resume_scheduled_call(call, now=days[2] + dt.timedelta(hours=1))
    assert call.next_run_at == days[3]
    event = CallEvent.objects.filter(scheduled_call=call, kind="resumed").get()
    assert event.payload["skipped_while_paused"] == [d.isoformat() for d in days[:3]]


@pytest.mark.django_db
def test_cancel_one_occurrence_keeps_the_series(contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    days = next_occurrences(call, after=now)
    call = cancel_scheduled_call(call, scope="occurrence", now=now)
    assert call.status == S.SCHEDULED
    assert next_occurrences(call, after=now) == days[1:]


@pytest.mark.django_db
def test_cancel_the_series_stops_everything(contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    call = cancel_scheduled_call(call, now=now, reason="customer moved")
    assert call.status == S.CANCELLED and call.next_run_at is None
    with pytest.raises(IllegalScheduledCallTransition):
        resume_scheduled_call(call, now=now)
    assert claim_due_scheduled_calls(now=now + dt.timedelta(days=3), limit=10)[0] == []


@pytest.mark.django_db
def test_hold_next_occurrence_then_give_it_back(contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=3")
    days = next_occurrences(call, after=now)
    call = pause_scheduled_call(call, scope="occurrence", now=now)
    assert call.next_run_at == days[1]
    call = resume_scheduled_call(call, scope="occurrence", now=now)
    assert call.next_run_at == days[0]


@pytest.mark.django_db
def test_illegal_moves_refuse_clearly(contact, now):
    call = book(contact, now)
    with pytest.raises(IllegalScheduledCallTransition, match="resume"):
        resume_scheduled_call(call, now=now)
    pause_scheduled_call(call, now=now)
    with pytest.raises(IllegalScheduledCallTransition, match="pause"):
        pause_scheduled_call(call, now=now)


# --- the tick's part --------------------------------------------------------------------------


@pytest.mark.django_db
def test_due_call_is_claimed_once_with_an_attempt(contact, now):
    call = book(contact, now)
    at = call.next_run_at + dt.timedelta(seconds=30)
    attempts, _ = claim_due_scheduled_calls(now=at, limit=10, provider="fake")
    assert len(attempts) == 1
    attempt = attempts[0]
    assert attempt.scheduled_call_id == call.pk and attempt.status == "queued"
    contact.refresh_from_db()
    assert contact.state == "in_progress" and contact.last_attempt_number == attempt.attempt_number
    assert claim_due_scheduled_calls(now=at, limit=10)[0] == []  # running: not again


@pytest.mark.django_db
def test_scheduler_down_for_an_hour_marks_the_occurrence_missed_and_keeps_the_next(contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=2")
    days = next_occurrences(call, after=now)
    attempts, skipped = claim_due_scheduled_calls(now=days[0] + dt.timedelta(hours=1), limit=10)
    assert attempts == [] and skipped == {"missed": 1}
    call.refresh_from_db()
    assert call.status == S.SCHEDULED and call.next_run_at == days[1]
    assert not CallAttempt.objects.exists()
    assert CallEvent.objects.filter(scheduled_call=call, kind="missed").count() == 1


@pytest.mark.django_db
def test_missed_one_off_call_is_missed(contact, now):
    call = book(contact, now)
    claim_due_scheduled_calls(now=call.next_run_at + dt.timedelta(minutes=6), limit=10)
    call.refresh_from_db()
    assert call.status == S.MISSED


@pytest.mark.django_db
def test_excluded_numbers_scheduled_call_is_cancelled_never_dialled(contact, now):
    call = book(contact, now)
    ExclusionFactory(phone=contact.phone)
    attempts, skipped = claim_due_scheduled_calls(now=call.next_run_at, limit=10)
    assert attempts == [] and skipped == {"do_not_call": 1}
    call.refresh_from_db()
    assert call.status == S.CANCELLED
    assert "do-not-call" in CallEvent.objects.get(scheduled_call=call, kind="cancelled").message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("scope", "expired", "dialled"),
    [("own", False, False), ("other", False, True), ("global", True, True)],
)
def test_only_entries_in_force_for_the_contacts_campaign_cancel_a_booking(
    contact, now, scope, expired, dialled
):
    call = book(contact, now)
    campaign = {"own": contact.campaign, "other": CampaignFactory(), "global": None}[scope]
    until = call.next_run_at - dt.timedelta(minutes=1) if expired else None
    ExclusionFactory(phone=contact.phone, campaign=campaign, expires_at=until)
    attempts, _ = claim_due_scheduled_calls(now=call.next_run_at, limit=10)
    assert len(attempts) == (1 if dialled else 0)


@pytest.mark.django_db
def test_contact_on_a_live_call_waits(contact, now):
    call = book(contact, now)
    type(contact).objects.filter(pk=contact.pk).update(state="in_progress")
    attempts, skipped = claim_due_scheduled_calls(now=call.next_run_at, limit=10)
    assert attempts == [] and skipped == {"contact_busy": 1}


def finish(attempt, now, **fields):
    for key, value in {"ended_at": now, "dialled_at": now, **fields}.items():
        setattr(attempt, key, value)
    attempt.save()
    settle_contact(attempt, now=now)
    settle_scheduled_call(attempt, now=now)
    attempt.scheduled_call.refresh_from_db()
    attempt.contact.refresh_from_db()
    return attempt.scheduled_call


@pytest.mark.django_db
def test_unanswered_booked_call_retries_quickly_then_fails(contact, now):
    call = book(contact, now, max_retries=1, retry_delay_minutes=5)
    at = call.next_run_at
    attempt = claim_due_scheduled_calls(now=at, limit=1)[0][0]
    call = finish(attempt, at, status="no_answer")
    assert call.status == S.SCHEDULED and call.next_run_at == at + dt.timedelta(minutes=5)
    assert attempt.contact.state == "pending"  # the campaign's own retries are untouched
    attempt = claim_due_scheduled_calls(now=call.next_run_at, limit=1)[0][0]
    call = finish(attempt, call.next_run_at, status="busy")
    assert call.status == S.FAILED


@pytest.mark.django_db
def test_answered_occurrence_moves_a_series_on(contact, now):
    call = book(contact, now, rrule="FREQ=DAILY;COUNT=2")
    days = next_occurrences(call, after=now)
    attempt = claim_due_scheduled_calls(now=days[0], limit=1)[0][0]
    call = finish(attempt, days[0], status="completed", answered_by="human", survey_finished=True)
    assert call.status == S.SCHEDULED and call.next_run_at == days[1]
    assert attempt.contact.state == "completed"


def test_next_allowed_time_moves_into_the_window():
    from campaigns.models import Campaign

    campaign = Campaign(
        window_start=dt.time(9),
        window_end=dt.time(20),
        weekdays=[0, 1, 2, 3, 4],
        window_policy="contact",
        timezone="America/New_York",
    )
    friday_night = dt.datetime(2026, 11, 27, 23, 0, tzinfo=NEW_YORK)
    at = next_allowed_time(campaign, ["America/New_York"], friday_night)
    assert local(at, NEW_YORK) == dt.datetime(2026, 11, 30, 9, 0, tzinfo=NEW_YORK)


@pytest.mark.django_db
def test_book_callback_creates_a_one_off_call_at_an_allowed_time(contact, now):
    contact.campaign.callback_delay_minutes = 120
    attempt = CallAttempt.objects.create(
        contact=contact, campaign=contact.campaign, attempt_number=1, created_at=now
    )
    call = book_callback(attempt=attempt, now=now)
    assert call.status == S.SCHEDULED and not call.rrule
    assert call.next_run_at == now + dt.timedelta(hours=2)  # 09:00 New York: inside the window


@pytest.mark.django_db
def test_a_missed_booking_is_not_rung_late_by_the_campaigns_own_calling(contact, now, run_tick):
    call = book(contact, now)  # 14:00 New York; the contact is also due for campaign calling
    late = call.next_run_at + dt.timedelta(hours=1)  # scheduler was down: 15:00 New York
    report = run_tick(late)
    assert report.dialled == 0 and report.skipped["booked_missed"] == 1
    assert not CallAttempt.objects.filter(contact=contact).exists()
    call.refresh_from_db()
    contact.refresh_from_db()
    assert call.status == S.MISSED
    delay = contact.campaign.retry_delay("no_answer")
    assert contact.state == "pending" and contact.next_attempt_at == late + delay
    # The campaign calls again after its no-answer delay, as after any unanswered call.
    assert run_tick(late + delay).dialled == 1


@pytest.mark.django_db
def test_a_missed_booking_is_not_rung_in_its_tick_even_with_no_no_answer_delay(
    contact, now, run_tick, provider
):
    """The hold is the campaign's no-answer delay; at zero, the tick's own claim still leaves
    the person whose booking it just missed alone."""
    contact.campaign.retry_no_answer_minutes = 0
    contact.campaign.save()
    other = ContactFactory(campaign=contact.campaign, phone="+12125550143")
    call = book(contact, now)
    late = call.next_run_at + dt.timedelta(hours=1)
    report = run_tick(late)
    assert report.skipped["booked_missed"] == 1
    assert provider.dialled_phones == [other.phone]  # ordinary calling goes on for the others
    call.refresh_from_db()
    assert call.status == S.MISSED
    # From the next tick on, the campaign's own rules apply to the person again.
    assert run_tick(late + dt.timedelta(seconds=5)).dialled == 1
    assert provider.dialled_phones == [other.phone, contact.phone]


# --- what a booking needs of its campaign ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("draft", "is a draft: start or schedule it first"),
        ("paused", "is paused: resume it first"),
        ("completed", "is completed: it places no more calls"),
        ("cancelled", "is cancelled: it places no more calls"),
    ],
)
def test_a_booking_in_a_campaign_that_would_not_place_it_is_refused_when_made(
    contact, now, status, reason
):
    contact.campaign.status = status
    contact.campaign.save()
    with pytest.raises(ValidationError) as refused:
        book(contact, now)
    assert reason in refused.value.message_dict["contact"][0]
    assert not ScheduledCall.objects.exists()


@pytest.mark.django_db
def test_a_booking_in_a_campaign_without_questions_is_refused(contact, now):
    contact.campaign.questions.all().delete()
    with pytest.raises(ValidationError) as refused:
        book(contact, now)
    assert "has no questions" in refused.value.message_dict["contact"][0]


@pytest.mark.django_db
def test_a_scheduled_campaign_takes_bookings_from_its_start_on(contact, now):
    campaign = contact.campaign
    campaign.status, campaign.start_at = "scheduled", dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    campaign.save()
    with pytest.raises(ValidationError) as refused:
        book(contact, now)  # today 14:00 New York: before the campaign starts
    assert "starts at 2026-11-24 00:00 UTC" in refused.value.message_dict["contact"][0]
    call = book(contact, now, run_at=dt.datetime(2026, 11, 24, 14, 0))  # it will be running
    assert call.status == S.SCHEDULED


@pytest.mark.django_db
def test_a_booking_after_the_campaigns_end_is_refused(contact, now):
    contact.campaign.end_at = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
    contact.campaign.save()
    with pytest.raises(ValidationError) as refused:
        book(contact, now)  # 14:00 New York is 19:00 UTC
    assert "ends at 2026-11-23 18:00 UTC" in refused.value.message_dict["contact"][0]
