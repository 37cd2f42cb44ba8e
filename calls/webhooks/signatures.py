"""Webhook signatures: the token both sides sign with, and the check on incoming requests.

Twilio signs each webhook with the account's auth token over the URL it requested (ours, the
public one) and the POST parameters (`X-Twilio-Signature`). The simulated provider signs its
requests the same way, with a token derived from SECRET_KEY when no Twilio token is set, so the
demo goes through the very same check."""

from urllib.parse import urlparse

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare, salted_hmac
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

SETTINGS_HEADER_KEY = "HTTP_" + SIGNATURE_SETTINGS_HEADER.upper().replace("-", "_")


def webhook_auth_token() -> str:
    """The secret webhooks are signed with: Twilio's auth token, or one derived from SECRET_KEY."""
    if settings.TWILIO_AUTH_TOKEN:
        return settings.TWILIO_AUTH_TOKEN
    # The salt keeps the module's old dotted name: renaming it would change the token.
    return salted_hmac("calls.signatures.webhook", "simulated-provider").hexdigest()


def public_url(request: HttpRequest) -> str:
    """The URL the provider requested, as it saw it: behind a proxy our own host and scheme are
    not the ones it signed, so rebuild it from PUBLIC_BASE_URL."""
    query = request.META.get("QUERY_STRING", "")
    return settings.PUBLIC_BASE_URL + request.path_info + (f"?{query}" if query else "")


def sign(url: str, params: dict) -> str:
    """The X-Twilio-Signature a provider would send for a POST of `params` to `url`."""
    return RequestValidator(webhook_auth_token()).compute_signature(url, params)


def has_valid_signature(request: HttpRequest) -> bool:
    # META, not request.headers: the headers' dict would be built for these two alone.
    signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
    if not signature:
        return False
    algorithm = get_signature_algorithm(request.META.get(SETTINGS_HEADER_KEY, ""))
    validator = RequestValidator(webhook_auth_token())
    url = public_url(request)
    # The validator signs the URL twice, with and without a port, and accepts either. Twilio
    # signs the URL it requested, PUBLIC_BASE_URL's form, which is one of the two: try it
    # alone first (one HMAC for a good request); anything else goes to the validator.
    parsed = urlparse(url)
    if algorithm.upper() in (HMAC_SHA1, HMAC_SHA256) and "bodySHA256" not in parsed.query:
        expected = validator.compute_signature(parsed.geturl(), request.POST, algorithm)
        if constant_time_compare(expected, signature):
            return True
    return validator.validate(url, request.POST, signature, algorithm)
