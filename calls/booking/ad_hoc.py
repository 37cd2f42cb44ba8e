"""Ad-hoc calls: one call to a number, with a message or a survey, without building a campaign.

The call is an ordinary booking (calls.booking.scheduling) of a contact in a campaign made for
it: a running campaign marked by `ad_hoc_key`, a fingerprint of what the call says, so the same
message or survey booked again reuses its campaign (and its results add up there). An ad-hoc
campaign places only its bookings: the tick's campaign calling leaves it out
(calls.dialler.claim.running_campaigns) and it never completes by itself
(calls.dialler.lifecycle), so a booking that did not reach the person is not redialled by the
campaign's own retry rules."""

import datetime as dt
import hashlib
import json

from django.core.exceptions import ValidationError
from django.db import transaction

from calls.booking.scheduling import schedule_call
from calls.models import ScheduledCall
from campaigns.editing import save_campaign
from campaigns.models import ALL_WEEKDAYS, Campaign
from contacts.editing import add_contact
from contacts.models import Contact, is_excluded
from contacts.phones import InvalidPhone, mask_phone, normalise_phone


class DoNotCall(Exception):
    """The number is on the do-not-call list (API: 409)."""


def ad_hoc_key(*, message: str, questions: list[dict], voice: str, language: str) -> str:
    """The fingerprint of what a call says: equal for the same message, survey and voice."""
    said = {"message": message, "questions": questions, "voice": voice, "language": language}
    return hashlib.sha256(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()


def ad_hoc_campaign(
    *, message: str, questions: list[dict], voice: str, language: str, by=None
) -> Campaign:
    """The running ad-hoc campaign that says `message` (then hangs up, when there are no
    questions) and asks `questions`: found by its fingerprint, else made. Raises
    ValidationError for questions the campaign's own rules refuse."""
    key = ad_hoc_key(message=message, questions=questions, voice=voice, language=language)
    found = (
        Campaign.objects.filter(ad_hoc_key=key, status=Campaign.Status.RUNNING)
        .order_by("pk")
        .first()
    )
    if found is not None:
        return found
    what = f"survey of {len(questions)} question(s)" if questions else "message"
    opening = " ".join((message or (questions[0]["prompt"] if questions else "")).split())
    fields = {
        "name": f"Ad-hoc {what}: {opening[:60]}",
        "description": "Made by the API for ad-hoc calls (POST /api/v1/scheduled-calls/ad-hoc/).",
        "status": Campaign.Status.RUNNING,  # made to place its bookings: nothing to start
        "intro_message": message,
        "weekdays": list(ALL_WEEKDAYS),
        "machine_detection": False,
        "voice": voice,
        "language": language,
    }
    if not questions:
        fields["closing_message"] = ""  # the message, then the hang-up
    return save_campaign(
        campaign=Campaign(ad_hoc_key=key), fields=fields, questions=questions or None, by=by
    )


@transaction.atomic
def book_ad_hoc_call(
    *,
    phone: str,
    now: dt.datetime,
    at: dt.datetime | None = None,
    timezone: str = "UTC",
    rrule: str = "",
    message: str = "",
    questions: list[dict] | None = None,
    voice: str = "alice",
    language: str = "en-US",
    by=None,
    **booking,
) -> ScheduledCall:
    """Book a call to `phone` at `at` (default: now) that plays `message` and, when given,
    asks `questions` (positions default to their order). Raises ValidationError for bad input
    (the number, the survey, the time) and DoNotCall for a number on the do-not-call list.
    `booking`: schedule_call's other options (note, max_retries…)."""
    try:
        phone = normalise_phone(phone)
    except InvalidPhone as exc:
        raise ValidationError({"phone": str(exc)}) from exc
    message = (message or "").strip()
    questions = [
        {**question, "position": question.get("position") or n}
        for n, question in enumerate(questions or [], start=1)
    ]
    if not message and not questions:
        raise ValidationError(
            {"message": "Give the message to play, the questions to ask, or both."}
        )
    if is_excluded(phone, campaign_id=None, now=now):
        raise DoNotCall(f"{mask_phone(phone)} is on the do-not-call list.")
    campaign = ad_hoc_campaign(
        message=message, questions=questions, voice=voice, language=language, by=by
    )
    if is_excluded(phone, campaign_id=campaign.pk, now=now):
        raise DoNotCall(f"{mask_phone(phone)} is on the do-not-call list of this campaign.")
    contact = Contact.objects.filter(campaign=campaign, phone=phone).first()
    if contact is None:
        contact = add_contact(campaign=campaign, fields={"phone": phone}, now=now)
    try:
        return schedule_call(
            contact=contact,
            run_at=at or now,
            timezone=timezone,
            rrule=rrule,
            now=now,
            by=by,
            **booking,
        )
    except ValidationError as exc:  # named as the ad-hoc request names it
        errors = getattr(exc, "error_dict", None) or {"at": exc.error_list}
        raise ValidationError({"at" if k == "run_at" else k: v for k, v in errors.items()}) from exc
