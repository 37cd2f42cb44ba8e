"""The webhooks skip the back office's middleware (voicesurvey/webhook_middleware.py) and answer
exactly as through the whole chain: same status, headers and body, for answers, refusals,
unknown calls, a bad Host, a crash in the view, a French browser and the HTTPS redirect."""

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.factories import ContactFactory, QuestionFactory, RunningCampaignFactory
from tests.webhook_helpers import live_attempt, send_status, signed_post, status_url, voice_url

SHORTCUT = "voicesurvey.webhook_middleware.WebhookShortcutMiddleware"


def whole_chain():
    return override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != SHORTCUT])


def answer(response, attempt=None) -> tuple:
    """What the provider gets back, with the attempt's own id taken out."""
    body = response.content
    if attempt is not None:
        body = body.replace(str(attempt.call_id).encode(), b"<call>")
    return response.status_code, sorted(response.items()), body


def both(send) -> tuple:
    """send(client) through the shortcut, then through the whole chain."""
    assert SHORTCUT in settings.MIDDLEWARE
    fast = send(Client(raise_request_exception=False))
    with whole_chain():
        slow = send(Client(raise_request_exception=False))
    return fast, slow


@pytest.mark.django_db
def test_answers_are_the_same(now):
    campaign = RunningCampaignFactory()
    QuestionFactory(campaign=campaign, position=1, kind="yes_no", prompt="Did it arrive?")
    attempts = iter(
        [
            live_attempt(now=now, contact=ContactFactory(campaign=campaign, name="Ana"))
            for _ in range(2)
        ]
    )

    def call(client):
        attempt = next(attempts)
        ringing = send_status(client, attempt, "ringing", sequence=1)
        answered = send_status(client, attempt, "in-progress", sequence=2)
        params = {"CallSid": attempt.provider_call_sid, "CallStatus": "in-progress"}
        voice = signed_post(client, voice_url(attempt), params)
        gather = signed_post(
            client,
            voice_url(attempt).replace("/voice/", "/gather/") + "1/",
            {**params, "Digits": "1"},
        )
        return [answer(r, attempt) for r in (ringing, answered, voice, gather)]

    fast, slow = both(call)
    assert [a[0] for a in fast] == [204, 204, 200, 200]
    assert fast == slow


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case", ["unknown call", "bad signature", "NUL", "GET", "too large", "bad Host", "no slash"]
)
def test_refusals_are_the_same(case, now):
    attempt = live_attempt(now=now)
    url = status_url(attempt)
    path = url.removeprefix(settings.PUBLIC_BASE_URL)
    params = {"CallSid": attempt.provider_call_sid, "CallStatus": "ringing"}

    def send(client):
        if case == "unknown call":
            return signed_post(client, url.replace(str(attempt.call_id), "nosuchcall"), params)
        if case == "bad signature":
            return client.post(path, params, headers={"X-Twilio-Signature": "bm90"})
        if case == "NUL":
            return signed_post(client, url, {**params, "Digits": "1\x00"})
        if case == "GET":
            return client.get(path)
        if case == "too large":
            return signed_post(client, url, {**params, "Junk": "x" * 70_000})
        if case == "bad Host":
            return client.post(path, params, headers={"Host": "evil.example"})
        return signed_post(client, url.rstrip("/"), params)

    fast, slow = both(send)
    assert answer(fast) == answer(slow)
    assert fast.status_code in (301, 400, 403, 404, 405, 413)


@pytest.mark.django_db
def test_a_crash_in_the_view_is_answered_the_same(now, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("calls.webhooks.views.record_call_status", crash)
    attempt = live_attempt(now=now)
    fast, slow = both(lambda client: send_status(client, attempt, "ringing"))
    assert fast.status_code == 500
    assert answer(fast) == answer(slow)


@pytest.mark.django_db
def test_a_french_browser_and_the_https_redirect_change_nothing_either(now):
    attempt = live_attempt(now=now)
    params = {"CallSid": attempt.provider_call_sid, "CallStatus": "ringing", "Digits": "\x00"}
    french = {"Accept-Language": "fr"}

    def send(client):
        return client.post(
            status_url(attempt).removeprefix(settings.PUBLIC_BASE_URL), params, headers=french
        )

    fast, slow = both(send)
    assert answer(fast) == answer(slow)
    with override_settings(SECURE_SSL_REDIRECT=True):
        fast, slow = both(send)
    assert fast.status_code == 301
    assert answer(fast) == answer(slow)
