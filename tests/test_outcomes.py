import datetime as dt

import pytest

from calls.models import CallAttempt
from calls.outcomes import NOT_A_CALL_RETRY, settle_contact
from tests.factories import CallAttemptFactory, ContactFactory, ExclusionFactory

S = CallAttempt.Status


def live_attempt(now, *, attempts_count=1, number=None, **contact_kw):
    """A contact in progress on its attempt `number`; `attempts_count` includes this attempt,
    as the claim counts it."""
    number = number or attempts_count
    contact = ContactFactory(
        state="in_progress",
        attempts_count=attempts_count,
        last_attempt_number=number,
        **contact_kw,
    )
    return CallAttemptFactory(
        contact=contact, attempt_number=number, dialled_at=now, created_at=now
    )


def finish(attempt, now, **fields):
    for key, value in {"ended_at": now, **fields}.items():
        setattr(attempt, key, value)
    attempt.save()
    state = settle_contact(attempt, now=now)
    attempt.contact.refresh_from_db()
    return state


@pytest.mark.django_db
def test_finished_survey_completes_the_contact(now):
    attempt = live_attempt(now)
    assert (
        finish(attempt, now, status=S.COMPLETED, answered_by="human", survey_finished=True)
        == "completed"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "delay_field"),
    [
        ({"status": S.BUSY}, "retry_busy_minutes"),
        ({"status": S.NO_ANSWER}, "retry_no_answer_minutes"),
        ({"status": S.FAILED}, "retry_failed_minutes"),
        ({"status": S.COMPLETED, "answered_by": "machine"}, "retry_machine_minutes"),
    ],
)
def test_not_reached_retries_after_the_outcomes_delay(now, fields, delay_field):
    attempt = live_attempt(now)
    assert finish(attempt, now, **fields) == "not_reached"
    delay = getattr(attempt.campaign, delay_field)
    assert attempt.contact.next_attempt_at == now + dt.timedelta(minutes=delay)


@pytest.mark.django_db
def test_last_attempt_exhausts_the_contact(now):
    attempt = live_attempt(now, attempts_count=3)
    assert finish(attempt, now, status=S.NO_ANSWER) == "exhausted"


@pytest.mark.django_db
def test_hang_up_mid_survey_uses_the_completion_rule_and_grants_a_call(now):
    attempt = live_attempt(now, attempts_count=3)  # even on the last regular attempt
    assert finish(attempt, now, status=S.COMPLETED, answered_by="human") == "not_reached"
    contact = attempt.contact
    assert contact.completion_attempts_count == 1
    assert contact.next_attempt_at == now + dt.timedelta(
        minutes=attempt.campaign.completion_retry_minutes
    )
    assert contact.is_callable(now + dt.timedelta(days=1))


@pytest.mark.django_db
def test_opt_out_refuses(now):
    attempt = live_attempt(now)
    assert (
        finish(attempt, now, status=S.COMPLETED, answered_by="human", opted_out=True) == "refused"
    )


@pytest.mark.django_db
def test_rejected_number_is_invalid(now):
    attempt = live_attempt(now)
    assert finish(attempt, now, status=S.FAILED, error_code="number_rejected") == "invalid"


@pytest.mark.django_db
def test_outage_before_the_provider_took_the_call_does_not_use_an_attempt(now):
    attempt = live_attempt(now, attempts_count=1, number=1)
    attempt.dialled_at = None
    assert finish(attempt, now, status=S.FAILED, error_code="provider_unavailable") == "pending"
    assert attempt.contact.attempts_count == 0
    assert attempt.contact.next_attempt_at == now + NOT_A_CALL_RETRY


@pytest.mark.django_db
def test_callback_request_sets_next_attempt(now):
    attempt = live_attempt(now)
    later = now + dt.timedelta(hours=2)
    assert (
        finish(attempt, now, status=S.COMPLETED, answered_by="human", callback_requested_for=later)
        == "not_reached"
    )
    assert attempt.contact.next_attempt_at == later


@pytest.mark.django_db
def test_late_callback_of_an_older_attempt_does_not_move_the_contact(now):
    attempt = live_attempt(now, attempts_count=1, number=1)
    type(attempt.contact).objects.filter(pk=attempt.contact_id).update(last_attempt_number=2)
    assert (
        finish(attempt, now, status=S.COMPLETED, answered_by="human", survey_finished=True) is None
    )
    assert attempt.contact.state == "in_progress"


@pytest.mark.django_db
def test_final_callback_before_the_dial_is_written_back_still_uses_the_attempt(now):
    # Third and last attempt: the provider's "busy" arrives before the dial step has written
    # back the SID (dialled_at still empty); the claim has counted the call.
    attempt = live_attempt(now, attempts_count=3, number=3)
    attempt.dialled_at = None
    assert finish(attempt, now, status=S.BUSY) == "exhausted"
    assert attempt.contact.attempts_count == 3


@pytest.mark.django_db
def test_final_callback_does_not_count_the_attempt_again(now):
    attempt = live_attempt(now, attempts_count=2, number=2)
    assert finish(attempt, now, status=S.BUSY) == "not_reached"
    assert attempt.contact.attempts_count == 2


@pytest.mark.django_db
def test_a_number_listed_for_good_in_every_campaign_is_excluded_not_retried(now):
    attempt = live_attempt(now)
    ExclusionFactory(phone=attempt.contact.phone)  # global, never expires
    ExclusionFactory(phone="+12125550199")  # another number: no effect
    assert finish(attempt, now, status=S.NO_ANSWER) == "excluded"
    completed = live_attempt(now)
    ExclusionFactory(phone=completed.contact.phone)
    done = finish(completed, now, status=S.COMPLETED, answered_by="human", survey_finished=True)
    assert done == "completed"  # a finished survey stays finished
