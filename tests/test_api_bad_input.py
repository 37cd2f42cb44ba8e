"""Bad input to the API gets a 4xx in the error shape, never a 500 or a database error."""

import json

import django_filters
import pytest
from django.test import Client

from voicesurvey.api import router
from voicesurvey.api_input import DateTimeFilter

DATETIME_FILTERS = [
    ("campaigns", "created_after"),
    ("campaigns", "created_before"),
    ("contacts", "next_attempt_before"),
    ("attempts", "created_after"),
    ("attempts", "created_before"),
    ("answers", "answered_after"),
    ("answers", "answered_before"),
    ("scheduled-calls", "next_run_after"),
    ("scheduled-calls", "next_run_before"),
    ("webhook-deliveries", "created_after"),
    ("webhook-deliveries", "created_before"),
]


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if code:
        assert error["code"] == code
    return error


def test_every_datetime_filter_of_the_api_is_the_checked_one():
    for _, viewset, _ in router.registry:
        filterset = getattr(viewset, "filterset_class", None)
        for name, field in getattr(filterset, "base_filters", {}).items():
            if isinstance(field, django_filters.DateTimeFilter):
                assert isinstance(field, DateTimeFilter), f"{viewset.__name__}.{name}"


@pytest.mark.django_db
@pytest.mark.parametrize(("resource", "param"), DATETIME_FILTERS)
@pytest.mark.parametrize(
    "value",
    [
        "2026-11-23T12:00:00+20:00",  # no zone is 20 hours from UTC (PostgreSQL: DataError)
        "2026-11-23T12:00:00-16:30",
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "9999-12-31T23:00:00-05:00",  # after year 9999 in UTC
    ],
)
def test_a_datetime_filter_out_of_range_is_a_400_naming_the_parameter(
    api_client, resource, param, value
):
    response = api_client.get(f"/api/v1/{resource}/", {param: value})
    error = assert_error(response, 400, "invalid")
    assert param in error["details"]
    for edge in ("2026-11-23T12:00:00+14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        assert api_client.get(f"/api/v1/{resource}/", {param: edge}).status_code == 200


def post_json(client, path: str, raw: str | bytes, method: str = "post"):
    return getattr(client, method)(path, data=raw, content_type="application/json")


@pytest.mark.django_db
def test_a_nul_character_in_a_free_json_field_is_a_400(api_client):
    """A field that takes any JSON (weekdays) would hand the NUL to the database."""
    body = {"name": "Spring", "weekdays": ["\x00"]}
    error = assert_error(post_json(api_client, "/api/v1/campaigns/", json.dumps(body)), 400)
    assert "weekdays.0" in error["details"]


@pytest.mark.django_db
def test_json_nested_a_thousand_deep_is_a_400(api_client):
    raw = '{"name": ' + "[" * 1000 + "]" * 1000 + "}"
    error = assert_error(post_json(api_client, "/api/v1/campaigns/", raw), 400, "parse_error")
    assert "nested" in error["message"]


@pytest.mark.django_db
def test_json_nested_a_hundred_thousand_deep_is_a_400(api_client):
    raw = "[" * 100_000 + "]" * 100_000
    assert_error(post_json(api_client, "/api/v1/campaigns/", raw), 400, "parse_error")


@pytest.mark.django_db
def test_a_json_body_above_the_limit_without_a_length_is_cut_and_refused(api_client, settings):
    """A client that sends no Content-Length is read no further than the limit."""
    from io import BytesIO

    from rest_framework.test import APIRequestFactory

    from voicesurvey.api_input import JSONParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    request = APIRequestFactory().post("/api/v1/campaigns/")
    request.META.pop("CONTENT_LENGTH", None)
    stream = BytesIO(json.dumps({"name": "x" * 5000}).encode())
    with pytest.raises(Exception) as raised:
        JSONParser().parse(stream, parser_context={"request": request})
    assert raised.value.status_code == 413
    assert stream.tell() == 1001


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api/v1/nothing-here/", "/api/nope", "/api/v1/campaigns/1/x/"])
def test_any_method_to_an_unknown_api_path_is_a_json_404(method, path):
    client = Client(enforce_csrf_checks=True)  # as a browser or script without a token
    assert_error(getattr(client, method)(path), 404, "not_found")


@pytest.mark.django_db
def test_a_crash_under_api_answers_a_json_500(api_client, monkeypatch):
    from campaigns.api import CampaignViewSet

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(CampaignViewSet, "list", broken)
    api_client.raise_request_exception = False
    assert_error(api_client.get("/api/v1/campaigns/"), 500, "server_error")
