"""Where deliveries may go: http(s) URLs only, and in production never to this machine or a
private network (a subscription must not turn the sender into a way into our own network).

Two checks. When a subscription is saved, the URL's form (scheme, host) and a host written
as an address or named `localhost` are checked, with no DNS lookup (saving must not wait on
a resolver, or fail while one is down). Before each send the host is resolved and every
address it resolves to is checked, so a name pointing at a private address is refused too.
WEBHOOK_ALLOW_PRIVATE_URLS turns the address checks off (local development, the tests).

A resolver may answer differently between our check and the connection `requests` opens
(DNS rebinding); redirects are never followed, so the receiver cannot send us elsewhere."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext

SCHEMES = ("http", "https")
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class RefusedAddress(ValueError):
    """The URL may not receive deliveries; the message says why."""


def private_address(address: str) -> bool:
    """Whether an IP address is anything but a public one: loopback, private, link-local
    (cloud metadata services live there), shared, reserved, multicast, unspecified."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return not ip.is_global or ip.is_multicast


def url_host(url: str) -> str:
    """The URL's host, or RefusedAddress when it is not an http(s) URL with one."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError as exc:
        raise RefusedAddress(gettext("Not a valid URL: %(error)s.") % {"error": exc}) from None
    if parts.scheme.lower() not in SCHEMES:
        raise RefusedAddress(gettext("Only http and https URLs can receive webhooks."))
    if not host:
        raise RefusedAddress(gettext("The URL has no host."))
    return host


def check_url(url: str) -> None:
    """The save-time check: RefusedAddress for a URL that may not be subscribed."""
    host = url_host(url)
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return
    if host.rstrip(".").lower() in LOCAL_NAMES or host.lower().endswith(".localhost"):
        raise RefusedAddress(gettext("Webhooks cannot be sent to this machine."))
    try:
        private = private_address(host)
    except ValueError:
        return  # a name: resolved and checked before each send
    if private:
        raise RefusedAddress(gettext("Webhooks cannot be sent to a private or loopback address."))


def check_destination(url: str) -> None:
    """The send-time check: resolve the host and refuse it if any address is private."""
    check_url(url)
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return
    host = url_host(url)
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise RefusedAddress(f"The host does not resolve ({exc}).") from None
    if any(private_address(info[4][0]) for info in found):
        raise RefusedAddress("The host resolves to a private or loopback address.")
