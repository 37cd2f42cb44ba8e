"""The dashboard as a wallboard: why contacts wait, the finish estimate, the live JSON view the
page's script reads, the control buttons on the panels and the campaign page, and words
instead of Python reprs."""

import datetime as dt
import json
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from calls.models import DiallerHeartbeat
from calls.reports.dashboard import build_dashboard
from calls.reports.live import estimate_text, finish_estimate
from calls.reports.stats import DEFINITIONS
from campaigns.models import Campaign
from tests.factories import (
    CallAttemptFactory,
    CampaignFactory,
    ContactFactory,
    QuestionFactory,
)
from voicesurvey.times import duration_text

pytestmark = pytest.mark.django_db

DASHBOARD = "admin:dashboard"
LIVE = "admin:dashboard_live"
# At `now` (a Monday, 13:00 in Paris, 07:00 in New York) Paris is inside the 09:00-20:00
# window, New York not yet.
PARIS, NEW_YORK = ["Europe/Paris"], ["America/New_York"]


def control_url(campaign, action, next_url=""):
    url = reverse("admin:campaigns_campaign_control", args=[campaign.pk, action])
    return f"{url}?next={next_url}" if next_url else url


# `frozen` stops the clock at `now`: a Monday, 13:00 in Paris, 07:00 in New York (Paris
# inside the 09:00-20:00 window, New York not yet).


@pytest.fixture
def waiting_campaign(now):
    """A running campaign whose callable contacts wait for different reasons at `now`."""
    campaign = CampaignFactory(name="Wait and see", status=Campaign.Status.RUNNING)
    due = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    later = now + dt.timedelta(minutes=45)
    for _ in range(2):
        ContactFactory(campaign=campaign, timezones=PARIS, next_attempt_at=due)  # call now
    for _ in range(3):
        ContactFactory(campaign=campaign, timezones=NEW_YORK, next_attempt_at=due)  # window
    ContactFactory(campaign=campaign, timezones=PARIS, state="not_reached", next_attempt_at=later)
    ContactFactory(campaign=campaign, timezones=NEW_YORK, next_attempt_at=later)
    ContactFactory(campaign=campaign, state="completed")
    ContactFactory(campaign=campaign, state="excluded")
    ContactFactory(campaign=campaign, state="in_progress")
    return campaign


# --- figures --------------------------------------------------------------------------------------


def test_contacts_waiting_for_the_window_and_for_the_retry_delay_are_told_apart(
    waiting_campaign, now
):
    (panel,) = build_dashboard(now=now).panels
    assert (panel.waiting.due_now, panel.waiting.for_window, panel.waiting.for_retry) == (2, 3, 2)
    # Two hours later New York's window has opened: the same contacts are due now.
    (later,) = build_dashboard(now=now + dt.timedelta(hours=2)).panels
    assert (later.waiting.due_now, later.waiting.for_window, later.waiting.for_retry) == (7, 0, 0)


def test_progress_counts_done_over_callable_contacts(waiting_campaign, now):
    ContactFactory(campaign=waiting_campaign, state="refused")
    (panel,) = build_dashboard(now=now).panels
    # 11 contacts, 1 excluded: 10 callable; done = the completed and the refused one.
    assert (panel.contacts_done, panel.contacts_callable) == (2, 10)
    assert panel.figures["done"] == "2 / 10" and panel.figures["progress"] == "20.0%"
    assert panel.figures["completion_rate"] == "10.0%"  # 1 completed / 10 callable


def test_finish_estimate_at_the_last_hour_pace(waiting_campaign, now):
    contact = waiting_campaign.contacts.filter(state="pending").first()
    for minutes in (5, 20, 35, 50):  # four calls in the last hour...
        at = now - dt.timedelta(minutes=minutes)
        CallAttemptFactory(contact=contact, created_at=at, status="busy", ended_at=at)
    at = now - dt.timedelta(minutes=70)  # ...and one before it, not counted
    CallAttemptFactory(contact=contact, created_at=at, status="busy", ended_at=at)
    (panel,) = build_dashboard(now=now).panels
    assert panel.calls_last_hour == 4
    assert panel.contacts_to_do == 8  # 7 due or waiting, and the one on a call
    assert panel.finish_estimate == dt.timedelta(hours=2)
    assert panel.figures["estimate"] == "about 2 h 00 min"
    assert panel.figures["calls_last_hour"] == "4"


def test_finish_estimate_words():
    assert finish_estimate(10, 0) is None
    assert estimate_text(None) == "no calls in the last hour"
    assert estimate_text(finish_estimate(0, 0)) == "nothing left to call"
    assert estimate_text(finish_estimate(30, 120)) == "about 15 min"
    assert estimate_text(finish_estimate(1000, 10)) == "about 4 days 4 h"
    assert [duration_text(s) for s in (0, 42, 125, 7260)] == [
        "0 s",
        "42 s",
        "2 min 05 s",
        "2 h 01 min",
    ]


def test_the_dashboard_page_says_why_contacts_wait(frozen, admin_client, waiting_campaign):
    body = admin_client.get(reverse(DASHBOARD)).content.decode()
    panel = body[body.index(f'id="campaign-{waiting_campaign.pk}"') :]
    assert re.search(r'data-live="due_now">2<', panel)
    assert re.search(r'data-live="waiting_window">3<', panel)
    assert re.search(r'data-live="waiting_retry">2<', panel)
    assert "waiting for their calling window" in panel
    assert re.search(r'data-live="estimate">no calls in the last hour<', panel)


def test_dashboard_queries_stay_few_with_waiting_contacts_in_many_zones(
    frozen, admin_client, django_assert_max_num_queries
):
    zones = ["Europe/Paris", "Asia/Tokyo", "America/Chicago", "Australia/Sydney"]
    for _ in range(4):
        campaign = CampaignFactory(status=Campaign.Status.RUNNING)
        for zone in zones:
            ContactFactory(campaign=campaign, timezones=[zone])
    admin_client.get(reverse(LIVE))
    with django_assert_max_num_queries(9):  # session, user, the dashboard's but the day's
        assert admin_client.get(reverse(LIVE)).status_code == 200


# --- the live JSON view ---------------------------------------------------------------------------


@pytest.fixture
def calling(waiting_campaign, now):
    """A call on the line for 95 seconds and one still ringing."""
    on_call = waiting_campaign.contacts.get(state="in_progress")
    on_call.name = "Ada Lovelace"
    on_call.save()
    at = now - dt.timedelta(seconds=95)
    CallAttemptFactory(
        contact=on_call, created_at=at, dialled_at=at, answered_at=at, status="in_progress"
    )
    ringing = waiting_campaign.contacts.filter(state="pending").first()
    ringing.state = "in_progress"
    ringing.save()
    at = now - dt.timedelta(seconds=12)
    CallAttemptFactory(contact=ringing, created_at=at, dialled_at=at, status="ringing")
    return waiting_campaign


def test_the_live_view_gives_the_panels_figures_and_the_calls_live_now(
    frozen, admin_client, calling
):
    response = admin_client.get(reverse(LIVE))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    data = response.json()
    (campaign,) = data["campaigns"]
    assert campaign["id"] == calling.pk and campaign["status"] == "running"
    assert campaign["actions"] == ["pause", "cancel"]
    figures = campaign["figures"]
    assert figures["live_calls"] == "2 / 10"
    assert figures["calls_last_hour"] == "2"
    assert (figures["due_now"], figures["waiting_window"]) == ("1", "3")
    assert data["live_calls_total"] == 2
    assert data["live_calls"] == [
        {
            "call_id": data["live_calls"][0]["call_id"],
            "campaign": "Wait and see",
            "contact": "Ada Lovelace",
            "status": "answered",
            "duration": "1 min 35 s",
        },
        {
            "call_id": data["live_calls"][1]["call_id"],
            "campaign": "Wait and see",
            "contact": data["live_calls"][1]["contact"],
            "status": "ringing",
            "duration": "12 s",
        },
    ]
    assert data["health"] == {
        "ok": False,
        "text": "Not ticking: the dialler has never ticked. "
        "Start manage.py run_scheduler (or qcluster).",
    }
    # The page shows the same words on load.
    page = admin_client.get(reverse(DASHBOARD)).content.decode()
    for name, text in figures.items():
        assert f'data-live="{name}">{text}<' in page, name
    assert "<td>Ada Lovelace</td><td>answered</td><td>1 min 35 s</td>" in page


def test_the_live_view_follows_the_data_without_a_reload(frozen, admin_client, calling):
    before = admin_client.get(reverse(LIVE)).json()
    calling.contacts.filter(state="pending").update(next_attempt_at=frozen + dt.timedelta(hours=1))
    DiallerHeartbeat.objects.create(pk=1, last_tick_at=frozen, report={"dialled": 12})
    after = admin_client.get(reverse(LIVE)).json()
    assert before["campaigns"][0]["figures"]["due_now"] == "1"
    assert after["campaigns"][0]["figures"]["due_now"] == "0"
    assert after["health"] == {"ok": True, "text": "Ticking: last tick 0 s ago, 12 calls placed."}


def test_the_live_view_names_a_contact_only_to_who_may_see_contacts(frozen, staff_with, calling):
    client = staff_with("campaigns.view_campaign")
    contacts = [call["contact"] for call in client.get(reverse(LIVE)).json()["live_calls"]]
    assert "Ada Lovelace" not in contacts
    assert all(re.fullmatch(r"Contact #\d+", name) for name in contacts)


def test_the_live_view_needs_the_dashboards_permission(client, staff_with, calling):
    url = reverse(LIVE)
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    refused = staff_with("contacts.view_contact").get(url)
    assert refused.status_code == 403
    assert b"Wait and see" not in refused.content


def test_a_logged_in_user_who_is_not_staff_is_sent_to_the_login(client, django_user_model):
    user = django_user_model.objects.create_user("caller", password="pw-for-tests-1")
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(user)
    response = client.get(reverse(LIVE))
    assert response.status_code == 302 and "login" in response["Location"]


# --- the control buttons --------------------------------------------------------------------------


def test_the_pause_button_pauses_and_returns_to_the_dashboard(admin_client):
    campaign = CampaignFactory(name="Spring poll", status=Campaign.Status.RUNNING)
    dashboard = reverse(DASHBOARD)
    page = admin_client.get(dashboard).content.decode()
    assert f'id="pause-campaign-{campaign.pk}"' in page
    assert f'action="{control_url(campaign, "pause", "")}?next=' in page

    response = admin_client.post(control_url(campaign, "pause", dashboard), follow=True)
    assert response.redirect_chain == [(dashboard, 302)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    body = response.content.decode()
    assert "Pause: Spring poll (now paused)." in body
    # Paused: the resume button shows, the pause button is hidden.
    assert re.search(r'data-action="resume">', body)
    assert re.search(r'data-action="pause" hidden>', body)


def test_the_buttons_only_answer_a_post(admin_client):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    assert admin_client.get(control_url(campaign, "pause")).status_code == 405
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_the_buttons_need_a_csrf_token(admin_user):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(control_url(campaign, "pause")).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_the_buttons_need_the_change_permission_as_the_api_does(staff_with):
    campaign = CampaignFactory(name="Spring poll", status=Campaign.Status.RUNNING)
    client = staff_with("campaigns.view_campaign")
    page = client.get(reverse(DASHBOARD)).content.decode()
    assert "Spring poll" in page and 'data-action="pause"' not in page
    assert client.post(control_url(campaign, "pause")).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_a_user_with_the_change_permission_may_pause(staff_with):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    client = staff_with("campaigns.view_campaign", "campaigns.change_campaign")
    assert client.post(control_url(campaign, "pause")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_cancel_asks_first_and_goes_back_where_it_came_from(admin_client):
    campaign = CampaignFactory(name="Spring poll", status=Campaign.Status.PAUSED)
    dashboard = reverse(DASHBOARD)
    url = control_url(campaign, "cancel", dashboard)
    asking = admin_client.post(url)
    assert asking.status_code == 200
    assert "cannot be resumed or restarted" in asking.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED

    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', asking.content.decode())
    )
    done = admin_client.post(url, fields)
    assert done.status_code == 302 and done["Location"] == dashboard
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED


def test_an_illegal_move_is_reported_and_changes_nothing(admin_client):
    campaign = CampaignFactory(name="Spring poll", status=Campaign.Status.RUNNING)
    response = admin_client.post(control_url(campaign, "resume"), follow=True)
    assert (
        "Cannot resume campaign &#x27;Spring poll&#x27;: it is running" in response.content.decode()
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert admin_client.post(control_url(campaign, "delete")).status_code == 404


def test_the_buttons_never_send_the_browser_to_another_site(admin_client):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    response = admin_client.post(control_url(campaign, "pause", "https://evil.example/"))
    assert response["Location"] == reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def test_the_campaign_page_has_the_buttons_its_status_allows(admin_client):
    campaign = CampaignFactory(name="Draft poll")
    QuestionFactory(campaign=campaign, position=1)
    change = reverse("admin:campaigns_campaign_change", args=[campaign.pk])
    body = admin_client.get(change).content.decode()
    assert re.search(r'data-action="start">', body)
    assert re.search(r'data-action="cancel">', body)
    assert re.search(r'data-action="pause" hidden>', body)
    # The buttons are outside the campaign's own form.
    assert body.index('id="start-campaign-') < body.index('id="campaign_form"')

    response = admin_client.post(control_url(campaign, "start", change), follow=True)
    assert response.redirect_chain == [(change, 302)]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


# --- words, not reprs -----------------------------------------------------------------------------

PYTHON = ("[]", "{}", "None", "{'", "['", "True", "False")


def visible_text(html: str) -> str:
    """The text a person reads on the page (tags, scripts and styles taken out)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_no_python_reprs_on_the_dashboard_nor_in_its_json(frozen, admin_client, calling):
    DiallerHeartbeat.objects.create(
        pk=1,
        last_tick_at=frozen,
        report={"claimed": 0, "started": [], "completed": [], "skipped": {}, "errors": []},
    )
    CampaignFactory(name="Quiet", status=Campaign.Status.PAUSED)  # no contacts, no calls
    body = admin_client.get(reverse(DASHBOARD)).content.decode()
    main = visible_text(body[body.index('id="content-main"') : body.index('id="footer"')])
    texts = json.dumps(admin_client.get(reverse(LIVE)).json())
    for python in PYTHON:
        assert python not in main, python
    for python in ("None", "{'", "['"):
        assert python not in texts, python
    heartbeats = admin_client.get(reverse("admin:calls_diallerheartbeat_changelist"))
    listing = visible_text(heartbeats.content.decode())
    assert "0 calls placed." in listing and "{" not in listing


# --- one vocabulary -------------------------------------------------------------------------------


def test_the_definitions_read_the_same_on_the_dashboard_the_results_and_the_api(admin_client):
    campaign = CampaignFactory(status=Campaign.Status.RUNNING)
    dashboard = admin_client.get(reverse(DASHBOARD)).content.decode()
    results = admin_client.get(
        reverse("admin:campaigns_campaign_results", args=[campaign.pk])
    ).content.decode()
    schema = admin_client.get(reverse("schema") + "?format=json").json()
    stats = schema["components"]["schemas"]["Stats"]["properties"]
    for key in ("done", "answer_rate", "completion_rate"):
        words = DEFINITIONS[key]
        assert words in dashboard and words in results, key
    assert stats["answer_rate"]["description"].startswith(DEFINITIONS["answer_rate"])
    assert stats["completion_rate"]["description"].startswith(DEFINITIONS["completion_rate"])


# --- the way to the API ---------------------------------------------------------------------------


def test_the_admin_links_to_the_api_docs_and_says_how_to_get_a_token(admin_client):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("swagger-ui")}" id="api-docs-link"' in body
    assert f'href="{reverse("swagger-ui")}" id="header-api-docs"' in body
    assert "python manage.py issue_token &lt;username&gt;" in body
    assert f'href="{reverse("admin:accounts_apitoken_add")}"' in body
    assert admin_client.get(reverse("swagger-ui")).status_code == 200


def test_without_the_token_permission_the_index_says_who_issues_one(staff_with):
    body = staff_with("campaigns.view_campaign").get(reverse("admin:index")).content.decode()
    assert "An administrator issues one under API access" in body
    assert reverse("admin:accounts_apitoken_add") not in body
