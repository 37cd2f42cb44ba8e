"""Every back-office page asks for the model permissions the API asks for the same data: a
staff user holding a narrower permission gets a 403 (or is sent to the login page), and the
page's data is not in the body."""

import pytest
from django.urls import reverse

from tests.factories import (
    AnswerFactory,
    CallAttemptFactory,
    ContactFactory,
    QuestionFactory,
    RunningCampaignFactory,
    book,
)

pytestmark = pytest.mark.django_db

NAME, PHONE, ANSWER = "Ada Lovelace", "+12125550150", "the-engines-answer"


@pytest.fixture
def surveyed():
    campaign = RunningCampaignFactory(name="Airline", intro_message="Hello {name|there}.")
    question = QuestionFactory(campaign=campaign, position=1, kind="speech", prompt="Why?")
    contact = ContactFactory(campaign=campaign, name=NAME, phone=PHONE)
    attempt = CallAttemptFactory(contact=contact, campaign=campaign)
    AnswerFactory(attempt=attempt, question=question, value=ANSWER)
    return campaign


def page(name, campaign=None):
    if name == "dashboard":
        return reverse("admin:dashboard")
    return reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])


def assert_refused(response, *secrets):
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert response["Location"].startswith(reverse("admin:login"))
    body = b"".join(response.streaming_content) if response.streaming else response.content
    for secret in secrets:
        assert secret.encode() not in body


@pytest.mark.parametrize(
    "name, perms, secrets",
    [
        # The API's results.csv needs view_campaign, view_contact and view_answer.
        ("results_csv", ["campaigns.view_campaign"], [NAME, PHONE, ANSWER]),
        ("results_csv", ["campaigns.view_campaign", "calls.view_answer"], [NAME, PHONE]),
        ("results_csv", ["campaigns.view_campaign", "contacts.view_contact"], [ANSWER]),
        # The preview speaks a contact's name and shows its number: view_contact.
        ("preview", ["campaigns.view_campaign"], [NAME, PHONE]),
        # The answers' distribution: view_answer (GET /api/v1/answers/).
        ("results", ["campaigns.view_campaign"], [ANSWER]),
        ("results", ["calls.view_answer"], [ANSWER, "Airline"]),
        # The dashboard's figures are the API's stats: view_campaign.
        ("dashboard", [], ["Airline"]),
        ("dashboard", ["contacts.view_contact"], ["Airline"]),
    ],
)
def test_a_page_is_refused_to_a_narrower_permission(staff_with, surveyed, name, perms, secrets):
    client = staff_with(*perms)
    assert_refused(client.get(page(name, surveyed)), *secrets)


@pytest.mark.parametrize(
    "name, perms, shown",
    [
        ("results_csv", ["campaigns.view_campaign", "contacts.view_contact", "calls.view_answer"],
         [NAME, PHONE, ANSWER]),
        ("preview", ["campaigns.view_campaign", "contacts.view_contact"], [NAME]),
        ("results", ["campaigns.view_campaign", "calls.view_answer"], [ANSWER]),
        ("dashboard", ["campaigns.view_campaign"], ["Airline"]),
    ],
)  # fmt: skip
def test_a_page_opens_with_the_apis_permissions(staff_with, surveyed, name, perms, shown):
    response = staff_with(*perms).get(page(name, surveyed))
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    for text in shown:
        assert text.encode() in body


def test_the_campaign_page_offers_only_the_pages_the_user_may_open(staff_with, surveyed):
    client = staff_with("campaigns.view_campaign")
    body = client.get(reverse("admin:campaigns_campaign_change", args=[surveyed.pk])).content
    for link in (b"preview-link", b"results-link", b"results-csv-link", b"import-contacts-link"):
        assert link not in body


def test_the_admin_index_offers_the_dashboard_only_to_campaign_viewers(staff_with):
    body = staff_with("contacts.view_contact").get(reverse("admin:index")).content
    assert b'id="dashboard-link"' not in body


@pytest.mark.parametrize(
    "url, perms",
    [
        ("admin:contacts_contact_import", ["contacts.view_contact", "campaigns.view_campaign"]),
        ("admin:contacts_exclusion_import", ["contacts.view_exclusion"]),
    ],
)
def test_the_import_pages_need_the_add_permission(staff_with, url, perms):
    client = staff_with(*perms)
    assert client.get(reverse(url)).status_code == 403
    assert client.post(reverse(url), {}).status_code == 403


@pytest.mark.parametrize(
    "model, perms",
    [
        ("callattempt", ["calls.view_callattempt"]),
        ("answer", ["calls.view_answer"]),
        ("scheduledcall", ["calls.view_scheduledcall"]),
    ],
)
def test_call_pages_name_a_contact_by_id_without_view_contact(
    staff_with, surveyed, now, model, perms
):
    contact = surveyed.contacts.get()
    book(contact, now)
    client = staff_with(*perms)
    changelist = reverse(f"admin:calls_{model}_changelist")
    response = client.get(changelist)
    assert response.status_code == 200
    assert NAME.encode() not in response.content and PHONE.encode() not in response.content
    # Searching by the number would tell whether it is a contact's: it finds nothing.
    assert client.get(changelist, {"q": PHONE}).context["cl"].result_count == 0
    obj = response.context["cl"].result_list[0]
    detail = client.get(reverse(f"admin:calls_{model}_change", args=[obj.pk]))
    assert detail.status_code == 200
    assert NAME.encode() not in detail.content and PHONE.encode() not in detail.content


def test_call_pages_name_the_contact_for_a_contact_viewer(staff_with, surveyed):
    client = staff_with("calls.view_callattempt", "contacts.view_contact")
    response = client.get(reverse("admin:calls_callattempt_changelist"), {"q": PHONE})
    assert NAME.encode() in response.content
    assert response.context["cl"].result_count == 1
