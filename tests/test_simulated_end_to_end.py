"""The demo campaign called to the end by the simulated provider, through the real webhooks.

The dialler's tick is stood in for by `dial_due_contacts` (claim, create the attempt, place the
call, record the SID); everything after the call is placed is the real path: signed status
callbacks, the survey's TwiML, answers, opt-outs, the retry rules."""

import datetime as dt
import random

import pytest
import time_machine
from django.db.models import F

from calls.demo import load_demo_campaign
from calls.models import Answer, CallAttempt
from calls.telephony.base import call_urls
from calls.telephony.simulated import SimulatedProvider
from contacts.models import Contact, Exclusion


def dial_due_contacts(provider, campaign, now):
    due = Contact.objects.filter(
        campaign=campaign,
        state__in=Contact.CALLABLE_STATES,
        next_attempt_at__lte=now,
    )
    for contact in due:
        if contact.attempts_count >= contact.attempt_budget():
            continue
        if Exclusion.objects.filter(phone=contact.phone).exists():
            continue
        number = contact.last_attempt_number + 1
        Contact.objects.filter(pk=contact.pk).update(
            state="in_progress",
            last_attempt_number=number,
            attempts_count=F("attempts_count") + 1,
            last_attempt_at=now,
        )
        attempt = CallAttempt.objects.create(
            contact=contact,
            campaign=campaign,
            attempt_number=number,
            created_at=now,
            machine_detection=campaign.machine_detection,
            provider="simulated",
        )
        sid = provider.place_call(attempt, call_urls(attempt))
        CallAttempt.objects.filter(pk=attempt.pk, status="queued").update(
            status="initiated", provider_call_sid=sid, dialled_at=now
        )
    return provider.run_pending()


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_campaign_called_to_the_end(now):
    campaign, _ = load_demo_campaign(now=now, contacts=24)
    provider = SimulatedProvider(
        rng=random.Random(42),
        delay=(0, 0),
        outcomes={
            "completed": 50,
            "busy": 10,
            "no_answer": 10,
            "machine": 10,
            "hangup": 10,
            "failed": 4,
            "opt_out": 3,
            "callback": 3,
        },
        background=False,
    )
    clock = now
    played = []
    for _ in range(40):
        with time_machine.travel(clock, tick=False):
            played += dial_due_contacts(provider, campaign, clock)
        if not Contact.objects.filter(campaign=campaign, state__in=Contact.CALLABLE_STATES):
            break
        clock += dt.timedelta(hours=3)  # past every retry delay of the demo campaign

    assert {"completed", "busy", "machine", "hangup"} <= set(played)
    questions = campaign.questions.count()
    for contact in Contact.objects.filter(campaign=campaign):
        attempts = list(contact.attempts.order_by("attempt_number"))
        last = attempts[-1]
        assert all(a.status in CallAttempt.FINAL_STATUSES for a in attempts)
        answered = Answer.objects.filter(attempt__contact=contact)
        assert answered.count() == answered.values("question").distinct().count()
        if contact.state == "completed":
            assert last.survey_finished and last.status == "completed"
            assert answered.count() == questions
        elif contact.state == "refused":
            assert last.opted_out
            assert Exclusion.objects.filter(phone=contact.phone, source="opt_out").exists()
        elif contact.state == "exhausted":
            assert contact.attempts_count == contact.attempt_budget()
            assert last.outcome in ("busy", "no_answer", "failed", "machine", "incomplete")
        else:
            pytest.fail(f"{contact} ended {contact.state} after {len(attempts)} attempts")
    states = set(Contact.objects.filter(campaign=campaign).values_list("state", flat=True))
    assert "completed" in states
    assert Answer.objects.filter(attempt__campaign=campaign).exists()
