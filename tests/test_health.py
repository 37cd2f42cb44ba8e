import datetime as dt

import pytest
import time_machine

from calls.models import DiallerHeartbeat


@pytest.mark.django_db
def test_healthz_fails_before_any_tick(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "ok"


@pytest.mark.django_db
def test_healthz_ok_after_recent_tick_and_fails_when_stale(client, now):
    DiallerHeartbeat.objects.create(pk=1, last_tick_at=now - dt.timedelta(seconds=10))
    with time_machine.travel(now, tick=False):
        assert client.get("/healthz").json()["status"] == "ok"
    DiallerHeartbeat.objects.filter(pk=1).update(last_tick_at=now - dt.timedelta(hours=1))
    with time_machine.travel(now, tick=False):
        response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "error"
