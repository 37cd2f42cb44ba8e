"""Campaigns start and complete by themselves on the tick."""

import datetime as dt

import pytest

from campaigns.models import Campaign
from tests.factories import CampaignFactory, ContactFactory, QuestionFactory

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def status_of(campaign):
    campaign.refresh_from_db()
    return campaign.status


def test_scheduled_campaign_starts_at_its_start_time(open_now, run_tick):
    due = CampaignFactory(status="scheduled", start_at=open_now)
    QuestionFactory(campaign=due)
    later = CampaignFactory(status="scheduled", start_at=open_now + HOUR)
    QuestionFactory(campaign=later)
    report = run_tick(open_now)
    assert report.started == [due.pk]
    assert (status_of(due), status_of(later)) == ("running", "scheduled")


def test_scheduled_campaign_that_cannot_start_stays_and_says_why(open_now, run_tick):
    no_questions = CampaignFactory(status="scheduled", start_at=open_now - HOUR)
    report = run_tick(open_now)
    assert status_of(no_questions) == "scheduled"
    assert "no questions" in report.errors[0]


@pytest.mark.parametrize("status", ["running", "paused"])
def test_campaign_past_its_end_completes(open_now, run_tick, status):
    ended = CampaignFactory(status=status, start_at=open_now - 2 * HOUR, end_at=open_now)
    ContactFactory(campaign=ended, next_attempt_at=open_now)
    report = run_tick(open_now)
    assert report.completed == [ended.pk]
    assert status_of(ended) == "completed"


def test_running_campaign_with_every_contact_done_completes(open_now, run_tick):
    done = CampaignFactory(status="running")
    for state in ("completed", "refused", "exhausted", "invalid", "excluded"):
        ContactFactory(campaign=done, state=state)
    run_tick(open_now)
    assert status_of(done) == Campaign.Status.COMPLETED


@pytest.mark.parametrize("state", ["pending", "not_reached", "in_progress"])
def test_running_campaign_with_someone_left_to_call_keeps_running(open_now, run_tick, state):
    campaign = CampaignFactory(status="running")
    ContactFactory(campaign=campaign, state="completed")
    ContactFactory(campaign=campaign, state=state, next_attempt_at=open_now + dt.timedelta(days=1))
    run_tick(open_now)
    assert status_of(campaign) == "running"


def test_running_campaign_without_contacts_yet_keeps_running(open_now, run_tick):
    campaign = CampaignFactory(status="running")
    run_tick(open_now)
    assert status_of(campaign) == "running"


def test_paused_campaign_with_every_contact_done_waits_for_the_operator(open_now, run_tick):
    paused = CampaignFactory(status="paused")
    ContactFactory(campaign=paused, state="completed")
    run_tick(open_now)
    assert status_of(paused) == "paused"
