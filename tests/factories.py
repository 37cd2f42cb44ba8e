import datetime as dt

import factory
from django.utils import timezone

from calls.models import Answer, CallAttempt, CallEvent, ScheduledCall
from campaigns.models import Campaign, Question
from contacts.models import Contact, Exclusion


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    timezone = "America/New_York"
    weekdays = [0, 1, 2, 3, 4, 5, 6]
    window_start = dt.time(9, 0)
    window_end = dt.time(20, 0)
    intro_message = "Hello {name|there}."


class RunningCampaignFactory(CampaignFactory):
    status = Campaign.Status.RUNNING


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    campaign = factory.SubFactory(CampaignFactory)
    position = factory.Sequence(lambda n: n + 1)
    prompt = factory.Sequence(lambda n: f"Question {n}? Press 1 for yes, 2 for no.")
    kind = Question.Kind.YES_NO


class SurveyCampaignFactory(RunningCampaignFactory):
    """A running campaign with one question: what a booking needs (calls.booking.scheduling)."""

    class Meta:
        skip_postgeneration_save = True

    question = factory.RelatedFactory(QuestionFactory, factory_related_name="campaign", position=1)


def us_number(n: int) -> str:
    # 212 (New York) numbers in the 555-01xx block are valid for libphonenumber.
    return f"+1212555{n % 10000:04d}"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    campaign = factory.SubFactory(RunningCampaignFactory)
    phone = factory.Sequence(lambda n: us_number(n + 100))
    name = factory.Faker("first_name")
    # Due long before any test's `now` (a date of the wall clock would make a test that ticks
    # at a fixed time fail from that time of day on).
    next_attempt_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class ExclusionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Exclusion

    phone = factory.Sequence(lambda n: us_number(n + 5000))
    campaign = None
    source = Exclusion.Source.MANUAL
    reason = "asked not to be called"


class CallAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallAttempt

    contact = factory.SubFactory(ContactFactory)
    campaign = factory.SelfAttribute("contact.campaign")
    attempt_number = factory.Sequence(lambda n: n + 1)
    created_at = factory.LazyFunction(timezone.now)
    provider = "simulated"


class CallEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallEvent

    attempt = factory.SubFactory(CallAttemptFactory)
    kind = "status"
    at = factory.LazyFunction(timezone.now)


class AnswerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Answer

    attempt = factory.SubFactory(CallAttemptFactory)
    question = factory.SubFactory(
        QuestionFactory, campaign=factory.SelfAttribute("..attempt.campaign")
    )
    raw_input = "1"
    value = "yes"
    answered_at = factory.LazyFunction(timezone.now)


class ScheduledCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScheduledCall

    contact = factory.SubFactory(ContactFactory)
    run_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=1))
    next_run_at = factory.SelfAttribute("run_at")
    timezone = "UTC"


def book(contact, now, **kw):
    """Book a call through the domain function: by default today 14:00 New York time."""
    from calls.booking.scheduling import schedule_call

    kw.setdefault("timezone", "America/New_York")
    kw.setdefault("run_at", dt.datetime(2026, 11, 23, 14, 0))
    return schedule_call(contact=contact, now=now, **kw)


class WebhookSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "hooks.WebhookSubscription"

    url = factory.Sequence(lambda n: f"https://hooks.example.com/receiver/{n}")
    event_types = factory.LazyFunction(lambda: ["attempt.finished"])


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "hooks.WebhookDelivery"

    subscription = factory.SubFactory(WebhookSubscriptionFactory)
    event_type = "attempt.finished"
    payload = factory.LazyAttribute(
        lambda d: {"id": str(d.event_id), "type": d.event_type, "data": {}}
    )
    event_id = factory.Faker("uuid4", cast_to=None)
    created_at = factory.LazyFunction(timezone.now)
    next_attempt_at = factory.SelfAttribute("created_at")
