"""The provider's webhooks skip the back office's middleware.

A signed webhook uses no session, user, CSRF token, message, operator zone or login lockout,
yet each of those middleware ran on every callback (~0.1 ms of CPU a request: a tenth of what
the view itself costs; docs/benchmarks-load.md). Placed right after SecurityMiddleware (so the
HTTPS redirect and the security headers stay as they are), this one sends a request whose URL
resolves to a webhook view straight to the view, with what the skipped middleware did for it:
the host check and Content-Length (CommonMiddleware), English (BackOfficeLocaleMiddleware),
X-Frame-Options, the database outage's 503 (voicesurvey.database_outage), and any other
exception turned into the same response Django's handler makes of it.
Every other request, and a webhook URL that does not resolve, takes the whole chain."""

from django.conf import settings
from django.core.handlers.exception import response_for_exception
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, get_resolver
from django.utils import timezone, translation

from voicesurvey.database_outage import outage_response

PREFIX = "/webhooks/"


def _webhook_views() -> set:
    from calls.webhooks import views

    return {views.status_callback, views.voice, views.gather}


class WebhookShortcutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.views = _webhook_views()
        self.common = CommonMiddleware(get_response)
        self.frame_options = XFrameOptionsMiddleware(get_response)

    def __call__(self, request):
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)
        if match.func not in self.views:
            return self.get_response(request)
        translation.activate(settings.LANGUAGE_CODE)
        request.LANGUAGE_CODE = settings.LANGUAGE_CODE
        request.resolver_match = match
        # In the whole chain's order: CommonMiddleware's checks (a bad Host is a 400 that
        # nothing inside it sees), the view, then X-Frame-Options and Content-Length.
        try:
            redirect = self.common.process_request(request)
        except Exception as exc:
            return response_for_exception(request, exc)
        if redirect is not None:
            return self.common.process_response(request, redirect)
        try:
            response = match.func(request, *match.args, **match.kwargs)
        except Exception as exc:  # the outage's 503, else what Django's handler makes of it
            response = outage_response(request, exc) or response_for_exception(request, exc)
        finally:
            timezone.deactivate()  # as OperatorTimeZoneMiddleware leaves every request
        response = self.frame_options.process_response(request, response)
        return self.common.process_response(request, response)
