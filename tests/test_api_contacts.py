import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from contacts.models import Contact, Exclusion
from tests.factories import CampaignFactory, ContactFactory, ExclusionFactory
from tests.test_api_campaigns import assert_error

pytestmark = pytest.mark.django_db

CONTACTS = "/api/v1/contacts/"
EXCLUSIONS = "/api/v1/exclusions/"


def upload(text: str | bytes, name="contacts.csv"):
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


# --- contacts ---------------------------------------------------------------------------------


def test_create_contact_normalises_the_phone_and_derives_zones(api_client):
    campaign = CampaignFactory()
    response = api_client.post(
        CONTACTS,
        {
            "campaign": campaign.pk,
            "phone": "(212) 555-0101",
            "name": "Ann",
            "attributes": {"plan": "gold"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["phone"] == "+12125550101"
    assert body["timezone_key"] == "America/New_York"
    assert body["state"] == "pending"


@pytest.mark.parametrize("url", [CONTACTS, EXCLUSIONS, "/api/v1/scheduled-calls/ad-hoc/"])
@pytest.mark.parametrize("number", [12125550101, 442079460000, 12125550101.0, True])
def test_a_phone_sent_as_a_json_number_is_refused_not_guessed(api_client, url, number):
    # 0044 20 7946 0000 sent as a number arrives as 442079460000: which country, which 0s?
    campaign = CampaignFactory()
    body = {"campaign": campaign.pk, "phone": number, "message": "Hello"}
    response = api_client.post(url, body, format="json")
    assert_error(response, 400, "invalid")
    assert response.json()["error"]["details"]["phone"] == [
        'Send the number as text, e.g. "+14155550100".'
    ]
    assert not Contact.objects.exists() and not Exclusion.objects.exists()


def test_contact_on_the_do_not_call_list_is_created_excluded(api_client):
    campaign = CampaignFactory()
    ExclusionFactory(phone="+12125550101")
    response = api_client.post(
        CONTACTS, {"campaign": campaign.pk, "phone": "+1 212 555 0101"}, format="json"
    )
    assert response.json()["state"] == "excluded"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "hello"}, "phone"),
        ({"phone": "+12125550199", "timezones": ["Nowhere/Land"]}, "timezones"),
        ({"phone": "+12125550199", "attributes": [1, 2]}, "attributes"),
        ({"phone": "+12125550199", "campaign": 10**12}, "campaign"),
        ({"phone": "+12125550199", "campaign": "x"}, "campaign"),
        ({"phone": "+12125550100"}, "phone"),  # already in the campaign
    ],
)
def test_bad_contact_is_a_400_naming_the_field(api_client, body, field):
    campaign = CampaignFactory()
    ContactFactory(campaign=campaign, phone="+12125550100")
    error = assert_error(
        api_client.post(CONTACTS, {"campaign": campaign.pk, **body}, format="json"), 400
    )
    assert field in error["details"]


def test_update_contact_rederives_zones_of_a_new_number(api_client):
    contact = ContactFactory(phone="+12125550101")
    response = api_client.patch(
        f"{CONTACTS}{contact.pk}/", {"phone": "+33612345678", "name": "Zoé"}, format="json"
    )
    assert response.status_code == 200, response.content
    contact.refresh_from_db()
    assert (contact.phone, contact.name, contact.zones) == ("+33612345678", "Zoé", ["Europe/Paris"])


def test_contact_cannot_move_to_another_campaign(api_client):
    contact = ContactFactory()
    other = CampaignFactory()
    api_client.patch(f"{CONTACTS}{contact.pk}/", {"campaign": other.pk}, format="json")
    contact.refresh_from_db()
    assert contact.campaign_id != other.pk


def test_filter_contacts_by_campaign_state_and_phone_in_any_format(api_client):
    campaign = CampaignFactory()
    ann = ContactFactory(campaign=campaign, phone="+12125550101", name="Ann")
    ContactFactory(campaign=campaign, phone="+12125550102", state=Contact.State.COMPLETED)
    ContactFactory(phone="+12125550101")  # same number, another campaign
    by_phone = api_client.get(CONTACTS, {"campaign": campaign.pk, "phone": "(212) 555-0101"})
    assert [c["id"] for c in by_phone.json()["results"]] == [ann.pk]
    by_state = api_client.get(CONTACTS, {"campaign": campaign.pk, "state": "completed"})
    assert by_state.json()["count"] == 1
    assert api_client.get(CONTACTS, {"search": "Ann"}).json()["count"] >= 1
    ordered = api_client.get(CONTACTS, {"campaign": campaign.pk, "ordering": "-id"}).json()
    assert [c["id"] for c in ordered["results"]][-1] == ann.pk


def test_bad_phone_filter_is_a_400(api_client):
    error = assert_error(api_client.get(CONTACTS, {"phone": "nonsense"}), 400, "invalid")
    assert "phone" in error["details"]


def test_contact_permissions_and_not_found(viewer_client, anon_client, api_client):
    contact = ContactFactory()
    assert viewer_client.get(f"{CONTACTS}{contact.pk}/").status_code == 200
    assert_error(viewer_client.delete(f"{CONTACTS}{contact.pk}/"), 403)
    assert_error(anon_client.get(CONTACTS), 401)
    assert_error(api_client.get(f"{CONTACTS}{contact.pk + 1000}/"), 404)
    assert api_client.delete(f"{CONTACTS}{contact.pk}/").status_code == 204


# --- contact import ---------------------------------------------------------------------------


def import_url(campaign):
    return f"/api/v1/campaigns/{campaign.pk}/contacts/import"


def test_import_contacts_over_the_api(api_client):
    campaign = CampaignFactory()
    ExclusionFactory(phone="+33612345679")
    text = "phone;name\n06 12 34 56 78;Zoé\n06 12 34 56 79;Yves\n0612345678;dup\nbad;x\n"
    response = api_client.post(
        import_url(campaign), {"file": upload(text), "default_region": "fr"}, format="multipart"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert {k: body[k] for k in ("rows", "created", "duplicates", "excluded", "rejected")} == {
        "rows": 4,
        "created": 2,
        "duplicates": 1,
        "excluded": 1,
        "rejected": 1,
    }
    assert body["rejections"][0]["line"] == 5
    assert Contact.objects.filter(campaign=campaign).count() == 2


@pytest.mark.parametrize(
    "data",
    [b"", b"name\nAnn\n", b"\x00\x01\x02binary\x00"],
)
def test_import_of_an_unreadable_file_is_a_400(api_client, data):
    campaign = CampaignFactory()
    response = api_client.post(import_url(campaign), {"file": upload(data)}, format="multipart")
    error = assert_error(response, 400)
    assert error["code"] in ("invalid_file", "invalid")
    assert not Contact.objects.exists()


def test_import_without_a_file_or_with_a_bad_region_is_a_400(api_client):
    campaign = CampaignFactory()
    error = assert_error(api_client.post(import_url(campaign), {}, format="multipart"), 400)
    assert "file" in error["details"]
    response = api_client.post(
        import_url(campaign),
        {"file": upload("phone\n1\n"), "default_region": "XX"},
        format="multipart",
    )
    assert "default_region" in assert_error(response, 400)["details"]


def test_import_above_the_size_limit_is_a_413(api_client, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1000
    campaign = CampaignFactory()
    big = "phone\n" + "+12125550101\n" * 200
    response = api_client.post(import_url(campaign), {"file": upload(big)}, format="multipart")
    assert_error(response, 413, "too_large")
    assert not Contact.objects.exists()


def test_import_needs_the_add_contact_permission(viewer_client, anon_client, api_client):
    campaign = CampaignFactory()
    body = {"file": upload("phone\n+12125550101\n")}
    assert_error(viewer_client.post(import_url(campaign), body, format="multipart"), 403)
    assert_error(anon_client.post(import_url(campaign), body, format="multipart"), 401)
    assert_error(api_client.post("/api/v1/campaigns/999/contacts/import", body), 404)
    assert not Contact.objects.exists()


def test_import_rejects_json_bodies(api_client):
    campaign = CampaignFactory()
    response = api_client.post(import_url(campaign), {"file": "x"}, format="json")
    assert_error(response, 415, "unsupported_media_type")


# --- exclusions -------------------------------------------------------------------------------


def test_create_exclusion_records_who_and_refuses_a_duplicate(api_client, admin_user):
    response = api_client.post(EXCLUSIONS, {"phone": "212 555 0101", "reason": "asked"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["phone"], body["source"], body["created_by"], body["campaign"]) == (
        "+12125550101",
        "api",
        admin_user.username,
        None,
    )
    again = api_client.post(EXCLUSIONS, {"phone": "+12125550101"})
    assert "phone" in assert_error(again, 400)["details"]
    campaign = CampaignFactory()
    scoped = api_client.post(EXCLUSIONS, {"phone": "+12125550101", "campaign": campaign.pk})
    assert scoped.status_code == 201


def test_a_permanent_exclusion_excludes_the_contacts_still_waiting_to_be_called(api_client):
    # Left pending, the dial-time check would skip them on every tick and their campaign
    # would never complete.
    first, second = CampaignFactory(), CampaignFactory()
    waiting = ContactFactory(campaign=first, phone="+12125550101")
    retrying = ContactFactory(campaign=second, phone="+12125550101", state="not_reached")
    on_a_call = ContactFactory(phone="+12125550101", state="in_progress")
    ContactFactory(phone="+12125550101", state="completed")
    other_number = ContactFactory(campaign=first, phone="+12125550199")

    scoped = {"phone": "+12125550101", "campaign": first.pk}
    assert api_client.post(EXCLUSIONS, scoped).status_code == 201
    states = dict(Contact.objects.values_list("pk", "state"))
    assert states[waiting.pk] == "excluded" and states[retrying.pk] == "not_reached"

    assert api_client.post(EXCLUSIONS, {"phone": "+12125550101"}).status_code == 201
    states = dict(Contact.objects.values_list("pk", "state"))
    assert states[retrying.pk] == "excluded"
    assert states[on_a_call.pk] == "in_progress"  # its call settles it
    assert sorted(states.values()).count("completed") == 1
    assert states[other_number.pk] == "pending"


def test_an_exclusion_that_expires_holds_contacts_back_only_while_it_lasts(api_client, now):
    contact = ContactFactory(phone="+12125550101")
    until = (now + dt.timedelta(days=30)).isoformat()
    response = api_client.post(EXCLUSIONS, {"phone": "+12125550101", "expires_at": until})
    assert response.status_code == 201
    contact.refresh_from_db()
    assert contact.state == "pending"
    # Made permanent later: the contact is excluded then.
    entry = f"{EXCLUSIONS}{response.json()['id']}/"
    assert api_client.patch(entry, {"expires_at": None}, format="json").status_code == 200
    contact.refresh_from_db()
    assert contact.state == "excluded"


def test_taking_a_number_off_the_list_lets_its_contacts_be_called_again(api_client, now):
    entry = ExclusionFactory(phone="+12125550101")  # global, never expires
    first, second, third = CampaignFactory(), CampaignFactory(), CampaignFactory()
    later = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    fresh = ContactFactory(
        campaign=first, phone="+12125550101", state="excluded", next_attempt_at=later
    )
    called = ContactFactory(
        campaign=second,
        phone="+12125550101",
        state="excluded",
        attempts_count=1,
        last_attempt_number=1,
    )
    still_listed = ContactFactory(campaign=third, phone="+12125550101", state="excluded")
    ExclusionFactory(phone="+12125550101", campaign=third)  # its own campaign's entry stays
    opted_out = ContactFactory(phone="+12125550101", state="refused")

    assert api_client.delete(f"{EXCLUSIONS}{entry.pk}/").status_code == 204
    states = dict(Contact.objects.values_list("pk", "state"))
    assert states[fresh.pk] == "pending" and states[called.pk] == "not_reached"
    assert states[still_listed.pk] == "excluded" and states[opted_out.pk] == "refused"
    fresh.refresh_from_db()
    assert fresh.next_attempt_at <= dt.datetime.now(dt.UTC)  # due again


def test_an_entry_changed_to_expire_releases_its_contacts_to_the_dial_time_check(api_client, now):
    contact = ContactFactory(phone="+12125550101")
    response = api_client.post(EXCLUSIONS, {"phone": "+12125550101"})
    contact.refresh_from_db()
    assert contact.state == "excluded"
    until = (now + dt.timedelta(days=7)).isoformat()
    url = f"{EXCLUSIONS}{response.json()['id']}/"
    assert api_client.patch(url, {"expires_at": until}, format="json").status_code == 200
    contact.refresh_from_db()
    assert contact.state == "pending"  # held back at dial time until the entry lapses


def test_update_and_delete_exclusion(api_client):
    entry = ExclusionFactory()
    response = api_client.patch(f"{EXCLUSIONS}{entry.pk}/", {"reason": "complaint"})
    assert response.json()["reason"] == "complaint"
    assert api_client.delete(f"{EXCLUSIONS}{entry.pk}/").status_code == 204
    assert not Exclusion.objects.exists()


def test_filter_exclusions(api_client, now):
    campaign = CampaignFactory()
    ExclusionFactory(phone="+12125550101")
    ExclusionFactory(phone="+12125550102", campaign=campaign)
    ExclusionFactory(phone="+12125550103", expires_at=now - dt.timedelta(days=400))
    assert api_client.get(EXCLUSIONS, {"scope": "campaign"}).json()["count"] == 1
    assert api_client.get(EXCLUSIONS, {"active": "false"}).json()["count"] == 1
    assert api_client.get(EXCLUSIONS, {"phone": "(212) 555-0101"}).json()["count"] == 1


def test_check_tells_whether_and_which_exclusions_apply(api_client, now):
    campaign = CampaignFactory()
    other = CampaignFactory()
    ExclusionFactory(phone="+12125550101", campaign=campaign, reason="this campaign only")
    url = f"{EXCLUSIONS}check/"

    mine = api_client.get(url, {"phone": "(212) 555-0101", "campaign": campaign.pk}).json()
    assert mine["excluded"] is True
    assert [e["reason"] for e in mine["exclusions"]] == ["this campaign only"]
    theirs = api_client.get(url, {"phone": "2125550101", "campaign": other.pk}).json()
    assert theirs == {
        "phone": "+12125550101",
        "campaign": other.pk,
        "excluded": False,
        "exclusions": [],
    }
    anywhere = api_client.get(url, {"phone": "+12125550101"}).json()
    assert anywhere["excluded"] is False and len(anywhere["exclusions"]) == 1

    ExclusionFactory(phone="+12125550101", reason="everywhere")
    assert api_client.get(url, {"phone": "+12125550101"}).json()["excluded"] is True


@pytest.mark.parametrize(
    "params", [{}, {"phone": "abc"}, {"phone": "+12125550101", "campaign": "x"}]
)
def test_check_with_bad_input_is_a_400(api_client, params):
    assert_error(api_client.get(f"{EXCLUSIONS}check/", params), 400, "invalid")


def test_import_exclusions_over_the_api(api_client, viewer_client):
    campaign = CampaignFactory()
    listed = ContactFactory(campaign=campaign, phone="+12125550101")
    elsewhere = ContactFactory(phone="+12125550101")
    text = "phone,reason\n+12125550101,asked\n+12125550102,\nnope,\n"
    response = api_client.post(
        f"{EXCLUSIONS}import/",
        {"file": upload(text), "campaign": campaign.pk},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["created"], response.json()["rejected"]) == (2, 1)
    assert Exclusion.objects.filter(campaign=campaign, source="import").count() == 2
    assert Contact.objects.get(pk=listed.pk).state == "excluded"
    assert Contact.objects.get(pk=elsewhere.pk).state == "pending"  # the entries are scoped
    denied = viewer_client.post(f"{EXCLUSIONS}import/", {"file": upload(text)}, format="multipart")
    assert_error(denied, 403)
    bad_campaign = api_client.post(
        f"{EXCLUSIONS}import/", {"file": upload(text), "campaign": 99999}, format="multipart"
    )
    assert "campaign" in assert_error(bad_campaign, 400)["details"]


def test_import_reads_the_upload_incrementally(api_client):
    """A file larger than the in-memory upload limit goes to a temporary file and is read from
    there in chunks (nothing holds it whole)."""
    campaign = CampaignFactory()
    rows = "".join(f"+1212555{n:04d},Person {n}\n" for n in range(100, 9100))
    data = ("phone,name\n" + rows).encode()
    with override_settings(FILE_UPLOAD_MAX_MEMORY_SIZE=len(data) // 10):
        response = api_client.post(
            import_url(campaign), {"file": io.BytesIO(data)}, format="multipart"
        )
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 9000


def test_exclusion_permissions_and_not_found(viewer_client, anon_client, api_client):
    entry = ExclusionFactory()
    assert viewer_client.get(f"{EXCLUSIONS}{entry.pk}/").status_code == 200
    assert viewer_client.get(f"{EXCLUSIONS}check/", {"phone": entry.phone}).status_code == 200
    assert_error(viewer_client.post(EXCLUSIONS, {"phone": "+12125550199"}), 403)
    assert_error(viewer_client.delete(f"{EXCLUSIONS}{entry.pk}/"), 403)
    assert_error(anon_client.get(f"{EXCLUSIONS}check/", {"phone": entry.phone}), 401)
    assert_error(api_client.get(f"{EXCLUSIONS}{entry.pk + 1000}/"), 404, "not_found")
    assert_error(api_client.post(EXCLUSIONS, {"phone": "+12125550199", "source": "x"}), 400)
    assert Exclusion.objects.count() == 1


def test_check_by_post_keeps_the_number_out_of_the_url_and_needs_only_view(viewer_client):
    ExclusionFactory(phone="+12125550101", reason="everywhere")
    answer = viewer_client.post(f"{EXCLUSIONS}check/", {"phone": "(212) 555-0101"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["excluded"] is True and answer.json()["phone"] == "+12125550101"
    refused = viewer_client.post(f"{EXCLUSIONS}check/", {"phone": "abc"}, format="json")
    assert_error(refused, 400, "invalid")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"phone": ["+12125550101"]},
        {"phone": "+12125550101", "campaign": 10**20},
        {"phone": "+12125550101", "campaign": "x"},
        {"phone": "\x00"},
    ],
)
def test_check_by_post_with_a_bad_body_is_a_400(viewer_client, body):
    answer = viewer_client.post(f"{EXCLUSIONS}check/", body, format="json")
    assert answer.status_code == 400 and "error" in answer.json()


def test_check_by_post_with_a_body_that_is_not_json_is_a_400(viewer_client):
    answer = viewer_client.post(
        f"{EXCLUSIONS}check/", b"phone=+1212", content_type="application/json"
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "parse_error"
