"""The call attempt list's export: one row per attempt, with the list's filters, streamed in
chunks as calls.reports.results. The contact's number and name only for who may read them."""

from collections.abc import Iterator

from calls.reports.stats import outcome_expression
from voicesurvey.spreadsheets import chunks, csv_stream

CHUNK_SIZE = 2000
COLUMNS = {  # the CSV's column: the field it shows
    "id": "id",
    "campaign": "campaign__name",
    "contact_id": "contact_id",
    "attempt_number": "attempt_number",
    "status": "status",
    "outcome": "outcome_sql",
    "answered_by": "answered_by",
    "duration_seconds": "duration",
    "created_at": "created_at",
    "dialled_at": "dialled_at",
    "answered_at": "answered_at",
    "ended_at": "ended_at",
    "error_code": "error_code",
}
CONTACT_COLUMNS = {"phone": "contact__phone", "name": "contact__name"}


def iter_attempts_csv(attempts, *, with_contacts: bool) -> Iterator[str]:
    """Yield the CSV of `attempts` (any filtered queryset), newest first; times in UTC (ISO
    8601 with the offset)."""
    columns = {**COLUMNS, **(CONTACT_COLUMNS if with_contacts else {})}
    rows = (
        attempts.order_by("-created_at", "id")
        .annotate(outcome_sql=outcome_expression())
        .values_list(*columns.values())
        .iterator(chunk_size=CHUNK_SIZE)
    )
    yield from csv_stream(list(columns), chunks(rows, CHUNK_SIZE))
