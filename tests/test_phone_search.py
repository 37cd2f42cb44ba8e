"""Numbers typed as people write them work wherever a number is typed: the do-not-call form
(read in the region shown beside it) and the lists' search (matched on the stored E.164)."""

import pytest
from django.urls import reverse

from contacts.models import Contact, Exclusion
from contacts.phones import phone_search
from tests.factories import CallAttemptFactory, ContactFactory, ExclusionFactory
from tests.staff import staff_client

pytestmark = pytest.mark.django_db

CONTACTS = reverse("admin:contacts_contact_changelist")


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("555-0148", True),
        ("(212) 555-0148", True),
        ("212.555.0148", True),
        ("+1 212 555 0148", True),
        ("12125550148", True),
        ("0148", True),
        ("(213) 555-0148", False),
        ("148", None),  # too short to be a number: the plain search only
        ("Ada", None),
        ("", None),
    ],
)
def test_phone_search_matches_the_stored_number(term, found):
    ContactFactory(phone="+12125550148")
    query = phone_search(term)
    if found is None:
        assert query is None
    else:
        assert Contact.objects.filter(query).exists() is found


def test_a_full_national_number_with_a_trunk_zero_is_read_in_the_region():
    ContactFactory(phone="+442079460018")
    assert Contact.objects.filter(phone_search("020 7946 0018", region="GB")).exists()


@pytest.mark.parametrize("term", ["555-0148", "(212) 555-0148", "2125550148"])
def test_the_contact_list_finds_a_number_in_any_format(admin_client, term):
    ContactFactory(phone="+12125550148", name="Ada")
    ContactFactory(phone="+12125550199", name="Bob")
    page = admin_client.get(CONTACTS, {"q": term}).content.decode()
    assert "Ada" in page and "Bob" not in page


def test_the_search_still_finds_names_and_ids(admin_client):
    ContactFactory(name="Grace Hopper", external_id="8675309")
    ContactFactory(name="Bob")
    assert "Grace Hopper" in admin_client.get(CONTACTS, {"q": "hopper"}).content.decode()
    assert "Grace Hopper" in admin_client.get(CONTACTS, {"q": "8675309"}).content.decode()


def test_the_search_box_says_how_numbers_are_read(admin_client, settings):
    page = admin_client.get(CONTACTS).content.decode()
    assert "(212) 555-0148" in page and "read as US" in page


def test_the_do_not_call_list_finds_numbers_in_any_format(admin_client):
    ExclusionFactory(phone="+12125550148", reason="letter")
    page = admin_client.get(
        reverse("admin:contacts_exclusion_changelist"), {"q": "(212) 555-0148"}
    ).content.decode()
    assert "letter" in page


def test_calls_are_found_by_number_only_by_who_may_read_contacts(client, django_user_model):
    attempt = CallAttemptFactory(contact__phone="+12125550148")
    url = reverse("admin:calls_callattempt_changelist")
    viewer = staff_client(client, django_user_model, "calls.view_callattempt")
    page = viewer.get(url, {"q": "555-0148"}).content.decode()
    assert f"Contact #{attempt.contact_id}" not in page  # not found through the number
    reader = staff_client(
        client,
        django_user_model,
        "calls.view_callattempt",
        "contacts.view_contact",
        username="reader",
    )
    page = reader.get(url, {"q": "555-0148"}).content.decode()
    assert attempt.contact.name in page


def dnc_form(**fields):
    return {
        "phone": "",
        "region": "US",
        "reason": "asked by letter",
        "source": "manual",
        "expires_at_0": "",
        "expires_at_1": "",
        **fields,
    }


def test_the_do_not_call_form_shows_the_region_of_national_numbers(admin_client, settings):
    settings.DEFAULT_REGION = "GB"
    page = admin_client.get(reverse("admin:contacts_exclusion_add")).content.decode()
    assert 'name="region" value="GB"' in page
    assert "Region of national numbers" in page


@pytest.mark.parametrize(
    ("typed", "region", "stored"),
    [
        ("(212) 555-0148", "US", "+12125550148"),
        ("212-555-0148", "", "+12125550148"),  # empty: the project's region
        ("020 7946 0018", "gb", "+442079460018"),
        ("+33 6 12 34 56 78", "US", "+33612345678"),
    ],
)
def test_the_do_not_call_form_reads_national_numbers(admin_client, typed, region, stored):
    response = admin_client.post(
        reverse("admin:contacts_exclusion_add"), dnc_form(phone=typed, region=region)
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert Exclusion.objects.get().phone == stored


def test_a_number_already_listed_in_another_format_is_refused(admin_client):
    ExclusionFactory(phone="+12125550148")
    response = admin_client.post(
        reverse("admin:contacts_exclusion_add"), dnc_form(phone="(212) 555-0148")
    )
    assert response.status_code == 200
    assert (
        "+12125550148 is already on the do-not-call list of the global scope (every campaign)"
        in (response.content.decode())
    )
    assert Exclusion.objects.count() == 1


def test_an_unknown_region_is_refused(admin_client):
    response = admin_client.post(
        reverse("admin:contacts_exclusion_add"), dnc_form(phone="555 0148", region="XX")
    )
    assert response.status_code == 200
    assert "Unknown region" in response.content.decode()


def test_a_contact_typed_in_national_format_is_stored_in_e164(admin_client):
    from tests.factories import RunningCampaignFactory

    campaign = RunningCampaignFactory()
    response = admin_client.post(
        reverse("admin:contacts_contact_add"),
        {
            "campaign": campaign.pk,
            "phone": "(312) 555-0148",
            "region": "US",
            "name": "Grace",
            "external_id": "",
            "language": "",
            "attributes": "{}",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    contact = Contact.objects.get()
    assert (contact.phone, contact.zones) == ("+13125550148", ["America/Chicago"])
