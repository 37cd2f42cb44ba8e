import datetime as dt

import pytest
from django.utils import timezone

from calls.models import DiallerHeartbeat


@pytest.mark.django_db
def test_healthz_fails_before_any_tick(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "ok"


@pytest.mark.django_db
def test_healthz_ok_after_recent_tick_and_fails_when_stale(client):
    DiallerHeartbeat.objects.create(pk=1, last_tick_at=timezone.now())
    assert client.get("/healthz").json()["status"] == "ok"
    DiallerHeartbeat.objects.filter(pk=1).update(
        last_tick_at=timezone.now() - dt.timedelta(hours=1)
    )
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "error"
