"""An answer the callee gave during the call counts, whichever of its gather request and the
final status callback we process first (under load the order inverts)."""

import datetime as dt
import threading

import pytest
from django.db import connections, transaction
from django.test import Client

from calls.dialler.recovery import close_lost_attempt
from calls.models import Answer, CallAttempt, CallEvent, ScheduledCall
from calls.reports.stats import campaign_stats
from campaigns.models import Question
from tests.factories import ContactFactory, QuestionFactory, RunningCampaignFactory
from tests.webhook_helpers import live_attempt, send_status, signed_post, twiml, voice_url

K = Question.Kind


@pytest.fixture
def campaign(db):
    campaign = RunningCampaignFactory(closing_message="Thank you. Goodbye.")
    QuestionFactory(campaign=campaign, position=1, kind=K.YES_NO, prompt="Happy? 1 yes, 2 no.")
    QuestionFactory(campaign=campaign, position=2, kind=K.YES_NO, prompt="Again? 1 yes, 2 no.")
    return campaign


@pytest.fixture
def attempt(campaign, frozen):
    contact = ContactFactory(campaign=campaign)
    return live_attempt(now=frozen, contact=contact, status="in_progress", answered_by="human")


def gather(client, attempt, position, **params):
    """The callee's key press on question `position`, as Twilio posts it."""
    url = f"{voice_url(attempt).replace('/voice/', '/gather/')}{position}/"
    return twiml(signed_post(client, url, {"CallStatus": "in-progress", **params}))


def refreshed(attempt):
    attempt.refresh_from_db()
    attempt.contact.refresh_from_db()
    return attempt.contact


@pytest.mark.django_db
def test_last_answer_processed_after_the_final_callback_completes_the_contact(
    client, attempt, frozen
):
    signed_post(client, voice_url(attempt), {"CallStatus": "in-progress"})
    gather(client, attempt, 1, Digits="1")
    send_status(client, attempt, "completed", CallDuration="20")  # overtakes the last answer
    assert refreshed(attempt).state == "not_reached"

    root = gather(client, attempt, 2, Digits="2")

    assert root[-1].tag == "Hangup"  # the closing words, as the callee heard them
    contact = refreshed(attempt)
    assert {a.question.position: a.value for a in attempt.answers.all()} == {1: "yes", 2: "no"}
    assert attempt.survey_finished and attempt.outcome == "completed"
    assert contact.state == "completed"  # not queued for another call
    assert not contact.is_callable(frozen + dt.timedelta(days=7))
    assert campaign_stats(attempt.campaign_id)["attempts"]["by_outcome"]["completed"] == 1
    assert CallEvent.objects.filter(attempt=attempt, kind="late_answer").count() == 1


@pytest.mark.django_db
def test_replayed_late_answer_settles_the_contact_once(client, attempt, frozen):
    gather(client, attempt, 1, Digits="1")
    send_status(client, attempt, "completed", CallDuration="20")
    gather(client, attempt, 2, Digits="1")
    gather(client, attempt, 2, Digits="1")  # the provider retried the request
    assert refreshed(attempt).state == "completed"
    assert Answer.objects.filter(attempt=attempt).count() == 2
    assert CallEvent.objects.filter(attempt=attempt, kind="late_answer").count() == 1


@pytest.mark.django_db
def test_opt_out_processed_after_the_final_callback_refuses_the_contact(client, attempt):
    send_status(client, attempt, "completed", CallDuration="8")
    assert refreshed(attempt).state == "not_reached"

    root = gather(client, attempt, 1, Digits=attempt.campaign.opt_out_key)

    assert root[-1].tag == "Hangup"
    assert refreshed(attempt).state == "refused"
    assert attempt.opted_out


@pytest.mark.django_db
def test_call_back_request_processed_after_the_final_callback_books_the_call(client, attempt):
    campaign = attempt.campaign
    campaign.callback_key = "8"
    campaign.save()
    send_status(client, attempt, "completed", CallDuration="8")

    gather(client, attempt, 1, Digits="8")

    contact = refreshed(attempt)
    booked = ScheduledCall.objects.get(contact=contact)
    assert contact.state == "not_reached"
    assert contact.next_attempt_at == attempt.callback_requested_for == booked.next_run_at


@pytest.mark.django_db
def test_late_answer_leaves_a_contact_that_is_on_its_next_call_alone(client, attempt, frozen):
    gather(client, attempt, 1, Digits="1")
    send_status(client, attempt, "completed", CallDuration="20")
    contact = refreshed(attempt)
    second = live_attempt(now=frozen, contact=contact, number=2, status="ringing")

    gather(client, attempt, 2, Digits="1")  # the first call's last answer, very late

    contact = refreshed(attempt)
    assert (contact.state, contact.last_attempt_number) == ("in_progress", 2)
    # The second call finds the survey done: it says goodbye and completes the contact.
    root = twiml(signed_post(client, voice_url(second), {"CallStatus": "in-progress"}))
    assert root.find("Gather") is None
    send_status(client, second, "completed", CallDuration="3")
    assert refreshed(second).state == "completed"


@pytest.mark.django_db
@pytest.mark.parametrize("written_back", [True, False], ids=["dialled", "no-dial-time"])
def test_survey_finished_on_a_call_recovery_closed_as_lost_completes_the_contact(
    client, attempt, frozen, written_back
):
    gather(client, attempt, 1, Digits="1")
    if not written_back:  # recovery gave the attempt back: no sign the provider placed it
        CallAttempt.objects.filter(pk=attempt.pk).update(dialled_at=None)
    attempt.refresh_from_db()
    close_lost_attempt(attempt.pk, now=frozen + dt.timedelta(hours=5))
    assert refreshed(attempt).state in ("not_reached", "pending")

    gather(client, attempt, 2, Digits="1")

    contact = refreshed(attempt)
    assert contact.state == "completed"
    assert contact.attempts_count == 1  # the call counts, whatever recovery gave back
    assert attempt.outcome == "completed"
    assert campaign_stats(attempt.campaign_id)["attempts"]["by_outcome"]["completed"] == 1


def wait_until_blocked_on_a_lock(timeout=10.0) -> None:
    """Until another connection waits for a row lock (it sits in PostgreSQL's lock queue)."""
    waited = threading.Event()
    for _ in range(int(timeout / 0.01)):
        with connections["default"].cursor() as cursor:
            # pg_locks, not pg_stat_activity: the latter is a snapshot per transaction. Only
            # this database's backends: the server may be running other work.
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid IN"
                " (SELECT pid FROM pg_stat_activity WHERE datname = current_database())"
            )
            if cursor.fetchone()[0]:
                return
        waited.wait(0.01)  # polling another process, not waiting for time to pass
    raise AssertionError("nothing queued for a lock")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("keys", "settled"),
    [({"Digits": "1"}, "completed"), ({}, "not_reached")],
    ids=["answer", "silence"],
)
def test_final_callback_during_a_gather_waits_for_it_and_sees_its_answer(
    client, needs_postgres, now, keys, settled
):
    # The gather locks the attempt as it loads it, even when it writes nothing to it (a
    # silence re-prompts): no final callback can settle the contact between the gather's
    # look at the attempt and its answer.
    campaign = RunningCampaignFactory()
    QuestionFactory(campaign=campaign, position=1, kind=K.YES_NO)
    attempt = live_attempt(now=now, campaign=campaign, status="in_progress", answered_by="human")
    other_client, results = Client(), []

    def final_callback():
        try:
            results.append(send_status(other_client, attempt, "completed", CallDuration="9"))
        finally:
            connections.close_all()

    callback = threading.Thread(target=final_callback)
    with transaction.atomic():  # the gather's transaction, held open
        gather(client, attempt, 1, **keys)
        callback.start()
        wait_until_blocked_on_a_lock()
    callback.join(timeout=30)

    assert [r.status_code for r in results] == [204]
    contact = refreshed(attempt)
    assert attempt.status == "completed"
    assert contact.state == settled
    assert not CallEvent.objects.filter(attempt=attempt, kind="late_answer").exists()
