"""Campaign figures for the API and the dashboard, aggregated in SQL (three queries; the
contacts by state are their tallies, contacts.tallies).

Definitions (the same everywhere the figures are shown; DEFINITIONS below is the operator's
wording, used as help text on the dashboard, the results page and in the API's schema):
- contacts `pending`: still to be done (pending, in_progress, not_reached); `completed`: finished
  the survey; `failed`: finished without a survey (refused, exhausted, invalid); `excluded`: on
  the do-not-call list when imported.
- `callable` contacts: all but the excluded ones (an excluded contact is never called).
- `done`: the campaign is finished with the contact: completed + failed. Progress is
  done / callable.
- attempts `reached_provider`: the provider accepted the call (`dialled_at` set; outages and
  lost calls before dialling are not calls); `answered`: a person picked up (the call reached
  `completed`, or has an `answered_at`, and no answering machine took it).
- `answer_rate` = answered / reached_provider.
- `completion_rate` = completed contacts / callable contacts: the share of the list that
  finished the survey.
- talk time: `total_seconds` is the sum of `duration` over attempts, `average_seconds` its mean
  over the attempts that have a duration (the answered ones).
Rates are fractions between 0 and 1, or null when their denominator is zero."""

from django.db.models import Avg, Case, CharField, Count, Q, Sum, Value, When

from calls.models import CallAttempt
from contacts.models import Contact
from contacts.tallies import counts_by_state

PENDING_STATES = (Contact.State.PENDING, Contact.State.IN_PROGRESS, Contact.State.NOT_REACHED)
FAILED_STATES = (Contact.State.REFUSED, Contact.State.EXHAUSTED, Contact.State.INVALID)
# The definitions in the operator's words: the dashboard's and the results page's help text
# and the API's field descriptions, so the three say the same thing.
DEFINITIONS = {
    "done": (
        "Done: contacts the campaign is finished with, those who completed the survey and those "
        "it will not call again (opted out, out of attempts, invalid number). Progress is done "
        "/ callable contacts; callable means every contact but those on the do-not-call list "
        "at import (excluded)."
    ),
    "answer_rate": (
        "Answer rate: calls a person answered (not an answering machine) / calls the provider "
        "put through (dialled)."
    ),
    "completion_rate": (
        "Completion rate: contacts who completed the survey / callable contacts (all but the "
        "excluded ones)."
    ),
}

OUTCOMES = (
    "completed",
    "incomplete",
    "machine",
    "busy",
    "no_answer",
    "failed",
    "rejected",
    "provider_unavailable",
    "lost",
    "stopped",
    "refused",
    "callback",
    "in_progress",
)


def outcome_expression() -> Case:
    """`CallAttempt.outcome` as SQL, so outcomes can be counted without loading rows; an
    attempt still live has the outcome `in_progress`."""
    S = CallAttempt.Status
    return Case(
        When(status__in=CallAttempt.LIVE_STATUSES, then=Value("in_progress")),
        When(opted_out=True, then=Value("refused")),
        When(error_code="number_rejected", then=Value("rejected")),
        When(error_code="provider_unavailable", then=Value("provider_unavailable")),
        When(error_code="lost", survey_finished=True, then=Value("completed")),
        When(error_code="lost", then=Value("lost")),
        When(error_code="stopped", then=Value("stopped")),
        When(callback_requested_for__isnull=False, then=Value("callback")),
        When(status=S.COMPLETED, answered_by=CallAttempt.AnsweredBy.MACHINE, then=Value("machine")),
        When(status=S.COMPLETED, survey_finished=True, then=Value("completed")),
        When(status=S.COMPLETED, then=Value("incomplete")),
        When(status=S.BUSY, then=Value("busy")),
        When(status=S.NO_ANSWER, then=Value("no_answer")),
        default=Value("failed"),
        output_field=CharField(),
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def campaign_stats(campaign_id: int | None = None) -> dict:
    """Totals by contact state and attempt status/outcome, rates and talk time, for one
    campaign or (campaign_id None) for all of them. See the module docstring."""
    attempts = CallAttempt.objects.all()
    if campaign_id is not None:
        attempts = attempts.filter(campaign_id=campaign_id)

    by_state = {state: 0 for state in Contact.State.values}
    by_state.update(counts_by_state(campaign_id))  # the contact tallies, not the contacts

    by_status = {status: 0 for status in CallAttempt.Status.values}
    by_outcome = {outcome: 0 for outcome in OUTCOMES}
    grouped = (
        attempts.order_by()
        .annotate(outcome_value=outcome_expression())
        .values("status", "outcome_value")
        .annotate(n=Count("id"))
    )
    for row in grouped:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        by_outcome[row["outcome_value"]] = by_outcome.get(row["outcome_value"], 0) + row["n"]

    answered = (Q(status=CallAttempt.Status.COMPLETED) | Q(answered_at__isnull=False)) & ~Q(
        answered_by=CallAttempt.AnsweredBy.MACHINE
    )
    totals = attempts.order_by().aggregate(
        total=Count("id"),
        reached_provider=Count("id", filter=Q(dialled_at__isnull=False)),
        answered=Count("id", filter=answered),
        talk_total=Sum("duration"),
        talk_average=Avg("duration"),
    )

    total_contacts = sum(by_state.values())
    completed = by_state[Contact.State.COMPLETED]
    callable_contacts = total_contacts - by_state[Contact.State.EXCLUDED]
    return {
        "campaign_id": campaign_id,
        "contacts": {
            "total": total_contacts,
            "pending": sum(by_state[s] for s in PENDING_STATES),
            "completed": completed,
            "failed": sum(by_state[s] for s in FAILED_STATES),
            "excluded": by_state[Contact.State.EXCLUDED],
            "by_state": by_state,
        },
        "attempts": {
            "total": totals["total"],
            "reached_provider": totals["reached_provider"],
            "answered": totals["answered"],
            "by_status": by_status,
            "by_outcome": by_outcome,
        },
        "answer_rate": _rate(totals["answered"], totals["reached_provider"]),
        "completion_rate": _rate(completed, callable_contacts),
        "talk_time": {
            "total_seconds": totals["talk_total"] or 0,
            "average_seconds": (
                round(totals["talk_average"], 1) if totals["talk_average"] is not None else None
            ),
        },
    }
