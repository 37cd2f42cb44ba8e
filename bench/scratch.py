"""A scratch database for a benchmark, on the server DATABASE_URL points at (the million-row
benchmarks: BENCH_DATABASE_URL's)."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


def create(name: str) -> str:
    """Create (or re-create) database `name`; return its URL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("this benchmark needs DATABASE_URL=postgres://… (a server to use)")
    _recreate(_admin(url), name)
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def drop(url: str) -> None:
    with psycopg.connect(_admin(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


def _recreate(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _admin(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres", scheme="postgresql"))


# The benchmarks that load a million rows keep their scratch database between runs (…_REUSE=1)
# on the server of BENCH_DATABASE_URL, and run in a child process set up on it.
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def on_server(name: str) -> str:
    """The URL of database `name` on BENCH_DATABASE_URL's server."""
    return urlunsplit(urlsplit(SERVER_URL)._replace(path=f"/{name}"))


def recreate_on_server(name: str) -> None:
    _recreate(SERVER_URL, name)


def run_child(module: str, database: str, flag: str) -> None:
    """Run `python -m module` with Django's settings on `database` and `flag`=1 in its
    environment: Django is set up once per process, whatever another benchmark of the same run
    set it up on."""
    env = {
        **os.environ,
        "DATABASE_URL": on_server(database),
        "DJANGO_SETTINGS_MODULE": "voicesurvey.settings",
        flag: "1",
    }
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", module], env=env, cwd=root, check=True)
