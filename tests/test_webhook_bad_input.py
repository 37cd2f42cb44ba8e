"""Signed webhooks with parameters no provider sends: a 4xx (or a documented safe handling) and
nothing written, never a 500 or a database error."""

import pytest
from django.conf import settings

from calls.models import Answer, CallAttempt, CallEvent
from tests.factories import QuestionFactory, RunningCampaignFactory
from tests.webhook_helpers import live_attempt, send_status, signed_post, twiml

K = QuestionFactory._meta.model.Kind


@pytest.fixture
def attempt(db, frozen):
    campaign = RunningCampaignFactory()
    QuestionFactory(campaign=campaign, position=1, kind=K.SCALE, min_value=1, max_value=5)
    QuestionFactory(campaign=campaign, position=2, kind=K.SPEECH, prompt="Anything else?")
    return live_attempt(now=frozen, campaign=campaign, status="in_progress")


def events(attempt) -> int:
    return CallEvent.objects.filter(attempt=attempt).count()


def assert_nothing_written(attempt, events_before: int):
    fresh = CallAttempt.objects.get(pk=attempt.pk)
    assert fresh.status == "in_progress"
    assert (fresh.duration, fresh.ended_at, fresh.last_sequence_number) == (None, None, None)
    assert events(attempt) == events_before
    assert fresh.contact.state == "in_progress"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"CallDuration": "99999999999"},  # years of talk: overflows the column and the clock
        {"CallDuration": "-5"},
        {"CallDuration": "4.5"},
        {"CallDuration": "٣"},  # a digit, but not an ASCII one
        {"SequenceNumber": "99999999999"},
        {"SequenceNumber": "-1"},
        {"CallSid": "CA" + "f" * 100},  # longer than the column
        {"To": "+1555\x00"},  # PostgreSQL text and jsonb cannot hold a NUL
        {"ErrorMessage": "\x00"},
        {"AnsweredBy": "human\x00"},
    ],
)
def test_a_status_callback_with_an_impossible_parameter_is_a_400_and_writes_nothing(
    client, attempt, params
):
    before = events(attempt)
    response = send_status(client, attempt, "completed", **{"CallDuration": "30", **params})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"  # the API's error shape
    assert_nothing_written(attempt, before)


@pytest.mark.django_db
def test_a_status_timestamp_in_an_implausible_year_is_replaced_by_the_time_it_arrived(
    client, attempt, frozen
):
    """Timestamp is the provider's clock; the year 9999 is not believed (it overflows when
    converted to UTC)."""
    response = send_status(
        client,
        attempt,
        "completed",
        CallDuration="60",
        Timestamp="Fri, 31 Dec 9999 23:59:59 -0500",
    )
    assert response.status_code == 204, response.content
    attempt.refresh_from_db()
    assert attempt.ended_at == frozen
    assert attempt.duration == 60


@pytest.mark.django_db
def test_a_webhook_body_above_the_limit_is_a_413_before_it_is_read(client, attempt, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 8192
    before = events(attempt)
    response = send_status(client, attempt, "completed", CallDuration="30", Padding="x" * 9000)
    assert response.status_code == 413
    assert_nothing_written(attempt, before)


def gather_url(attempt, position: int) -> str:
    return f"{settings.PUBLIC_BASE_URL}/webhooks/gather/{attempt.call_id}/{position}/"


@pytest.mark.django_db
def test_a_keypad_entry_longer_than_any_keypad_sends_is_a_400(client, attempt):
    before = events(attempt)
    response = signed_post(client, gather_url(attempt, 1), {"Digits": "1" * 5000})
    assert response.status_code == 400, response.content
    assert events(attempt) == before
    assert not Answer.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{"SpeechResult": "Fine\x00"}, {"Digits": "\x00"}])
def test_a_nul_in_a_survey_answer_is_a_400_and_nothing_is_stored(client, attempt, params):
    before = events(attempt)
    response = signed_post(client, gather_url(attempt, 2), params)
    assert response.status_code == 400, response.content
    assert events(attempt) == before
    assert not Answer.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("confidence", ["nan", "inf", "-inf", "1e999"])
def test_a_confidence_that_is_not_a_number_is_stored_as_unknown(client, attempt, confidence):
    response = signed_post(
        client, gather_url(attempt, 2), {"SpeechResult": "Fine", "Confidence": confidence}
    )
    twiml(response)
    answer = Answer.objects.get()
    assert (answer.value, answer.confidence) == ("Fine", None)
