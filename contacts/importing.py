"""CSV import of contacts and of the do-not-call list.

One door for the admin and the API: both hand a binary file-like object (an UploadedFile works)
to `import_contacts` / `import_exclusions` and present the `ImportReport` they return.

The file is read incrementally and processed in batches of BATCH_SIZE rows. Each batch is one
transaction: the phones already in the campaign (and the exclusions in force) are looked up in
one query each (the first skipped while the campaign had no contacts; see
_write_contact_batch), the new rows are written with one COPY on PostgreSQL, one multi-row
INSERT elsewhere. Memory therefore depends on the batch, not on the file, and a crash mid-file
leaves whole batches behind, never half a row or half a batch. Rows with bad data are rejected
(line number and reason) without stopping the rest; problems with the whole file (empty, no
header, no phone column, binary, not UTF-8) raise `ImportFileError` before anything is written.

CSV format: a header row; `phone` is required; `name`, `external_id`, `language` and `timezone`
(one IANA zone, or several separated by spaces or `|`) are recognised; any other column is kept
in the contact's `attributes` (placeholders in the survey text can use it). Column names are
matched case- and space-insensitively. UTF-8 with or without a BOM; `,`, `;` or tab as the
delimiter (sniffed from the header line)."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import json
import queue
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from campaigns.models import Campaign
from campaigns.windows import is_valid_zone
from contacts.models import (
    Contact,
    Exclusion,
    active_exclusions,
    exclude_listed_contacts,
    zone_key,
)
from contacts.numbering import read_number
from contacts.phones import mask_phone, normalise_phone, timezones_for

BATCH_SIZE = 2000
MAX_REJECTIONS_LISTED = 100
READ_CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 1024 * 1024  # memory stays bounded even for a file with no newline

# Column name (normalised) -> the Contact field it fills. Anything else goes to attributes.
CONTACT_COLUMNS = {
    "phone": "phone",
    "phone_number": "phone",
    "telephone": "phone",
    "name": "name",
    "full_name": "name",
    "external_id": "external_id",
    "language": "language",
    "timezone": "timezone",
    "timezones": "timezone",
    "time_zone": "timezone",
}
EXCLUSION_COLUMNS = {
    "phone": "phone",
    "phone_number": "phone",
    "telephone": "phone",
    "reason": "reason",
    "expires_at": "expires_at",
}
FIELD_MAX_LENGTH = {"name": 200, "external_id": 100, "language": 16, "reason": 500}
ZONE_SEPARATORS = re.compile(r"[\s|,]+")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (nothing was written)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    value: str = ""


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    excluded: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, line: int, reason: str, value: str = "") -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REJECTIONS_LISTED:
            self.rejections.append(Rejection(line=line, reason=reason, value=value[:100]))

    @property
    def rejections_truncated(self) -> bool:
        return self.rejected > len(self.rejections)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["rejections_truncated"] = self.rejections_truncated
        return data


# --- reading the file -----------------------------------------------------------------------


def _normalise_column(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def _lines(stream) -> Iterator[tuple[str, bool]]:
    """The file's physical lines as text (newline kept), each with whether it decoded as UTF-8.

    Bytes are split on b"\\n" before decoding (UTF-8 never uses that byte inside a character),
    so one undecodable line rejects that row only. The first chunk is checked strictly: a file
    that starts with NUL bytes or non-UTF-8 text is not a CSV file."""
    pending = b""
    first = True
    while True:
        chunk = stream.read(READ_CHUNK_BYTES)
        if isinstance(chunk, str):  # a text stream: accept it as it is
            chunk = chunk.encode("utf-8")
        if first:
            first = False
            if chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8) :]
            if b"\x00" in chunk:
                raise ImportFileError("This is a binary file, not a CSV text file.")
            head = chunk[: chunk.rfind(b"\n") + 1] or chunk
            try:
                head.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    "The file is not UTF-8 text; save it as CSV UTF-8 and try again."
                ) from exc
        if not chunk:
            break
        pending += chunk
        parts = pending.split(b"\n")
        pending = parts.pop()
        if len(pending) > MAX_LINE_BYTES:
            raise ImportFileError(
                f"A line is longer than {MAX_LINE_BYTES // 1024} KB: this is not a CSV file of "
                "contacts (or its lines do not end with a newline)."
            )
        for part in parts:
            yield _decode(part + b"\n")
    if pending:
        yield _decode(pending)


def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


class _CsvFile:
    """Rows of a CSV file as (line number, {column: value}), the header already understood."""

    def __init__(self, stream, known_columns: dict[str, str]):
        self._lines = _lines(stream)
        self._bad_lines: set[int] = set()
        self._line_no = 0
        header_line = self._first_non_blank()
        if header_line is None:
            raise ImportFileError("The file is empty.")
        delimiter = _sniff_delimiter(header_line)
        try:
            header = next(csv.reader([header_line], delimiter=delimiter))
        except csv.Error as exc:
            raise ImportFileError(f"The header row is not valid CSV ({exc}).") from exc
        self.columns: list[str | None] = []  # per position: field name, attribute, or None
        self.attribute_columns: set[str] = set()
        seen: set[str] = set()
        for raw in header:
            name = _normalise_column(raw)
            if not name:
                self.columns.append(None)
                continue
            key = known_columns.get(name, name)
            if key in seen:
                raise ImportFileError(f"The column {raw.strip()!r} appears twice in the header.")
            seen.add(key)
            self.columns.append(key)
            if name not in known_columns:
                self.attribute_columns.add(key)
        if "phone" not in seen:
            found = ", ".join(repr(h.strip()) for h in header[:10]) or "none"
            raise ImportFileError(
                f"The header has no phone column (columns found: {found}; "
                f"the delimiter read was {delimiter!r})."
            )
        self._reader = csv.reader(self._counted(), delimiter=delimiter)

    def _first_non_blank(self) -> str | None:
        for text, ok in self._lines:
            self._line_no += 1
            if not ok:
                raise ImportFileError("The header row is not UTF-8 text.")
            if text.strip():
                return text
        return None

    def _counted(self) -> Iterator[str]:
        for text, ok in self._lines:
            self._line_no += 1
            if not ok:
                self._bad_lines.add(self._line_no)
            yield text

    def __iter__(self) -> Iterator[tuple[int, dict[str, str] | str]]:
        """Yield (line, values) for each data row, or (line, reason) for a row that cannot be
        read at all."""
        width = len(self.columns)
        while True:
            start = self._line_no + 1
            try:
                row = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, f"Not valid CSV: {exc}."
                continue
            if not row or not any(v.strip() for v in row):
                continue  # blank lines are not rows
            if self._bad_lines:
                bad = any(start <= n <= self._line_no for n in self._bad_lines)
                self._bad_lines = {n for n in self._bad_lines if n > self._line_no}
                if bad:
                    yield start, "The row is not UTF-8 text."
                    continue
            if len(row) > width and any(v.strip() for v in row[width:]):
                yield start, f"The row has {len(row)} fields; the header has {width}."
                continue
            values = {}
            for key, value in zip(self.columns, row, strict=False):
                if key is not None:
                    values[key] = value.strip()
            yield start, values


def _batches(rows):
    size = BATCH_SIZE
    batch = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- phones ---------------------------------------------------------------------------------


def _parse_phone(raw: str, region: str | None) -> tuple[str, list[str]]:
    """(E.164, zones) for a raw number, or raise ValueError with the reason: the answers of
    contacts.phones.normalise_phone + timezones_for. The import's speed is mostly this
    function, so plainly written valid numbers (nearly all of a real file) are read by
    contacts.numbering; anything else goes through phonenumbers' parser."""
    if not raw:
        raise ValueError("The phone number is empty.")
    found = read_number(raw, region)
    if found is not None:
        return found
    phone = normalise_phone(raw, region)  # InvalidPhone is a ValueError
    return phone, timezones_for(phone)


def _region(default_region: str | None) -> str | None:
    region = (default_region or settings.DEFAULT_REGION or "").strip().upper()
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        raise ImportFileError(f"Unknown default region {region!r} (use a code such as US or FR).")
    return region or None


def _too_long(values: dict[str, str]) -> str | None:
    for name, limit in FIELD_MAX_LENGTH.items():
        if len(values.get(name, "")) > limit:
            return f"The {name} is longer than {limit} characters."
    return None


# --- contacts -------------------------------------------------------------------------------


def import_contacts(
    *,
    campaign: Campaign,
    stream,
    default_region: str | None = None,
    now: dt.datetime | None = None,
    created_by=None,
) -> ImportReport:
    """Import the contacts of a CSV file into `campaign`; see the module docstring.

    Duplicates (inside the file or already in the campaign) are skipped and counted; numbers on
    the do-not-call list (global or this campaign's, in force at `now`) are imported with state
    `excluded`. `created_by` is accepted for symmetry with the exclusion import (contacts do
    not record who imported them)."""
    now = now or timezone.now()
    region = _region(default_region)
    csv_file = _CsvFile(stream, CONTACT_COLUMNS)
    writer = _ContactWriter(campaign, now)
    report = ImportReport()
    if PIPELINE and connection.vendor == "postgresql" and not connection.in_atomic_block:
        _import_pipelined(csv_file, region, writer, report)
    else:
        for batch in _batches(csv_file):
            parsed = _parse_contact_batch(batch, region, report, writer)
            _add_counts(report, _write_contact_batch(parsed, writer))
    return report


# Parse the next batch while a second thread (its own database connection) writes the last
# one: PostgreSQL's work on a batch overlaps Python's on the next. Only outside a transaction:
# inside one (a test, ATOMIC_REQUESTS) the writes must belong to the caller's transaction.
PIPELINE = True


# While a pipelined import runs, its writer thread mostly waits on the database and needs the
# GIL only for a moment after each reply; at Python's default 5 ms switch interval it queued
# behind the parsing thread for much of each batch (measured here: about 19,000 rows/s at
# 5 ms, 27,000 at 1 ms). The interval is process-wide: lowered while any import runs.
_switch_lock = threading.Lock()
_running_pipelines = 0
_default_switch_interval = sys.getswitchinterval()


@contextmanager
def _quick_thread_switches():
    global _running_pipelines, _default_switch_interval
    with _switch_lock:
        if _running_pipelines == 0:
            _default_switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_default_switch_interval, 0.001))
        _running_pipelines += 1
    try:
        yield
    finally:
        with _switch_lock:
            _running_pipelines -= 1
            if _running_pipelines == 0:
                sys.setswitchinterval(_default_switch_interval)


def _import_pipelined(csv_file, region, writer, report) -> None:
    batches: queue.Queue = queue.Queue(maxsize=2)  # memory: at most ~4 batches in flight
    counts: list[tuple[int, int, int]] = []
    failure: list[BaseException] = []

    def write_batches():
        try:
            while (parsed := batches.get()) is not None:
                if not failure:
                    counts.append(_write_contact_batch(parsed, writer))
        except BaseException as exc:  # handed to the reading thread, raised there
            failure.append(exc)
            while batches.get() is not None:  # let the reader finish its puts
                pass
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=write_batches, name="contact-import-writer", daemon=True)
    with _quick_thread_switches():
        thread.start()
        try:
            for batch in _batches(csv_file):
                if failure:
                    break
                batches.put(_parse_contact_batch(batch, region, report, writer))
        finally:
            batches.put(None)
            thread.join()
    for item in counts:
        _add_counts(report, item)
    if failure:
        raise failure[0]


def _add_counts(report: ImportReport, counts: tuple[int, int, int]) -> None:
    duplicates, created, excluded = counts
    report.duplicates += duplicates
    report.created += created
    report.excluded += excluded


def _parse_contact_batch(batch, region, report, writer) -> dict[str, object]:
    """Check a batch's rows: reject the bad ones (in the report), skip numbers seen earlier in
    the batch; return {E.164 phone: the row as the writer will write it} for the rest."""
    report.rows += len(batch)
    parsed: dict[str, object] = {}
    for line, values in batch:
        if isinstance(values, str):
            report.reject(line, values)
            continue
        raw_phone = values.get("phone", "")
        try:
            phone, zones = _parse_phone(raw_phone, region)
        except ValueError as exc:
            report.reject(line, str(exc), mask_phone(raw_phone))
            continue
        if phone in parsed:
            report.duplicates += 1
            continue
        zone_text = values.get("timezone")
        if zone_text:
            given = [z for z in ZONE_SEPARATORS.split(zone_text) if z]
            unknown = [z for z in given if not is_valid_zone(z)]
            if unknown:
                report.reject(line, f"Unknown time zone {unknown[0]!r}.", zone_text)
                continue
            zones = sorted(set(given))
        problem = _too_long(values)
        if problem:
            report.reject(line, problem)
            continue
        parsed[phone] = writer.prepare(phone, values, zones)
    return parsed


def _write_contact_batch(parsed, writer) -> tuple[int, int, int]:
    """Write a parsed batch in one transaction, skipping the numbers the campaign already has;
    returns (duplicates, created, excluded).

    Into a campaign that had no contacts when the import began, the batch is written without
    looking its numbers up first, and the unique constraint on (campaign, phone) tells if one
    was there after all (a number seen in an earlier batch, or added meanwhile): the batch is
    rolled back and written again with the lookup, as is every later batch. The lookup is a
    fifth of PostgreSQL's work on a batch, and its plan is at the mercy of the statistics of
    a campaign that grows from nothing during the import."""
    if not parsed:
        return 0, 0, 0
    campaign, now = writer.campaign, writer.now
    failures = 0
    while True:
        try:
            with transaction.atomic():
                # Serialises imports into one campaign, so two of them never race on a phone.
                Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
                phones = _phone_list(parsed)
                existing = set()
                if writer.look_up_existing:
                    # order_by(): no ORDER BY (the model's ordering would join the campaigns).
                    existing = set(
                        Contact.objects.filter(campaign=campaign, phone__in=phones)
                        .order_by()
                        .values_list("phone", flat=True)
                    )
                excluded = set(
                    active_exclusions(now, campaign.pk)
                    .filter(phone__in=phones)
                    .order_by()
                    .values_list("phone", flat=True)
                )
                new = [
                    (prepared, phone in excluded)
                    for phone, prepared in parsed.items()
                    if phone not in existing
                ]
                writer.insert(new)
            break
        except IntegrityError:
            if not writer.look_up_existing:
                writer.look_up_existing = True
                continue
            # Someone added one of these phones between our lookup and the insert (a contact
            # saved by hand): look again.
            failures += 1
            if failures == 3:
                raise
    return len(existing), len(new), sum(1 for _, excluded in new if excluded)


def _phone_list(phones):
    """`phones` for a `phone__in` lookup. On PostgreSQL one array parameter rather than 2,000
    placeholders: the lookup gets several times cheaper to build and to send."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::text[])", [list(phones)])
    return list(phones)


class _ContactWriter:
    """Writes new contacts of one campaign: PostgreSQL's COPY (several times faster than the
    multi-row INSERT the ORM builds), or bulk_create elsewhere.

    Fields are derived as Contact.fill_derived() would (bulk_create and COPY skip save());
    fields the import does not set get their model default, as bulk_create would give them."""

    def __init__(self, campaign: Campaign, now: dt.datetime):
        self.campaign = campaign
        self.now = now
        self.fields = [f for f in Contact._meta.concrete_fields if not f.primary_key]
        self.look_up_existing = Contact.objects.filter(campaign=campaign).exists()
        self.copy = connection.vendor == "postgresql"  # else one multi-row INSERT
        self._zone_texts: dict[tuple, tuple[str, str]] = {}  # zones -> (JSON, timezone_key)
        self._zone_copy_texts: dict[tuple, str] = {}  # zones -> both, as COPY columns

    def _zone_text(self, zones: list[str]) -> tuple[str, str]:
        key = tuple(zones)
        if key not in self._zone_texts:
            valid = [z for z in zones if is_valid_zone(z)] or [self.campaign.timezone]
            self._zone_texts[key] = (json.dumps(zones), zone_key(valid))
        return self._zone_texts[key]

    def prepare(self, phone: str, values: dict, zones: list[str]):
        """One row as the writer will write it, all but its state (which depends on the
        do-not-call list, looked up when the batch is written). Called while parsing, so on
        PostgreSQL the COPY text is built while the database writes the previous batch."""
        attributes = {k: v for k, v in values.items() if k not in CONTACT_FIELDS and v}
        if not self.copy:
            zones_json, key = self._zone_text(zones)
            return (
                phone,
                values.get("name", ""),
                values.get("external_id", ""),
                values.get("language", ""),
                json.dumps(attributes) if attributes else "{}",
                zones_json,
                key,
            )
        zone_columns = self._zone_copy_texts.get(tuple(zones))
        if zone_columns is None:
            zones_json, key = self._zone_text(zones)
            zone_columns = self._zone_copy_texts[tuple(zones)] = (
                f"{_escape(zones_json)}\t{_escape(key)}"
            )
        return (
            f"{phone}\t{_escape(values.get('name', ''))}"
            f"\t{_escape(values.get('external_id', ''))}"
            f"\t{_escape(values.get('language', ''))}"
            f"\t{_escape(json.dumps(attributes)) if attributes else '{}'}"
            f"\t{zone_columns}\t"
        )

    def insert(self, rows: list[tuple[object, bool]]) -> None:
        """Insert (prepared row, excluded) rows."""
        if not rows:
            return
        if self.copy:
            self._copy(rows)
            return
        self._insert_many(rows)

    def _shared_values(self) -> tuple[list, dict]:
        """The columns every new contact of a batch shares (defaults, timestamps), as model
        values: (fields not filled per row, {attname: value})."""
        stamp = timezone.now()
        shared = {"campaign_id": self.campaign.pk, "next_attempt_at": self.now}
        tail_fields = [f for f in self.fields if f.attname not in COPY_ROW_COLUMNS]
        values = {}
        for f in tail_fields:
            if f.attname in shared:
                values[f.attname] = shared[f.attname]
            elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                values[f.attname] = stamp
            else:
                values[f.attname] = f.get_default()
        return tail_fields, values

    def _insert_many(self, rows) -> None:
        """A plain multi-row INSERT (executemany) for databases other than PostgreSQL: the
        ORM's bulk_create would build a model instance per row, several times slower."""
        tail_fields, shared = self._shared_values()
        tail = tuple(f.get_db_prep_save(shared[f.attname], connection) for f in tail_fields)
        columns = [Contact._meta.get_field(name).column for name in COPY_ROW_COLUMNS]
        columns += [f.column for f in tail_fields]
        quote = connection.ops.quote_name
        statement = "INSERT INTO {} ({}) VALUES ({})".format(
            quote(Contact._meta.db_table),
            ", ".join(quote(c) for c in columns),
            ", ".join(["%s"] * len(columns)),
        )
        excluded_state, pending = Contact.State.EXCLUDED.value, Contact.State.PENDING.value
        params = [(*row, excluded_state if excluded else pending, *tail) for row, excluded in rows]
        with connection.cursor() as cursor:
            cursor.executemany(statement, params)

    def _copy(self, rows) -> None:
        """One COPY per batch: each row's prepared text, its state, then the columns every
        new contact shares (defaults, timestamps), rendered once."""
        from psycopg import sql

        tail_fields, shared = self._shared_values()
        tail = [_copy_text(shared[f.attname]) for f in tail_fields]
        suffix = "\t" + "\t".join(tail) + "\n" if tail else "\n"
        columns = [Contact._meta.get_field(name).column for name in COPY_ROW_COLUMNS]
        columns += [f.column for f in tail_fields]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(Contact._meta.db_table),
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        )
        excluded_state = Contact.State.EXCLUDED.value + suffix
        pending = Contact.State.PENDING.value + suffix
        text = "".join(row + (excluded_state if excluded else pending) for row, excluded in rows)
        # wrap_database_errors: psycopg's own cursor raises psycopg's errors; the caller
        # catches Django's IntegrityError.
        with (
            connection.wrap_database_errors,
            connection.cursor() as cursor,
            cursor.cursor.copy(statement) as copy,
        ):
            copy.write(text)


# Columns the COPY fills per row, in this order (see _ContactWriter._copy).
COPY_ROW_COLUMNS = (
    "phone",
    "name",
    "external_id",
    "language",
    "attributes",
    "timezones",
    "timezone_key",
    "state",
)
# COPY's text format: backslash escapes for the separators; PostgreSQL text holds no NUL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": None})


def _escape(text: str) -> str:
    return text.translate(_COPY_ESCAPES)


def _copy_text(value) -> str:
    """A model default in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        return _escape(json.dumps(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return _escape(str(value))


CONTACT_FIELDS = frozenset(CONTACT_COLUMNS.values())


# --- the do-not-call list -------------------------------------------------------------------


def import_exclusions(
    *,
    stream,
    campaign: Campaign | None = None,
    source: str = Exclusion.Source.IMPORT,
    default_region: str | None = None,
    created_by=None,
) -> ImportReport:
    """Add the numbers of a CSV file to the do-not-call list: every campaign's when `campaign`
    is None, else that campaign's. Columns: `phone` (required), `reason`, `expires_at` (ISO
    date or date-time; empty: never). Numbers already listed in that scope are duplicates
    (their existing entry is left as it is)."""
    if source not in Exclusion.Source.values:
        raise ValueError(f"Unknown exclusion source {source!r}.")
    region = _region(default_region)
    csv_file = _CsvFile(stream, EXCLUSION_COLUMNS)
    report = ImportReport()
    for batch in _batches(csv_file):
        _import_exclusion_batch(campaign, batch, region, source, created_by, report)
    return report


def _parse_expiry(text: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            if day is None:
                raise ValueError
            value = dt.datetime.combine(day, dt.time.min)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a date (use YYYY-MM-DD or ISO 8601).") from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value


def _import_exclusion_batch(campaign, batch, region, source, created_by, report) -> None:
    report.rows += len(batch)
    parsed: dict[str, tuple[str, dt.datetime | None]] = {}
    for line, values in batch:
        if isinstance(values, str):
            report.reject(line, values)
            continue
        raw_phone = values.get("phone", "")
        try:
            phone, _zones = _parse_phone(raw_phone, region)
            expires_at = _parse_expiry(values.get("expires_at", ""))
        except ValueError as exc:
            report.reject(line, str(exc), mask_phone(raw_phone))
            continue
        if phone in parsed:
            report.duplicates += 1
            continue
        problem = _too_long(values)
        if problem:
            report.reject(line, problem)
            continue
        parsed[phone] = (values.get("reason", ""), expires_at)
    if not parsed:
        return
    for retry in range(3):
        try:
            with transaction.atomic():
                scope = Exclusion.objects.filter(phone__in=_phone_list(parsed))
                scope = (
                    scope.filter(campaign__isnull=True)
                    if campaign is None
                    else scope.filter(campaign=campaign)
                )
                existing = set(scope.order_by().values_list("phone", flat=True))
                rows = [
                    Exclusion(
                        phone=phone,
                        campaign=campaign,
                        reason=reason,
                        source=source,
                        created_by=created_by,
                        expires_at=expires_at,
                    )
                    for phone, (reason, expires_at) in parsed.items()
                    if phone not in existing
                ]
                Exclusion.objects.bulk_create(rows, batch_size=BATCH_SIZE)
                permanent = [row.phone for row in rows if row.expires_at is None]
                campaign_id = campaign.pk if campaign is not None else None
                exclude_listed_contacts(permanent, campaign_id=campaign_id, now=timezone.now())
            break
        except IntegrityError:
            if retry == 2:
                raise
    report.duplicates += len(existing)
    report.created += len(rows)
