from urllib.parse import urlencode, urlsplit

import pytest
from django.test import override_settings
from twilio.request_validator import RequestValidator

from calls.models import CallAttempt, CallEvent
from calls.webhooks.signatures import webhook_auth_token
from tests.webhook_helpers import live_attempt, signed_post, status_url


def ringing(attempt):
    return {"CallSid": attempt.provider_call_sid, "CallStatus": "ringing", "To": "+12125550100"}


def assert_unchanged(attempt):
    attempt.refresh_from_db()
    assert attempt.status == "initiated"
    assert not CallEvent.objects.filter(attempt=attempt).exists()


@pytest.mark.django_db
def test_callback_signed_with_the_token_moves_the_attempt(client, now):
    attempt = live_attempt(now=now)
    response = signed_post(client, status_url(attempt), ringing(attempt))
    assert response.status_code == 204
    attempt.refresh_from_db()
    assert attempt.status == "ringing"


@pytest.mark.django_db
def test_tampered_body_is_refused_and_changes_nothing(client, now):
    attempt = live_attempt(now=now)
    params = ringing(attempt)
    signature = RequestValidator(webhook_auth_token()).compute_signature(
        status_url(attempt), params
    )
    response = client.post(
        f"/webhooks/status/{attempt.call_id}/",
        data={**params, "CallStatus": "completed", "CallDuration": "60"},
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_signature"
    assert_unchanged(attempt)


@pytest.mark.django_db
def test_signature_for_another_url_is_refused(client, now):
    attempt = live_attempt(now=now)
    other = live_attempt(now=now)
    response = signed_post(
        client, status_url(attempt), ringing(attempt), sign_url=status_url(other)
    )
    assert response.status_code == 403
    assert_unchanged(attempt)


@pytest.mark.django_db
def test_signature_over_the_internal_host_is_refused_behind_a_proxy(client, now):
    # Twilio signs the public URL; a signature over the URL Django sees must not pass.
    attempt = live_attempt(now=now)
    internal = f"http://testserver/webhooks/status/{attempt.call_id}/"
    with override_settings(PUBLIC_BASE_URL="https://dialler.example.com"):
        refused = signed_post(client, status_url(attempt), ringing(attempt), sign_url=internal)
        assert refused.status_code == 403
        assert_unchanged(attempt)
        public = "https://dialler.example.com" + f"/webhooks/status/{attempt.call_id}/"
        accepted = signed_post(client, public, ringing(attempt))
    assert accepted.status_code == 204


@pytest.mark.django_db
def test_missing_signature_is_refused(client, now):
    attempt = live_attempt(now=now)
    response = client.post(f"/webhooks/status/{attempt.call_id}/", data=ringing(attempt))
    assert response.status_code == 403
    assert_unchanged(attempt)


@pytest.mark.django_db
def test_signature_with_another_token_is_refused(client, now):
    attempt = live_attempt(now=now)
    response = signed_post(client, status_url(attempt), ringing(attempt), token="not-our-token")
    assert response.status_code == 403
    assert_unchanged(attempt)


@pytest.mark.django_db
def test_twilio_auth_token_is_the_signing_token_when_set(client, now):
    attempt = live_attempt(now=now)
    with override_settings(TWILIO_AUTH_TOKEN="twilio-account-token"):
        assert webhook_auth_token() == "twilio-account-token"
        response = signed_post(
            client, status_url(attempt), ringing(attempt), token="twilio-account-token"
        )
    assert response.status_code == 204


@pytest.mark.django_db
def test_without_twilio_the_token_comes_from_the_secret_key():
    with override_settings(TWILIO_AUTH_TOKEN=""):
        token = webhook_auth_token()
        with override_settings(SECRET_KEY="another-secret-key-for-this-test-only-xxxxxxxxxx"):
            assert webhook_auth_token() != token
    assert len(token) >= 32


@pytest.mark.django_db
def test_unknown_call_id_is_404_once_signed_and_403_unsigned(client, now):
    url = "http://127.0.0.1:8000/webhooks/status/no-such-call/"
    with override_settings(PUBLIC_BASE_URL="http://127.0.0.1:8000"):
        assert signed_post(client, url, {"CallStatus": "ringing"}).status_code == 404
        assert signed_post(client, url, {"CallStatus": "completed"}).status_code == 404
    assert client.post("/webhooks/status/no-such-call/").status_code == 403
    assert not CallEvent.objects.exists()


@pytest.mark.django_db
def test_webhooks_take_only_post(client, now):
    attempt = live_attempt(now=now)
    assert client.get(f"/webhooks/status/{attempt.call_id}/").status_code == 405
    assert client.get(f"/webhooks/voice/{attempt.call_id}/").status_code == 405


@pytest.mark.django_db
def test_every_webhook_is_logged_with_phone_numbers_masked(client, now):
    attempt = live_attempt(now=now)
    params = {**ringing(attempt), "From": "+15005550006", "Called": "+12125550100"}
    signed_post(client, status_url(attempt), params)
    event = CallEvent.objects.get(attempt=attempt, kind="webhook")
    assert event.payload["CallStatus"] == "ringing"
    assert event.payload["To"] == "+121*****100"
    assert event.payload["Called"] == "+121*****100"
    assert event.payload["From"] == "+150*****006"
    assert "2125550100" not in str(event.payload)
    assert CallAttempt.objects.get(pk=attempt.pk).status == "ringing"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("signed_over", "accepted"),
    [
        ("https://dialler.example.com", True),  # the URL Twilio requested
        ("https://dialler.example.com:443", True),  # the same with its port: Twilio does both
        ("https://dialler.example.com:8443", False),  # another port is another URL
    ],
)
def test_a_signature_over_the_url_with_or_without_its_port_passes(
    client, now, signed_over, accepted
):
    attempt = live_attempt(now=now)
    path = f"/webhooks/status/{attempt.call_id}/"
    with override_settings(PUBLIC_BASE_URL="https://dialler.example.com"):
        response = signed_post(
            client,
            "https://dialler.example.com" + path,
            ringing(attempt),
            sign_url=signed_over + path,
        )
    assert response.status_code == (204 if accepted else 403)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("algorithm", "accepted"), [("HMAC_SHA256", True), ("HMAC_SHA1", True), ("HMAC_MD5", False)]
)
def test_the_algorithm_named_in_the_signature_settings_header_is_used(
    client, now, algorithm, accepted
):
    attempt = live_attempt(now=now)
    url, params = status_url(attempt), ringing(attempt)
    signed_with = algorithm if accepted else "HMAC_SHA1"  # no MD5: a signature it cannot check
    signature = RequestValidator(webhook_auth_token()).compute_signature(url, params, signed_with)
    response = client.post(
        urlsplit(url).path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={
            "X-Twilio-Signature": signature,
            "X-Twilio-Webhooks-Signature-Settings": f"key=sharedkey_1,algorithm={algorithm}",
        },
    )
    assert response.status_code == (204 if accepted else 403)
