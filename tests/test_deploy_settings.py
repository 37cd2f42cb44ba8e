"""The production settings docs/operating.md recommends pass `check --deploy`, and HTTPS behind a
proxy does not get in the way of Twilio's webhooks."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from calls.webhooks.signatures import webhook_auth_token
from tests.webhook_helpers import live_attempt

ROOT = Path(__file__).resolve().parent.parent

# docs/operating.md "Production settings": what an operator sets in production.
PRODUCTION = {
    "SECRET_KEY": "k3y-for-the-deploy-check-" + "x7Qp2#Lm9@Zr4!Tb8&Vw1%Yc6^Hd0*Ns5" * 2,
    "DEBUG": "false",
    "ALLOWED_HOSTS": "dialler.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://dialler.example.com",
    "PUBLIC_BASE_URL": "https://dialler.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
}


def check_deploy(extra_env: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_recommended_production_settings_pass_check_deploy():
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.slow
def test_check_deploy_complains_when_https_is_left_off():
    result = check_deploy({k: v for k, v in PRODUCTION.items() if "SECURE" not in k})
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stderr + result.stdout


@pytest.fixture
def https_behind_a_proxy(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.PUBLIC_BASE_URL = "https://dialler.example.com"
    settings.ALLOWED_HOSTS = ["dialler.example.com", "10.0.0.5"]
    return settings


def post_status(client, attempt, **headers):
    url = f"https://dialler.example.com/webhooks/status/{attempt.call_id}/"
    params = {"CallSid": attempt.provider_call_sid, "CallStatus": "ringing"}
    signature = RequestValidator(webhook_auth_token()).compute_signature(url, params)
    return client.post(
        f"/webhooks/status/{attempt.call_id}/",
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature, "Host": "10.0.0.5", **headers},
    )


@pytest.mark.django_db
def test_a_webhook_forwarded_over_https_by_the_proxy_is_not_redirected(
    client, now, https_behind_a_proxy
):
    attempt = live_attempt(now=now)
    response = post_status(client, attempt, **{"X-Forwarded-Proto": "https"})
    assert response.status_code == 204
    attempt.refresh_from_db()
    assert attempt.status == "ringing"


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_but_the_health_check_is_not(
    client, now, https_behind_a_proxy
):
    attempt = live_attempt(now=now)
    response = post_status(client, attempt)  # no proxy header: plain HTTP
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert client.get("/healthz", headers={"Host": "10.0.0.5"}).status_code != 301
