"""The dial step: what a provider's answer does to the attempt and the contact."""

import datetime as dt
import logging

import pytest

from calls.models import CallAttempt, CallEvent, DiallerHeartbeat
from calls.outcomes import NOT_A_CALL_RETRY
from tests.factories import ContactFactory, RunningCampaignFactory
from tests.fakes import FakeProvider

pytestmark = pytest.mark.django_db


def test_accepted_call_is_initiated_and_counts_as_an_attempt(open_now, run_tick, provider):
    contact = ContactFactory(next_attempt_at=open_now)
    report = run_tick(open_now)
    assert (report.claimed, report.dialled, report.failed) == (1, 1, 0)
    attempt = CallAttempt.objects.get(contact=contact)
    assert attempt.status == "initiated"
    assert attempt.provider_call_sid.startswith("CA")
    assert attempt.reached_provider
    contact.refresh_from_db()
    assert (contact.state, contact.attempts_count) == ("in_progress", 1)
    assert not CallEvent.objects.filter(attempt=attempt, kind="provider_error").exists()


def test_provider_outage_puts_the_contact_back_without_using_an_attempt(open_now, run_tick):
    contact = ContactFactory(next_attempt_at=open_now)
    report = run_tick(open_now, provider=FakeProvider(outages=[contact.phone]))
    assert (report.claimed, report.dialled, report.failed) == (1, 0, 1)
    attempt = CallAttempt.objects.get(contact=contact)
    assert (attempt.status, attempt.error_code) == ("failed", "provider_unavailable")
    assert not attempt.reached_provider
    contact.refresh_from_db()
    assert contact.state == "pending"
    assert contact.attempts_count == 0
    assert contact.last_attempt_number == 1
    assert contact.next_attempt_at == open_now + NOT_A_CALL_RETRY
    assert CallEvent.objects.filter(attempt=attempt, kind="provider_error").exists()


def test_retry_after_an_outage_is_the_next_attempt_row_but_the_first_real_call(open_now, run_tick):
    contact = ContactFactory(next_attempt_at=open_now)
    run_tick(open_now, provider=FakeProvider(outages=[contact.phone]))
    run_tick(open_now + dt.timedelta(minutes=2), provider=FakeProvider())
    contact.refresh_from_db()
    assert (contact.last_attempt_number, contact.attempts_count) == (2, 1)
    assert list(
        CallAttempt.objects.filter(contact=contact)
        .order_by("attempt_number")
        .values_list("attempt_number", "status")
    ) == [(1, "failed"), (2, "initiated")]


def test_outage_backs_off_the_rest_of_that_campaigns_batch(open_now, run_tick, dialler_settings):
    dialler_settings.DIALLER_DIAL_THREADS = 1  # one call in flight at a time: a clear order
    down = RunningCampaignFactory()
    down_contacts = ContactFactory.create_batch(5, campaign=down, next_attempt_at=open_now)
    fine = ContactFactory.create_batch(3, next_attempt_at=open_now)
    provider = FakeProvider(outages=[c.phone for c in down_contacts])
    report = run_tick(open_now, provider=provider)
    assert [c["campaign"] for c in provider.calls].count(down.pk) == 1  # not hammered
    assert (report.dialled, report.failed, report.released) == (3, 1, 4)
    for contact in down_contacts:
        contact.refresh_from_db()
        assert (contact.state, contact.attempts_count) == ("pending", 0)
    assert CallEvent.objects.filter(kind="backed_off").count() == 4
    assert {c["phone"] for c in provider.calls} >= {c.phone for c in fine}


def test_rejected_number_makes_the_contact_invalid(open_now, run_tick):
    bad = ContactFactory(next_attempt_at=open_now)
    good = ContactFactory(campaign=bad.campaign, next_attempt_at=open_now)
    provider = FakeProvider(rejected=[bad.phone])
    report = run_tick(open_now, provider=provider)
    assert (report.dialled, report.failed, report.released) == (1, 1, 0)
    attempt = CallAttempt.objects.get(contact=bad)
    assert (attempt.status, attempt.error_code) == ("failed", "number_rejected")
    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.state == "invalid"
    assert good.state == "in_progress"
    event = CallEvent.objects.get(attempt=attempt, kind="provider_error")
    assert bad.phone not in event.message  # masked


def test_tick_logs_one_line_with_phone_numbers_masked(open_now, run_tick, caplog):
    bad = ContactFactory(next_attempt_at=open_now)
    with caplog.at_level(logging.INFO, logger="calls.dialler.tick"):
        run_tick(open_now, provider=FakeProvider(rejected=[bad.phone]))
    lines = [r.getMessage() for r in caplog.records if r.name == "calls.dialler.tick"]
    assert len(lines) == 1
    assert "claimed=1" in lines[0] and "failed=1" in lines[0]
    assert "number_rejected" in lines[0]
    assert bad.phone not in lines[0]


def test_tick_writes_its_report_to_the_heartbeat(open_now, run_tick):
    ContactFactory(next_attempt_at=open_now)
    run_tick(open_now)
    beat = DiallerHeartbeat.objects.get(pk=1)
    assert beat.last_tick_at == open_now
    assert beat.report["dialled"] == 1


def test_without_a_provider_the_tick_claims_nothing(open_now, dialler_settings, monkeypatch):
    from calls.dialler.tick import tick
    from calls.telephony import base

    monkeypatch.setitem(base.PROVIDERS, "simulated", "calls.telephony.not_installed.Provider")
    monkeypatch.setattr(base, "_instances", {})
    dialler_settings.TELEPHONY_PROVIDER = "simulated"
    contact = ContactFactory(next_attempt_at=open_now)
    report = tick(open_now)
    assert report.skipped == {"no_provider": 1}
    assert "unavailable" in report.errors[0]
    contact.refresh_from_db()
    assert contact.state == "pending"


def test_a_campaign_paused_after_the_claim_gets_no_call_from_that_tick(
    open_now, dialler_settings, provider, monkeypatch
):
    """The operator pauses between the claim's commit and the dialling: its calls are not
    placed, and its contacts are back as they were, no attempt used."""
    from calls.dialler.claim import claim_batch
    from calls.dialler.tick import TickReport, dial_attempts
    from campaigns.models import Campaign

    paused = RunningCampaignFactory()
    kept = ContactFactory.create_batch(2, next_attempt_at=open_now)
    held = ContactFactory.create_batch(3, campaign=paused, next_attempt_at=open_now)
    claim = claim_batch(now=open_now, provider_name=provider.name, budget=10)
    assert len(claim.attempts) == 5
    Campaign.objects.filter(pk=paused.pk).update(status=Campaign.Status.PAUSED)

    report = TickReport(at=open_now)
    dial_attempts(claim.attempts, provider=provider, now=open_now, report=report)

    assert {c["phone"] for c in provider.calls} == {c.phone for c in kept}
    assert (report.dialled, report.released, report.failed) == (2, 3, 0)
    for contact in held:
        contact.refresh_from_db()
        assert (contact.state, contact.attempts_count) == ("pending", 0)
        attempt = CallAttempt.objects.get(contact=contact)
        assert (attempt.status, attempt.outcome) == ("canceled", "stopped")
        assert not attempt.reached_provider
        assert CallEvent.objects.filter(attempt=attempt, kind="released").exists()


def test_calls_not_dialled_because_the_campaign_stopped_are_counted_apart(open_now, run_tick):
    from calls.reports.stats import campaign_stats

    contact = ContactFactory(next_attempt_at=open_now)
    run_tick(open_now)
    CallAttempt.objects.filter(contact=contact).update(
        status="canceled", error_code="stopped", provider_call_sid="", ended_at=open_now
    )
    by_outcome = campaign_stats(contact.campaign_id)["attempts"]["by_outcome"]
    assert (by_outcome["stopped"], by_outcome["failed"]) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_the_database_restarting_mid_dial_the_claimed_calls_are_placed_all_the_same(
    open_now, dialler_settings, provider, fake_clock, monkeypatch, caplog
):
    """The database ends the dial step's connection while it reads its campaigns' statuses,
    twice while it takes a slot of the shared pace and while it closes a rejected number's
    attempt: each statement is tried again on a new connection, and every claimed call is
    placed or closed and written back, instead of the step giving up and the claimed contacts
    waiting out the dial lease."""
    from django.db import OperationalError

    import calls.dialler.tick as tick_module
    from calls.dialler.claim import claim_batch
    from calls.dialler.pace import TokenBucket
    from calls.dialler.tick import TickReport, dial_attempts, stopped_campaigns

    contacts = ContactFactory.create_batch(3, next_attempt_at=open_now)
    rejected = ContactFactory(next_attempt_at=open_now)
    provider.rejected.add(rejected.phone)
    claim = claim_batch(now=open_now, provider_name=provider.name, budget=10)
    ended = {"campaign status read": 1, "shared pace": 2, "not-dialled write": 1}

    def restarting(what, call):
        def once(*args, **kwargs):
            if ended[what]:
                ended[what] -= 1
                raise OperationalError("terminating connection due to administrator command")
            return call(*args, **kwargs)

        return once

    pace = TokenBucket(1000.0, clock=fake_clock, sleep=fake_clock.sleep)
    pace.acquire = restarting("shared pace", pace.acquire)
    monkeypatch.setattr(
        tick_module, "stopped_campaigns", restarting("campaign status read", stopped_campaigns)
    )
    monkeypatch.setattr(
        tick_module,
        "record_not_dialled",
        restarting("not-dialled write", tick_module.record_not_dialled),
    )
    monkeypatch.setattr(tick_module, "DATABASE_RETRIES", (0.0, 0.0))  # back at once
    report = TickReport(at=open_now)
    with caplog.at_level(logging.WARNING, logger="calls.dialler.tick"):
        dial_attempts(claim.attempts, provider=provider, now=open_now, pace=pace, report=report)

    assert {c["phone"] for c in provider.calls} == {c.phone for c in [*contacts, rejected]}
    assert (report.dialled, report.failed) == (3, 1)
    assert sorted(CallAttempt.objects.values_list("status", "error_code")) == [
        ("failed", "number_rejected"),
        *[("initiated", "")] * 3,
    ]
    rejected.refresh_from_db()
    assert rejected.state == "invalid"
    assert caplog.text.count("shared pace failed (OperationalError); again in 0.0 s") == 2
    assert "campaign status read failed (OperationalError)" in caplog.text
    assert "not-dialled write failed (OperationalError)" in caplog.text
