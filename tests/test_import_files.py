"""What a CSV file can hold, and what the import makes of it: nothing half-written, no row lost
without its line in the report."""

import codecs
import io
import threading
import zoneinfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from campaigns.models import Campaign
from contacts import importing
from contacts.importing import ImportFileError, import_contacts, import_exclusions
from contacts.models import Contact, Exclusion
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


def rows(first: int, count: int) -> str:
    return "".join(f"+1212555{n:04d},Person {n}\n" for n in range(first, first + count))


def read(data: bytes | str, **kwargs):
    data = data.encode() if isinstance(data, str) else data
    campaign = kwargs.pop("campaign", None) or CampaignFactory()
    return import_contacts(campaign=campaign, stream=io.BytesIO(data), **kwargs)


def rejected(report) -> list[tuple[int, int]]:
    return [(r.line, r.last_line) for r in report.rejections]


# --- a file-level error half-way: nothing stays behind -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_line_too_long_after_thousands_of_good_rows_leaves_no_contact(monkeypatch):
    # Outside a transaction, as the API and the admin run it (on PostgreSQL: the writer thread).
    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    campaign = CampaignFactory()
    data = "phone,name\n" + rows(100, 5000) + "+12125559999," + "x" * (1024 * 1024 + 1) + "\n"
    with pytest.raises(ImportFileError, match="Line 5002 is longer than 1024 KB"):
        read(data, campaign=campaign)
    assert not Contact.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db(transaction=True)
def test_over_the_api_a_file_error_half_way_is_a_400_and_nothing_is_imported(
    api_client, monkeypatch
):
    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    monkeypatch.setattr(importing, "MAX_LINE_BYTES", 10_000)
    campaign = CampaignFactory()
    data = "phone,name\n" + rows(100, 4000) + "," + "x" * 20_000 + "\n" + rows(5000, 10)
    response = api_client.post(
        f"/api/v1/campaigns/{campaign.pk}/contacts/import",
        {"file": SimpleUploadedFile("c.csv", data.encode(), content_type="text/csv")},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_file"
    assert "Line 4002" in response.json()["error"]["message"]
    assert not Contact.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db(transaction=True)
def test_an_exclusion_file_error_half_way_leaves_no_exclusion(monkeypatch):
    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    monkeypatch.setattr(importing, "MAX_LINE_BYTES", 10_000)
    data = "phone,reason\n" + rows(100, 500) + "+12125559999," + "x" * 20_000 + "\n"
    with pytest.raises(ImportFileError, match="Line 502"):
        import_exclusions(stream=io.BytesIO(data.encode()))
    assert not Exclusion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_utf16_file_broken_half_way_leaves_no_contact(monkeypatch):
    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    campaign = CampaignFactory()
    good = ("phone\tname\r\n" + rows(100, 3000).replace(",", "\t")).encode("utf-16")
    data = good + b"\x00\xd8" + "\tz\r\n".encode("utf-16-le")  # a lone high surrogate
    with pytest.raises(ImportFileError, match="not valid UTF-16"):
        read(data, campaign=campaign)
    assert not Contact.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db(transaction=True)
def test_while_an_import_runs_nobody_sees_its_rows_and_the_campaign_is_not_locked(
    needs_postgres, monkeypatch
):
    # The pipelined import: its writer thread holds the one transaction. Halfway through, a
    # third connection sees none of its contacts yet and can still change the campaign (the
    # dialler's status moves and attempts would otherwise wait for the whole import).
    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    campaign = CampaignFactory()
    seen = {}
    real_write = importing._write_contact_batch

    def probe():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
            seen["visible"] = Contact.objects.filter(campaign=campaign).count()
            seen["updated"] = Campaign.objects.filter(pk=campaign.pk).update(name="renamed")
        finally:
            connection.close()

    def write_then_probe(parsed, writer):
        counts = real_write(parsed, writer)
        if not seen:
            checker = threading.Thread(target=probe)
            checker.start()
            checker.join()
        return counts

    monkeypatch.setattr(importing, "_write_contact_batch", write_then_probe)
    report = read("phone,name\n" + rows(100, 500), campaign=campaign)
    assert seen == {"visible": 0, "updated": 1}
    assert report.created == Contact.objects.filter(campaign=campaign).count() == 500


# --- quotes -----------------------------------------------------------------------------------


def test_an_unbalanced_quote_that_swallows_rows_is_rejected_with_its_lines():
    data = (
        "phone,name,address\n"  # 1
        '+12125550101,"Ann,\n'  # 2: the quote opens...
        + rows(102, 50)  # 3-52
        + '+12125550199,Zed"\n'  # 53: ...and closes here
        '+12125550200,Bob,"12 Main St\nSpringfield, IL 62704"\n'  # 54-55: a real line break
    )
    report = read(data)
    assert (report.rows, report.created, report.rejected) == (2, 1, 1)
    assert rejected(report) == [(2, 53)]
    assert "unbalanced quote" in report.rejections[0].reason
    assert "Lines 2-53" in report.rejections[0].reason
    bob = Contact.objects.get()
    assert (bob.phone, bob.attributes) == (
        "+12125550200",
        {"address": "12 Main St\nSpringfield, IL 62704"},
    )


def test_a_few_rows_swallowed_by_a_quote_are_not_imported_as_a_name():
    data = 'phone,name\n+12125550101,"Ann\n+12125550102,Bob\n+12125550103,Cy"\n'
    report = read(data)
    assert (report.created, rejected(report)) == (0, [(2, 4)])
    assert not Contact.objects.exists()


def test_a_quote_never_closed_reports_the_lines_to_the_end_of_the_file():
    data = 'phone,name\n+12125550101,Ann\n+12125550102,"Bob\n' + rows(103, 20)
    report = read(data)
    assert (report.created, rejected(report)) == (1, [(3, 23)])
    assert "never closed" in report.rejections[0].reason


def test_a_rejected_row_that_spans_lines_shows_its_span_in_the_api(api_client):
    campaign = CampaignFactory()
    data = 'phone,name\n"not\na phone",Ann\n+12125550102,Bob\n'
    response = api_client.post(
        f"/api/v1/campaigns/{campaign.pk}/contacts/import",
        {"file": SimpleUploadedFile("c.csv", data.encode(), content_type="text/csv")},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    assert [(r["line"], r["last_line"]) for r in response.json()["rejections"]] == [(2, 3)]


# --- encodings and line ends -------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("utf-16"),  # Excel's "Unicode text": UTF-16 LE with a BOM
        lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        lambda text: text.encode("utf-16-le"),  # no BOM
        lambda text: text.encode("utf-32"),
    ],
    ids=["utf-16-le-bom", "utf-16-be-bom", "utf-16-le", "utf-32"],
)
def test_unicode_text_exports_are_read(encode):
    text = "Phone\tName\tCity\r\n+33612345678\tZoé 😀\tParis\r\n0612345679\tYves\tLyon\r\n"
    report = read(encode(text), default_region="FR")
    assert (report.created, report.rejected) == (2, 0), report.rejections
    assert Contact.objects.get(phone="+33612345678").name == "Zoé 😀"
    assert Contact.objects.get(phone="+33612345679").attributes == {"city": "Lyon"}


def test_a_long_utf16_file_is_read_across_its_chunks():
    names = [f"Zoé {n} 😀" for n in range(3000)]
    text = "phone\tname\r\n" + "".join(
        f"+1212555{n:04d}\t{names[n]}\r\n" for n in range(len(names))
    )
    data = text.encode("utf-16")
    assert len(data) > 2 * importing.READ_CHUNK_BYTES
    report = read(data)
    assert (report.created, report.rejected) == (3000, 0), report.rejections[:3]
    assert set(Contact.objects.values_list("name", flat=True)) == set(names)


def test_cr_only_line_ends_are_read():
    report = read('phone,name\r+12125550101,Ann\r+12125550102,"Bob\rJr"\rjunk,x\r')
    assert (report.created, rejected(report)) == (2, [(5, 5)])
    assert Contact.objects.get(phone="+12125550102").name == "Bob\rJr"


# --- NUL bytes ----------------------------------------------------------------------------------


def test_a_nul_byte_in_a_cell_rejects_that_row(api_client):
    campaign = CampaignFactory()
    early = "phone,name,plan\n+12125550101,Ann,gold\n+12125550102,B\x00b,x\n"
    late = rows(200, 4000).replace("Person 3000", "Person\x00 3000")
    data = early + late.replace("\n", ",\x00\n", 1)  # and one in an attribute column
    response = api_client.post(
        f"/api/v1/campaigns/{campaign.pk}/contacts/import",
        {"file": SimpleUploadedFile("c.csv", data.encode(), content_type="text/csv")},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [r["line"] for r in body["rejections"]] == [3, 4, 2804]
    assert all("NUL" in r["reason"] for r in body["rejections"])
    assert body["created"] == Contact.objects.filter(campaign=campaign).count() == 3999


def test_a_nul_byte_in_an_exclusion_row_rejects_that_row(api_client):
    data = "phone,reason\n+12125550101,asked\n+12125550102,spam\x00\n"
    response = api_client.post(
        "/api/v1/exclusions/import",
        {"file": SimpleUploadedFile("d.csv", data.encode(), content_type="text/csv")},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    assert [r["line"] for r in response.json()["rejections"]] == [3]
    assert list(Exclusion.objects.values_list("phone", flat=True)) == ["+12125550101"]


# --- other rows that could go astray -----------------------------------------------------------


def test_too_many_time_zones_for_one_contact_is_a_rejected_row():
    zones = " ".join(sorted(zoneinfo.available_timezones())[:80])  # 1,000+ characters
    report = read(f"phone,timezone\n+12125550101,{zones}\n+12125550102,\n")
    assert (report.created, rejected(report)) == (1, [(2, 2)])
    assert "time zones" in report.rejections[0].reason


def test_an_expiry_out_of_range_rejects_that_row():
    data = (
        "phone,expires_at\n"
        "+12125550101,9999-12-31T23:00:00-05:00\n"
        "+12125550102,0001-01-01T00:00:00+05:00\n"
        "+12125550103,2027-01-31\n"
    )
    report = import_exclusions(stream=io.BytesIO(data.encode()))
    assert (report.created, rejected(report)) == (1, [(2, 2), (3, 3)])
    assert "out of range" in report.rejections[0].reason
    assert list(Exclusion.objects.values_list("phone", flat=True)) == ["+12125550103"]


def test_values_under_a_column_without_a_name_are_kept():
    report = read("phone,name,,\n+12125550101,Ann,VIP,\n+12125550102,Bob,,\n")
    assert report.created == 2, report.rejections
    attributes = dict(Contact.objects.values_list("phone", "attributes"))
    assert attributes == {"+12125550101": {"column_3": "VIP"}, "+12125550102": {}}
