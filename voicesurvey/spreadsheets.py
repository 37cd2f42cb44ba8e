"""CSV for spreadsheets. Every cell goes through `safe_cell`, which a spreadsheet opens as
text, never as a formula (OWASP "CSV injection"); `csv_stream` writes an export chunk by
chunk, for a streamed response."""

import csv
import io
from collections.abc import Iterable, Iterator
from itertools import islice

from contacts.phones import PHONE_TERM

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    """`value` as the spreadsheet should show it: empty for None, ISO 8601 for a date or time,
    and a leading formula character escaped with an apostrophe. A phone number as people
    write it ("+1 212 555 0148", digits, spaces, dashes, parentheses) is left as it is: it
    cannot run, and importing it again must work."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text.startswith(FORMULA_STARTS) and not PHONE_TERM.fullmatch(text):
        return "'" + text
    return text


def chunks(rows: Iterable, size: int) -> Iterator[list]:
    """`rows` in lists of `size` (a server-side cursor read a chunk at a time)."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def csv_stream(header: list[str], row_chunks: Iterable[Iterable[list]]) -> Iterator[str]:
    """The CSV text of `header`, then of each chunk of rows, one string per chunk; every cell
    through `safe_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(name) for name in header])
    yield _drain(buffer)
    for rows in row_chunks:
        writer.writerows([safe_cell(cell) for cell in row] for row in rows)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
