"""A scratch database for a benchmark, on the server DATABASE_URL points at."""

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg


def create(name: str) -> str:
    """Create (or re-create) database `name`; return its URL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("this benchmark needs DATABASE_URL=postgres://… (a server to use)")
    parts = urlsplit(url)
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop(url: str) -> None:
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


def _admin(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres", scheme="postgresql"))
