"""The webhook API: subscriptions (the secret in the create answer only) and the delivery log."""

import pytest

from hooks.models import WebhookDelivery, WebhookSubscription
from tests.factories import WebhookDeliveryFactory, WebhookSubscriptionFactory
from tests.test_api_bad_input import assert_error

pytestmark = pytest.mark.django_db
SUBSCRIPTIONS, DELIVERIES = "/api/v1/webhook-subscriptions/", "/api/v1/webhook-deliveries/"
HOOK = "https://hooks.example.com/voicesurvey"


def test_the_secret_is_in_the_create_answer_and_never_again(api_client):
    response = api_client.post(
        SUBSCRIPTIONS,
        {"url": HOOK, "event_types": ["survey.completed", "attempt.finished"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["event_types"] == ["attempt.finished", "survey.completed"]
    assert created["enabled"] is True and created["created_by"] == "boss"
    assert WebhookSubscription.objects.get().secret == secret

    for answer in (
        api_client.get(SUBSCRIPTIONS),
        api_client.get(f"{SUBSCRIPTIONS}{created['id']}/"),
        api_client.patch(f"{SUBSCRIPTIONS}{created['id']}/", {"description": "CRM"}, format="json"),
    ):
        assert answer.status_code == 200
        assert secret not in answer.content.decode() and "secret" not in answer.content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x", "event_types": ["attempt.finished"]}, "url"),
        ({"url": "http://127.0.0.1:8000/hook", "event_types": ["attempt.finished"]}, "url"),
        ({"url": "http://localhost/hook", "event_types": ["attempt.finished"]}, "url"),
        ({"url": "http://10.0.0.5/hook", "event_types": ["attempt.finished"]}, "url"),
        ({"url": "http://169.254.169.254/latest", "event_types": ["attempt.finished"]}, "url"),
        ({"url": "http://[::1]/hook", "event_types": ["attempt.finished"]}, "url"),
        ({"url": "http://[::ffff:127.0.0.1]/hook", "event_types": ["attempt.finished"]}, "url"),
        ({"url": "not a url", "event_types": ["attempt.finished"]}, "url"),
        ({"url": HOOK, "event_types": ["attempt.exploded"]}, "event_types"),
        ({"url": HOOK, "event_types": []}, "event_types"),
        ({"url": HOOK, "event_types": "attempt.finished"}, "event_types"),
        ({"url": HOOK}, "event_types"),
        ({"event_types": ["attempt.finished"]}, "url"),
    ],
)
def test_a_bad_subscription_is_a_400_naming_the_field(api_client, body, field):
    error = assert_error(api_client.post(SUBSCRIPTIONS, body, format="json"), 400, "invalid")
    assert field in error["details"]
    assert not WebhookSubscription.objects.exists()


def test_a_local_receiver_is_accepted_when_the_setting_allows_it(api_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    body = {"url": "http://127.0.0.1:9000/hook", "event_types": ["booking.missed"]}
    assert api_client.post(SUBSCRIPTIONS, body, format="json").status_code == 201


def test_enabling_a_disabled_subscription_clears_its_failures(api_client):
    subscription = WebhookSubscriptionFactory(
        enabled=False, consecutive_failures=12, disabled_reason="12 failed sends in a row"
    )
    answer = api_client.patch(
        f"{SUBSCRIPTIONS}{subscription.pk}/", {"enabled": True}, format="json"
    )
    assert answer.status_code == 200
    assert answer.json()["consecutive_failures"] == 0 and answer.json()["disabled_reason"] == ""
    # The failure record is the sender's: a client cannot write it.
    answer = api_client.patch(
        f"{SUBSCRIPTIONS}{subscription.pk}/", {"consecutive_failures": 99}, format="json"
    )
    assert answer.json()["consecutive_failures"] == 0


def test_the_delivery_log_filters_by_subscription_status_and_event(api_client):
    one, two = WebhookSubscriptionFactory(), WebhookSubscriptionFactory()
    delivered = WebhookDeliveryFactory(subscription=one, status="delivered")
    failed = WebhookDeliveryFactory(subscription=one, status="failed")
    other = WebhookDeliveryFactory(
        subscription=two, status="given_up", event_type="survey.completed"
    )

    def ids(**query):
        answer = api_client.get(DELIVERIES, query)
        assert answer.status_code == 200, answer.content
        return {row["id"] for row in answer.json()["results"]}

    assert ids() == {delivered.pk, failed.pk, other.pk}
    assert ids(subscription=one.pk) == {delivered.pk, failed.pk}
    assert ids(status=["failed", "given_up"]) == {failed.pk, other.pk}
    assert ids(event_type="survey.completed") == {other.pk}
    assert ids(event_id=str(failed.event_id)) == {failed.pk}
    row = api_client.get(f"{DELIVERIES}{failed.pk}/").json()
    assert row["payload"]["id"] == str(failed.event_id) and row["status"] == "failed"
    for bad in (
        {"status": "lost"},
        {"subscription": "x"},
        {"subscription": "99999999999999999999999"},
        {"event_type": "nope"},
        {"event_id": "not-a-uuid"},
    ):
        assert_error(api_client.get(DELIVERIES, bad), 400, "invalid")


def test_the_delivery_log_is_read_only_and_resend_queues_one_now(api_client, viewer_client):
    given_up = WebhookDeliveryFactory(status="given_up", attempts=8, next_attempt_at=None)
    assert api_client.post(DELIVERIES, {}, format="json").status_code == 405
    assert api_client.delete(f"{DELIVERIES}{given_up.pk}/").status_code == 405
    assert viewer_client.get(DELIVERIES).status_code == 200
    assert viewer_client.post(f"{DELIVERIES}{given_up.pk}/resend/").status_code == 403

    answer = api_client.post(f"{DELIVERIES}{given_up.pk}/resend/")
    assert answer.status_code == 200
    assert answer.json()["status"] == "pending" and answer.json()["next_attempt_at"]
    assert WebhookDelivery.objects.get().attempts == 8
    assert_error(api_client.post(f"{DELIVERIES}999999/resend/"), 404)


def test_reading_and_changing_subscriptions_needs_the_model_permissions(viewer_client, anon_client):
    subscription = WebhookSubscriptionFactory()
    assert viewer_client.get(SUBSCRIPTIONS).status_code == 200
    body = {"url": HOOK, "event_types": ["attempt.finished"]}
    assert viewer_client.post(SUBSCRIPTIONS, body, format="json").status_code == 403
    assert viewer_client.delete(f"{SUBSCRIPTIONS}{subscription.pk}/").status_code == 403
    assert anon_client.get(SUBSCRIPTIONS).status_code == 401
