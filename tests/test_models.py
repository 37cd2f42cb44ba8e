"""The database itself refuses inconsistent rows, whatever door they come through."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.models import Answer, CallAttempt, CallEvent, ScheduledCall
from campaigns.models import Campaign, Question
from contacts.models import Contact, Exclusion
from tests.factories import (
    AnswerFactory,
    CallAttemptFactory,
    CampaignFactory,
    ContactFactory,
    ExclusionFactory,
    QuestionFactory,
    ScheduledCallFactory,
)


def rejected(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()
    return True


@pytest.mark.django_db
def test_contact_phone_is_normalised_and_zone_derived_on_save():
    campaign = CampaignFactory(timezone="Europe/Paris")
    contact = Contact.objects.create(campaign=campaign, phone="(702) 555-0142")
    assert contact.phone == "+17025550142"
    assert contact.timezones == ["America/Los_Angeles"]
    assert contact.timezone_key == "America/Los_Angeles"


@pytest.mark.django_db
def test_contact_without_derivable_zone_uses_campaign_zone():
    campaign = CampaignFactory(timezone="Europe/Paris")
    contact = Contact.objects.create(campaign=campaign, phone="+882123456789")
    assert contact.timezones == []
    assert contact.zones == ["Europe/Paris"]


@pytest.mark.django_db
def test_contact_zone_override_wins_over_the_number():
    contact = ContactFactory(phone="+12125550142", timezones=["America/Chicago"])
    assert contact.timezone_key == "America/Chicago"


@pytest.mark.django_db
def test_same_phone_twice_in_one_campaign_is_rejected_but_allowed_in_another():
    contact = ContactFactory(phone="+12125550142")
    assert rejected(lambda: ContactFactory(campaign=contact.campaign, phone="+12125550142"))
    ContactFactory(phone="+12125550142")  # another campaign
    assert Contact.objects.filter(phone="+12125550142").count() == 2


@pytest.mark.django_db
def test_contact_constraints():
    contact = ContactFactory()
    qs = Contact.objects.filter(pk=contact.pk)
    assert rejected(lambda: qs.update(state="lost"))
    assert rejected(lambda: qs.update(phone="2125550142"))
    assert rejected(lambda: qs.update(attempts_count=2, last_attempt_number=1))
    assert rejected(lambda: qs.update(timezone_key=""))


@pytest.mark.django_db
def test_campaign_constraints(now):
    campaign = CampaignFactory()
    qs = Campaign.objects.filter(pk=campaign.pk)
    assert rejected(lambda: qs.update(status="on_fire"))
    assert rejected(lambda: qs.update(max_attempts=0))
    assert rejected(lambda: qs.update(max_concurrent_calls=0))
    assert rejected(lambda: qs.update(start_at=now, end_at=now - dt.timedelta(hours=1)))
    assert rejected(lambda: qs.update(window_start=dt.time(9), window_end=dt.time(9)))
    assert rejected(lambda: qs.update(window_policy="moon"))
    assert rejected(lambda: qs.update(machine_policy="sing"))
    assert rejected(lambda: qs.update(opt_out_key="9", callback_key="9"))


@pytest.mark.django_db
def test_question_constraints():
    question = QuestionFactory(position=1)
    assert rejected(lambda: QuestionFactory(campaign=question.campaign, position=1))
    qs = Question.objects.filter(pk=question.pk)
    assert rejected(lambda: qs.update(position=0))
    assert rejected(lambda: qs.update(kind="essay"))
    assert rejected(lambda: qs.update(kind="scale", min_value=5, max_value=1))
    assert rejected(lambda: qs.update(kind="scale", min_value=None, max_value=None))
    qs.update(kind="scale", min_value=1, max_value=5)


@pytest.mark.django_db
def test_exclusion_unique_per_phone_and_scope():
    campaign = CampaignFactory()
    ExclusionFactory(phone="+12125550142", campaign=None)
    assert rejected(lambda: ExclusionFactory(phone="+12125550142", campaign=None))
    ExclusionFactory(phone="+12125550142", campaign=campaign)
    assert rejected(lambda: ExclusionFactory(phone="+12125550142", campaign=campaign))
    assert Exclusion.objects.filter(phone="+12125550142").count() == 2


@pytest.mark.django_db
def test_exclusion_constraints_and_normalisation():
    exclusion = Exclusion.objects.create(phone="212 555 0199", source="complaint")
    assert exclusion.phone == "+12125550199"
    qs = Exclusion.objects.filter(pk=exclusion.pk)
    assert rejected(lambda: qs.update(source="rumour"))
    assert rejected(lambda: qs.update(phone="2125550199"))


@pytest.mark.django_db
def test_attempt_number_unique_per_contact_and_sid_unique_once_known():
    attempt = CallAttemptFactory(attempt_number=1, provider_call_sid="CA1")
    assert rejected(lambda: CallAttemptFactory(contact=attempt.contact, attempt_number=1))
    assert rejected(lambda: CallAttemptFactory(provider_call_sid="CA1"))
    CallAttemptFactory(provider_call_sid=None)
    CallAttemptFactory(provider_call_sid=None)  # unknown SIDs do not collide


@pytest.mark.django_db
def test_attempt_constraints(now):
    attempt = CallAttemptFactory()
    qs = CallAttempt.objects.filter(pk=attempt.pk)
    assert rejected(lambda: qs.update(attempt_number=0))
    assert rejected(lambda: qs.update(status="exploded"))
    assert rejected(lambda: qs.update(answered_by="robot"))
    assert rejected(lambda: qs.update(status="completed", ended_at=None))
    qs.update(status="completed", ended_at=now)
    assert rejected(lambda: qs.update(call_id=CallAttemptFactory().call_id))


@pytest.mark.django_db
def test_call_event_must_belong_to_an_attempt_or_a_scheduled_call():
    assert rejected(lambda: CallEvent.objects.create(kind="x", at=timezone.now()))


@pytest.mark.django_db
def test_answer_once_per_question_per_call_and_confidence_range():
    answer = AnswerFactory()
    assert rejected(lambda: AnswerFactory(attempt=answer.attempt, question=answer.question))
    qs = Answer.objects.filter(pk=answer.pk)
    assert rejected(lambda: qs.update(confidence=1.5))


@pytest.mark.django_db
def test_scheduled_call_constraints():
    call = ScheduledCallFactory()
    qs = ScheduledCall.objects.filter(pk=call.pk)
    assert rejected(lambda: qs.update(status="someday"))
    assert rejected(lambda: qs.update(next_run_at=None))
    qs.update(status="cancelled", next_run_at=None)


@pytest.mark.django_db
def test_retry_delay_follows_the_outcome():
    campaign = CampaignFactory(
        retry_busy_minutes=5, retry_no_answer_minutes=50, completion_retry_minutes=7
    )
    assert campaign.retry_delay("busy") == dt.timedelta(minutes=5)
    assert campaign.retry_delay("no_answer") == dt.timedelta(minutes=50)
    assert campaign.retry_delay("incomplete") == dt.timedelta(minutes=7)
    assert campaign.retry_delay("failed") == dt.timedelta(minutes=campaign.retry_failed_minutes)


@pytest.mark.parametrize(
    "question, clashes_with_9",
    [
        (dict(kind="yes_no"), False),
        (dict(kind="scale", min_value=1, max_value=5), False),
        (dict(kind="scale", min_value=0, max_value=10), True),
        (dict(kind="digits", valid_answers=["1", "9"]), True),
        (dict(kind="digits", valid_answers=["19", "91"]), False),  # two keys: not the opt-out
        (dict(kind="digits", valid_answers=[]), False),  # any entry: 9 is simply reserved
        (dict(kind="speech"), False),
    ],
)
def test_a_question_clashes_with_a_reserved_key_only_when_it_is_a_one_key_answer(
    question, clashes_with_9
):
    campaign = Campaign(opt_out_key="9", callback_key="")
    found = Question(**question).clashing_key(campaign)
    assert found == ("opt_out_key" if clashes_with_9 else None)
