import codecs
import datetime as dt
import io
import tracemalloc

import phonenumbers
import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from contacts import importing
from contacts.importing import ImportFileError, import_contacts, import_exclusions
from contacts.models import Contact, Exclusion
from contacts.phones import InvalidPhone, normalise_phone, timezones_for
from tests.factories import CampaignFactory, ContactFactory, ExclusionFactory

pytestmark = pytest.mark.django_db


def csv_bytes(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def test_every_kind_of_bad_row_is_rejected_and_the_good_ones_are_imported(now):
    campaign = CampaignFactory(timezone="America/Chicago")
    ContactFactory(campaign=campaign, phone="+12125550110")  # already in the campaign
    ExclusionFactory(phone="+12125550120")  # do-not-call, every campaign
    ExclusionFactory(phone="+12125550121", campaign=campaign)  # do-not-call, this campaign
    ExclusionFactory(phone="+12125550122", campaign=CampaignFactory())  # another campaign's
    ExclusionFactory(phone="+12125550123", expires_at=now - dt.timedelta(days=1))  # expired
    text = (
        "phone,name,external_id,timezone,plan\n"  # line 1
        "(212) 555-0101,Ann,A1,,gold\n"  # 2 ok
        "+1 212 555 0101,Ann again,A1b,,\n"  # 3 duplicate in the file
        "212-555-0110,Bob,B1,,\n"  # 4 duplicate of a contact already there
        "not a phone,Carl,C1,,\n"  # 5 bad phone
        ",Dana,D1,,\n"  # 6 empty phone
        "+12125550102,Eve,E1,Mars/Olympus,\n"  # 7 invalid zone
        "+12125550120,Fay,F1,,\n"  # 8 excluded (global)
        "+12125550121,Gil,G1,,\n"  # 9 excluded (this campaign)
        "+12125550122,Hal,H1,,\n"  # 10 fine: excluded elsewhere only
        "+12125550123,Ida,I1,,\n"  # 11 fine: exclusion expired
        "+12125550103,Joe,J1,Europe/Paris | America/New_York,\n"  # 12 two zones
        "\n"  # 13 blank line, not a row
        "+12125550104,Kim,K1,,,extra\n"  # 14 more fields than the header
        "+12125550105," + "x" * 201 + ",L1,,\n"  # 15 name too long
        "+15555550100,Max,M1,,\n"  # 16 parses but cannot exist
    )
    report = import_contacts(campaign=campaign, stream=csv_bytes(text), now=now)

    assert (report.rows, report.created, report.duplicates) == (14, 6, 2)
    assert (report.excluded, report.rejected) == (2, 6)
    assert {r.line for r in report.rejections} == {5, 6, 7, 14, 15, 16}
    lines = {r.line: r.reason for r in report.rejections}
    assert "Mars/Olympus" in lines[7]
    assert "empty" in lines[6]
    imported = {c.phone: c for c in Contact.objects.filter(campaign=campaign)}
    assert len(imported) == 1 + report.created
    assert imported["+12125550101"].name == "Ann"  # the first of the duplicates wins
    assert imported["+12125550101"].attributes == {"plan": "gold"}
    assert imported["+12125550101"].zones == ["America/New_York"]
    assert imported["+12125550101"].next_attempt_at == now
    assert imported["+12125550120"].state == Contact.State.EXCLUDED
    assert imported["+12125550121"].state == Contact.State.EXCLUDED
    assert imported["+12125550122"].state == Contact.State.PENDING
    assert imported["+12125550123"].state == Contact.State.PENDING
    assert imported["+12125550103"].timezone_key == "America/New_York Europe/Paris"
    assert imported["+12125550110"].name != "Bob"  # the existing contact is left alone


def test_rejection_counts_the_lines_with_quoted_newlines():
    campaign = CampaignFactory()
    text = 'phone,name\n+12125550101,"two\nlines"\nbad,x\n'
    report = import_contacts(campaign=campaign, stream=csv_bytes(text))
    assert report.created == 1
    assert [r.line for r in report.rejections] == [4]
    assert Contact.objects.get().name == "two\nlines"


def test_bom_semicolons_and_loose_column_names_are_read():
    campaign = CampaignFactory()
    data = codecs.BOM_UTF8 + "Phone Number ; NAME;External ID\r\n0612345678;Zoé;z-1\r\n".encode()
    report = import_contacts(campaign=campaign, stream=io.BytesIO(data), default_region="FR")
    assert report.created == 1, report.rejections
    contact = Contact.objects.get()
    assert (contact.phone, contact.name, contact.external_id) == ("+33612345678", "Zoé", "z-1")
    assert contact.zones == ["Europe/Paris"]


def test_number_without_a_known_zone_gets_the_campaign_zone():
    campaign = CampaignFactory(timezone="Europe/Lisbon")
    # +800 is the international freephone code: valid, but no zone.
    report = import_contacts(campaign=campaign, stream=csv_bytes("phone\n+80012345678\n"))
    assert report.created == 1, report.rejections
    assert Contact.objects.get().zones == ["Europe/Lisbon"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"name,email\nAnn,a@example.com\n", "no phone column"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "binary"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("phone,nom\n+33612345678,Zoé\n".encode("latin-1"), "Line 2 is not UTF-8"),
        (b"phone,phone\n1,2\n", "twice"),
        (b"Phone,Phone Number\n1,2\n", "twice"),
        (b"phone,name\n", "no data rows"),
        (b"phone,name\r\n\r\n\r\n", "no data rows"),
    ],
)
def test_whole_file_problems_raise_and_write_nothing(data, message):
    campaign = CampaignFactory()
    with pytest.raises(ImportFileError, match=message):
        import_contacts(campaign=campaign, stream=io.BytesIO(data))
    assert not Contact.objects.exists()


def test_unknown_default_region_is_a_file_error():
    with pytest.raises(ImportFileError, match="region"):
        import_contacts(
            campaign=CampaignFactory(), stream=csv_bytes("phone\n1\n"), default_region="ZZ"
        )


def test_a_line_that_is_not_utf8_deep_in_the_file_rejects_that_row_only():
    # The start of the file is checked whole (a Latin-1 file is refused outright); past it,
    # a stray line is one rejected row, not a lost import.
    campaign = CampaignFactory()
    padding = b"phone,name\n+12125550101,Ann\n" + b"\n" * importing.READ_CHUNK_BYTES
    data = padding + b"+12125550102,Z\xe9\n+12125550103,Cy\n"
    report = import_contacts(campaign=campaign, stream=io.BytesIO(data))
    assert report.created == 2
    bad_line = padding.count(b"\n") + 1
    assert [(r.line, r.reason) for r in report.rejections] == [
        (bad_line, "The row is not UTF-8 text (save the file as CSV UTF-8).")
    ]


def test_rejections_are_capped_but_counted():
    campaign = CampaignFactory()
    text = "phone\n" + "nope\n" * 250 + "+12125550101\n"
    report = import_contacts(campaign=campaign, stream=csv_bytes(text))
    assert report.rejected == 250
    assert len(report.rejections) == importing.MAX_REJECTIONS_LISTED
    assert report.as_dict()["rejections_truncated"] is True
    assert report.created == 1


def test_a_crash_mid_file_leaves_nothing_behind(monkeypatch):
    campaign = CampaignFactory()
    monkeypatch.setattr(importing, "BATCH_SIZE", 10)
    calls = {"n": 0}
    real_insert = importing._ContactWriter.insert

    def insert_then_crash(self, rows):
        calls["n"] += 1
        real_insert(self, rows)  # the rows are written inside the batch's transaction...
        if calls["n"] == 2:
            raise RuntimeError("power cut")  # ...and the crash comes before its commit

    monkeypatch.setattr(importing._ContactWriter, "insert", insert_then_crash)
    text = "phone\n" + "".join(f"+1212555{n:04d}\n" for n in range(100, 130))
    with pytest.raises(RuntimeError):
        import_contacts(campaign=campaign, stream=csv_bytes(text))
    assert Contact.objects.count() == 0  # not even the first batch, written before the crash

    # Importing the same file again imports it whole.
    monkeypatch.setattr(importing._ContactWriter, "insert", real_insert)
    report = import_contacts(campaign=campaign, stream=csv_bytes(text))
    assert (report.created, report.duplicates) == (30, 0)
    assert Contact.objects.count() == 30


def test_duplicates_across_batches_are_caught(monkeypatch):
    monkeypatch.setattr(importing, "BATCH_SIZE", 3)
    campaign = CampaignFactory()
    phones = ["+12125550101", "+12125550102", "+12125550103", "+12125550101", "(212) 555-0102"]
    report = import_contacts(campaign=campaign, stream=csv_bytes("phone\n" + "\n".join(phones)))
    assert (report.created, report.duplicates) == (3, 2)


def test_a_number_added_to_the_campaign_during_the_import_is_a_duplicate(monkeypatch):
    monkeypatch.setattr(importing, "BATCH_SIZE", 10)
    campaign = CampaignFactory()
    phones = [f"+1212555{n:04d}" for n in range(100, 140)]
    real_parse = importing._parse_contact_batch
    parsed_batches = []

    def parse_then_someone_adds_a_contact(batch, region, report, writer):
        parsed_batches.append(1)
        if len(parsed_batches) == 2:  # the first batch is written; the third holds this one
            ContactFactory(campaign=campaign, phone=phones[25], state=Contact.State.COMPLETED)
        return real_parse(batch, region, report, writer)

    monkeypatch.setattr(importing, "_parse_contact_batch", parse_then_someone_adds_a_contact)
    report = import_contacts(campaign=campaign, stream=csv_bytes("phone\n" + "\n".join(phones)))
    assert (report.created, report.duplicates, report.rejected) == (39, 1, 0)
    assert Contact.objects.filter(campaign=campaign).count() == 40
    assert Contact.objects.get(campaign=campaign, phone=phones[25]).state == "completed"


US_AREA_CODES = [
    area
    for area in range(201, 990)
    if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{area}2000000"))
    and phonenumbers.is_valid_number(phonenumbers.parse(f"+1{area}2999999"))
]


class LazyCsv(io.RawIOBase):
    """A CSV file of `rows` contacts, generated as it is read (never whole in memory)."""

    def __init__(self, rows: int):
        self._lines = self._generate(rows)
        self._buffer = b""

    @staticmethod
    def _generate(rows):
        areas = US_AREA_CODES[:100]
        yield b"phone,name,external_id,segment\n"
        for n in range(rows):
            area = areas[n % len(areas)]
            yield f"+1{area}{2000000 + n // len(areas)},Person {n},ext-{n},s{n % 7}\n".encode()

    def readable(self):
        return True

    def readinto(self, target):
        while len(self._buffer) < len(target):
            chunk = b"".join(line for _, line in zip(range(500), self._lines, strict=False))
            if not chunk:
                break
            self._buffer += chunk
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


@pytest.mark.slow
def test_100000_rows_stream_with_flat_memory():
    campaign = CampaignFactory()
    tracemalloc.start()
    try:
        report = import_contacts(campaign=campaign, stream=io.BufferedReader(LazyCsv(100_000)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.rejected == 0, report.rejections[:3]
    assert report.created == 100_000
    assert Contact.objects.filter(campaign=campaign).count() == report.created
    # A whole file held as Contact objects would take well over 100 MB; a batch takes a few.
    assert peak < 100 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_the_report_matches_the_database(now):
    campaign = CampaignFactory()
    ExclusionFactory(phone="+12125550250")
    rows = [f"+1212555{n:04d}" for n in range(100, 200)] + ["+12125550250", "junk", "+12125550100"]
    report = import_contacts(campaign=campaign, stream=csv_bytes("phone\n" + "\n".join(rows)))
    contacts = Contact.objects.filter(campaign=campaign)
    assert report.created == contacts.count() == 101
    assert report.excluded == contacts.filter(state=Contact.State.EXCLUDED).count() == 1
    assert report.rows == report.created + report.duplicates + report.rejected


# --- the do-not-call list ---------------------------------------------------------------------


def test_exclusion_import(admin_user, now):
    campaign = CampaignFactory()
    ExclusionFactory(phone="+12125550102")  # already global
    permanent = ContactFactory(campaign=campaign, phone="+12125550101")
    for_a_while = ContactFactory(campaign=campaign, phone="+12125550103")
    text = (
        "phone;reason;expires_at\n"
        "(212) 555-0101;asked;\n"
        "+12125550101;again;\n"
        "+12125550102;known;\n"
        "+12125550103;until;2027-01-31\n"
        "garbage;x;\n"
        "+12125550104;bad date;someday\n"
    )
    report = import_exclusions(stream=csv_bytes(text), created_by=admin_user)
    assert (report.rows, report.created, report.duplicates, report.rejected) == (6, 2, 2, 2)
    assert [r.line for r in report.rejections] == [6, 7]
    entry = Exclusion.objects.get(phone="+12125550103")
    assert entry.campaign is None and entry.source == Exclusion.Source.IMPORT
    assert entry.expires_at == dt.datetime(2027, 1, 31, tzinfo=dt.UTC)
    assert entry.created_by == admin_user
    permanent.refresh_from_db()
    for_a_while.refresh_from_db()
    assert (permanent.state, for_a_while.state) == ("excluded", "pending")

    # The same number may be excluded from one campaign as well as globally.
    scoped = import_exclusions(stream=csv_bytes("phone\n+12125550101\n"), campaign=campaign)
    assert scoped.created == 1
    assert Exclusion.objects.filter(phone="+12125550101").count() == 2


def test_exclusion_import_needs_a_phone_column():
    with pytest.raises(ImportFileError):
        import_exclusions(stream=csv_bytes("number\n123\n"))


# --- phone parsing: the import's fast path agrees with contacts.phones -------------------------


def near_example(region: str, kind: int, suffix: int) -> str | None:
    """A number close to libphonenumber's example for region and type (mostly valid)."""
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return None
    national = str(example.national_number)
    return f"+{example.country_code}{national[:-3]}{suffix:03d}"


@settings(max_examples=800, deadline=None)
@given(
    region=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    kind=st.sampled_from(
        [t for n, t in vars(phonenumbers.PhoneNumberType).items() if n.isupper() and t]
    ),
    suffix=st.integers(min_value=0, max_value=999),
    spaced=st.sampled_from(["", " ", "-", "()"]),
    default_region=st.sampled_from(["US", "FR", "GB", "DE", "IT"]),
)
def test_import_phone_parsing_matches_normalise_phone(region, kind, suffix, spaced, default_region):
    raw = near_example(region, kind, suffix)
    if raw is None:
        return
    if spaced == "()":
        raw = f"{raw[:3]} ({raw[3:6]}) {raw[6:9]}-{raw[9:]}"
    elif spaced:
        raw = f"{raw[:4]}{spaced}{raw[4:7]}{spaced}{raw[7:]}"
    expected, got = parse_both(raw, default_region)
    assert got == expected


def parse_both(raw: str, region: str):
    try:
        expected = (normalise_phone(raw, region), timezones_for(normalise_phone(raw, region)))
    except InvalidPhone:
        expected = None
    try:
        got = importing._parse_phone(raw, region)
    except ValueError:
        got = None
    return expected, got


@pytest.mark.parametrize(
    "raw",
    [
        "(212) 555-0101",
        "0612345678",
        "+1 1 443 751 4424",
        "+7 8 762 685 9042",
        "+80012345678",
        "+12125550101",
        "+441632960000",
        "+3906 1234 5678",
        "tel:+33612345678",
        "12",
        "+44 (0) 20 7946 0000",
        "+1 (212) 555-0101",
        "+33 6.12.34.56.78",
        "+1-212-555-0101 ext 12",
        "+1 212 555 0101 x12",
        "+1\u00a0212\u00a0555\u00a00101",
        "+",
    ],
)
def test_import_phone_parsing_matches_normalise_phone_on_odd_input(raw):
    expected, got = parse_both(raw, "FR")
    assert got == expected


def test_a_file_without_newlines_is_refused_without_reading_it_whole(monkeypatch):
    monkeypatch.setattr(importing, "MAX_LINE_BYTES", 1000)
    data = b"phone," + b"x" * 5000
    with pytest.raises(ImportFileError, match="longer than"):
        import_contacts(campaign=CampaignFactory(), stream=io.BytesIO(data))


# --- outside a transaction, on PostgreSQL: parsing and writing overlap (two threads) ----------


@pytest.mark.django_db(transaction=True)
def test_import_outside_a_transaction_counts_and_writes_every_batch(monkeypatch):
    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    pipelined = []
    real_pipeline = importing._import_pipelined
    monkeypatch.setattr(
        importing, "_import_pipelined", lambda *a: pipelined.append(1) or real_pipeline(*a)
    )
    campaign = CampaignFactory()
    ExclusionFactory(phone="+12125550150")
    phones = [f"+1212555{n:04d}" for n in range(100, 1100)]
    text = "phone\n" + "\n".join(phones + phones[:50] + ["junk"])  # 50 duplicates, late
    report = import_contacts(campaign=campaign, stream=csv_bytes(text))
    assert (report.rows, report.created, report.duplicates) == (1051, 1000, 50)
    assert (report.excluded, report.rejected) == (1, 1)
    assert Contact.objects.filter(campaign=campaign).count() == 1000
    assert Contact.objects.get(phone="+12125550150").state == Contact.State.EXCLUDED
    assert bool(pipelined) == (connection.vendor == "postgresql")


@pytest.mark.django_db(transaction=True)
def test_a_failing_write_outside_a_transaction_stops_the_import(monkeypatch):
    monkeypatch.setattr(importing, "BATCH_SIZE", 100)
    real_insert = importing._ContactWriter.insert
    calls = {"n": 0}

    def insert_then_fail(self, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database went away")
        real_insert(self, rows)

    monkeypatch.setattr(importing._ContactWriter, "insert", insert_then_fail)
    campaign = CampaignFactory()
    text = "phone\n" + "\n".join(f"+1212555{n:04d}" for n in range(100, 1100))
    with pytest.raises(RuntimeError, match="went away"):
        import_contacts(campaign=campaign, stream=csv_bytes(text))
    assert Contact.objects.filter(campaign=campaign).count() == 0  # not the two written
