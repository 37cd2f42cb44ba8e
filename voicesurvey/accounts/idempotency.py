"""`Idempotency-Key` on the API's booking doors: a client that did not get the answer to a POST
(a timeout, a dropped connection) sends it again with the same key and gets the first answer
back, instead of a second booking and a second call to the same person.

As the IETF draft "The Idempotency-Key HTTP Header Field" and Stripe have it: the key is the
client's (1-255 printable ASCII characters), scoped to the user, kept IDEMPOTENCY_KEY_HOURS.
Only a 2xx answer is kept, in the same transaction as the work it answers, so a key is never
recorded without its booking nor a booking without its key; a 4xx wrote nothing and the key
stays free for the corrected request. The same key with another method, path or body is 422
`idempotency_key_reused`. Two requests with one key at once: both do the work, the second to
commit finds the key taken (the unique index), rolls its own work back and answers the first's
answer."""

import datetime as dt
import functools
import hashlib
import json
import re

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, status
from rest_framework.response import Response

from voicesurvey.accounts.models import IdempotentRequest

HEADER = "Idempotency-Key"
KEY = re.compile(r"[\x21-\x7e]{1,255}")

SCHEMA_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    description="Any unique string of 1-255 printable ASCII characters (a UUID, say). Sent "
    "again with the same request, the first answer comes back (header Idempotent-Replayed: "
    "true) and nothing is booked twice; with a different request, 422. Kept 24 hours.",
)


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = (
        "This Idempotency-Key was used for a different request; send a new key for a new request."
    )


class _TakenMeanwhile(Exception):
    """Another request with the same key committed first: roll this one's work back."""


def fingerprint(request) -> str:
    data = request.data
    if hasattr(data, "lists"):  # a form's QueryDict: every value of every field
        data = {name: values for name, values in data.lists()}
    body = json.dumps(data, sort_keys=True, cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _earlier(user, key: str, now: dt.datetime) -> IdempotentRequest | None:
    """The user's kept request with this key; the user's expired ones are deleted first."""
    keep = dt.timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    IdempotentRequest.objects.filter(user=user, created_at__lte=now - keep).delete()
    return IdempotentRequest.objects.filter(user=user, key=key).first()


def _replay(earlier: IdempotentRequest, print_: str) -> Response:
    if earlier.fingerprint != print_:
        raise KeyReused()
    return Response(
        earlier.response, status=earlier.status_code, headers={"Idempotent-Replayed": "true"}
    )


def idempotent(view_method):
    """Wrap a DRF view method (POST) so that an Idempotency-Key header makes it idempotent."""

    @functools.wraps(view_method)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(view, request, *args, **kwargs)
        if not KEY.fullmatch(key):
            raise exceptions.ValidationError(
                {HEADER: ["Send 1 to 255 printable ASCII characters, without spaces."]}
            )
        print_, now = fingerprint(request), timezone.now()
        try:
            with transaction.atomic():
                earlier = _earlier(request.user, key, now)
                if earlier is not None:
                    return _replay(earlier, print_)
                response = view_method(view, request, *args, **kwargs)
                if not status.is_success(response.status_code):
                    transaction.set_rollback(True)
                    return response
                try:
                    with transaction.atomic():
                        IdempotentRequest.objects.create(
                            user=request.user,
                            key=key,
                            fingerprint=print_,
                            status_code=response.status_code,
                            response=response.data,
                            created_at=now,
                        )
                except IntegrityError as exc:
                    raise _TakenMeanwhile from exc
                return response
        except _TakenMeanwhile:
            return _replay(IdempotentRequest.objects.get(user=request.user, key=key), print_)

    return wrapper
