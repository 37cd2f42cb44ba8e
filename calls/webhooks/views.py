"""The provider's doors: status callbacks and the survey's voice and gather webhooks.

Each view checks the signature (403, nothing written), finds the attempt (404), logs the
request as a CallEvent with the phone numbers masked, and calls one domain function."""

import datetime as dt
import email.utils
import logging
import math
from functools import wraps

from django.conf import settings
from django.db import transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    RawPostDataException,
)
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls.models import CallAttempt, CallEvent
from calls.webhooks import survey
from calls.webhooks.signatures import has_valid_signature
from calls.webhooks.status import record_call_status
from calls.webhooks.survey_load import lock_and_log
from campaigns.models import Question
from contacts.phones import mask_phone
from voicesurvey.api_common import content_length
from voicesurvey.api_errors import error_body

log = logging.getLogger(__name__)

PHONE_PARAMS = ("To", "From", "Called", "Caller", "ForwardedFrom", "CalledVia")


def signed(view):
    """POST only, no CSRF (the signature is the guard); a body above WEBHOOK_MAX_BODY_BYTES is
    answered 413 before it is read, a missing or bad signature 403 and a NUL character in any
    parameter 400, all before the view runs, so nothing is written."""

    @csrf_exempt
    @require_POST
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        # Django reads no more than CONTENT_LENGTH (none without one), so checking it caps
        # the read.
        if content_length(request) > settings.WEBHOOK_MAX_BODY_BYTES:
            log.warning("webhook %s refused: body too large", request.path)
            return refuse(413, "too_large", "The request body is too large for a webhook.")
        if not has_valid_signature(request):
            log.warning("webhook %s refused: missing or bad signature", request.path)
            return refuse(403, "bad_signature", "Missing or invalid X-Twilio-Signature.")
        if has_nul(request):
            return bad_request("Parameters cannot hold NUL characters.")
        try:
            return view(request, *args, **kwargs)
        except BadParameter as exc:
            return bad_request(str(exc))

    return wrapper


class BadParameter(Exception):
    """A parameter no provider sends: answered 400 before anything is written."""


def bad_request(message: str) -> HttpResponse:
    return refuse(400, "invalid", message)


def refuse(status: int, code: str, message: str) -> JsonResponse:
    """A refused webhook, in the API's error shape."""
    return JsonResponse(error_body(code, message), status=status)


def has_nul(request: HttpRequest) -> bool:
    """A NUL in any parameter (PostgreSQL text and jsonb cannot hold one): a search of the raw
    body and query string, which is all the check costs on the hot path. Form encoding writes
    a NUL as %00 and a literal "%" as %25, so %00 is always a NUL."""
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        return True
    try:
        body = request.body
    except RawPostDataException:  # multipart, already streamed: look at the values
        return any("\x00" in value for _, values in request.POST.lists() for value in values)
    return b"%00" in body or b"\x00" in body


def provider_webhook(view):
    """A signed webhook about one attempt: the attempt loaded and locked (with its campaign and
    contact, and the survey's progress: survey_load), the request logged as a CallEvent, the
    view run in the same transaction.

    The lock orders this request with the attempt's status callbacks: a final callback
    arriving meanwhile waits, then settles the contact with what this request wrote (an
    answer); one that came first has ended the attempt, and the view sees it ended."""

    @signed
    @wraps(view)
    def wrapper(request: HttpRequest, call_id: str, **kwargs):
        payload = masked_payload(request.POST)
        message = f"{view.__name__} {payload.get('CallStatus', '')}".strip()
        now = timezone.now()
        # One transaction for the lock, the log line and what the request changes.
        with transaction.atomic():
            loaded = lock_and_log(call_id, message=message, payload=payload, now=now)
            if loaded is None:
                raise Http404("Unknown call.")
            attempt, progress = loaded
            return view(request, attempt, now=now, progress=progress, **kwargs)

    return wrapper


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


# Twilio ends any call after 24 hours; a sequence number fits the column (a 32-bit integer).
MAX_CALL_DURATION = 24 * 3600
MAX_SEQUENCE_NUMBER = 2**31 - 1
MAX_SID_LENGTH = 64  # CallAttempt.provider_call_sid
MAX_DIGITS_LENGTH = 64  # no keypad entry is longer


def bounded_int(params, name: str, maximum: int) -> int | None:
    """The parameter as a whole number from 0 to `maximum` (None when absent), else
    BadParameter: a few comparisons, nothing else."""
    value = params.get(name)
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= maximum):
        raise BadParameter(f"{name} must be a whole number from 0 to {maximum}.")
    return int(value)


def bounded_text(params, name: str, max_length: int) -> str:
    value = params.get(name, "")
    if len(value) > max_length:
        raise BadParameter(f"{name} is longer than {max_length} characters.")
    return value


# Years a provider's Timestamp may name; outside them it is not believed (the time we got the
# callback stands in), and an answer time counted back from it cannot overflow.
TIMESTAMP_YEARS = range(2000, 9000)


def timestamp(value: str | None) -> dt.datetime | None:
    """Twilio's Timestamp parameter (RFC 2822, e.g. 'Mon, 23 Nov 2026 12:00:00 +0000'), in UTC;
    None when it is missing or unreadable, or names an implausible year (see TIMESTAMP_YEARS)."""
    if not value:
        return None
    try:
        at = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at.year not in TIMESTAMP_YEARS:
        return None
    if at.tzinfo is None:  # "-0000": UTC, origin unknown
        return at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC)


def confidence_or_none(value: str | None) -> float | None:
    """The recogniser's Confidence, clamped to 0..1; None when missing or not a finite number."""
    try:
        confidence = float(value) if value else None
    except ValueError:
        return None
    if confidence is None or not math.isfinite(confidence):
        return None
    return min(max(confidence, 0.0), 1.0)


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
            sequence_number=bounded_int(params, "SequenceNumber", MAX_SEQUENCE_NUMBER),
            answered_by=params.get("AnsweredBy"),  # a value we do not know tells us nothing
            duration=bounded_int(params, "CallDuration", MAX_CALL_DURATION),
            sid=bounded_text(params, "CallSid", MAX_SID_LENGTH),
            error_code=params.get("ErrorCode", ""),
            error_message=params.get("ErrorMessage", ""),
        )
    except ValueError:
        return HttpResponse(f"Unknown CallStatus {status!r}.", status=400)
    if result is None:
        raise Http404("Unknown call.")
    return HttpResponse(status=204)


@provider_webhook
def voice(request: HttpRequest, attempt: CallAttempt, *, now, progress) -> HttpResponse:
    answered_by = request.POST.get("AnsweredBy")
    return twiml(survey.start_survey(attempt, answered_by=answered_by, now=now, progress=progress))


@provider_webhook
def gather(
    request: HttpRequest, attempt: CallAttempt, *, now, progress, position: int
) -> HttpResponse:
    params = request.POST
    reply = survey.Reply(
        digits=bounded_text(params, "Digits", MAX_DIGITS_LENGTH),
        speech=params.get("SpeechResult", ""),
        confidence=confidence_or_none(params.get("Confidence")),
    )
    retry = int_or_none(request.GET.get("retry")) or 0
    try:
        text = survey.answer_question(
            attempt, position=position, reply=reply, retry=retry, now=now, progress=progress
        )
    except Question.DoesNotExist:
        raise Http404("Unknown question.") from None
    return twiml(text)
