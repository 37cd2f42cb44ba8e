"""A batch of rows as a table in one statement, for the dialler's bulk writes.

On PostgreSQL the rows travel as one array per column (`unnest`): the statement's text stays
the same whatever the batch, so the driver need not scan thousands of placeholders on every
call. Elsewhere (SQLite) they are a VALUES list."""

from django.db import connection


def rows_cte(name: str, columns: list[tuple[str, str]], rows: list[tuple]) -> tuple[str, list]:
    """(`name(col, …) AS (…)` for a WITH clause, its parameters). `columns` are (name,
    PostgreSQL type) pairs; `rows` tuples in that order, as database values."""
    names = ", ".join(column for column, _ in columns)
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
        params = [list(values) for values in zip(*rows, strict=True)] or [[]] * len(columns)
        return f"{name}({names}) AS (SELECT * FROM unnest({arrays}))", params
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    params = [value for values in rows for value in values]
    return f"{name}({names}) AS (VALUES {', '.join([row] * len(rows))})", params
