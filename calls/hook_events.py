"""The events the calls app sends to webhook subscribers (hooks.emitting.emit), and their
payloads. Each function is called once, where the thing happens, after the guarded write that
made it happen; a payload is built only when someone subscribes to the event.

Payloads name the contact by id and carry its number in E.164: the subscriber is the client's
own system, which gave us those numbers. Nothing here logs them."""

import datetime as dt

from calls.models import Answer, CallAttempt, ScheduledCall
from campaigns.models import Campaign
from contacts.models import Contact
from contacts.tallies import counts_by_state
from hooks.emitting import emit


def _contact_fields(contact_id: int, contact: Contact | None = None) -> dict:
    if contact is None:
        contact = Contact.objects.only("phone", "external_id").get(pk=contact_id)
    return {"contact_id": contact_id, "phone": contact.phone, "external_id": contact.external_id}


def attempt_finished(
    attempt: CallAttempt, contact: Contact | None, state: str | None, *, now: dt.datetime
) -> None:
    """An attempt has just ended and its contact is settled (`state`: its new state, None when
    it had moved on to a newer attempt)."""

    def payload():
        return {
            "attempt_id": attempt.pk,
            "attempt_number": attempt.attempt_number,
            "campaign_id": attempt.campaign_id,
            **_contact_fields(attempt.contact_id, contact),
            "scheduled_call_id": attempt.scheduled_call_id,
            "status": attempt.status,
            "outcome": attempt.outcome,
            "answered_by": attempt.answered_by,
            "reached_provider": attempt.reached_provider,
            "duration": attempt.duration,
            "error_code": attempt.error_code,
            "contact_state": state,
            "created_at": attempt.created_at,
            "dialled_at": attempt.dialled_at,
            "answered_at": attempt.answered_at,
            "ended_at": attempt.ended_at,
        }

    emit("attempt.finished", payload, key=attempt.pk, at=now)


def survey_completed(attempt: CallAttempt, *, now: dt.datetime | None = None) -> None:
    """The callee has answered the survey's last question on this call. `answers` holds all
    of the contact's answers, from this call and earlier ones (a survey resumes)."""

    def payload():
        answers = (
            Answer.objects.filter(attempt__contact=attempt.contact_id)
            .select_related("question")
            .order_by("question__position", "answered_at")
        )
        return {
            "attempt_id": attempt.pk,
            "campaign_id": attempt.campaign_id,
            **_contact_fields(attempt.contact_id),
            "answers": [
                {
                    "question_id": answer.question_id,
                    "position": answer.question.position,
                    "kind": answer.question.kind,
                    "prompt": answer.question.prompt,
                    "value": answer.value,
                    "raw_input": answer.raw_input,
                    "confidence": answer.confidence,
                    "answered_at": answer.answered_at,
                    "attempt_id": answer.attempt_id,
                }
                for answer in answers
            ],
        }

    emit("survey.completed", payload, key=attempt.pk, at=now)


def opted_out_on_call(attempt: CallAttempt, exclusion, *, now: dt.datetime) -> None:
    """The callee pressed the opt-out key: their number is on the do-not-call list for every
    campaign (contacts.hook_events.number_excluded is the same event from an operator)."""

    def payload():
        return {
            **_contact_fields(attempt.contact_id, attempt.contact),
            "campaign_id": attempt.campaign_id,
            "attempt_id": attempt.pk,
            "source": exclusion.source,
            "exclusion_id": exclusion.pk,
            "scope_campaign_id": None,
            "reason": exclusion.reason,
            "expires_at": None,
            "at": now,
        }

    emit("contact.opted_out", payload, key=f"call/{attempt.pk}", at=now)


def campaign_completed(campaign: Campaign, *, now: dt.datetime) -> None:
    """The tick has completed the campaign (all its contacts done, or past its end)."""

    def payload():
        states = counts_by_state(campaign.pk)
        past_end = campaign.end_at is not None and campaign.end_at <= now
        return {
            "campaign_id": campaign.pk,
            "name": campaign.name,
            "reason": "past_end" if past_end else "all_contacts_done",
            "completed_at": now,
            "contacts": {state: states.get(state, 0) for state in Contact.State.values},
        }

    emit("campaign.completed", payload, key=campaign.pk, at=now)


def _booking_fields(call: ScheduledCall) -> dict:
    contact = call.contact
    return {
        "scheduled_call_id": call.pk,
        "campaign_id": contact.campaign_id,
        **_contact_fields(contact.pk, contact),
        "status": call.status,
        "next_run_at": call.next_run_at,
    }


def booking_missed(
    call: ScheduledCall, *, occurrence: dt.datetime, reason: str, now: dt.datetime
) -> None:
    """An occurrence was not placed in time; `status` and `next_run_at` say whether a series
    goes on."""

    def payload():
        return {**_booking_fields(call), "occurrence": occurrence, "reason": reason, "at": now}

    emit("booking.missed", payload, key=f"{call.pk}/{occurrence.isoformat()}", at=now)


def booking_completed(
    call: ScheduledCall, attempt: CallAttempt, *, reached: bool, now: dt.datetime
) -> None:
    """A booked occurrence is over, its retries included: `reached` says whether the person
    was reached (as settle_scheduled_call judged it), `outcome` how the last call ended."""

    def payload():
        return {
            **_booking_fields(call),
            "attempt_id": attempt.pk,
            "outcome": attempt.outcome,
            "reached": reached,
            "at": now,
        }

    emit("booking.completed", payload, key=f"{call.pk}/{attempt.pk}", at=now)
