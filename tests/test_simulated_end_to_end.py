"""The demo campaign called to the end: the real tick claims and dials, the simulated provider
plays the callees through the real webhooks (signed status callbacks, the survey's TwiML,
answers, opt-outs, call-back bookings), and the retry rules decide who is called again."""

import datetime as dt
import random

import pytest
import time_machine

from calls.demo import load_demo_campaign
from calls.models import Answer, CallAttempt
from calls.telephony.simulated import SimulatedProvider
from contacts.models import Contact, Exclusion


@pytest.mark.slow
@pytest.mark.django_db
def test_demo_campaign_called_to_the_end(now, run_tick, dialler_settings):
    # One dial thread and a seeded claim order: the same calls meet the same outcomes each run.
    dialler_settings.DIALLER_DIAL_THREADS = 1
    random.seed(7)
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
    unfinished = Contact.objects.filter(
        campaign=campaign, state__in=[*Contact.CALLABLE_STATES, Contact.State.IN_PROGRESS]
    )
    for _ in range(80):
        with time_machine.travel(clock, tick=False):
            report = run_tick(clock, provider=provider)
            played += provider.run_pending()
        assert report.errors == []
        if not unfinished.exists():
            break
        clock += dt.timedelta(hours=3)  # past every retry delay; windows open again each day
    assert not unfinished.exists(), [(c, c.state, c.attempts_count) for c in unfinished]

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
