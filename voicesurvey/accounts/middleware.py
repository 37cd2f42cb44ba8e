from zoneinfo import ZoneInfo

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.urls import reverse
from django.utils import timezone, translation

from voicesurvey.accounts.timezones import SESSION_KEY, operator_zone


class OperatorTimeZoneMiddleware:
    """Admin pages show times in the signed-in operator's zone (OperatorProfile, else
    TIME_ZONE). Only the admin: the API answers with explicit offsets whoever asks, and the
    webhooks have no operator. The zone is kept in the session, read from the profile once
    (every admin page would otherwise pay a query for it)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = None

    def __call__(self, request):
        if self.prefix is None:
            self.prefix = reverse("admin:index")
        user = getattr(request, "user", None)
        if request.path.startswith(self.prefix) and user is not None and user.is_authenticated:
            zone = request.session.get(SESSION_KEY)
            if zone is None:
                zone = request.session[SESSION_KEY] = operator_zone(user)
            timezone.activate(ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class BackOfficeLocaleMiddleware(LocaleMiddleware):
    """The admin in the browser's language (Accept-Language, among LANGUAGES). The API and the
    webhooks stay in English whoever asks: their error messages are part of the contract the
    API's clients code and test against, and Twilio reads no French."""

    PREFIXES = ("/api/", "/webhooks/", "/healthz")

    def process_request(self, request):
        if request.path.startswith(self.PREFIXES):
            translation.activate(settings.LANGUAGE_CODE)
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            return
        super().process_request(request)

    def process_response(self, request, response):
        if request.path.startswith(self.PREFIXES):
            return response
        return super().process_response(request, response)
