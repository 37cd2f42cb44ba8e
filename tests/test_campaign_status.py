import itertools

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Campaign, IllegalTransition
from tests.factories import CampaignFactory, QuestionFactory

S = Campaign.Status
LEGAL = {
    (S.DRAFT, "schedule"): S.SCHEDULED,
    (S.DRAFT, "start"): S.RUNNING,
    (S.SCHEDULED, "start"): S.RUNNING,
    (S.RUNNING, "pause"): S.PAUSED,
    (S.PAUSED, "resume"): S.RUNNING,
    (S.RUNNING, "complete"): S.COMPLETED,
    (S.PAUSED, "complete"): S.COMPLETED,
    (S.DRAFT, "cancel"): S.CANCELLED,
    (S.SCHEDULED, "cancel"): S.CANCELLED,
    (S.RUNNING, "cancel"): S.CANCELLED,
    (S.PAUSED, "cancel"): S.CANCELLED,
}
ALL = list(itertools.product(list(S), list(Campaign.TRANSITIONS)))


def campaign_in(status, now):
    campaign = CampaignFactory(status=status, start_at=now)
    QuestionFactory(campaign=campaign)
    return campaign


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "action"), [k for k in ALL if k in LEGAL])
def test_legal_transition_moves_status_in_database(status, action, now):
    campaign = campaign_in(status, now)
    campaign.transition(action, now=now)
    assert campaign.status == LEGAL[(status, action)]
    campaign.refresh_from_db()
    assert campaign.status == LEGAL[(status, action)]


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "action"), [k for k in ALL if k not in LEGAL])
def test_illegal_transition_is_refused_and_changes_nothing(status, action, now):
    campaign = campaign_in(status, now)
    with pytest.raises(IllegalTransition, match=f"Cannot {action}"):
        campaign.transition(action, now=now)
    campaign.refresh_from_db()
    assert campaign.status == status


@pytest.mark.django_db
def test_transition_loses_to_a_concurrent_change(now):
    campaign = campaign_in(S.RUNNING, now)
    stale = Campaign.objects.get(pk=campaign.pk)
    campaign.cancel(now=now)
    with pytest.raises(IllegalTransition, match="it is now cancelled"):
        stale.pause(now=now)
    assert Campaign.objects.get(pk=campaign.pk).status == S.CANCELLED


@pytest.mark.django_db
def test_campaign_without_questions_cannot_start(now):
    campaign = CampaignFactory()
    with pytest.raises(IllegalTransition, match="no questions"):
        campaign.start(now=now)


@pytest.mark.django_db
def test_campaign_without_start_time_cannot_be_scheduled(now):
    campaign = CampaignFactory(start_at=None)
    with pytest.raises(IllegalTransition, match="start time"):
        campaign.schedule(now=now)


def test_unknown_action_is_refused():
    with pytest.raises(IllegalTransition, match="Unknown"):
        Campaign(status=S.DRAFT).transition("explode")


@pytest.mark.parametrize(
    ("start", "end", "ok"),
    [
        ("09:00", "20:00", True),
        ("08:00", "21:00", True),
        ("07:30", "12:00", False),
        ("10:00", "21:30", False),
        ("20:00", "09:00", False),
    ],
)
def test_campaign_window_must_lie_inside_the_legal_window(start, end, ok):
    import datetime as dt

    campaign = Campaign(
        name="x", window_start=dt.time.fromisoformat(start), window_end=dt.time.fromisoformat(end)
    )
    if ok:
        campaign.clean()
    else:
        with pytest.raises(ValidationError, match="legal window"):
            campaign.clean()


def test_campaign_clean_reports_bad_zone_weekdays_and_keys():
    campaign = Campaign(
        name="x", timezone="Mars/Olympus", weekdays=[7], opt_out_key="9", callback_key="9"
    )
    with pytest.raises(ValidationError) as err:
        campaign.clean()
    assert set(err.value.message_dict) == {"timezone", "weekdays", "callback_key"}


def test_campaign_clean_normalises_caller_id():
    campaign = Campaign(name="x", caller_id="(212) 555-0142")
    campaign.clean()
    assert campaign.caller_id == "+12125550142"
