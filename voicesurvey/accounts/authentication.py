"""`Authorization: Token <key>`, checked against the stored digests."""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from voicesurvey.accounts.models import ApiToken, digest


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing and 401 answers, with the key looked up by its digest."""

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").filter(digest=digest(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return token.user, token
