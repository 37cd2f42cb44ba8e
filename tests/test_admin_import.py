import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts.models import Contact, Exclusion
from tests.factories import CampaignFactory, ExclusionFactory

CONTACTS_CSV = (
    "phone,name,favourite_colour\n"
    "+12125550101,Ada,green\n"
    "not a number,Bob,red\n"
    "(212) 555-0102,Cy,blue\n"
    "+12125550101,Ada again,green\n"
    "+12125550103,Dee,\n"
)


def upload(name: str, text: str | bytes) -> SimpleUploadedFile:
    data = text.encode() if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.mark.django_db
def test_contact_changelist_has_an_import_button(admin_client):
    body = admin_client.get(reverse("admin:contacts_contact_changelist")).content.decode()
    assert reverse("admin:contacts_contact_import") in body and "Import CSV" in body


@pytest.mark.django_db
def test_contact_import_creates_the_rows_and_reports_each_rejection(admin_client):
    campaign = CampaignFactory(name="Autumn")
    ExclusionFactory(phone="+12125550103")  # on the global do-not-call list
    response = admin_client.post(
        reverse("admin:contacts_contact_import"),
        {"campaign": campaign.pk, "default_region": "us", "file": upload("c.csv", CONTACTS_CSV)},
    )
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.rows, report.created, report.duplicates, report.rejected) == (5, 3, 1, 1)
    assert report.excluded == 1
    body = response.content.decode()
    assert "Read 5 rows: 3 created, 1 duplicates, 1 excluded, 1 rejected." in body
    assert '<tr class="rejection"><td>3</td>' in body  # the bad row's line, with its reason
    contacts = Contact.objects.filter(campaign=campaign)
    assert sorted(contacts.values_list("phone", "state")) == [
        ("+12125550101", "pending"),
        ("+12125550102", "pending"),
        ("+12125550103", "excluded"),
    ]
    assert contacts.get(phone="+12125550101").attributes == {"favourite_colour": "green"}


@pytest.mark.django_db
def test_a_file_that_cannot_be_imported_shows_an_error_and_creates_nothing(admin_client):
    campaign = CampaignFactory()
    response = admin_client.post(
        reverse("admin:contacts_contact_import"),
        {"campaign": campaign.pk, "file": upload("c.csv", "name,email\nAda,a@example.com\n")},
    )
    body = response.content.decode()
    assert "Nothing was imported: The header has no phone column" in body
    assert 'class="error"' in body  # shown as an admin error message
    assert response.context["report"] is None
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_contact_import_needs_a_campaign_that_is_still_open(admin_client):
    finished = CampaignFactory(status="completed")
    response = admin_client.post(
        reverse("admin:contacts_contact_import"),
        {"campaign": finished.pk, "file": upload("c.csv", CONTACTS_CSV)},
    )
    assert "Select a valid choice" in response.content.decode()
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_import_form_is_prefilled_with_the_filtered_campaign(admin_client):
    campaign = CampaignFactory()
    listing = admin_client.get(
        reverse("admin:contacts_contact_changelist"), {"campaign__id__exact": campaign.pk}
    ).content.decode()
    assert f"{reverse('admin:contacts_contact_import')}?campaign={campaign.pk}" in listing
    form = admin_client.get(reverse("admin:contacts_contact_import"), {"campaign": campaign.pk})
    assert f'<option value="{campaign.pk}" selected>' in form.content.decode()


@pytest.mark.django_db
def test_exclusion_import_into_the_global_list_and_into_one_campaign(admin_client, admin_user):
    url = reverse("admin:contacts_exclusion_import")
    assert url in admin_client.get(reverse("admin:contacts_exclusion_changelist")).content.decode()
    csv_text = "phone,reason\n+12125550111,complained\n+12125550112,\nbad,x\n"
    response = admin_client.post(url, {"file": upload("dnc.csv", csv_text)})
    report = response.context["report"]
    assert (report.created, report.rejected) == (2, 1)
    assert set(Exclusion.objects.values_list("phone", "campaign", "source", "created_by")) == {
        ("+12125550111", None, "import", admin_user.pk),
        ("+12125550112", None, "import", admin_user.pk),
    }
    campaign = CampaignFactory()
    again = admin_client.post(url, {"campaign": campaign.pk, "file": upload("d.csv", csv_text)})
    assert again.context["report"].created == 2
    assert Exclusion.objects.filter(campaign=campaign).count() == 2


@pytest.mark.django_db
def test_import_is_refused_to_staff_without_the_add_permission(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-for-tests-1", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:contacts_contact_import")).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_file_that_breaks_half_way_imports_nothing_and_says_so(admin_client, monkeypatch):
    from contacts import importing

    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    monkeypatch.setattr(importing, "MAX_LINE_BYTES", 10_000)
    campaign = CampaignFactory()
    good = "".join(f"+1212555{n:04d},Person {n}\n" for n in range(100, 1100))
    text = "phone,name\n" + good + "+12125559999," + "x" * 20_000 + "\n"
    response = admin_client.post(
        reverse("admin:contacts_contact_import"),
        {"campaign": campaign.pk, "file": upload("c.csv", text)},
    )
    body = response.content.decode()
    assert "Nothing was imported: Line 1002 is longer than 9 KB" in body
    assert response.context["report"] is None
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_rows_lost_to_an_unbalanced_quote_are_shown_with_their_lines(admin_client):
    campaign = CampaignFactory()
    text = 'phone,name\n+12125550101,"Ann\n+12125550102,Bob\n+12125550103,Cy"\n+12125550104,Dee\n'
    response = admin_client.post(
        reverse("admin:contacts_contact_import"),
        {"campaign": campaign.pk, "file": upload("c.csv", text)},
    )
    body = response.content.decode()
    assert "Read 2 rows: 1 created, 0 duplicates, 0 excluded, 1 rejected." in body
    assert '<tr class="rejection"><td>2–4</td><td>Lines 2-4:' in body
    assert list(Contact.objects.values_list("phone", flat=True)) == ["+12125550104"]


@pytest.mark.django_db
def test_an_excel_unicode_text_file_is_imported(admin_client):
    campaign = CampaignFactory()
    text = "Phone\tName\r\n+33612345678\tZoé\r\n"
    response = admin_client.post(
        reverse("admin:contacts_contact_import"),
        {"campaign": campaign.pk, "file": upload("c.txt", text.encode("utf-16"))},
    )
    assert "Read 1 rows: 1 created" in response.content.decode()
    assert Contact.objects.get().name == "Zoé"
