"""The back office's forms and pages in a real browser (Debian's chromium, Playwright, as
tests/test_browser.py): the booking form's repetition, a do-not-call number typed in national
format, a contact's history, the import's rejected rows download, the attempt list at
1366 px and a question's fields by kind. Screenshots go to artifacts/."""

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest

from calls.models import CallAttempt, ScheduledCall
from contacts.models import Exclusion
from tests.factories import (
    AnswerFactory,
    CallAttemptFactory,
    CallEventFactory,
    ContactFactory,
    QuestionFactory,
    RunningCampaignFactory,
    SurveyCampaignFactory,
)
from tests.test_browser import ARTIFACTS, browser, log_in  # noqa: F401  (browser: a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def wide_page(browser, live_server):  # noqa: F811
    """A laptop's screen: 1366 px wide."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def visible(page, selector: str) -> bool:
    return page.locator(selector).first.is_visible()


def test_booking_a_weekly_call_from_the_contact_page(wide_page, live_server, django_user_model):
    page = wide_page
    log_in(page, live_server, django_user_model)
    contact = ContactFactory(
        phone="+13125550148", name="Grace", campaign=SurveyCampaignFactory()
    )  # Chicago
    page.goto(f"{live_server.url}/admin/contacts/contact/{contact.pk}/change/")
    page.click("#book-call-link")
    page.wait_for_selector("#scheduledcall_form")
    assert page.input_value("#id_timezone") == "America/Chicago"  # the contact's own zone
    assert "Grace" in page.inner_text(".field-contact")  # chosen, not an id typed

    tomorrow = (dt.datetime.now(ZoneInfo("America/Chicago")) + dt.timedelta(days=1)).date()
    page.fill("#id_run_at_0", tomorrow.isoformat())
    page.fill("#id_run_at_1", "12:00:00")
    assert not visible(page, ".form-row.field-days")  # does not repeat: no days to choose
    page.select_option("#id_repeat", "WEEKLY")
    assert visible(page, ".form-row.field-days")
    page.check("#id_days_0")  # Monday
    page.check("#id_days_2")  # Wednesday
    page.check("input[name=ends][value=count]")
    assert visible(page, ".form-row.field-count") and not visible(page, ".form-row.field-until")
    page.fill("#id_count", "4")
    assert page.inner_text("#rrule-preview") == "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4"
    assert page.locator("input[name=rrule], textarea[name=rrule]").count() == 0  # never typed
    shot(page, "booking-recurrence.png")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    call = ScheduledCall.objects.get()
    assert (call.contact_id, call.rrule, call.timezone) == (
        contact.pk,
        "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4",
        "America/Chicago",
    )


def test_a_do_not_call_number_typed_in_national_format(wide_page, live_server, django_user_model):
    page = wide_page
    log_in(page, live_server, django_user_model)
    waiting = ContactFactory(phone="+12125550148", name="Ada")
    page.goto(f"{live_server.url}/admin/contacts/exclusion/add/")
    assert page.input_value("#id_region") == "US"  # the region national numbers are read in
    page.fill("#id_phone", "(212) 555-0148")
    page.fill("#id_reason", "Asked on the phone")
    shot(page, "do-not-call-national.png")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert Exclusion.objects.get().phone == "+12125550148"
    waiting.refresh_from_db()
    assert waiting.state == "excluded"

    page.fill("#searchbar", "555-0148")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#result_list")
    assert "+12125550148" in page.inner_text("#result_list")


def test_a_contacts_history(wide_page, live_server, django_user_model):
    page = wide_page
    log_in(page, live_server, django_user_model)
    campaign = RunningCampaignFactory(name="Airline")
    question = QuestionFactory(campaign=campaign, position=1, prompt="Fly again?")
    contact = ContactFactory(campaign=campaign, phone="+12125550148", name="Ada")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    first = CallAttemptFactory(
        contact=contact,
        attempt_number=1,
        status="no_answer",
        created_at=start,
        dialled_at=start + dt.timedelta(seconds=1),
        ended_at=start + dt.timedelta(seconds=30),
    )
    later = start + dt.timedelta(hours=1)
    second = CallAttemptFactory(
        contact=contact,
        attempt_number=2,
        status="completed",
        answered_by="human",
        survey_finished=True,
        created_at=later,
        dialled_at=later + dt.timedelta(seconds=1),
        answered_at=later + dt.timedelta(seconds=6),
        ended_at=later + dt.timedelta(seconds=71),
        duration=65,
    )
    CallEventFactory(
        attempt=second,
        kind="webhook",
        at=later + dt.timedelta(seconds=6),
        payload={"CallStatus": "in-progress", "To": "+121****148"},
    )
    AnswerFactory(attempt=second, question=question, value="yes", answered_at=later)
    assert first and CallAttempt.objects.count() == 2

    page.goto(f"{live_server.url}/admin/contacts/contact/{contact.pk}/change/")
    history = page.locator("#contact-history")
    history.wait_for()
    assert history.locator(".vs-entry.vs-call").count() == 2
    assert history.locator(".vs-entry.vs-answer").count() == 1
    assert "1 min 05 s" in history.inner_text()
    payload = history.locator("details.vs-payload").first
    assert not payload.locator("pre").is_visible()  # folded
    payload.locator("summary").click()
    assert "in-progress" in payload.locator("pre").inner_text()
    for tool in ("#call-now-button", "#book-call-link", "#retry-now-button", "#do-not-call-link"):
        assert visible(page, tool), tool
    shot(page, "contact-history.png")

    page.click("#call-now-button")
    page.wait_for_selector(".messagelist li")
    assert "Booked for now" in page.inner_text(".messagelist") or "Not called" in page.inner_text(
        ".messagelist"
    )  # outside the legal window in New York at this hour, the refusal says why

    history.locator("a", has_text="Call 2").first.click()
    page.wait_for_selector("#attempt-timeline")
    assert page.locator("#attempt-timeline .vs-entry").count() == 6
    shot(page, "attempt-timeline.png")


def test_the_imports_rejected_rows_download(wide_page, live_server, django_user_model, tmp_path):
    page = wide_page
    log_in(page, live_server, django_user_model)
    campaign = RunningCampaignFactory(name="Import me")
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "phone,name,city\n+12125550101,Ada,Boston\n555-01x9,Bob,Paris\n+12125550102,Cy,Rome\n"
    )
    page.goto(f"{live_server.url}/admin/contacts/contact/import/")
    page.select_option("#id_campaign", str(campaign.pk))
    page.set_input_files("#id_file", str(csv_file))
    page.click("input[name=_import]")
    page.wait_for_selector("#import-report")
    assert page.inner_text("#rejections .rejected-value") == "555-01x9"  # as written
    shot(page, "import-rejected-rows.png")
    with page.expect_download() as caught:
        page.click("#rejected-rows-link")
    download = caught.value
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert rows[0] == ["phone", "name", "city", "rejected_because"]
    assert rows[1][:3] == ["555-01x9", "Bob", "Paris"] and rows[1][3].startswith("Line 3:")
    assert download.suggested_filename.startswith("rejected-contacts-")


def fits_the_screen(page, columns: list[str]) -> None:
    width = page.evaluate("window.innerWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    fits = "(r => r.scrollWidth <= r.clientWidth)(document.querySelector('#changelist .results'))"
    assert page.evaluate(fits)  # no scrolling inside the list either
    for column in columns:
        box = page.locator(f"#result_list th.column-{column}").bounding_box()
        assert box and box["x"] + box["width"] <= width, column


def test_the_call_and_contact_lists_fit_a_laptop_screen(wide_page, live_server, django_user_model):
    page = wide_page
    log_in(page, live_server, django_user_model)
    campaign = RunningCampaignFactory(name="A campaign with a rather long name, as they are")
    now = dt.datetime.now(dt.UTC)
    for n in range(5):
        contact = ContactFactory(
            campaign=campaign,
            name=f"Somebody Withalongname {n}",
            state="not_reached",
            attempts_count=1,
            last_attempt_number=1,
            last_attempt_at=now,
        )
        CallAttemptFactory(
            contact=contact,
            attempt_number=1,
            status="completed",
            answered_by="human",
            survey_finished=True,
            created_at=now,
            answered_at=now,
            ended_at=now,
            duration=125,
        )
    page.goto(f"{live_server.url}/admin/calls/callattempt/")
    page.wait_for_selector("#result_list")
    shot(page, "attempt-list-1366.png")
    fits_the_screen(page, ["outcome_label", "duration_label", "answered_by_label"])
    page.goto(f"{live_server.url}/admin/contacts/contact/")
    page.wait_for_selector("#result_list")
    shot(page, "contact-list-1366.png")
    fits_the_screen(page, ["state", "calls", "last_attempt", "next_attempt"])


def test_a_questions_fields_follow_its_kind(wide_page, live_server, django_user_model):
    page = wide_page
    log_in(page, live_server, django_user_model)
    page.goto(f"{live_server.url}/admin/campaigns/campaign/add/")
    page.click("#questions-group .add-row a")
    row = "#questions-0"
    page.select_option("#id_questions-0-kind", "scale")
    assert visible(page, f"{row} .field-min_value") and not visible(
        page, f"{row} .field-valid_answers"
    )
    page.select_option("#id_questions-0-kind", "digits")
    assert visible(page, f"{row} .field-valid_answers")
    assert not visible(page, f"{row} .field-min_value")
    page.click(f"{row} .vs-list-add")
    assert page.locator(f"{row} input[name='questions-0-valid_answers']").count() == 3
    page.select_option("#id_questions-0-kind", "yes_no")
    assert not visible(page, f"{row} .field-valid_answers")
    shot(page, "question-by-kind.png")
