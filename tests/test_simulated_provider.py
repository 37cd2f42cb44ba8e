"""The simulated provider plays calls through the real, signed webhook endpoints."""

import random
from collections import Counter

import pytest
from django.db import connection

from calls.models import Answer, CallAttempt, CallEvent
from calls.telephony.base import ProviderCall, call_urls
from calls.telephony.simulated import SimulatedProvider
from campaigns.models import Question
from contacts.models import Exclusion
from tests.factories import ContactFactory, QuestionFactory, RunningCampaignFactory
from tests.webhook_helpers import live_attempt

K = Question.Kind


@pytest.fixture
def campaign(db):
    campaign = RunningCampaignFactory(machine_detection=True, callback_key="8")
    QuestionFactory(campaign=campaign, position=1, kind=K.YES_NO)
    QuestionFactory(campaign=campaign, position=2, kind=K.SCALE, min_value=1, max_value=5)
    QuestionFactory(campaign=campaign, position=3, kind=K.DIGITS, valid_answers=["1", "2", "3"])
    QuestionFactory(campaign=campaign, position=4, kind=K.SPEECH, prompt="Anything else?")
    return campaign


def simulated(outcome, seed=1):
    return SimulatedProvider(
        rng=random.Random(seed), delay=(0, 0), outcomes={outcome: 1}, background=False
    )


def dial(provider, attempt):
    """What the dialler's dial step does: place the call, then record the SID."""
    sid = provider.place_call(attempt, call_urls(attempt))
    CallAttempt.objects.filter(pk=attempt.pk, status="queued").update(
        status="initiated", provider_call_sid=sid, dialled_at=attempt.created_at
    )
    return sid


def placed(campaign, now, **attempt_kw):
    attempt = live_attempt(
        now=now,
        contact=ContactFactory(campaign=campaign),
        status="queued",
        machine_detection=campaign.machine_detection,
        **attempt_kw,
    )
    CallAttempt.objects.filter(pk=attempt.pk).update(provider_call_sid=None)
    attempt.refresh_from_db()
    return attempt


def after_call(attempt):
    attempt.refresh_from_db()
    attempt.contact.refresh_from_db()
    return (
        attempt,
        attempt.contact,
        dict(Answer.objects.filter(attempt=attempt).values_list("question__position", "value")),
    )


@pytest.mark.django_db
def test_a_completed_call_plays_the_whole_survey_through_the_webhooks(campaign, frozen):
    provider = simulated("completed")
    attempt = placed(campaign, frozen)
    sid = dial(provider, attempt)
    assert sid.startswith("CA") and len(sid) == 34
    assert Answer.objects.count() == 0  # nothing happens before the call is played

    assert provider.run_pending() == ["completed"]
    attempt, contact, answers = after_call(attempt)
    assert attempt.status == "completed"
    assert attempt.provider_call_sid == sid
    assert attempt.answered_by == "human"
    assert attempt.survey_finished
    assert attempt.duration > 0
    assert contact.state == "completed"
    assert sorted(answers) == [1, 2, 3, 4]
    assert answers[1] in ("yes", "no")
    assert 1 <= int(answers[2]) <= 5
    assert answers[3] in ("1", "2", "3")
    assert answers[4]
    statuses = CallEvent.objects.filter(attempt=attempt, kind="status")
    assert list(statuses.values_list("message", flat=True)) == [
        "completed, completed (answered by human); contact completed"
    ]
    webhooks = CallEvent.objects.filter(attempt=attempt, kind="webhook")
    assert webhooks.filter(message__startswith="status_callback").count() == 4
    assert webhooks.filter(message__startswith="voice").count() == 1
    assert all(contact.phone not in str(e.payload) for e in webhooks)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("outcome", "status", "state"),
    [
        ("busy", "busy", "not_reached"),
        ("no_answer", "no_answer", "not_reached"),
        ("failed", "failed", "not_reached"),
        ("machine", "completed", "not_reached"),
        ("hangup", "completed", "not_reached"),
        ("opt_out", "completed", "refused"),
        ("callback", "completed", "not_reached"),
    ],
)
def test_each_outcome_of_the_mix_ends_in_its_state(campaign, frozen, outcome, status, state):
    provider = simulated(outcome)
    attempt = placed(campaign, frozen)
    dial(provider, attempt)
    provider.run_pending()
    attempt, contact, answers = after_call(attempt)
    assert attempt.status == status
    assert contact.state == state
    assert attempt.ended_at is not None
    if outcome == "machine":
        assert attempt.answered_by == "machine"
        assert answers == {}
    if outcome == "hangup":
        assert not attempt.survey_finished
        assert len(answers) < 4
        assert contact.completion_attempts_count == 1
    if outcome == "opt_out":
        assert attempt.opted_out
        assert Exclusion.objects.filter(phone=contact.phone, source="opt_out").exists()
    if outcome == "callback":
        assert attempt.callback_requested_for is not None
        assert contact.next_attempt_at == attempt.callback_requested_for


@pytest.mark.django_db
def test_undetected_machine_records_silence_and_the_call_ends_unfinished(campaign, frozen):
    campaign.machine_detection = False
    campaign.save()
    provider = simulated("machine")
    attempt = placed(campaign, frozen)
    dial(provider, attempt)
    provider.run_pending()
    attempt, contact, answers = after_call(attempt)
    assert attempt.answered_by == "unknown"
    assert answers == {}
    assert CallEvent.objects.filter(attempt=attempt, kind="reprompt").count() == 1
    assert contact.state == "not_reached"


@pytest.mark.django_db
def test_hang_up_then_the_next_call_resumes_where_the_last_stopped(campaign, frozen):
    # Seeds give different hang-up points; find one that answered something first.
    for seed in range(20):
        provider = simulated("hangup", seed=seed)
        attempt = placed(campaign, frozen)
        dial(provider, attempt)
        provider.run_pending()
        attempt, contact, answers = after_call(attempt)
        if answers:
            break
    assert answers and len(answers) < 4
    second = live_attempt(now=frozen, contact=contact, number=2, status="queued")
    CallAttempt.objects.filter(pk=second.pk).update(provider_call_sid=None)
    provider = simulated("completed")
    dial(provider, second)
    provider.run_pending()
    second, contact, second_answers = after_call(second)
    assert set(answers) | set(second_answers) == {1, 2, 3, 4}
    assert not set(answers) & set(second_answers)  # nothing asked twice
    assert contact.state == "completed"


@pytest.mark.django_db
def test_a_call_cancelled_before_answer_ends_canceled(campaign, frozen):
    provider = simulated("completed")
    attempt = placed(campaign, frozen)
    sid = dial(provider, attempt)
    provider.cancel(sid)
    provider.run_pending()
    attempt, contact, answers = after_call(attempt)
    assert attempt.status == "canceled"
    assert answers == {}


@pytest.mark.django_db
def test_asked_about_a_call_it_says_how_it_went(campaign, frozen):
    provider = simulated("busy")
    sid = dial(provider, placed(campaign, frozen))
    assert provider.fetch_status(sid) == ProviderCall("queued")  # placed, not played yet
    provider.run_pending()
    assert provider.fetch_status(sid) == ProviderCall("busy", duration=0, ended_at=frozen)
    assert provider.fetch_status("CA" + "0" * 32) is None


@pytest.mark.django_db
def test_the_same_seed_plays_the_same_calls(campaign, frozen):
    mix = {"completed": 5, "busy": 3, "machine": 2}
    first = SimulatedProvider(rng=random.Random(7), outcomes=mix, background=False)
    second = SimulatedProvider(rng=random.Random(7), outcomes=mix, background=False)
    attempt = placed(campaign, frozen)
    urls = call_urls(attempt)
    sids = [first.place_call(attempt, urls) for _ in range(5)]
    assert sids == [second.place_call(attempt, urls) for _ in range(5)]
    assert [c.outcome for c in first.pending] == [c.outcome for c in second.pending]


@pytest.mark.django_db
def test_outcomes_follow_the_configured_weights(campaign, frozen):
    provider = SimulatedProvider(
        rng=random.Random(3),
        outcomes={"completed": 80, "busy": 20, "failed": 0},
        background=False,
    )
    attempt = placed(campaign, frozen)
    for _ in range(500):
        provider.place_call(attempt, call_urls(attempt))
    counts = Counter(c.outcome for c in provider.pending)
    assert set(counts) == {"completed", "busy"}
    assert 350 < counts["completed"] < 450


def test_an_outcome_mix_with_nothing_to_draw_is_refused():
    with pytest.raises(ValueError, match="SIMULATED_OUTCOMES"):
        SimulatedProvider(outcomes={"teleported": 5}, background=False)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_background_the_call_plays_on_its_own_thread(campaign, frozen):
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(":memory"):
        pytest.skip("an in-memory SQLite database is not shared with another thread")
    provider = SimulatedProvider(
        rng=random.Random(2), delay=(0, 0), outcomes={"completed": 1}, background=True
    )
    attempt = placed(campaign, frozen)
    dial(provider, attempt)
    provider.wait(timeout=30)
    attempt, contact, answers = after_call(attempt)
    assert contact.state == "completed"
    assert len(answers) == 4


@pytest.mark.django_db
def test_without_twilio_credentials_the_simulated_provider_is_used(monkeypatch, settings):
    from calls.telephony import base

    monkeypatch.setattr(base, "_instances", {})
    settings.TELEPHONY_PROVIDER = "simulated"
    settings.SIMULATED_OUTCOMES = {"completed": 3, "busy": 1}
    provider = base.get_provider()
    assert isinstance(provider, SimulatedProvider)
    assert provider.background  # in real use each call plays on its own thread
    assert provider.outcomes == {"completed": 3, "busy": 1}
