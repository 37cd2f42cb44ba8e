"""The back office in a real browser: Debian's chromium driven by Playwright against the live
server. `.ci/run` installs chromium; in CI (CI set) a missing browser fails the run, on a
laptop without it these tests skip and say why."""

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from calls.models import CallAttempt, DiallerHeartbeat
from campaigns.models import Campaign
from tests.factories import AnswerFactory, CallAttemptFactory, ContactFactory

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "artifacts"
PASSWORD = "pw-for-browser-tests-1"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def browser_missing() -> str | None:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser():
    problem = browser_missing()
    if problem:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"Browser tests must run in CI, but {problem}.")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread as long as the browser
    # is open; the ORM calls the tests make between page steps (and the database flush after
    # each test) are plain synchronous code all the same, so Django may allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("operator", "op@example.com", PASSWORD)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#backoffice-module")


def create_campaign_with_two_questions(page, live_server) -> Campaign:
    page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    page.fill("#id_name", "Browser survey")
    page.fill("#id_intro_message", "Hello {name|there}, two quick questions.")
    for i, (prompt, kind) in enumerate(
        [("Did we arrive on time?", "yes_no"), ("What could we do better?", "speech")]
    ):
        page.click("#questions-group .add-row a")
        page.fill(f"#id_questions-{i}-position", str(i + 1))
        page.fill(f"#id_questions-{i}-prompt", prompt)
        page.select_option(f"#id_questions-{i}-kind", kind)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    campaign = Campaign.objects.get(name="Browser survey")
    assert list(campaign.questions.values_list("kind", flat=True)) == ["yes_no", "speech"]
    return campaign


def import_contacts_with_one_bad_row(page, live_server, campaign, tmp_path):
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "phone,name\n+12125550101,Ada\n+12125550102,Bob\nnot-a-phone,Cy\n+12125550103,Dee\n"
    )
    page.goto(f"{live_server.url}/admin/contacts/contact/")
    page.click("a.import-link")
    page.select_option("#id_campaign", str(campaign.pk))
    page.set_input_files("#id_file", str(csv_file))
    page.click("input[name=_import]")
    page.wait_for_selector("#import-report")
    assert page.inner_text("#report-created") == "3"
    assert page.inner_text("#report-rejected") == "1"
    rejection = page.locator("#rejections tr.rejection")
    assert rejection.count() == 1
    assert rejection.locator("td").first.inner_text() == "4"  # the line of the bad row
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "import-report.png"), full_page=True)


def start_campaign(page, live_server, campaign):
    page.goto(f"{live_server.url}/admin/campaigns/campaign/")
    page.check(f"input[name=_selected_action][value='{campaign.pk}']")
    page.select_option("select[name=action]", "start_campaigns")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert "now running" in page.inner_text(".messagelist")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def make_some_calls(campaign):
    """What the dialler and the provider would have written in the last hours."""
    now = dt.datetime.now(dt.UTC)
    first, second = campaign.questions.order_by("position")
    for i, contact in enumerate(campaign.contacts.order_by("pk")):
        at = now - dt.timedelta(hours=i, minutes=5)
        attempt = CallAttemptFactory(
            contact=contact,
            attempt_number=1,
            status=CallAttempt.Status.COMPLETED,
            answered_by="human",
            survey_finished=True,
            created_at=at,
            dialled_at=at,
            answered_at=at,
            ended_at=at + dt.timedelta(minutes=2),
        )
        AnswerFactory(attempt=attempt, question=first, value="yes" if i else "no")
        AnswerFactory(attempt=attempt, question=second, value=["more legroom", "food"][i % 2])
    DiallerHeartbeat.objects.update_or_create(
        pk=1, defaults={"last_tick_at": now, "worker": "browser-test", "report": {"claimed": 3}}
    )


def test_operator_day_in_the_back_office(page, live_server, django_user_model, tmp_path):
    log_in(page, live_server, django_user_model)
    campaign = create_campaign_with_two_questions(page, live_server)
    import_contacts_with_one_bad_row(page, live_server, campaign, tmp_path)
    start_campaign(page, live_server, campaign)
    make_some_calls(campaign)

    page.goto(f"{live_server.url}/admin/")
    page.click("#dashboard-link")
    panel = page.locator(f"#campaign-{campaign.pk}")
    panel.wait_for()
    assert "Browser survey" in panel.locator("h2").inner_text()
    assert panel.locator("svg.chart").count() == 3
    assert panel.locator(".chart-states rect.bar").count() >= 1
    assert panel.locator(".chart-hourly rect.bar[data-value='1']").count() == 3
    assert panel.locator(".chart-outcomes rect.bar").count() == 1  # all completed
    assert page.inner_text("#dialler-health").startswith("Ticking: last tick")
    page.click("#tick-report summary")  # the raw report, behind its details link
    assert page.inner_text("#last-tick").endswith("UTC")
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    panel.locator("a", has_text="Results").click()
    page.wait_for_selector(".question-result")
    assert page.locator(".question-result").count() == 2
    assert page.locator(".question-result svg.chart rect.bar").count() >= 4
    page.screenshot(path=str(ARTIFACTS / "results.png"), full_page=True)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


def test_survey_preview_in_the_browser(page, live_server, django_user_model):
    log_in(page, live_server, django_user_model)
    campaign = Campaign.objects.create(name="Preview me", intro_message="Hi {name|friend}.")
    campaign.questions.create(position=1, prompt="Happy?", kind="yes_no")
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    page.click("#preview-link")
    page.wait_for_selector("#spoken-lines")
    lines = page.locator("#spoken-lines li").all_inner_texts()
    assert lines[:2] == ["Hi friend.", "Happy?"]
    assert "<Gather" in page.inner_text("#twiml")


def dashboard_url(live_server) -> str:
    return f"{live_server.url}/admin/campaigns/campaign/dashboard/"


def test_the_wallboard_refreshes_its_figures_without_reloading(
    page, live_server, django_user_model
):
    from playwright.sync_api import expect

    log_in(page, live_server, django_user_model)
    campaign = Campaign.objects.create(name="Live board", status=Campaign.Status.RUNNING)
    contact = ContactFactory(campaign=campaign, name="Grace Hopper", state="in_progress")
    page.goto(dashboard_url(live_server))
    panel = page.locator(f"#campaign-{campaign.pk}")
    live = panel.locator('[data-live="live_calls"]')
    expect(live).to_have_text("0 / 10")
    expect(page.locator("#dialler-health")).to_contain_text("never ticked")
    page.evaluate("window.sameDocument = true")  # lost if the page reloads

    now = dt.datetime.now(dt.UTC)
    CallAttemptFactory(
        contact=contact, created_at=now, dialled_at=now, answered_at=now, status="in_progress"
    )
    DiallerHeartbeat.objects.update_or_create(
        pk=1, defaults={"last_tick_at": now, "worker": "browser-test", "report": {"dialled": 12}}
    )
    expect(live).to_have_text("1 / 10", timeout=20_000)
    expect(panel.locator('[data-live="calls_last_hour"]')).to_have_text("1")
    expect(page.locator("#live-calls tbody")).to_contain_text("Grace Hopper")
    expect(page.locator("#live-calls-total")).to_have_text("1")
    expect(page.locator("#dialler-health")).to_contain_text("12 calls placed")
    expect(page.locator("#live-state")).to_contain_text("update every")
    assert page.evaluate("window.sameDocument") is True
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wallboard-live.png"), full_page=True)


def test_the_pause_button_on_the_wallboard(page, live_server, django_user_model):
    from playwright.sync_api import expect

    log_in(page, live_server, django_user_model)
    campaign = Campaign.objects.create(name="Pause me", status=Campaign.Status.RUNNING)
    page.goto(dashboard_url(live_server))
    pause, resume = f"#pause-campaign-{campaign.pk}", f"#resume-campaign-{campaign.pk}"
    expect(page.locator(resume)).to_be_hidden()
    page.click(pause)
    page.wait_for_selector(".messagelist .success")
    assert "Pause me (now paused)" in page.inner_text(".messagelist")
    assert page.url == dashboard_url(live_server)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    panel = page.locator(f"#campaign-{campaign.pk}")
    expect(panel.locator('[data-live="status"]')).to_have_text("Paused")
    expect(page.locator(pause)).to_be_hidden()
    expect(page.locator(resume)).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wallboard-paused.png"), full_page=True)

    # Resumed elsewhere (the API, another operator): the panel follows without a reload.
    campaign.transition("resume")
    expect(panel.locator('[data-live="status"]')).to_have_text("Running", timeout=20_000)
    expect(page.locator(pause)).to_be_visible()

    # The campaign's own page has the same buttons.
    page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    expect(page.locator(pause)).to_be_visible()
    expect(page.locator(resume)).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "campaign-controls.png"))
    page.goto(dashboard_url(live_server))

    # Cancel asks first, then comes back to the wallboard, where the campaign is gone.
    page.click(f"#cancel-campaign-{campaign.pk}")
    page.wait_for_selector("#confirm-button")
    assert "cannot be resumed or restarted" in page.inner_text("#content")
    page.click("#confirm-button")
    page.wait_for_selector(".messagelist .success")
    assert page.url == dashboard_url(live_server)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    expect(page.locator(f"#campaign-{campaign.pk}")).to_have_count(0)
