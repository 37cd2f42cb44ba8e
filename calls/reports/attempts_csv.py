"""The call attempt list's export: one row per attempt, with the list's filters, streamed in
chunks as calls.reports.results. The contact's number and name only for who may read them."""

import csv
import io
from collections.abc import Iterator
from itertools import islice

from calls.reports.stats import outcome_expression
from voicesurvey.spreadsheets import safe_cell

CHUNK_SIZE = 2000
COLUMNS = [
    "id",
    "campaign",
    "contact_id",
    "attempt_number",
    "status",
    "outcome",
    "answered_by",
    "duration_seconds",
    "created_at",
    "dialled_at",
    "answered_at",
    "ended_at",
    "error_code",
]
CONTACT_COLUMNS = ["phone", "name"]


def iter_attempts_csv(attempts, *, with_contacts: bool) -> Iterator[str]:
    """Yield the CSV of `attempts` (any filtered queryset), newest first; times in UTC (ISO
    8601 with the offset)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS + (CONTACT_COLUMNS if with_contacts else []))
    yield _drain(buffer)
    fields = [
        "id",
        "campaign__name",
        "contact_id",
        "attempt_number",
        "status",
        "outcome_sql",
        "answered_by",
        "duration",
        "created_at",
        "dialled_at",
        "answered_at",
        "ended_at",
        "error_code",
    ]
    if with_contacts:
        fields += ["contact__phone", "contact__name"]
    rows = (
        attempts.order_by("-created_at", "id")
        .annotate(outcome_sql=outcome_expression())
        .values_list(*fields)
        .iterator(chunk_size=CHUNK_SIZE)
    )
    while chunk := list(islice(rows, CHUNK_SIZE)):
        for row in chunk:
            cells = [
                "" if v is None else v.isoformat() if hasattr(v, "isoformat") else str(v)
                for v in row
            ]
            writer.writerow([safe_cell(cell) for cell in cells])
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
