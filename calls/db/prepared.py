"""Hand-written hot statements, run as prepared statements on PostgreSQL.

Django's cursors bind parameters on the client and never prepare, so a statement run on every
callback is parsed and planned every time: for the status webhook's statements the planning
took as long as the work. These run on a server-binding cursor of the same connection with
`prepare=True` (the driver keeps the prepared statement per connection). Elsewhere (SQLite)
they run on Django's cursor; the SQL is written to suit both."""

from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def _cursor():
    """(cursor, execute options): a server-binding cursor that prepares on PostgreSQL,
    Django's own elsewhere."""
    if connection.vendor != "postgresql":
        with connection.cursor() as django_cursor:
            yield django_cursor, {}
        return
    # The checks connection.cursor() makes (health check, connected, right thread), without
    # building a Django cursor this statement would not use.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor, {"prepare": True}


def fetch_one(sql: str, params: dict) -> tuple | None:
    """The first row of `sql` (or None)."""
    with _cursor() as (cursor, options):
        cursor.execute(sql, params, **options)
        return cursor.fetchone()


def execute(sql: str, params: dict) -> int:
    """Run `sql`; the number of rows it changed."""
    with _cursor() as (cursor, options):
        cursor.execute(sql, params, **options)
        return cursor.rowcount
