"""Contacts as CSV: the contact list's export (with the list's filters), and the attribute
columns the campaign results export shares. Streamed in chunks, as calls.reports.results."""

import csv
import io
import json
from collections.abc import Iterator
from itertools import islice

from django.db import connection

from voicesurvey.spreadsheets import safe_cell

CHUNK_SIZE = 2000
MAX_ATTRIBUTE_COLUMNS = 200
CONTACT_COLUMNS = [
    "id",
    "campaign",
    "phone",
    "name",
    "external_id",
    "language",
    "state",
    "attempts_count",
    "last_attempt_at",
    "next_attempt_at",
    "timezones",
]


def attribute_keys(contacts) -> list[str]:
    """The attribute names (the import's extra columns) used by any of `contacts`, sorted: one
    query, in SQL (a JSON function per database), never a loop over the rows."""
    sql, params = contacts.order_by().values("attributes").query.sql_with_params()
    if connection.vendor == "postgresql":
        query = (
            f"SELECT DISTINCT k FROM ({sql}) AS t, jsonb_object_keys(CASE WHEN "
            "jsonb_typeof(t.attributes) = 'object' THEN t.attributes ELSE '{}'::jsonb END) AS k "
            "ORDER BY k LIMIT %s"
        )
    else:
        query = (
            f"SELECT DISTINCT j.key FROM ({sql}) AS t, json_each(t.attributes) AS j "
            "WHERE json_type(t.attributes) = 'object' ORDER BY j.key LIMIT %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(query, [*params, MAX_ATTRIBUTE_COLUMNS])
        return [row[0] for row in cursor.fetchall()]


def attribute_cells(attributes, keys: list[str]) -> list[str]:
    """One cell per key: the value as text (JSON for a number, list or object), guarded."""
    attributes = attributes if isinstance(attributes, dict) else {}
    cells = []
    for key in keys:
        value = attributes.get(key, "")
        cells.append(safe_cell(value if isinstance(value, str) else json.dumps(value)))
    return cells


def attribute_header(keys: list[str], taken: list[str]) -> list[str]:
    """Column names for the attributes: the name itself, prefixed where a fixed column has it."""
    return [f"attribute: {key}" if key in taken else key for key in keys]


def iter_contacts_csv(contacts) -> Iterator[str]:
    """Yield the CSV of `contacts` (any filtered queryset): the fixed columns, then one column
    per attribute."""
    keys = attribute_keys(contacts)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CONTACT_COLUMNS + attribute_header(keys, CONTACT_COLUMNS))
    yield drain(buffer)
    rows = (
        contacts.order_by("id")
        .values_list(
            "id",
            "campaign__name",
            "phone",
            "name",
            "external_id",
            "language",
            "state",
            "attempts_count",
            "last_attempt_at",
            "next_attempt_at",
            "timezone_key",
            "attributes",
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )
    while chunk := list(islice(rows, CHUNK_SIZE)):
        for *fixed, attributes in chunk:
            cells = [
                "" if v is None else v.isoformat() if hasattr(v, "isoformat") else v for v in fixed
            ]
            cells[1:6] = [safe_cell(v) for v in cells[1:6]]
            writer.writerow(cells + attribute_cells(attributes, keys))
        yield drain(buffer)


def drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
