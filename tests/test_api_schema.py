"""The OpenAPI schema validates, and every documented operation answers a documented code."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from calls.models import ProviderAccount
from tests.factories import (
    AnswerFactory,
    CallEventFactory,
    ContactFactory,
    ExclusionFactory,
    QuestionFactory,
    ScheduledCallFactory,
    WebhookDeliveryFactory,
)

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "/api/v1/campaigns/{id}/contacts/import/" in text
    assert "multipart/form-data" in text and "text/csv" in text
    assert "/api/v1/scheduled-calls/{id}/pause/" in text


def test_schema_and_docs_are_served(api_client, admin_client):
    schema = api_client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert "/api/v1/exclusions/check/" in schema.json()["paths"]
    docs = admin_client.get("/api/docs/")
    assert docs.status_code == 200
    # Swagger UI's files come from our own static files (drf-spectacular-sidecar): no CDN.
    assert b"drf_spectacular_sidecar" in docs.content
    assert b"cdn." not in docs.content


def test_schema_and_docs_are_not_served_to_strangers(anon_client, client, viewer_client):
    schema = anon_client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 401
    assert schema.json()["error"]["code"] == "not_authenticated"
    assert "paths" not in schema.json()
    docs = client.get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"].startswith("/admin/login/?next=/api/docs/")
    # Any signed-in user of ours may read the reference, a view-only one too.
    assert viewer_client.get("/api/schema/", {"format": "json"}).status_code == 200


def operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    order = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}
    for path, item in schema["paths"].items():
        for method, operation in sorted(item.items(), key=lambda kv: order.get(kv[0], 9)):
            if method in order:
                codes = {int(code) for code in operation["responses"]}
                yield path, method, codes


def objects():
    """Fresh objects for one request (a DELETE must not starve the next one)."""
    answer = AnswerFactory()
    campaign = answer.attempt.campaign
    QuestionFactory(campaign=campaign)
    CallEventFactory(attempt=answer.attempt)
    return {
        "campaigns": campaign.pk,
        "contacts": ContactFactory(campaign=campaign).pk,
        "exclusions": ExclusionFactory().pk,
        "attempts": answer.attempt.pk,
        "answers": answer.pk,
        "scheduled-calls": ScheduledCallFactory(contact=answer.attempt.contact).pk,
        "webhook-subscriptions": (delivery := WebhookDeliveryFactory()).subscription_id,
        "webhook-deliveries": delivery.pk,
        "provider-accounts": ProviderAccount.objects.create(
            provider="twilio", account=next(ACCOUNTS)
        ).pk,
    }


PHONES = (f"+1212555{n:04d}" for n in range(9000, 9999))
ACCOUNTS = (f"AC{n:032d}" for n in range(100_000))


def request_for(client, path, method, ids, campaign_id):
    resource = path.split("/")[3]
    url = path.replace("{id}", str(ids.get(resource, "")))
    bodies = {
        "/api/v1/campaigns/": {"name": "walk", "questions": [{"position": 1, "prompt": "?"}]},
        "/api/v1/contacts/": {"campaign": campaign_id, "phone": next(PHONES)},
        "/api/v1/exclusions/": {"phone": next(PHONES)},
        "/api/v1/webhook-subscriptions/": {
            "url": "https://hooks.example.com/voicesurvey",
            "event_types": ["attempt.finished", "survey.completed"],
        },
        "/api/v1/provider-accounts/": {
            "provider": "twilio",
            "account": next(ACCOUNTS),
            "max_concurrent_calls": 20,
            "calls_per_second": 2.5,
        },
    }
    if resource == "scheduled-calls":
        bodies["/api/v1/scheduled-calls/"] = {
            "contact": ContactFactory(campaign_id=campaign_id).pk,
            "run_at": f"{timezone.localdate() + dt.timedelta(days=2)}T12:00:00",
            "timezone": "America/New_York",
            "rrule": "FREQ=DAILY;COUNT=3",
        }
        bodies["/api/v1/scheduled-calls/ad-hoc/"] = {
            "phone": next(PHONES),
            "message": "Hello.",
            "at": f"{timezone.localdate() + dt.timedelta(days=2)}T12:00:00",
            "timezone": "America/New_York",
        }
    if url.endswith("/import/"):
        upload = SimpleUploadedFile("x.csv", b"phone\n+12125559997\n", content_type="text/csv")
        return getattr(client, method)(url, {"file": upload}, format="multipart")
    if url.endswith("/check/"):
        return client.get(url, {"phone": "+12125559996"})
    body = bodies.get(path.replace("{id}/", ""), {}) if method != "get" else None
    if body and "{id}" in path:
        # Updates: keep the questions (the campaign's first one already has answers).
        # A scheduled call's contact is fixed: only its timing changes.
        body = {k: v for k, v in body.items() if k not in ("questions", "contact")}
    return getattr(client, method)(url, body, format="json")


# POSTs that only read (the number in the body keeps it out of URLs and access logs).
READS_BY_POST = {"/api/v1/exclusions/check/"}


def test_every_documented_operation_answers_a_documented_code(
    api_client, viewer_client, anon_client
):
    seen = 0
    for path, method, codes in operations():
        ids = objects()
        for who, client in (
            ("admin", api_client),
            ("viewer", viewer_client),
            ("anonymous", anon_client),
        ):
            response = request_for(client, path, method, ids, ids["campaigns"])
            assert response.status_code in codes, (
                who,
                method,
                path,
                response.status_code,
                getattr(response, "content", b"")[:300],
            )
            if who == "admin":
                assert response.status_code < 400 or response.status_code == 409, (
                    method,
                    path,
                    response.status_code,
                    response.content[:300],
                )
            if who == "anonymous":
                assert response.status_code == 401
            if who == "viewer" and method != "get" and path not in READS_BY_POST:
                assert response.status_code == 403
        seen += 1
    assert seen >= 30
