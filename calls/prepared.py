"""Hand-written hot statements, run as prepared statements on PostgreSQL.

Django's cursors bind parameters on the client and never prepare, so a statement run on every
callback is parsed and planned every time: for the status webhook's statements the planning
took as long as the work. These run on a server-binding cursor of the same connection with
`prepare=True` (the driver keeps the prepared statement per connection). Elsewhere (SQLite)
they run on Django's cursor; the SQL is written to suit both."""

import psycopg
from django.db import connection


def fetch_one(sql: str, params: dict) -> tuple | None:
    """The first row of `sql` (or None)."""
    with connection.cursor() as django_cursor:  # Django's checks: connection usable
        if connection.vendor != "postgresql":
            django_cursor.execute(sql, params)
            return django_cursor.fetchone()
        connection.validate_no_broken_transaction()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.fetchone()


def execute(sql: str, params: dict) -> int:
    """Run `sql`; the number of rows it changed."""
    with connection.cursor() as django_cursor:
        if connection.vendor != "postgresql":
            django_cursor.execute(sql, params)
            return django_cursor.rowcount
        connection.validate_no_broken_transaction()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, prepare=True)
            return cursor.rowcount
