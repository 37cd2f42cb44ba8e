"""An API client that did not hear back sends its booking again with the same Idempotency-Key:
it gets the first answer, and the person is booked (and called) once."""

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connections
from rest_framework.test import APIClient

from calls.models import ScheduledCall
from campaigns.models import Campaign
from contacts.models import Contact
from tests.factories import ContactFactory, SurveyCampaignFactory
from tests.test_api_campaigns import assert_error
from voicesurvey.accounts.models import IdempotentRequest, issue_token

pytestmark = pytest.mark.django_db

AD_HOC = "/api/v1/scheduled-calls/ad-hoc/"
BOOK = "/api/v1/scheduled-calls/"
PHONE = "+12125550142"  # New York
NOW = dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.UTC)  # noon in New York


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def post(client, url, body, key="order-4711-call"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(url, body, format="json", headers=headers)


def test_an_ad_hoc_call_sent_twice_with_one_key_is_booked_once(api_client):
    body = {"phone": PHONE, "message": "Your parcel arrives tomorrow."}
    first = post(api_client, AD_HOC, body)
    again = post(api_client, AD_HOC, body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert ScheduledCall.objects.count() == 1 and Contact.objects.count() == 1


def test_without_a_key_each_post_books_again(api_client):
    body = {"phone": PHONE, "message": "Your parcel arrives tomorrow."}
    assert post(api_client, AD_HOC, body, key=None).status_code == 201
    assert post(api_client, AD_HOC, body, key=None).status_code == 201
    assert ScheduledCall.objects.count() == 2


def test_a_booking_sent_twice_with_one_key_is_booked_once(api_client):
    contact = ContactFactory(phone=PHONE, campaign=SurveyCampaignFactory())
    body = {"contact": contact.pk, "run_at": "2026-11-24T14:00:00", "timezone": "America/New_York"}
    first = post(api_client, BOOK, body)
    again = post(api_client, BOOK, body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert ScheduledCall.objects.count() == 1


def test_the_same_key_for_another_request_is_422_and_books_nothing(api_client):
    assert post(api_client, AD_HOC, {"phone": PHONE, "message": "Hello."}).status_code == 201
    other = post(api_client, AD_HOC, {"phone": "+12125550143", "message": "Hello."})
    assert_error(other, 422, "idempotency_key_reused")
    contact = ContactFactory(phone=PHONE, campaign=SurveyCampaignFactory())
    elsewhere = post(api_client, BOOK, {"contact": contact.pk, "run_at": "2026-11-24T14:00:00"})
    assert_error(elsewhere, 422, "idempotency_key_reused")  # the same key on another door
    assert ScheduledCall.objects.count() == 1


def test_a_refused_request_keeps_nothing_and_its_key_books_the_corrected_one(api_client):
    refused = post(api_client, AD_HOC, {"phone": "not a number", "message": "Hello."})
    assert_error(refused, 400, "invalid")
    assert not IdempotentRequest.objects.exists()
    fixed = post(api_client, AD_HOC, {"phone": PHONE, "message": "Hello."})
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert ScheduledCall.objects.count() == 1


def test_keys_belong_to_their_user(api_client, django_user_model):
    body = {"phone": PHONE, "message": "Hello."}
    assert post(api_client, AD_HOC, body).status_code == 201
    other = django_user_model.objects.create_superuser("other", "o@example.com", "pw-for-tests-2")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(other)[1]}")
    answer = post(client, AD_HOC, body)
    assert answer.status_code == 201 and "Idempotent-Replayed" not in answer.headers
    assert ScheduledCall.objects.count() == 2


def test_a_key_is_kept_a_day_then_free_again(api_client, clock, settings):
    settings.IDEMPOTENCY_KEY_HOURS = 24
    body = {"phone": PHONE, "message": "Hello."}
    assert post(api_client, AD_HOC, body).status_code == 201
    clock.shift(dt.timedelta(hours=23, minutes=59))
    assert post(api_client, AD_HOC, body).headers["Idempotent-Replayed"] == "true"
    clock.shift(dt.timedelta(minutes=1))
    fresh = post(api_client, AD_HOC, body)
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert ScheduledCall.objects.count() == 2
    assert IdempotentRequest.objects.count() == 1  # the expired record went


@pytest.mark.parametrize(
    "key",
    ["", " ", "a" * 256, "key with spaces", "caf\u00e9", "tab\there", "nul\x00"],
    ids=["empty", "blank", "too-long", "spaces", "latin-1", "tab", "nul"],
)
def test_a_bad_key_is_a_400_naming_the_header(api_client, key):
    answer = post(api_client, AD_HOC, {"phone": PHONE, "message": "Hello."}, key=key)
    assert_error(answer, 400, "invalid")
    assert "Idempotency-Key" in answer.json()["error"]["details"]
    assert not ScheduledCall.objects.exists()


def test_the_longest_key_is_taken(api_client):
    key = "k" * 255
    body = {"phone": PHONE, "message": "Hello."}
    assert post(api_client, AD_HOC, body, key=key).status_code == 201
    assert post(api_client, AD_HOC, body, key=key).headers["Idempotent-Replayed"] == "true"


def test_a_user_who_may_only_look_cannot_book_with_a_key(viewer_client, anon_client):
    body = {"phone": PHONE, "message": "Hello."}
    assert_error(post(viewer_client, AD_HOC, body), 403, "permission_denied")
    assert post(anon_client, AD_HOC, body).status_code == 401
    assert not IdempotentRequest.objects.exists() and not ScheduledCall.objects.exists()


def test_the_schema_documents_the_header():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in (AD_HOC, BOOK):
        operation = schema["paths"][path]["post"]
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert headers == ["Idempotency-Key"] and "422" in operation["responses"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_key_at_once_book_once(needs_postgres, admin_user, monkeypatch):
    """The first request books, then holds its transaction open; the second books and commits
    meanwhile. When the first goes on, the key is taken: it rolls its own booking back and
    answers the second's answer."""
    import calls.booking.api as booking_api

    booked, go = threading.Event(), threading.Event()
    real = booking_api.book_ad_hoc_call

    def first_waits(**kw):
        call = real(**kw)
        if not booked.is_set():
            booked.set()
            assert go.wait(20)
        return call

    monkeypatch.setattr(booking_api, "book_ad_hoc_call", first_waits)
    key = issue_token(admin_user)[1]
    answers = {}

    def send(name):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            answers[name] = post(client, AD_HOC, {"phone": PHONE, "message": "Hello."})
        finally:
            connections.close_all()

    first = threading.Thread(target=send, args=("first",))
    first.start()
    try:
        assert booked.wait(20)
        send("second")
    finally:
        go.set()
        first.join(30)
    assert answers["first"].status_code == answers["second"].status_code == 201
    assert answers["first"].json()["id"] == answers["second"].json()["id"]
    assert answers["first"].headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in answers["second"].headers
    assert ScheduledCall.objects.count() == 1
    assert Campaign.objects.count() == 1 and Contact.objects.count() == 1
