"""How deliveries are signed, and how a receiver checks them (Stripe's scheme).

Each delivery carries `Voicesurvey-Signature: t=<unix seconds>,v1=<hex>`, where the hex is the
HMAC-SHA256, keyed with the subscription's secret, of `<t>.<raw request body>`. The timestamp is
signed with the body, so a captured request cannot be replayed later than the tolerance.

`verify_signature` uses the standard library only: a receiver written in Python may copy it as
it is (docs/webhooks-out.md shows it in use)."""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Voicesurvey-Signature"
EVENT_ID_HEADER = "Voicesurvey-Event-Id"
EVENT_TYPE_HEADER = "Voicesurvey-Event-Type"
SCHEME = "v1"


class SignatureError(ValueError):
    """The signature header is missing, malformed, wrong, or too old."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The header value for `body` sent at `timestamp` (default: now)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> int:
    """Check a delivery: `header` is the Voicesurvey-Signature header, `body` the raw request
    body (bytes, before any JSON parsing). Returns the signed timestamp; raises SignatureError
    when the header is malformed, no v1 signature matches, or the timestamp is more than
    `tolerance` seconds from `now` (default: the current time). Several v1 entries may appear
    (while a secret is being changed); one matching is enough."""
    timestamp, candidates = None, []
    for item in (header or "").split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("No timestamp or no v1 signature in the header.")
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("The signature does not match the body.")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError("The timestamp is outside the tolerance (a replay?).")
    return timestamp
