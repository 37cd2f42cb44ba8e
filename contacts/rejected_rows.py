"""An import's rejected rows, kept for the operator to download as CSV, fix and import again.

Kept one day (KEEP_FOR): the rows may hold personal data nobody imported; older ones are
deleted whenever another import keeps its rows. The CSV is the file's own header plus a
`rejected_because` column (which the import reads and ignores), so the fixed file imports as
it is."""

import csv
import datetime as dt
import io

from contacts.importing import REJECTED_BECAUSE, ImportReport
from contacts.models import RejectedImportRows
from voicesurvey.spreadsheets import safe_cell

KEEP_FOR = dt.timedelta(days=1)


def keep_rejected_rows(
    report: ImportReport, *, kind: str, by, now: dt.datetime
) -> RejectedImportRows | None:
    """Store the report's rejected rows for `by` (None when nothing was rejected), and drop
    the rows kept longer than KEEP_FOR."""
    RejectedImportRows.objects.filter(created_at__lt=now - KEEP_FOR).delete()
    if not report.rejected_rows:
        return None
    return RejectedImportRows.objects.create(
        created_by=by,
        created_at=now,
        kind=kind,
        header=report.header,
        rows=report.rejected_rows,
        rejected=report.rejected,
    )


def rejected_rows_for(pk: int, *, user, now: dt.datetime) -> RejectedImportRows | None:
    """The kept rows `user` may download: their own import's, still kept."""
    return RejectedImportRows.objects.filter(
        pk=pk, created_by_id=user.pk, created_at__gte=now - KEEP_FOR
    ).first()


def rejected_rows_csv(kept: RejectedImportRows) -> str:
    """The rows as CSV, spreadsheet-safe (a number as written stays as it is)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(name) for name in kept.header] + [REJECTED_BECAUSE])
    for row in kept.rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()
