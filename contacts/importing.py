"""CSV import of contacts and of the do-not-call list.

One door for the admin and the API: both hand a binary file-like object (an UploadedFile works)
to `import_contacts` / `import_exclusions` and present the `ImportReport` they return.

The file is read incrementally and processed in batches of BATCH_SIZE rows, and the whole
import is one transaction: a file that turns out unreadable half-way (a line too long, broken
UTF-16), a crash or a database error leaves nothing behind, and nobody sees a contact of it
before it is whole. Per batch, the phones already in the campaign (and the exclusions in force)
are looked up in one query each (the first skipped while the campaign had no contacts; see
_write_contact_batch), and the new rows are written with one COPY on PostgreSQL, one multi-row
INSERT elsewhere, in a savepoint. Memory therefore depends on the batch, not on the file. Rows
with bad data are rejected (line number and reason) without stopping the rest; problems with
the file as a whole (empty, no header, no phone column, no data rows, binary, not UTF-8, a line
over MAX_LINE_BYTES) raise `ImportFileError`, and nothing is imported.

CSV format: a header row; `phone` is required; `name`, `external_id`, `language` and `timezone`
(one IANA zone, or several separated by spaces or `|`) are recognised; any other column is kept
in the contact's `attributes` (placeholders in the survey text can use it). Column names are
matched case- and space-insensitively. UTF-8 with or without a BOM, or UTF-16/UTF-32 (Excel's
"Unicode text"); `,`, `;` or tab as the delimiter (sniffed from the header line); lines end with
\n, \r\n or \r."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import itertools
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
MAX_REJECTED_ROWS_KEPT = 10_000  # for the operator's download of the rows to fix
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
# The column the download of rejected rows adds (why each was rejected): read and ignored
# when the fixed file comes back, so it does not become an attribute.
REJECTED_BECAUSE = "rejected_because"
CONTACT_COLUMNS[REJECTED_BECAUSE] = EXCLUSION_COLUMNS[REJECTED_BECAUSE] = REJECTED_BECAUSE
FIELD_MAX_LENGTH = {"name": 200, "external_id": 100, "language": 16, "reason": 500}
ZONES_MAX_LENGTH = Contact._meta.get_field("timezone_key").max_length
ZONE_SEPARATORS = re.compile(r"[\s|,]+")


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (nothing was written)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    value: str = ""  # as the API and logs may show it: a phone number masked
    last_line: int = 0  # the row's last line when it spans several (a quoted line break)
    # The value as written in the file, for the admin to show to who may read contacts. Left
    # out of as_dict (the API's report) and of repr (a log line).
    raw: str = field(default="", repr=False)

    def __post_init__(self):
        if self.last_line < self.line:
            object.__setattr__(self, "last_line", self.line)


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    excluded: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    # The file's header and its rejected rows as read (fields in the header's order, then
    # the reason), for the admin's download to fix and import again; not in as_dict.
    header: list[str] = field(default_factory=list, repr=False)
    rejected_rows: list[list[str]] = field(default_factory=list, repr=False)
    _keys: list[str] = field(default_factory=list, repr=False)

    def read_header(self, csv_file: _CsvFile) -> None:
        self.header, self._keys = csv_file.header, csv_file.columns

    def reject(
        self,
        line: int,
        reason: str,
        value: str = "",
        last_line: int = 0,
        *,
        raw: str | None = None,
        row: dict[str, str] | None = None,
    ) -> None:
        """Count a rejected row; list it (the first MAX_REJECTIONS_LISTED) with `value` as
        anyone may see it and `raw` as written; keep `row` (its values, None for a row that
        could not be read) for the download."""
        self.rejected += 1
        if len(self.rejections) < MAX_REJECTIONS_LISTED:
            raw = value if raw is None else raw
            self.rejections.append(
                Rejection(
                    line=line,
                    reason=reason,
                    value=value[:100],
                    last_line=last_line,
                    raw=raw[:100],
                )
            )
        if len(self.rejected_rows) < MAX_REJECTED_ROWS_KEPT:
            fields = [row.get(key, "") for key in self._keys] if row else [""] * len(self._keys)
            where = f"line {line}" if last_line <= line else f"lines {line}-{last_line}"
            if row is None:  # unreadable as CSV: its text is only in the original file
                reason = f"{reason} (fix {where} in the original file)"
            self.rejected_rows.append([*fields, f"{where.capitalize()}: {reason}"])

    @property
    def rejections_truncated(self) -> bool:
        return self.rejected > len(self.rejections)

    @property
    def rejected_rows_truncated(self) -> bool:
        return self.rejected > len(self.rejected_rows)

    def as_dict(self) -> dict:
        """The report as the API returns it (phone numbers masked, no rows)."""
        data = {
            name: getattr(self, name)
            for name in ("rows", "created", "duplicates", "excluded", "rejected")
        }
        data["rejections"] = [
            {k: v for k, v in asdict(rejection).items() if k != "raw"}
            for rejection in self.rejections
        ]
        data["rejections_truncated"] = self.rejections_truncated
        return data


# --- reading the file -----------------------------------------------------------------------


def _normalise_column(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


# Byte-order marks of the encodings read besides UTF-8, longest first (UTF-32 LE's starts with
# UTF-16 LE's). Excel's "Unicode text" export is UTF-16 LE with a BOM, tab-separated.
_UNICODE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)


def _read(stream) -> bytes:
    chunk = stream.read(READ_CHUNK_BYTES)
    if isinstance(chunk, str):  # a text stream: accept it as it is
        chunk = chunk.encode("utf-8")
    return chunk


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le' / 'utf-16-be' for text whose every other byte is NUL (ASCII in UTF-16)."""
    sample = head[:512]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > len(odd) // 2 and even.count(0) <= len(even) // 16:
        return "utf-16-le"
    if even.count(0) > len(even) // 2 and odd.count(0) <= len(odd) // 16:
        return "utf-16-be"
    return None


def _utf8_chunks(stream) -> Iterator[bytes]:
    """The file's bytes as UTF-8: a UTF-8 BOM dropped, UTF-16 and UTF-32 (with a BOM, or
    UTF-16 recognised by its NUL bytes) transcoded as they are read."""
    first = _read(stream)
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    encoding = label = None
    for bom, name, name_label in _UNICODE_BOMS:
        if first.startswith(bom):
            encoding, label = name, name_label
            break
    else:
        encoding = _utf16_without_bom(first)
        label = "UTF-16"
    if encoding is None:
        chunk = first
        while chunk:
            yield chunk
            chunk = _read(stream)
        return
    decoder = codecs.getincrementaldecoder(encoding)()
    chunk, lines = first, 0
    while True:
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"The file is {label} text, but not valid {label} at or after line "
                f"{lines + 1}; save it as CSV UTF-8 and try again."
            ) from exc
        lines += text.count("\n")
        if text:
            yield text.encode("utf-8")
        if not chunk:
            return
        chunk = _read(stream)


def _lines(stream) -> Iterator[tuple[str, str | None]]:
    """The file's physical lines as text (line end kept), each with what is wrong with it (not
    UTF-8, a NUL byte) or None.

    Bytes are split on the newline before decoding (UTF-8 never uses that byte inside a
    character), so one bad line rejects that row only. The first chunk is checked as a whole:
    a file that starts with NUL bytes or non-UTF-8 text is not a CSV file. Lines end with \\n
    (or \\r\\n); a file with \\r alone (old Mac exports) is split on \\r."""
    chunks = _utf8_chunks(stream)
    first = next(chunks, b"")
    newline = b"\r" if b"\n" not in first and b"\r" in first else b"\n"
    _check_start(first, newline)
    pending = b""
    line_no = 0
    for chunk in itertools.chain([first], chunks):
        pending += chunk
        has_nul = b"\x00" in pending
        long = len(pending) > MAX_LINE_BYTES  # only then can one of its lines be too long
        parts = pending.split(newline)
        pending = parts.pop()
        for part in parts:
            line_no += 1
            if long and len(part) > MAX_LINE_BYTES:
                raise _line_too_long(line_no)
            yield _decode(part + newline, has_nul)
        if len(pending) > MAX_LINE_BYTES:
            raise _line_too_long(line_no + 1)
    if pending:
        yield _decode(pending, b"\x00" in pending)


def _line_too_long(line: int) -> ImportFileError:
    return ImportFileError(
        f"Line {line} is longer than {MAX_LINE_BYTES // 1024} KB: this is not a CSV file of "
        "contacts (or its lines do not end with a newline)."
    )


def _check_start(head: bytes, newline: bytes) -> None:
    """Refuse a file whose start is binary or not UTF-8: the whole file is, most likely."""
    first_line = head.split(newline, 1)[0]
    complete = head[: head.rfind(newline) + 1] or head
    try:
        complete.decode("utf-8")
    except UnicodeDecodeError as exc:
        if b"\x00" in head:
            raise ImportFileError("This is a binary file, not a CSV text file.") from exc
        line = complete[: exc.start].count(newline) + 1
        raise ImportFileError(
            f"Line {line} is not UTF-8 text (byte 0x{complete[exc.start]:02x}): the file is in "
            "another encoding. Save it as CSV UTF-8 and try again."
        ) from exc
    if b"\x00" in first_line:
        raise ImportFileError("This is a binary file, not a CSV text file.")


def _decode(raw: bytes, has_nul: bool) -> tuple[str, str | None]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace").replace("\x00", "")
        return text, "The row is not UTF-8 text (save the file as CSV UTF-8)."
    if has_nul and "\x00" in text:
        return text.replace("\x00", ""), "The row contains a NUL byte (not text)."
    return text, None


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


# A line swallowed by an unbalanced quote: its phone column holds something like a number.
_LOOKS_LIKE_PHONE = re.compile(r"\s*\+?[\d\s().\-/]{7,}\s*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _CsvFile:
    """Rows of a CSV file as (first line, last line, {column: value} or the reason the row
    cannot be read), the header already understood."""

    def __init__(self, stream, known_columns: dict[str, str]):
        self._lines = _lines(stream)
        self._problems: dict[int, str] = {}  # line -> what is wrong with it
        self._line_no = 0
        self._last_text = ""
        self.rows = 0
        header_line = self._first_non_blank()
        if header_line is None:
            raise ImportFileError("The file is empty.")
        self.delimiter = delimiter = _sniff_delimiter(header_line)
        try:
            header = next(csv.reader([header_line], delimiter=delimiter))
        except csv.Error as exc:
            raise ImportFileError(f"The header row is not valid CSV ({exc}).") from exc
        self.header = [name.strip() for name in header]  # as written, for the rejected rows
        self.columns: list[str] = []  # per position: field name or attribute
        self.attribute_columns: set[str] = set()
        seen: set[str] = set()
        for position, raw in enumerate(header, 1):
            # A column without a name keeps its values (as "column_3"): dropping them would
            # lose what someone typed there without a word.
            name = _normalise_column(raw) or f"column_{position}"
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
        self._phone_index = self.columns.index("phone")
        self._reader = csv.reader(self._counted(), delimiter=delimiter)

    def _first_non_blank(self) -> str | None:
        for text, problem in self._lines:
            self._line_no += 1
            if problem:
                raise ImportFileError(f"The header row (line {self._line_no}): {problem}")
            if text.strip():
                return text
        return None

    def _counted(self) -> Iterator[str]:
        for text, problem in self._lines:
            self._line_no += 1
            if problem:
                self._problems[self._line_no] = problem
            self._last_text = text
            yield text

    def __iter__(self) -> Iterator[tuple[int, int, dict[str, str] | str]]:
        """Yield (first line, last line, values) for each data row, or (first line, last line,
        reason) for a row that cannot be read at all."""
        width = len(self.columns)
        while True:
            start = self._line_no + 1
            try:
                row = next(self._reader)
            except StopIteration:
                break
            except csv.Error as exc:
                self.rows += 1
                yield start, self._line_no, f"Not valid CSV: {exc}."
                continue
            end = self._line_no
            if not row or not any(v.strip() for v in row):
                continue  # blank lines are not rows
            self.rows += 1
            if self._problems:
                problem = next(
                    (self._problems[n] for n in range(start, end + 1) if n in self._problems),
                    None,
                )
                self._problems = {n: p for n, p in self._problems.items() if n > end}
                if problem:
                    yield start, end, problem
                    continue
            if end > start:
                problem = self._quote_problem(row, start, end)
                if problem:
                    yield start, end, problem
                    continue
            if len(row) > width and any(v.strip() for v in row[width:]):
                yield start, end, f"The row has {len(row)} fields; the header has {width}."
                continue
            yield start, end, {k: v.strip() for k, v in zip(self.columns, row, strict=False)}
        if not self.rows:
            raise ImportFileError("The file has a header row but no data rows.")

    def _quote_problem(self, row: list[str], start: int, end: int) -> str | None:
        """Why a row that spans lines (a quoted field with line breaks) is an unbalanced
        quote, or None. The rows a stray quote swallows must not pass for one long field."""
        if '"' not in self._last_text:
            # A row read over several lines ends on the line of its closing quote; without
            # one, the quote was still open at the end of the file.
            return (
                f"Lines {start}-{end}: the quote opened on line {start} is never closed, so "
                f"the {end - start + 1} lines to the end of the file were read as one row "
                "and none of them was imported (an unbalanced quote)."
            )
        for value in row:
            for segment in _LINE_BREAK.split(value)[1:]:
                fields = next(csv.reader([segment], delimiter=self.delimiter), [])
                if (
                    len(fields) > self._phone_index
                    and (len(fields) > 1 or len(self.columns) == 1)
                    and _LOOKS_LIKE_PHONE.fullmatch(fields[self._phone_index])
                ):
                    return (
                        f"Lines {start}-{end}: a quoted field runs from line {start} to line "
                        f"{end} and holds what look like whole rows (an unbalanced quote); "
                        "none of these lines was imported."
                    )
        return None


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
    report.read_header(csv_file)
    if PIPELINE and connection.vendor == "postgresql" and not connection.in_atomic_block:
        _import_pipelined(csv_file, region, writer, report)
    else:
        with transaction.atomic():
            _lock_imports_into(campaign)
            for batch in _batches(csv_file):
                parsed = _parse_contact_batch(batch, region, report, writer)
                _add_counts(report, _write_contact_batch(parsed, writer))
    return report


def _lock_imports_into(campaign: Campaign) -> None:
    """Serialise imports into one campaign until the end of the current transaction, so two of
    them never race on a phone. On PostgreSQL an advisory lock rather than the campaign's row:
    held for the whole import, a row lock would stall the dialler (an attempt's foreign key to
    the campaign, its status changes) as long. SQLite's write lock serialises them already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [_IMPORT_LOCK, campaign.pk % 2**31]
            )
    else:
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()


_IMPORT_LOCK = 0x1C5F  # the first key of the import's advisory locks (the campaign is the second)
_ABORT = object()  # handed to the writer thread: roll the import back


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
    """The whole import is the writer thread's one transaction: it commits after the last
    batch, and rolls back when the reading thread fails (a file error half-way) or it does."""
    batches: queue.Queue = queue.Queue(maxsize=2)  # memory: at most ~4 batches in flight
    counts: list[tuple[int, int, int]] = []
    failure: list[BaseException] = []

    def write_batches():
        try:
            with transaction.atomic():
                _lock_imports_into(writer.campaign)
                while (parsed := batches.get()) is not None:
                    if parsed is _ABORT:
                        raise _Aborted
                    counts.append(_write_contact_batch(parsed, writer))
        except _Aborted:
            pass
        except BaseException as exc:  # handed to the reading thread, raised there
            failure.append(exc)
            while batches.get() not in (None, _ABORT):  # let the reader finish its puts
                pass
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=write_batches, name="contact-import-writer", daemon=True)
    last = _ABORT
    with _quick_thread_switches():
        thread.start()
        try:
            for batch in _batches(csv_file):
                if failure:
                    break
                batches.put(_parse_contact_batch(batch, region, report, writer))
            last = None
        finally:
            batches.put(last)
            thread.join()
    if failure:
        raise failure[0]
    for item in counts:
        _add_counts(report, item)


class _Aborted(Exception):
    pass


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
    for line, last, values in batch:
        if isinstance(values, str):
            report.reject(line, values, last_line=last)
            continue
        raw_phone = values.get("phone", "")
        try:
            phone, zones = _parse_phone(raw_phone, region)
        except ValueError as exc:
            report.reject(line, str(exc), mask_phone(raw_phone), last, raw=raw_phone, row=values)
            continue
        if phone in parsed:
            report.duplicates += 1
            continue
        zone_text = values.get("timezone")
        if zone_text:
            given = [z for z in ZONE_SEPARATORS.split(zone_text) if z]
            unknown = [z for z in given if not is_valid_zone(z)]
            if unknown:
                reason = f"Unknown time zone {unknown[0]!r}."
                report.reject(line, reason, zone_text, last, row=values)
                continue
            zones = sorted(set(given))
            if len(" ".join(zones)) > ZONES_MAX_LENGTH:
                report.reject(line, "Too many time zones.", zone_text, last, row=values)
                continue
        problem = _too_long(values)
        if problem:
            report.reject(line, problem, last_line=last, row=values)
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
            with transaction.atomic():  # a savepoint in the import's transaction
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
    report.read_header(csv_file)
    with transaction.atomic():  # all or nothing, as the contact import
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
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is in the year 10000 in UTC
        raise ValueError(f"{text[:40]!r} is out of range.") from None


def _import_exclusion_batch(campaign, batch, region, source, created_by, report) -> None:
    report.rows += len(batch)
    parsed: dict[str, tuple[str, dt.datetime | None]] = {}
    for line, last, values in batch:
        if isinstance(values, str):
            report.reject(line, values, last_line=last)
            continue
        raw_phone = values.get("phone", "")
        try:
            phone, _zones = _parse_phone(raw_phone, region)
            expires_at = _parse_expiry(values.get("expires_at", ""))
        except ValueError as exc:
            report.reject(line, str(exc), mask_phone(raw_phone), last, raw=raw_phone, row=values)
            continue
        if phone in parsed:
            report.duplicates += 1
            continue
        problem = _too_long(values)
        if problem:
            report.reject(line, problem, last_line=last, row=values)
            continue
        parsed[phone] = (values.get("reason", ""), expires_at)
    if not parsed:
        return
    for retry in range(3):
        try:
            with transaction.atomic():  # a savepoint in the import's transaction
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
