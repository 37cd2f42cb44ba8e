"""The import report shows who may read contacts each rejected line's value as written, and
offers the rejected rows as CSV to fix and import again; anyone else sees numbers masked and
no download. Numbers never reach a log line, nor the API's report."""

import csv
import datetime as dt
import io
import logging

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts.importing import import_contacts
from contacts.models import Contact, Exclusion, RejectedImportRows
from contacts.rejected_rows import KEEP_FOR
from tests.factories import CampaignFactory
from tests.staff import staff_client

pytestmark = pytest.mark.django_db

IMPORT = reverse("admin:contacts_contact_import")
FILE = (
    "phone,name,favourite_colour\n"
    "+12125550101,Ada,green\n"
    "555-01x9,Bob,red\n"
    '+12125550102,=HYPERLINK("http://evil"),blue\n'
    "+12125550103,Cy,\n"
    "+12125550104,Dee,yellow,extra\n"
)


def upload(text: str, name="contacts.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def import_file(client, campaign, text=FILE):
    return client.post(
        IMPORT, {"campaign": campaign.pk, "default_region": "US", "file": upload(text)}
    )


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_who_may_read_contacts_sees_the_values_as_written(admin_client, caplog):
    campaign = CampaignFactory()
    with caplog.at_level(logging.DEBUG):
        response = import_file(admin_client, campaign)
    body = response.content.decode()
    assert '<td class="rejected-value">555-01x9</td>' in body
    assert "numbers masked" not in body
    assert "555-01x9" not in caplog.text  # shown to the operator, never logged


def test_the_rejected_rows_download_to_fix_and_import_again(admin_client):
    campaign = CampaignFactory()
    response = import_file(admin_client, campaign)
    kept = RejectedImportRows.objects.get()
    link = reverse("admin:contacts_contact_import_rejected", args=[kept.pk])
    assert link in response.content.decode()
    download = admin_client.get(link)
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert "attachment" in download["Content-Disposition"]
    rows = read_csv(download)
    assert rows[0] == ["phone", "name", "favourite_colour", "rejected_because"]
    assert rows[1][:3] == ["555-01x9", "Bob", "red"]
    assert rows[1][3].startswith("Line 3: ") and "not a" in rows[1][3]
    assert rows[2][:3] == ["", "", ""]  # a row with too many fields: only in the original
    assert rows[2][3].startswith("Line 6: The row has 4 fields") and "original file" in rows[2][3]

    # Fixed in a spreadsheet (the reason column left in), then imported again.
    rows[1][0] = "(212) 555-0109"
    fixed = io.StringIO()
    csv.writer(fixed).writerows(rows[:2])
    again = import_file(admin_client, campaign, fixed.getvalue())
    assert again.context["report"].created == 1 and again.context["report"].rejected == 0
    bob = Contact.objects.get(phone="+12125550109")
    assert (bob.name, bob.attributes) == ("Bob", {"favourite_colour": "red"})


def test_the_download_keeps_formulas_from_running(admin_client):
    campaign = CampaignFactory()
    text = 'phone,name\nnot-a-number,"=HYPERLINK(""http://evil"")"\n=1+2,Bob\n'
    import_file(admin_client, campaign, text)
    kept = RejectedImportRows.objects.get()
    rows = read_csv(
        admin_client.get(reverse("admin:contacts_contact_import_rejected", args=[kept.pk]))
    )
    assert rows[1][1] == '\'=HYPERLINK("http://evil")'
    assert rows[2][0] == "'=1+2"


def test_without_view_permission_numbers_are_masked_and_nothing_is_kept(client, django_user_model):
    campaign = CampaignFactory()
    importer = staff_client(client, django_user_model, "contacts.add_contact")
    body = import_file(importer, campaign, "phone\n+1212555019\n").content.decode()
    assert "+121****019" in body and "+1212555019" not in body
    assert "numbers masked" in body
    assert "rejected-rows-link" not in body
    assert not RejectedImportRows.objects.exists()


def test_only_the_importer_may_download_and_only_for_a_day(client, admin_client, django_user_model):
    campaign = CampaignFactory()
    import_file(admin_client, campaign)
    kept = RejectedImportRows.objects.get()
    link = reverse("admin:contacts_contact_import_rejected", args=[kept.pk])
    other = staff_client(client, django_user_model, "contacts.add_contact", "contacts.view_contact")
    assert other.get(link).status_code == 404  # not their import
    client.logout()
    viewer = staff_client(client, django_user_model, "contacts.view_contact", username="viewer")
    assert viewer.get(link).status_code == 403


def test_kept_rows_expire(admin_client, admin_user):
    campaign = CampaignFactory()
    import_file(admin_client, campaign)
    kept = RejectedImportRows.objects.get()
    link = reverse("admin:contacts_contact_import_rejected", args=[kept.pk])
    with time_machine.travel(kept.created_at + KEEP_FOR + dt.timedelta(minutes=1), tick=False):
        admin_client.force_login(admin_user)
        assert admin_client.get(link).status_code == 404
        import_file(admin_client, campaign, "phone\nnope\n")  # the next import purges
    assert list(RejectedImportRows.objects.values_list("rejected", flat=True)) == [1]


def test_the_do_not_call_import_keeps_its_rejected_rows_too(admin_client):
    response = admin_client.post(
        reverse("admin:contacts_exclusion_import"),
        {"default_region": "US", "file": upload("phone,reason\n+12125550101,ok\nxyz,bad\n")},
    )
    assert response.context["report"].rejected == 1
    kept = RejectedImportRows.objects.get()
    assert kept.kind == "exclusions"
    rows = read_csv(
        admin_client.get(reverse("admin:contacts_exclusion_import_rejected", args=[kept.pk]))
    )
    assert rows[0] == ["phone", "reason", "rejected_because"] and rows[1][:2] == ["xyz", "bad"]
    assert Exclusion.objects.count() == 1
    # A contacts download is not served from the do-not-call list's address, nor the reverse.
    assert (
        admin_client.get(
            reverse("admin:contacts_contact_import_rejected", args=[kept.pk])
        ).status_code
        == 404
    )


def test_the_api_report_has_no_raw_values_nor_rows():
    campaign = CampaignFactory()
    report = import_contacts(campaign=campaign, stream=io.BytesIO(FILE.encode()))
    data = report.as_dict()
    assert set(data) == {
        "rows",
        "created",
        "duplicates",
        "excluded",
        "rejected",
        "rejections",
        "rejections_truncated",
    }
    assert all(set(r) == {"line", "reason", "value", "last_line"} for r in data["rejections"])
    assert "555-01x9" not in repr(report)
