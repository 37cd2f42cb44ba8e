"""The back office's webhook pages: the secret shown once, the delivery log and "send again",
behind the same model permissions as the API."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from hooks.models import WebhookDelivery, WebhookSubscription
from tests.factories import WebhookDeliveryFactory, WebhookSubscriptionFactory

pytestmark = pytest.mark.django_db
ADD = reverse("admin:hooks_webhooksubscription_add")
LOG = reverse("admin:hooks_webhookdelivery_changelist")


def staff(client, django_user_model, *codenames):
    user = django_user_model.objects.create_user("narrow", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def test_a_subscription_made_in_the_admin_shows_its_secret_once(admin_client):
    response = admin_client.post(
        ADD,
        {
            "url": "https://hooks.example.com/in",
            "description": "CRM",
            "event_types": ["campaign.completed", "attempt.finished"],
            "enabled": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    subscription = WebhookSubscription.objects.get()
    assert subscription.event_types == ["attempt.finished", "campaign.completed"]
    assert subscription.secret in response.content.decode()  # the message after the save

    change = reverse("admin:hooks_webhooksubscription_change", args=[subscription.pk])
    page = admin_client.get(change).content.decode()
    assert subscription.secret not in page and subscription.masked_secret in page
    listing = admin_client.get(reverse("admin:hooks_webhooksubscription_changelist"))
    assert subscription.secret not in listing.content.decode()


def test_the_admin_refuses_a_private_address_and_an_empty_event_list(admin_client):
    response = admin_client.post(ADD, {"url": "http://192.168.1.10/hook", "event_types": []})
    assert response.status_code == 200  # the form again, with the errors
    page = response.content.decode()
    assert "private or loopback address" in page and "This field is required" in page
    assert not WebhookSubscription.objects.exists()


def test_send_again_from_the_delivery_log(admin_client):
    given_up = WebhookDeliveryFactory(
        status="given_up", next_attempt_at=None, last_error="HTTP 500"
    )
    page = admin_client.get(LOG, {"status__exact": "given_up"})
    assert page.status_code == 200 and str(given_up.event_id) in page.content.decode()
    admin_client.post(LOG, {"action": "resend", "_selected_action": [given_up.pk]})
    given_up.refresh_from_db()
    assert given_up.status == "pending" and given_up.next_attempt_at is not None


def test_a_viewer_reads_the_log_but_cannot_send_again_nor_edit(client, django_user_model):
    delivery = WebhookDeliveryFactory(status="given_up", next_attempt_at=None)
    viewer = staff(client, django_user_model, "view_webhookdelivery")
    assert viewer.get(LOG).status_code == 200
    viewer.post(LOG, {"action": "resend", "_selected_action": [delivery.pk]})
    assert WebhookDelivery.objects.get().status == "given_up"
    detail = reverse("admin:hooks_webhookdelivery_change", args=[delivery.pk])
    assert viewer.get(detail).status_code == 200
    assert viewer.get(reverse("admin:hooks_webhooksubscription_changelist")).status_code == 403


def test_without_view_permission_the_pages_are_refused(client, django_user_model):
    subscription = WebhookSubscriptionFactory()
    nobody = staff(client, django_user_model)
    for url in (
        LOG,
        reverse("admin:hooks_webhooksubscription_changelist"),
        reverse("admin:hooks_webhooksubscription_change", args=[subscription.pk]),
    ):
        response = nobody.get(url)
        assert response.status_code == 403
        assert subscription.url not in response.content.decode()
