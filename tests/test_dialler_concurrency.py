"""Several ticks at once on PostgreSQL: nobody is dialled twice, no cap is ever exceeded."""

import threading
from collections import Counter

import pytest
from django.db import connections
from django.db.models import Count, Q

from calls.dialler.pace import TokenBucket
from calls.dialler.tick import tick
from calls.models import CallAttempt
from calls.outcomes import settle_contact
from contacts.models import Contact
from tests.factories import RunningCampaignFactory
from tests.fakes import FakeClock, FakeProvider

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONTACTS_PER_CAMPAIGN = 1000
CAMPAIGN_CAP = 60
GLOBAL_CAP = 100
TICKERS = 4


def load_contacts(campaign, now, offset, count=CONTACTS_PER_CAMPAIGN):
    Contact.objects.bulk_create(
        Contact(
            campaign=campaign,
            phone=f"+1212{offset + i:07d}",
            timezones=["America/New_York"],
            timezone_key="America/New_York",
            next_attempt_at=now,
        )
        for i in range(count)
    )


class CapWatchingProvider(FakeProvider):
    """Checks, from its own connection, the live calls at the moment each call is placed."""

    def __init__(self):
        super().__init__()
        self.over_cap: list[str] = []
        self.claim_visible = True

    def place_call(self, attempt, urls):
        try:
            live = CallAttempt.objects.filter(status__in=CallAttempt.LIVE_STATUSES).aggregate(
                everywhere=Count("pk"),
                here=Count("pk", filter=Q(campaign_id=attempt.campaign_id)),
                # The claim committed before the provider is called (no network call in a
                # transaction): this thread's own connection already sees the attempt.
                mine=Count("pk", filter=Q(pk=attempt.pk)),
            )
            if live["here"] > CAMPAIGN_CAP:
                self.over_cap.append("campaign")
            if live["everywhere"] > GLOBAL_CAP:
                self.over_cap.append("global")
            if live["mine"] != 1:
                self.claim_visible = False
        finally:
            connections.close_all()
        return super().place_call(attempt, urls)


def hang_up_everything(now):
    """The callee answers and finishes: what the status webhook does, for each live call."""
    for attempt in CallAttempt.objects.filter(status="initiated").select_related("campaign"):
        finished = CallAttempt.objects.filter(pk=attempt.pk, status="initiated").update(
            status="completed", answered_by="human", survey_finished=True, ended_at=now
        )
        if finished:
            attempt.refresh_from_db()
            settle_contact(attempt, now=now)


def run_tickers(now, provider) -> list[Exception]:
    """TICKERS threads tick at once, each with a pace of its own, and answer and finish every
    live call after each tick, until every contact is completed (at most 200 ticks each: a
    bound, not a wait). Returns what went wrong in them."""
    errors = []
    start = threading.Barrier(TICKERS)

    def ticker():
        clock = FakeClock()
        pace = TokenBucket(1e6, clock=clock, sleep=clock.sleep)
        try:
            start.wait()
            for _ in range(200):
                if not Contact.objects.exclude(state="completed").exists():
                    break
                tick(now, provider=provider, pace=pace)
                hang_up_everything(now)
        except Exception as exc:  # surfaced by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ticker) for _ in range(TICKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_ticks_never_dial_a_contact_twice_nor_exceed_the_caps(
    open_now, dialler_settings, needs_postgres
):
    dialler_settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = GLOBAL_CAP
    dialler_settings.DIALLER_BATCH_SIZE = 50
    campaigns = [RunningCampaignFactory(max_concurrent_calls=CAMPAIGN_CAP) for _ in range(2)]
    for n, campaign in enumerate(campaigns):
        load_contacts(campaign, open_now, n * CONTACTS_PER_CAMPAIGN)
    provider = CapWatchingProvider()
    errors = run_tickers(open_now, provider)
    assert errors == []
    total = 2 * CONTACTS_PER_CAMPAIGN
    dialled = Counter(call["contact"] for call in provider.calls)
    assert len(dialled) == total  # everyone was called ...
    assert max(dialled.values()) == 1  # ... exactly once
    assert CallAttempt.objects.count() == total
    assert Contact.objects.filter(state="completed", attempts_count=1).count() == total
    assert provider.over_cap == []
    assert provider.claim_visible


class NumberWatchingProvider(FakeProvider):
    """Checks, from its own connection, that no other call to the number is live when it is
    placed."""

    def __init__(self):
        super().__init__()
        self.rung_twice: list[str] = []

    def place_call(self, attempt, urls):
        try:
            if (
                CallAttempt.objects.filter(
                    status__in=CallAttempt.LIVE_STATUSES, contact__phone=attempt.contact.phone
                )
                .exclude(pk=attempt.pk)
                .exists()
            ):
                self.rung_twice.append(attempt.contact.phone)
        finally:
            connections.close_all()
        return super().place_call(attempt, urls)


def test_concurrent_ticks_never_ring_one_number_twice_at_once(
    open_now, dialler_settings, needs_postgres
):
    """The same 150 numbers in three campaigns, four ticks at once: each number is rung by one
    campaign at a time, and by all three in the end."""
    dialler_settings.DIALLER_GLOBAL_MAX_CONCURRENT_CALLS = GLOBAL_CAP
    for _ in range(3):
        load_contacts(RunningCampaignFactory(max_concurrent_calls=CAMPAIGN_CAP), open_now, 0, 150)
    provider = NumberWatchingProvider()
    errors = run_tickers(open_now, provider)
    assert errors == []
    assert provider.rung_twice == []
    assert Counter(Counter(call["phone"] for call in provider.calls).values()) == {3: 150}
    assert Contact.objects.filter(state="completed", attempts_count=1).count() == 450
