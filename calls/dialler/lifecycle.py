"""Step 2 of the tick: campaigns start and complete by themselves."""

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef

from calls.hook_events import campaign_completed
from campaigns.models import Campaign, IllegalTransition
from contacts.models import Contact

logger = logging.getLogger(__name__)

STILL_CALLABLE = (Contact.State.PENDING, Contact.State.NOT_REACHED, Contact.State.IN_PROGRESS)


@dataclass
class LifecycleReport:
    started: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # campaign id -> why it did not move


def campaigns_to_complete(now: dt.datetime):
    """Running or paused campaigns past their end, and running ones whose contacts are all
    done (campaign_status_idx, then contact_campaign_state_idx per campaign). A campaign with
    no contacts at all is not "done": its contacts may not be loaded yet; nor is an ad-hoc
    one (calls.booking.ad_hoc), whose next booking may come at any time."""
    contacts = Contact.objects.filter(campaign=OuterRef("pk"))
    past_end = Campaign.objects.filter(
        status__in=[Campaign.Status.RUNNING, Campaign.Status.PAUSED], end_at__lte=now
    )
    all_done = Campaign.objects.filter(status=Campaign.Status.RUNNING, ad_hoc_key="").filter(
        Exists(contacts), ~Exists(contacts.filter(state__in=STILL_CALLABLE))
    )
    return list(past_end) + list(all_done.exclude(pk__in=past_end.values("pk")))


def advance_campaigns(*, now: dt.datetime) -> LifecycleReport:
    """Start scheduled campaigns whose start time has come; complete finished ones. Each move
    is the campaign's own guarded transition, so an operator acting at the same moment wins or
    loses cleanly."""
    report = LifecycleReport()
    due = Campaign.objects.filter(status=Campaign.Status.SCHEDULED, start_at__lte=now)
    for action, campaigns, moved in (
        ("start", due, report.started),
        ("complete", campaigns_to_complete(now), report.completed),
    ):
        for campaign in campaigns:
            try:
                campaign.transition(action, now=now)
            except IllegalTransition as exc:
                report.refused[campaign.pk] = str(exc)
                logger.warning("campaign %s did not %s: %s", campaign.pk, action, exc)
            else:
                moved.append(campaign.pk)
                if action == "complete":
                    campaign_completed(campaign, now=now)
    return report
