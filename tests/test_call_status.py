import datetime as dt

import pytest
import time_machine

from calls.models import CallAttempt, CallEvent
from calls.outcomes import settle_contact
from calls.webhooks.status import apply_call_status
from tests.factories import ContactFactory, ExclusionFactory
from tests.webhook_helpers import live_attempt, send_status


def play(client, attempt, *statuses):
    """Send status callbacks in the given order; each item is a status or (status, extra)."""
    for seq, item in enumerate(statuses):
        status, extra = item if isinstance(item, tuple) else (item, {})
        response = send_status(client, attempt, status, sequence=seq, **extra)
        assert response.status_code == 204, response.content
    attempt.refresh_from_db()
    attempt.contact.refresh_from_db()
    return attempt


DONE = ("completed", {"CallDuration": "42"})


@pytest.mark.django_db
def test_answered_call_with_finished_survey_completes_the_contact(client, frozen):
    attempt = live_attempt(now=frozen, survey_finished=True)
    play(client, attempt, "initiated", "ringing", ("in-progress", {"AnsweredBy": "human"}), DONE)
    assert attempt.status == "completed"
    assert attempt.answered_by == "human"
    assert attempt.duration == 42
    assert attempt.answered_at == frozen
    assert attempt.ended_at == frozen
    assert attempt.last_sequence_number == 3
    assert attempt.contact.state == "completed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("twilio_status", "ours", "delay_field"),
    [
        ("busy", "busy", "retry_busy_minutes"),
        ("no-answer", "no_answer", "retry_no_answer_minutes"),
        ("failed", "failed", "retry_failed_minutes"),
    ],
)
def test_unreached_call_retries_after_the_campaigns_delay(
    client, frozen, twilio_status, ours, delay_field
):
    attempt = live_attempt(now=frozen)
    play(client, attempt, "initiated", "ringing", (twilio_status, {"CallDuration": "0"}))
    assert attempt.status == ours
    assert attempt.contact.state == "not_reached"
    delay = getattr(attempt.campaign, delay_field)
    assert attempt.contact.next_attempt_at == frozen + dt.timedelta(minutes=delay)


@pytest.mark.django_db
def test_last_attempt_unreached_exhausts_the_contact(client, frozen):
    contact = ContactFactory(campaign__max_attempts=3)
    attempt = live_attempt(now=frozen, contact=contact, number=3)
    play(client, attempt, "initiated", "ringing", "no-answer")
    assert attempt.contact.state == "exhausted"


@pytest.mark.django_db
def test_machine_answer_is_not_reached_with_the_machine_delay(client, frozen):
    attempt = live_attempt(now=frozen)
    play(client, attempt, "ringing", ("completed", {"AnsweredBy": "machine_end_beep"}))
    assert attempt.answered_by == "machine"
    assert attempt.contact.state == "not_reached"
    delay = dt.timedelta(minutes=attempt.campaign.retry_machine_minutes)
    assert attempt.contact.next_attempt_at == frozen + delay


@pytest.mark.django_db
def test_hang_up_before_the_end_of_the_survey_uses_the_completion_rule(client, frozen):
    attempt = live_attempt(now=frozen)
    play(client, attempt, "ringing", ("in-progress", {"AnsweredBy": "human"}), DONE)
    contact = attempt.contact
    assert contact.state == "not_reached"
    assert contact.completion_attempts_count == 1
    delay = dt.timedelta(minutes=attempt.campaign.completion_retry_minutes)
    assert contact.next_attempt_at == frozen + delay


@pytest.mark.django_db
def test_duplicated_callbacks_change_nothing_the_second_time(client, frozen):
    attempt = live_attempt(now=frozen)
    play(client, attempt, "ringing", "ringing", "in-progress", "in-progress", DONE)
    assert attempt.contact.completion_attempts_count == 1
    state_after_first = (attempt.contact.state, attempt.contact.next_attempt_at)
    with time_machine.travel(frozen + dt.timedelta(minutes=5), tick=False):
        play(client, attempt, DONE, DONE)  # replays, later
    contact = attempt.contact
    assert (contact.state, contact.next_attempt_at) == state_after_first
    assert contact.completion_attempts_count == 1
    assert attempt.ended_at == frozen
    statuses = CallEvent.objects.filter(attempt=attempt, kind="status")
    assert list(statuses.values_list("message", flat=True)) == [
        "completed, incomplete (answered by unknown); contact not_reached"
    ]
    assert CallEvent.objects.filter(attempt=attempt, kind="webhook").count() == 7


@pytest.mark.django_db
def test_final_status_before_ringing_is_kept_when_ringing_arrives(client, frozen):
    attempt = live_attempt(now=frozen)
    play(client, attempt, ("busy", {"CallDuration": "0"}), "ringing", "initiated")
    assert attempt.status == "busy"
    assert attempt.contact.state == "not_reached"


@pytest.mark.django_db
def test_late_ringing_and_answered_after_completed_do_not_reopen_the_call(client, frozen):
    attempt = live_attempt(now=frozen, survey_finished=True)
    play(client, attempt, "initiated", DONE, "ringing", "in-progress")
    assert attempt.status == "completed"
    assert attempt.contact.state == "completed"
    assert attempt.answered_at == frozen - dt.timedelta(seconds=42)  # from the duration


@pytest.mark.django_db
def test_a_later_stage_never_goes_back(client, frozen):
    attempt = live_attempt(now=frozen)
    play(client, attempt, "in-progress", "ringing", "initiated")
    assert attempt.status == "in_progress"
    assert attempt.contact.state == "in_progress"


@pytest.mark.django_db
def test_one_final_status_never_overwrites_another(client, frozen):
    attempt = live_attempt(now=frozen)
    play(client, attempt, "no-answer", DONE, "busy")
    assert attempt.status == "no_answer"
    assert attempt.duration is None
    assert attempt.contact.next_attempt_at == frozen + dt.timedelta(
        minutes=attempt.campaign.retry_no_answer_minutes
    )


@pytest.mark.django_db
def test_duration_and_end_time_come_from_the_callback(client, frozen):
    attempt = live_attempt(now=frozen)
    play(
        client,
        attempt,
        ("completed", {"CallDuration": "95", "Timestamp": "Mon, 23 Nov 2026 11:59:30 +0000"}),
    )
    assert attempt.duration == 95
    assert attempt.ended_at == dt.datetime(2026, 11, 23, 11, 59, 30, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_failed_call_keeps_twilios_error_code(client, frozen):
    attempt = live_attempt(now=frozen)
    play(client, attempt, ("failed", {"ErrorCode": "32009", "ErrorMessage": "Carrier error"}))
    assert attempt.status == "failed"
    assert attempt.error_code == "32009"
    assert attempt.contact.state == "not_reached"


@pytest.mark.django_db
def test_failed_call_on_an_invalid_number_marks_the_contact_invalid(client, frozen):
    # Twilio may accept the call and only then find the number does not exist (13224):
    # retrying it would fail the same way every time.
    attempt = live_attempt(now=frozen)
    play(client, attempt, ("failed", {"ErrorCode": "13224", "ErrorMessage": "Invalid number"}))
    assert attempt.status == "failed"
    assert attempt.error_code == "number_rejected"
    assert attempt.error_message == "Twilio 13224: Invalid number"
    assert attempt.outcome == "rejected"
    assert attempt.contact.state == "invalid"


@pytest.mark.django_db
def test_first_callback_records_the_sid_when_the_dialler_has_not_yet(client, frozen):
    attempt = live_attempt(now=frozen, status="queued")
    CallAttempt.objects.filter(pk=attempt.pk).update(provider_call_sid=None)
    send_status(client, attempt, "initiated", CallSid="CA" + "f" * 32)
    attempt.refresh_from_db()
    assert attempt.provider_call_sid == "CA" + "f" * 32
    assert attempt.status == "initiated"


@pytest.mark.django_db
def test_callback_after_recovery_closed_the_attempt_as_lost(client, frozen):
    attempt = live_attempt(now=frozen)
    # The tick's recovery: a guarded update to failed/lost, then settle the contact.
    CallAttempt.objects.filter(pk=attempt.pk, status__in=CallAttempt.LIVE_STATUSES).update(
        status="failed", error_code="lost", ended_at=frozen
    )
    attempt.refresh_from_db()
    assert settle_contact(attempt, now=frozen) == "not_reached"
    contact = attempt.contact
    contact.refresh_from_db()
    before = (contact.state, contact.next_attempt_at, contact.completion_attempts_count)

    play(client, attempt, ("completed", {"CallDuration": "30", "AnsweredBy": "human"}))
    assert attempt.status == "failed"  # a final status is never overwritten
    assert attempt.error_code == "lost"
    assert attempt.duration == 30  # but the real duration is kept
    contact.refresh_from_db()
    assert (contact.state, contact.next_attempt_at, contact.completion_attempts_count) == before
    assert CallEvent.objects.filter(attempt=attempt, kind="webhook").count() == 1


@pytest.mark.django_db
def test_late_callback_of_an_old_attempt_does_not_move_a_contact_on_a_newer_one(frozen):
    old = live_attempt(now=frozen, number=1, status="ringing")
    contact = old.contact
    contact.last_attempt_number = 2  # the dialler has since placed attempt 2
    contact.save()
    result = apply_call_status(old, status="busy", now=frozen)
    assert result.moved and result.contact_state is None
    contact.refresh_from_db()
    assert contact.state == "in_progress"


@pytest.mark.django_db
def test_late_webhook_of_an_old_attempt_ends_it_and_leaves_the_contact_alone(client, frozen):
    # On PostgreSQL the webhook's fence is its own SQL (the statement that ends the attempt
    # locks the contact), so the same rule is checked through the endpoint.
    old = live_attempt(now=frozen, number=1, status="ringing")
    contact = old.contact
    contact.last_attempt_number = 2
    contact.save()
    play(client, old, "busy")
    assert old.status == "busy"
    assert old.contact.state == "in_progress"
    assert old.contact.attempts_count == contact.attempts_count
    ended = CallEvent.objects.get(attempt=old, kind="status")
    assert ended.message.endswith("contact not moved: it has moved on")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("expires", "state"),
    [(None, "excluded"), (dt.timedelta(days=30), "not_reached")],
)
def test_a_contact_put_on_the_do_not_call_list_during_its_call_is_not_retried(
    client, frozen, expires, state
):
    attempt = live_attempt(now=frozen, status="ringing")
    ExclusionFactory(
        phone=attempt.contact.phone,
        campaign=attempt.campaign,
        expires_at=frozen + expires if expires else None,
    )
    play(client, attempt, "busy")
    # For good: excluded, so the campaign can complete; for a while: retried once it lapses.
    assert attempt.contact.state == state


@pytest.mark.django_db
def test_unknown_status_is_a_400_and_changes_nothing(client, frozen):
    attempt = live_attempt(now=frozen)
    response = send_status(client, attempt, "exploded")
    assert response.status_code == 400
    attempt.refresh_from_db()
    assert attempt.status == "initiated"
    assert CallEvent.objects.get(attempt=attempt).payload["CallStatus"] == "exploded"


@pytest.mark.django_db
def test_canceled_call_is_not_reached(client, frozen):
    attempt = live_attempt(now=frozen)
    play(client, attempt, "canceled")
    assert attempt.status == "canceled"
    assert attempt.contact.state == "not_reached"


@pytest.mark.django_db
def test_a_failed_callback_before_the_dial_write_back_still_gets_its_dial_time(client, frozen):
    from calls.dialler.tick import record_dialled

    attempt = live_attempt(now=frozen, status="queued")
    sid = "CA" + "e" * 32
    CallAttempt.objects.filter(pk=attempt.pk).update(provider_call_sid=None, dialled_at=None)
    play(client, attempt, ("failed", {"CallSid": sid, "ErrorCode": "32009"}))
    assert record_dialled([(attempt, sid)], now=frozen) == 1
    attempt.refresh_from_db()
    assert attempt.dialled_at == frozen and attempt.provider_call_sid == sid
    assert attempt.status == "failed" and attempt.error_code == "32009"  # the verdict stays
