"""The contact tallies under load on PostgreSQL: ticks claiming, status webhooks settling, an
import, and folds and reconciles, all at once on their own connections. Nobody waits for a
counter row, so nothing deadlocks, and the sums are exact."""

import io
import threading

import pytest
from django.db import connections
from django.test import Client

from calls.dialler.pace import TokenBucket
from calls.dialler.tick import tick
from calls.models import CallAttempt
from contacts.importing import import_contacts
from contacts.models import Contact
from contacts.tallies import counts_by_campaign, fold_tallies, reconcile_tallies, true_counts
from tests.factories import CampaignFactory, SurveyCampaignFactory
from tests.fakes import FakeClock, FakeProvider
from tests.webhook_helpers import send_status

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONTACTS_PER_CAMPAIGN = 300
IMPORTED = 2000
TICKERS = 2
SETTLERS = 2


def tallied() -> dict[tuple[int, str], int]:
    return {
        (campaign_id, state): n
        for campaign_id, states in counts_by_campaign().items()
        for state, n in states.items()
    }


def settle_some(client: Client) -> int:
    """Final status callbacks for the live calls: half finish the survey, the others are
    busy (with one attempt each, the contact is exhausted)."""
    settled = 0
    for attempt in CallAttempt.objects.filter(status="initiated").select_related("contact")[:40]:
        if attempt.pk.int % 2:
            CallAttempt.objects.filter(pk=attempt.pk).update(survey_finished=True)
            response = send_status(client, attempt, "completed", CallDuration="20")
        else:
            response = send_status(client, attempt, "busy")
        assert response.status_code == 204, response.content
        settled += 1
    return settled


def test_claims_settles_an_import_and_folds_at_once_keep_exact_tallies(
    open_now, dialler_settings, needs_postgres
):
    dialler_settings.DIALLER_BATCH_SIZE = 50
    campaigns = [SurveyCampaignFactory(max_attempts=1, max_concurrent_calls=60) for _ in range(2)]
    for n, campaign in enumerate(campaigns):
        Contact.objects.bulk_create(
            Contact(
                campaign=campaign,
                phone=f"+1212{n * CONTACTS_PER_CAMPAIGN + i:07d}",
                timezone_key="America/New_York",
                next_attempt_at=open_now,
            )
            for i in range(CONTACTS_PER_CAMPAIGN)
        )
    imported_into = CampaignFactory()
    provider = FakeProvider()
    errors, drifts = [], []
    ticking = threading.Event()
    ticking.set()
    start = threading.Barrier(TICKERS + SETTLERS + 2)

    def run(work):
        def target():
            try:
                start.wait()
                work()
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                connections.close_all()

        return threading.Thread(target=target)

    def ticker():
        clock = FakeClock()
        pace = TokenBucket(1e6, clock=clock, sleep=clock.sleep)
        waiting = Contact.objects.filter(campaign__in=campaigns, state="pending")
        for _ in range(1000):  # until everyone is called (a bound, should it go wrong)
            if not waiting.exists():
                return
            tick(open_now, provider=provider, pace=pace)

    def settler():
        client = Client()
        while ticking.is_set() or CallAttempt.objects.filter(status="initiated").exists():
            settle_some(client)

    def importer():
        rows = "".join(f"+1646{2_000_000 + i},Someone\n" for i in range(IMPORTED))
        stream = io.BytesIO(f"phone,name\n{rows}".encode())
        assert import_contacts(campaign=imported_into, stream=stream).created == IMPORTED

    def maintainer():
        while ticking.is_set():
            fold_tallies()
            drifts.append(reconcile_tallies())

    tickers = [run(ticker) for _ in range(TICKERS)]
    others = [run(settler) for _ in range(SETTLERS)] + [run(importer), run(maintainer)]
    for thread in tickers + others:
        thread.start()
    for thread in tickers:
        thread.join()
    ticking.clear()
    for thread in others:
        thread.join()

    assert errors == []
    assert drifts and all(drift == {} for drift in drifts)  # the triggers never missed
    truth = true_counts()
    assert truth[(imported_into.pk, "pending")] == IMPORTED
    assert sum(n for (pk, state), n in truth.items() if state == "in_progress") == 0
    assert tallied() == truth
    fold_tallies()
    assert tallied() == truth
    assert reconcile_tallies() == {}
