"""Contacts as CSV: the contact list's export (with the list's filters), and the attribute
columns the campaign results export shares. Streamed in chunks, as calls.reports.results."""

import json
from collections.abc import Iterator

from django.db import connection

from voicesurvey.spreadsheets import chunks, csv_stream

CHUNK_SIZE = 2000
MAX_ATTRIBUTE_COLUMNS = 200
CONTACT_COLUMNS = {  # the CSV's column: the field it shows
    "id": "id",
    "campaign": "campaign__name",
    "phone": "phone",
    "name": "name",
    "external_id": "external_id",
    "language": "language",
    "state": "state",
    "attempts_count": "attempts_count",
    "last_attempt_at": "last_attempt_at",
    "next_attempt_at": "next_attempt_at",
    "timezones": "timezone_key",
}


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
    """One cell per key: the value as text (JSON for a number, list or object)."""
    attributes = attributes if isinstance(attributes, dict) else {}
    cells = []
    for key in keys:
        value = attributes.get(key, "")
        cells.append(value if isinstance(value, str) else json.dumps(value))
    return cells


def attribute_header(keys: list[str], taken: list[str]) -> list[str]:
    """Column names for the attributes: the name itself, prefixed where a fixed column has it."""
    return [f"attribute: {key}" if key in taken else key for key in keys]


def iter_contacts_csv(contacts) -> Iterator[str]:
    """Yield the CSV of `contacts` (any filtered queryset): the fixed columns, then one column
    per attribute."""
    keys = attribute_keys(contacts)
    header = list(CONTACT_COLUMNS) + attribute_header(keys, list(CONTACT_COLUMNS))
    rows = (
        contacts.order_by("id")
        .values_list(*CONTACT_COLUMNS.values(), "attributes")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    yield from csv_stream(
        header,
        (
            [[*fixed, *attribute_cells(attributes, keys)] for *fixed, attributes in chunk]
            for chunk in chunks(rows, CHUNK_SIZE)
        ),
    )
