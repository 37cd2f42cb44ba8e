"""What happened to a contact, or on one call, in time order: the back office's timelines.

A contact's history is its calls, the answers given on them, their events and the events of
the calls booked for it; an attempt's timeline is its own four moments (created, dialled,
answered, ended), its events and its answers. Each part is shown only to who may read it
(the model's view permission, as in the API)."""

import datetime as dt
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from calls.models import Answer, CallAttempt, CallEvent, ScheduledCall
from calls.reports.dashboard import OUTCOME_LABELS
from contacts.models import Contact
from voicesurvey.times import duration_text

MAX_ENTRIES = 300  # the newest; a contact called a few times has a few dozen


@dataclass
class Entry:
    at: dt.datetime
    what: str  # "Call 2: no answer", "Answer to question 1", "status"…
    detail: str = ""
    payload: dict | None = None  # folded on the page
    attempt: CallAttempt | None = None  # the call it belongs to (a link on the contact page)
    kind: str = ""  # a CSS class: call, answer, event, booking
    extra: dict = field(default_factory=dict)


def outcome_text(attempt: CallAttempt) -> str:
    if attempt.is_live:
        return str(OUTCOME_LABELS["in_progress"])
    return str(OUTCOME_LABELS.get(attempt.outcome, attempt.outcome))


def may_read(user) -> dict[str, bool]:
    return {
        "attempts": user.has_perm("calls.view_callattempt"),
        "answers": user.has_perm("calls.view_answer"),
        "events": user.has_perm("calls.view_callevent"),
        "bookings": user.has_perm("calls.view_scheduledcall"),
    }


def _event_entry(event: CallEvent, attempt: CallAttempt | None = None) -> Entry:
    who = f" ({event.actor})" if event.actor else ""
    return Entry(
        at=event.at,
        what=event.kind.replace("_", " "),
        detail=f"{event.message}{who}".strip(),
        payload=event.payload or None,
        attempt=attempt,
        kind="event",
    )


def _answer_entry(answer: Answer, attempt: CallAttempt | None = None) -> Entry:
    question = answer.question
    confidence = f" (confidence {answer.confidence:.0%})" if answer.confidence is not None else ""
    return Entry(
        at=answer.answered_at,
        what=f"Answer to question {question.position}",
        detail=f"{' '.join(question.prompt.split())} → {answer.value}{confidence}",
        attempt=attempt,
        kind="answer",
    )


def contact_history(contact: Contact, *, user) -> list[Entry]:
    """The contact's history, newest first, as `user` may read it."""
    allowed = may_read(user)
    entries: list[Entry] = []
    attempts = {}
    if allowed["attempts"]:
        attempts = {a.pk: a for a in CallAttempt.objects.filter(contact=contact)}
        for attempt in attempts.values():
            answered = attempt.get_answered_by_display() if attempt.answered_at else ""
            parts = [outcome_text(attempt)]
            if attempt.duration is not None:
                parts.append(duration_text(attempt.duration))
            if answered:
                parts.append(_("answered by: %(who)s") % {"who": answered.lower()})
            entries.append(
                Entry(
                    at=attempt.created_at,
                    what=_("Call %(number)d") % {"number": attempt.attempt_number},
                    detail=", ".join(parts),
                    attempt=attempt,
                    kind="call",
                )
            )
        if allowed["answers"]:
            answers = Answer.objects.filter(attempt__contact=contact).select_related("question")
            entries += [_answer_entry(a, attempts.get(a.attempt_id)) for a in answers]
        if allowed["events"]:
            events = CallEvent.objects.filter(attempt__contact=contact)
            entries += [_event_entry(e, attempts.get(e.attempt_id)) for e in events]
    if allowed["bookings"] and allowed["events"]:
        booked = CallEvent.objects.filter(
            scheduled_call__in=ScheduledCall.objects.filter(contact=contact),
            attempt__isnull=True,
        )
        for event in booked:
            entry = _event_entry(event)
            entry.what = _("Booked call: %(what)s") % {"what": entry.what}
            entry.kind = "booking"
            entries.append(entry)
    entries.sort(key=lambda e: (e.at, e.kind != "call"), reverse=True)
    return entries[:MAX_ENTRIES]


def attempt_timeline(attempt: CallAttempt, *, user) -> list[Entry]:
    """The call's moments, events and answers, oldest first, as `user` may read them."""
    allowed = may_read(user)
    ended = f"{outcome_text(attempt)}, {duration_text(attempt.duration)}"
    moments = [
        (_("Created"), attempt.created_at, _("The dialler claimed the contact.")),
        (_("Dialled"), attempt.dialled_at, _("The provider accepted the call.")),
        (_("Answered"), attempt.answered_at, attempt.get_answered_by_display()),
        (_("Ended"), attempt.ended_at, ended),
    ]
    entries = [
        Entry(at=at, what=what, detail=detail, kind="call")
        for what, at, detail in moments
        if at is not None
    ]
    if allowed["events"]:
        entries += [_event_entry(e) for e in attempt.events.all()]
    if allowed["answers"]:
        entries += [_answer_entry(a) for a in attempt.answers.select_related("question")]
    entries.sort(key=lambda e: (e.at, e.kind != "call"))
    return entries
