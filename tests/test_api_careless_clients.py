"""Careless clients: paging parameters of another scheme are refused, never ignored; a PUT
where the API takes PATCH says so."""

import pytest

from calls.booking.scheduling import schedule_call
from tests.factories import ContactFactory, SurveyCampaignFactory
from tests.test_api_campaigns import assert_error
from voicesurvey.api import router

pytestmark = pytest.mark.django_db

LIST_URLS = sorted(f"/api/v1/{prefix}/" for prefix, _, _ in router.registry)


def test_every_resource_is_covered():
    assert {"/api/v1/campaigns/", "/api/v1/stats/", "/api/v1/scheduled-calls/"} <= set(LIST_URLS)


@pytest.mark.parametrize("url", LIST_URLS)
@pytest.mark.parametrize(
    "query",
    [{"limit": "10"}, {"offset": "20"}, {"limit": "10", "offset": "20"}, {"per_page": "5"}],
    ids=["limit", "offset", "both", "per_page"],
)
def test_foreign_paging_is_a_400_naming_it_on_every_list(api_client, url, query):
    error = assert_error(api_client.get(url, query), 400, "invalid")
    assert set(error["details"]) == set(query)
    assert "page_size" in error["message"] and "page (1, 2, …)" in error["message"]


@pytest.mark.parametrize("url", LIST_URLS)
def test_page_and_page_size_still_page(api_client, url):
    assert api_client.get(url, {"page": "1", "page_size": "2"}).status_code == 200


def test_a_second_page_is_the_second_page(api_client):
    ContactFactory.create_batch(3)
    first = api_client.get("/api/v1/contacts/", {"page_size": 2}).json()
    second = api_client.get("/api/v1/contacts/", {"page_size": 2, "page": 2}).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and len(second["results"]) == 1


def test_a_put_where_only_patch_is_offered_says_to_use_patch(api_client, now):
    contact = ContactFactory(campaign=SurveyCampaignFactory(), phone="+12125550142")
    call = schedule_call(contact=contact, run_at=now.replace(hour=19), timezone="UTC", now=now)
    url = f"/api/v1/scheduled-calls/{call.pk}/"
    response = api_client.put(url, {"note": "moved"}, format="json")
    error = assert_error(response, 405, "method_not_allowed")
    assert "use PATCH" in error["message"]
    assert "PATCH" in response["Allow"] and "PUT" not in response["Allow"]
    assert api_client.patch(url, {"note": "moved"}, format="json").status_code == 200


def test_other_refused_methods_keep_the_plain_message(api_client):
    error = assert_error(api_client.put("/api/v1/scheduled-calls/", {}), 405)
    assert "PATCH" not in error["message"]
    error = assert_error(api_client.post("/api/v1/attempts/", {}), 405)
    assert error["message"] == 'Method "POST" not allowed.'
