"""Calls we hear nothing of are asked about at the provider before anything is presumed: a
dropped final callback is settled from the provider's answer, a call still playing is left
live, and recovery closes as lost only what the provider cannot account for."""

import datetime as dt
import threading

import pytest
import time_machine

from calls.dialler import recovery
from calls.models import CallAttempt, CallEvent
from calls.reports.live import tick_summary
from calls.telephony.base import ProviderCall, ProviderUnavailable
from tests.factories import ContactFactory, QuestionFactory, RunningCampaignFactory
from tests.fakes import FakeProvider
from tests.webhook_helpers import send_status, signed_post, twiml, voice_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(open_now):
    """The webhooks' clock, moved along with the ticks' `now`."""
    with time_machine.travel(open_now, tick=False) as traveller:
        yield traveller


def dialled(run_tick, now, n=1, **campaign_kw):
    """n contacts dialled by a tick at `now` (FakeProvider): their initiated attempts."""
    campaign = RunningCampaignFactory(**campaign_kw)
    ContactFactory.create_batch(n, campaign=campaign, next_attempt_at=now)
    assert run_tick(now).dialled == n
    return list(CallAttempt.objects.filter(campaign=campaign).order_by("created_at"))


def later(now, seconds):
    return now + dt.timedelta(seconds=seconds)


def states(attempt):
    attempt.refresh_from_db()
    attempt.contact.refresh_from_db()
    return attempt.status, attempt.contact.state


def test_dropped_final_callback_is_settled_from_the_providers_answer(
    client, clock, open_now, run_tick, provider, settings
):
    campaign_kw = {"closing_message": "Bye."}
    (attempt,) = dialled(run_tick, open_now, **campaign_kw)
    QuestionFactory(campaign=attempt.campaign, position=1, kind="yes_no")
    send_status(client, attempt, "ringing", sequence=1)
    send_status(client, attempt, "in-progress", sequence=2)
    signed_post(client, voice_url(attempt), {"CallStatus": "in-progress"})
    gather = voice_url(attempt).replace("/voice/", "/gather/") + "1/"
    assert twiml(signed_post(client, gather, {"CallStatus": "in-progress", "Digits": "1"}))
    # The `completed` callback is dropped on the way; Twilio does not send it again.
    provider.statuses[attempt.provider_call_sid] = ProviderCall(
        "completed", duration=31, answered_by="human", ended_at=later(open_now, 35)
    )

    quiet = later(open_now, settings.DIALLER_QUIET_CALL_SECONDS - 1)
    clock.move_to(quiet)
    assert run_tick(quiet).checked == 0  # still within the quiet time: nobody asks
    now = later(open_now, settings.DIALLER_QUIET_CALL_SECONDS + 1)
    clock.move_to(now)
    report = run_tick(now)

    assert (report.checked, report.reconciled, report.recovered) == (1, 1, 0)
    assert states(attempt) == ("completed", "completed")
    assert (attempt.duration, attempt.ended_at) == (31, later(open_now, 35))
    assert CallEvent.objects.filter(attempt=attempt, kind="provider_check").count() == 1
    assert "reconciled=1" in str(report)
    assert "1 call settled by asking the provider" in tick_summary(report.as_dict())


def test_call_still_queued_at_the_lease_is_asked_about_not_closed(
    clock, open_now, run_tick, provider, settings
):
    # Callbacks late under load: the attempt is still `initiated` when the dial lease ends.
    (attempt,) = dialled(run_tick, open_now)
    provider.statuses[attempt.provider_call_sid] = ProviderCall("in-progress")
    now = later(open_now, settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    clock.move_to(now)

    report = run_tick(now)

    assert (report.checked, report.reconciled, report.recovered) == (1, 0, 0)
    assert states(attempt) == ("in_progress", "in_progress")  # moved on, still live
    assert attempt.answered_at == now
    # Asked again only once it has been quiet as long again.
    assert run_tick(later(now, 5)).checked == 0
    again = later(now, settings.DIALLER_QUIET_CALL_SECONDS + 1)
    clock.move_to(again)
    assert run_tick(again).checked == 1
    assert provider.fetched == [attempt.provider_call_sid] * 2


def test_a_call_playing_its_survey_is_never_asked_about(
    client, clock, open_now, run_tick, provider, settings
):
    (attempt,) = dialled(run_tick, open_now)
    send_status(client, attempt, "in-progress", sequence=2)
    now = later(open_now, settings.DIALLER_QUIET_CALL_SECONDS - 10)
    clock.move_to(now)
    signed_post(client, voice_url(attempt), {"CallStatus": "in-progress"})  # news of it
    now = later(open_now, settings.DIALLER_QUIET_CALL_SECONDS + 10)
    clock.move_to(now)
    assert run_tick(now).checked == 0
    assert provider.fetched == []


@pytest.mark.parametrize(
    ("answer", "status", "outcome"),
    [
        (ProviderCall("busy", duration=0), "busy", "busy"),
        (ProviderCall("no-answer", duration=0), "no_answer", "no_answer"),
        (ProviderCall("canceled", duration=0), "canceled", "failed"),
        (ProviderCall("failed", duration=0), "failed", "failed"),
        (
            ProviderCall("completed", duration=9, answered_by="machine_start"),
            "completed",
            "machine",
        ),
    ],
    ids=["busy", "no-answer", "canceled", "failed", "machine"],
)
def test_each_final_answer_settles_as_its_callback_would(
    clock, open_now, run_tick, provider, settings, answer, status, outcome
):
    (attempt,) = dialled(run_tick, open_now)
    provider.statuses[attempt.provider_call_sid] = answer
    now = later(open_now, settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    clock.move_to(now)
    assert run_tick(now).reconciled == 1
    assert states(attempt) == (status, "not_reached")
    assert attempt.outcome == outcome
    assert attempt.contact.next_attempt_at == now + attempt.campaign.retry_delay(outcome)


def test_call_the_provider_has_no_record_of_is_lost(clock, open_now, run_tick, settings):
    (attempt,) = dialled(run_tick, open_now)  # FakeProvider: statuses knows no call
    now = later(open_now, settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    clock.move_to(now)
    report = run_tick(now)
    assert (report.checked, report.recovered) == (1, 1)
    attempt.refresh_from_db()
    assert (attempt.status, attempt.error_code) == ("failed", "lost")
    assert "no such call" in attempt.error_message


def test_while_the_provider_cannot_answer_the_call_stays_live_until_the_longest_call(
    clock, open_now, run_tick, provider, settings
):
    (attempt,) = dialled(run_tick, open_now)
    provider.statuses[attempt.provider_call_sid] = ProviderUnavailable("HTTP 503", code="503")
    now = later(open_now, settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    clock.move_to(now)
    report = run_tick(now)
    assert (report.checked, report.reconciled, report.recovered) == (1, 0, 0)
    assert states(attempt) == ("initiated", "in_progress")

    longest = later(open_now, settings.DIALLER_MAX_CALL_SECONDS + 1)
    clock.move_to(longest)
    assert run_tick(longest).recovered == 1
    attempt.refresh_from_db()
    assert (attempt.status, attempt.error_code) == ("failed", "lost")


def test_at_most_so_many_calls_are_asked_about_per_tick_oldest_first(
    clock, open_now, run_tick, provider, settings
):
    settings.DIALLER_PROVIDER_CHECKS_PER_TICK = 2
    attempts = []
    for n in range(4):
        attempts += dialled(run_tick, later(open_now, n))
    for attempt in attempts:
        provider.statuses[attempt.provider_call_sid] = ProviderCall("ringing")
    now = later(open_now, settings.DIALLER_DIAL_LEASE_SECONDS + 10)
    clock.move_to(now)

    assert run_tick(now).checked == 2
    assert provider.fetched == [a.provider_call_sid for a in attempts[:2]]
    assert run_tick(later(now, 5)).checked == 2
    assert provider.fetched[2:] == [a.provider_call_sid for a in attempts[2:]]


def test_a_provider_slower_than_the_tick_allows_is_asked_again_next_tick(
    clock, open_now, run_tick, provider, settings, monkeypatch
):
    (attempt,) = dialled(run_tick, open_now)
    hung = threading.Event()
    monkeypatch.setattr(recovery, "CHECK_SECONDS", 0.05)
    monkeypatch.setattr(provider, "fetch_status", lambda sid: hung.wait(30))
    now = later(open_now, settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    clock.move_to(now)
    try:
        report = run_tick(now)
    finally:
        hung.set()
    assert (report.checked, report.reconciled, report.recovered) == (1, 0, 0)
    assert states(attempt) == ("initiated", "in_progress")


class CannotBeAsked:
    """A provider without fetch_status (an older or third-party adapter)."""

    name = "fake"

    def __init__(self):
        self.placed = FakeProvider()

    def place_call(self, attempt, urls):
        return self.placed.place_call(attempt, urls)

    def cancel(self, sid):
        pass


def test_a_provider_that_cannot_be_asked_has_its_silent_calls_closed_at_the_lease(
    clock, open_now, run_tick, settings
):
    provider = CannotBeAsked()
    ContactFactory(next_attempt_at=open_now)
    assert run_tick(open_now, provider=provider).dialled == 1
    now = later(open_now, settings.DIALLER_DIAL_LEASE_SECONDS + 1)
    clock.move_to(now)
    report = run_tick(now, provider=provider)
    assert (report.checked, report.recovered) == (0, 1)
    assert CallAttempt.objects.get().error_code == "lost"
