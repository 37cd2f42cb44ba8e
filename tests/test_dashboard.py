import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calls.dialler.tick import TickReport
from calls.models import CallAttempt, DiallerHeartbeat
from calls.reports.dashboard import build_dashboard, hour_slots
from calls.reports.stats import campaign_stats
from campaigns.models import Campaign
from tests.factories import CallAttemptFactory, CampaignFactory, ContactFactory

DASHBOARD = "admin:dashboard"


def finished(contact, *, at, status="completed", **fields):
    """An attempt of `contact` that ended at `at` (a final status needs an end)."""
    return CallAttemptFactory(
        contact=contact,
        created_at=at,
        ended_at=at + dt.timedelta(minutes=1),
        status=status,
        **({"dialled_at": at} | fields),
    )


@pytest.fixture
def busy_campaign(now):
    """A running campaign with a bit of everything: 5 contacts, calls over the last day."""
    campaign = CampaignFactory(name="Fleet survey", status=Campaign.Status.RUNNING)
    done = ContactFactory(campaign=campaign, state="completed")
    ContactFactory(campaign=campaign, state="refused")
    ContactFactory(campaign=campaign, state="exhausted")
    waiting = ContactFactory(campaign=campaign, state="not_reached")
    calling = ContactFactory(campaign=campaign, state="in_progress")
    hour_ago = now - dt.timedelta(hours=1)
    finished(done, at=hour_ago, answered_by="human", answered_at=hour_ago, survey_finished=True)
    finished(waiting, at=hour_ago, status="busy")
    finished(waiting, at=now + dt.timedelta(minutes=10), status="no_answer")
    finished(waiting, at=now - dt.timedelta(hours=30), status="busy")  # older than the day
    at = now + dt.timedelta(minutes=20)
    CallAttemptFactory(contact=calling, created_at=at, status="ringing", dialled_at=at)
    return campaign


@pytest.mark.django_db
def test_dashboard_with_no_data_says_what_to_do(admin_client):
    response = admin_client.get(reverse(DASHBOARD))
    assert response.status_code == 200
    body = response.content.decode()
    assert "No campaign is running or paused" in body
    assert "Not ticking: the dialler has never ticked" in body


@pytest.mark.django_db
def test_dashboard_is_linked_from_the_admin_index_and_the_campaigns(admin_client):
    for page in ("admin:index", "admin:campaigns_campaign_changelist"):
        body = admin_client.get(reverse(page)).content.decode()
        assert f'href="{reverse(DASHBOARD)}"' in body


@pytest.mark.django_db
def test_dashboard_is_for_staff_only(client, django_user_model):
    url = reverse(DASHBOARD)
    assert client.get(url)["Location"].startswith(reverse("admin:login"))
    user = django_user_model.objects.create_user("caller", password="pw-for-tests-1")
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_hour_slots_end_with_the_current_hour(now):
    slots = hour_slots(now + dt.timedelta(minutes=42))
    assert len(slots) == 24
    assert slots[-1] == now and slots[0] == now - dt.timedelta(hours=23)


@pytest.mark.django_db
def test_figures_of_a_running_campaign(busy_campaign, now):
    board = build_dashboard(now=now + dt.timedelta(minutes=30))
    (panel,) = board.panels
    assert panel.campaign == busy_campaign
    assert (panel.contacts_done, panel.contacts_total, panel.contacts_completed) == (3, 5, 1)
    assert dict(panel.hourly)[now - dt.timedelta(hours=1)] == 2
    assert dict(panel.hourly)[now] == 2  # the no-answer and the live call
    assert panel.attempts_24h == 4  # the call of 30 hours ago is not in the last day
    assert panel.outcomes == {"completed": 1, "busy": 1, "no_answer": 1}
    assert panel.live_calls == 1
    assert panel.answer_rate == pytest.approx(1 / 4)  # 1 answered of 4 dialled in the day
    assert panel.completion_rate == pytest.approx(1 / 5)


@pytest.mark.django_db
def test_only_running_and_paused_campaigns_are_shown(now):
    running = CampaignFactory(status=Campaign.Status.RUNNING)
    paused = CampaignFactory(status=Campaign.Status.PAUSED)
    for status in ("draft", "scheduled", "completed", "cancelled"):
        CampaignFactory(status=status)
    assert {p.campaign for p in build_dashboard(now=now).panels} == {running, paused}


@pytest.mark.django_db
def test_dashboard_page_shows_charts_rates_and_the_last_tick(frozen, admin_client, busy_campaign):
    now = frozen
    CallAttempt.objects.update(created_at=now)  # all five in the current hour
    DiallerHeartbeat.objects.create(
        pk=1,
        last_tick_at=now,
        worker="host-1:42",
        report={"claimed": 7, "seconds": 0.123456, "errors": ["+121****142 lost"]},
    )
    body = admin_client.get(reverse(DASHBOARD)).content.decode()
    assert "Fleet survey" in body
    assert '<strong data-live="done">3 / 5</strong>' in body  # no contact excluded
    assert re.search(r'data-live="live_calls">1 / 10<', body)  # against the cap
    assert "20.0%" in body  # answer rate: 1 answered of 5 dialled
    assert "Contacts claimed</th><td>7<" in body and "host-1:42" in body
    assert "<td>0.123 s</td>" in body and "+121****142 lost" in body
    assert "Ticking: last tick 0 s ago, 0 calls placed, 1 error." in body
    panel = body[body.index(f'id="campaign-{busy_campaign.pk}"') :]
    assert panel.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 3
    assert 'class="bar segment"' in panel  # contacts by state
    assert re.search(r'class="bar current" [^>]*data-value="5"', panel)  # this hour, marked


@pytest.mark.django_db
def test_a_stale_tick_is_flagged(frozen, admin_client):
    DiallerHeartbeat.objects.create(pk=1, last_tick_at=frozen - dt.timedelta(hours=2), report={})
    body = admin_client.get(reverse(DASHBOARD)).content.decode()
    assert re.search(
        r'id="dialler-health" class="vs-health vs-alert">Not ticking: the last tick was '
        r"2 h 00 min ago\. Is manage\.py run_scheduler \(or qcluster\) running\?<",
        body,
    )


@pytest.mark.django_db
def test_the_last_tick_reads_as_sentences_not_python(admin_client, now):
    running = CampaignFactory(name="Spring poll", status=Campaign.Status.RUNNING)
    idle = TickReport(at=now, dialled=3, claimed=3, started=[running.pk], completed=[])
    idle.skipped.update({"window_closed": 2})
    DiallerHeartbeat.objects.create(
        pk=1, last_tick_at=dt.datetime.now(dt.UTC), report=idle.as_dict()
    )
    body = admin_client.get(reverse(DASHBOARD)).content.decode()
    dialler = body[body.index('id="dialler-module"') : body.index('id="figures-at"')]
    assert "Ticking: last tick 0 s ago, 3 calls placed, 1 campaign started." in dialler
    assert "Campaigns started</th><td>Spring poll<" in dialler
    assert "Campaigns completed</th><td>none<" in dialler
    assert "calling window closed: 2" in dialler and "Errors</th><td>none<" in dialler
    for python in ("[]", "{}", "[", "{'", '{"', "None"):
        assert python not in dialler


def populate(campaigns: int, now) -> None:
    for _ in range(campaigns):
        campaign = CampaignFactory(status=Campaign.Status.RUNNING)
        for state in ("pending", "completed", "not_reached"):
            contact = ContactFactory(campaign=campaign, state=state)
            finished(contact, at=now - dt.timedelta(hours=2), status="no_answer")
        CallAttemptFactory(contact=contact, created_at=now, status="initiated")


@pytest.mark.django_db
def test_query_count_does_not_grow_with_campaigns(
    frozen, admin_client, django_assert_max_num_queries
):
    now = frozen
    DiallerHeartbeat.objects.create(pk=1, last_tick_at=now, report={"claimed": 1})
    url = reverse(DASHBOARD)
    populate(1, now)
    admin_client.get(url)  # warm the session and permission caches alike for both runs
    with CaptureQueriesContext(connection) as one:
        assert admin_client.get(url).status_code == 200
    populate(4, now)
    with django_assert_max_num_queries(len(one)):
        body = admin_client.get(url).content.decode()
    assert body.count('class="module vs-panel"') == 5
    # session, user, the eight of the dashboard (campaigns, contacts by state, the day's
    # attempts, the last hour's, live calls counted, why contacts wait, the live calls
    # listed, the last tick)
    assert len(one) <= 10, [q["sql"] for q in one]


@pytest.mark.django_db
def test_day_figures_agree_with_the_api_stats(now):
    """The dashboard labels grouped rows with the model's rule; calls.reports.stats counts with SQL:
    on the same attempts they give the same outcomes and the same answer rate."""
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    at = now - dt.timedelta(hours=2)
    variants = [
        {"status": "completed", "answered_by": "human", "survey_finished": True},
        {"status": "completed", "answered_by": "human"},
        {"status": "completed", "answered_by": "machine"},
        {"status": "completed", "answered_by": "human", "opted_out": True},
        {"status": "completed", "answered_by": "human", "callback_requested_for": now},
        {"status": "busy"},
        {"status": "no_answer"},
        {"status": "failed", "answered_at": at},
        {"status": "failed", "error_code": "lost"},
        {"status": "failed", "error_code": "number_rejected", "dialled_at": None},
        {"status": "failed", "error_code": "provider_unavailable", "dialled_at": None},
        {"status": "canceled"},
    ]
    for fields in variants:
        contact = ContactFactory(campaign=campaign)
        finished(contact, at=at, **fields)
    CallAttemptFactory(contact=ContactFactory(campaign=campaign), created_at=at, status="queued")

    (panel,) = build_dashboard(now=now).panels
    stats = campaign_stats(campaign.pk)
    expected = {k: n for k, n in stats["attempts"]["by_outcome"].items() if n}
    assert panel.outcomes | {"in_progress": panel.live_calls} == expected
    assert panel.reached_provider_24h == stats["attempts"]["reached_provider"] == 10
    assert panel.answered_24h == stats["attempts"]["answered"] == 5
    assert panel.answer_rate == pytest.approx(stats["answer_rate"], abs=1e-4)
