"""A NUL character in the query string of a back-office page is a 400 before any view.

The admin hands its list filters, its search and its autocomplete's term to the database as
they come, and PostgreSQL text cannot hold a NUL: the page was a 500. No link or form of ours
sends one. The API and the provider's webhooks check their own input and answer in their
error shape, so they are left to it."""

from django.http import HttpResponseBadRequest
from django.utils.translation import gettext as _

CHECKED_ELSEWHERE = ("/api/", "/webhooks/")


class RefuseNulInQueryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if ("%00" in query or "\x00" in query) and not request.path_info.startswith(
            CHECKED_ELSEWHERE
        ):
            return HttpResponseBadRequest(
                _("The address holds a NUL character."), content_type="text/plain; charset=utf-8"
            )
        return self.get_response(request)
