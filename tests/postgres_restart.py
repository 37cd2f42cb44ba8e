"""What a PostgreSQL restart (or a failover, or pg_terminate_backend) does to the app's
connections: the server ends them. Done from a connection of our own to the test database."""

from django.db import connection


def terminate_backends(pids: list[int] | None = None) -> int:
    """End the backends `pids`, default every other backend on this database; returns how many
    were ended."""
    import psycopg

    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    ) as other:
        if pids is not None:
            rows = other.execute(
                "SELECT pid FROM unnest(%s::int[]) AS pid WHERE pg_terminate_backend(pid)", [pids]
            ).fetchall()
        else:
            rows = other.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
    return len(rows)
