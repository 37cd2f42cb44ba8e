"""The provider's doors: status callbacks and the survey's voice and gather webhooks.

Each view checks the signature (403, nothing written), finds the attempt (404), logs the
request as a CallEvent with the phone numbers masked, and calls one domain function."""

import datetime as dt
import email.utils
import logging
from functools import wraps

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls import survey
from calls.models import CallAttempt, CallEvent
from calls.signatures import has_valid_signature
from calls.status import record_call_status
from campaigns.models import Question
from contacts.phones import mask_phone

log = logging.getLogger(__name__)

PHONE_PARAMS = ("To", "From", "Called", "Caller", "ForwardedFrom", "CalledVia")


def signed(view):
    """POST only, no CSRF (the signature is the guard); a missing or bad signature is
    answered 403 before the view runs, so nothing is written."""

    @csrf_exempt
    @require_POST
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not has_valid_signature(request):
            log.warning("webhook %s refused: missing or bad signature", request.path)
            return HttpResponseForbidden("Invalid signature.")
        return view(request, *args, **kwargs)

    return wrapper


def provider_webhook(*related: str):
    """A signed webhook about one attempt: the attempt loaded (with the `related` rows the
    view needs), the request logged as a CallEvent, the view run in the same transaction."""

    def decorator(view):
        @signed
        @wraps(view)
        def wrapper(request: HttpRequest, call_id: str, **kwargs):
            try:
                attempts = CallAttempt.objects.all()
                if related:  # (select_related() with no names would follow every FK)
                    attempts = attempts.select_related(*related)
                attempt = attempts.get(call_id=call_id)
            except CallAttempt.DoesNotExist:
                raise Http404("Unknown call.") from None
            now = timezone.now()
            payload = masked_payload(request.POST)
            # One transaction for the log line and what the request changes: one commit.
            with transaction.atomic():
                CallEvent.objects.create(
                    attempt=attempt,
                    kind="webhook",
                    message=f"{view.__name__} {payload.get('CallStatus', '')}".strip(),
                    payload=payload,
                    actor="provider",
                    at=now,
                )
                return view(request, attempt, now=now, **kwargs)

        return wrapper

    return decorator


def masked_payload(params) -> dict:
    payload = {key: params.get(key) for key in params}
    for key in PHONE_PARAMS:
        if payload.get(key):
            payload[key] = mask_phone(payload[key])
    return payload


def twiml(text: str) -> HttpResponse:
    return HttpResponse(text, content_type="text/xml; charset=utf-8")


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def timestamp(value: str | None) -> dt.datetime | None:
    """Twilio's Timestamp parameter (RFC 2822, e.g. 'Mon, 23 Nov 2026 12:00:00 +0000')."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


@signed
def status_callback(request: HttpRequest, call_id: str) -> HttpResponse:
    """provider_webhook's steps (log, apply) without loading the attempt first:
    `record_call_status` finds it by our call id."""
    params = request.POST
    status = params.get("CallStatus", "")
    now = timezone.now()
    event = CallEvent(
        kind="webhook",
        message=f"status_callback {status}".strip(),
        payload=masked_payload(params),
        actor="provider",
        at=now,
    )
    try:
        result = record_call_status(
            call_id,
            event=event,
            status=status,
            now=now,
            at=timestamp(params.get("Timestamp")),
            sequence_number=int_or_none(params.get("SequenceNumber")),
            answered_by=params.get("AnsweredBy"),
            duration=int_or_none(params.get("CallDuration")),
            sid=params.get("CallSid", ""),
            error_code=params.get("ErrorCode", ""),
            error_message=params.get("ErrorMessage", ""),
        )
    except ValueError:
        return HttpResponse(f"Unknown CallStatus {status!r}.", status=400)
    if result is None:
        raise Http404("Unknown call.")
    return HttpResponse(status=204)


@provider_webhook("campaign", "contact")
def voice(request: HttpRequest, attempt: CallAttempt, *, now) -> HttpResponse:
    return twiml(survey.start_survey(attempt, answered_by=request.POST.get("AnsweredBy"), now=now))


@provider_webhook("campaign", "contact")
def gather(request: HttpRequest, attempt: CallAttempt, *, now, position: int) -> HttpResponse:
    params = request.POST
    confidence = params.get("Confidence")
    try:
        confidence = min(max(float(confidence), 0.0), 1.0) if confidence else None
    except ValueError:
        confidence = None
    reply = survey.Reply(
        digits=params.get("Digits", ""),
        speech=params.get("SpeechResult", ""),
        confidence=confidence,
    )
    retry = int_or_none(request.GET.get("retry")) or 0
    try:
        text = survey.answer_question(attempt, position=position, reply=reply, retry=retry, now=now)
    except Question.DoesNotExist:
        raise Http404("Unknown question.") from None
    return twiml(text)
