"""While the database cannot be reached (PostgreSQL restarting, failing over, down), a webhook or
an API request is answered 503 in the error shape with Retry-After, and logged as one line:
not Django's 500 page with a traceback per request.

An OperationalError or InterfaceError is what the driver raises when it cannot connect, when
the server ends the connection under a query, or when a query is cancelled or deadlocked: each
a reason to try again shortly, none a bug in the request. The next request reconnects by
itself (CONN_HEALTH_CHECKS). Twilio retries nothing: a status callback answered 503 is lost
and the tick asks the provider about the call later (DIALLER_QUIET_CALL_SECONDS); a voice or
gather webhook answered 503 ends that call with Twilio's "application error" message. The
back office keeps Django's 500 page."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

from voicesurvey.api_errors import error_body

log = logging.getLogger(__name__)

ANSWERED_HERE = ("/api/", "/webhooks/")
RETRY_AFTER_SECONDS = 5


def outage_response(request, exception) -> JsonResponse | None:
    """The 503 for a webhook or API request the database could not serve, else None."""
    if not isinstance(exception, OperationalError | InterfaceError):
        return None
    if not request.path_info.startswith(ANSWERED_HERE):
        return None
    reason = str(exception).strip().splitlines()[0] if str(exception).strip() else ""
    log.warning(
        "database unavailable: %s %s answered 503 (%s: %s)",
        request.method,
        request.path_info,
        type(exception).__name__,
        reason,
    )
    body = error_body(
        "database_unavailable", "The database cannot be reached just now; try again shortly."
    )
    return JsonResponse(body, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class DatabaseOutageMiddleware:
    """Webhooks skip this middleware (voicesurvey.webhook_middleware), which calls
    outage_response itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return outage_response(request, exception)
