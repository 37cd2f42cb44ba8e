"""bench_load --restart-postgres: the app's database on a private PostgreSQL cluster
(tests/private_postgres.py: a temporary directory, a free port, fsync off) instead of
DATABASE_URL's server, restarted for real while the load runs: `pg_ctl restart -m fast` at 35 %
of the run (an operator's restart) and `-m immediate` at 65 % (a crash, recovered from the WAL
on start). With --chaos these replace its pg_terminate_backend step; the shared server is never
restarted. The cluster is stopped and deleted when the bench exits."""

import argparse
import os
import time

from tests.private_postgres import PrivatePostgres

RESTARTS = ((0.35, "fast"), (0.65, "immediate"))


# --private-postgres: durable as in production (every commit flushed to disk, full pages
# after a checkpoint), with the WAL and checkpoint settings a write-heavy server is given
# instead of the stock ones (checkpoints every 5 min or 1 GB of WAL, 128 MB of buffers): the
# shared server keeps the stock ones, and over a 10-minute run at 100 calls/s its WAL flushes
# and checkpoints are what the webhooks end up waiting for (docs/benchmarks-load.md).
DURABLE_TUNED = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "on",
    "shared_buffers": "1GB",
    "wal_compression": "on",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "checkpoint_completion_target": "0.9",
}


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--restart-postgres",
        action="store_true",
        help="the database on a private cluster, restarted mid-run (fast, then immediate)",
    )
    parser.add_argument(
        "--private-postgres",
        action="store_true",
        help="the database on a private cluster, durable, WAL and checkpoints tuned for writes",
    )


def use_private_cluster(settings: dict[str, str] | None = None) -> PrivatePostgres:
    """Start a private cluster and point DATABASE_URL at it (the scratch database is made
    there); destroyed at the interpreter's exit."""
    cluster = PrivatePostgres(settings).start()
    os.environ["DATABASE_URL"] = cluster.url()
    print(f"bench_load: a private PostgreSQL cluster on port {cluster.port}", flush=True)
    return cluster


def with_restarts(steps: list, seconds: float, cluster: PrivatePostgres | None) -> list:
    """The chaos plan `steps` with the real restarts in place of pg_terminate_backend."""
    if cluster is None:
        return steps
    steps = [(at, step) for at, step in steps if step.__name__ != "terminate_backends"]
    steps += [(share * seconds, restart_step(cluster, mode)) for share, mode in RESTARTS]
    return sorted(steps, key=lambda s: s[0])


def restart_step(cluster: PrivatePostgres, mode: str):
    def restart_postgres(**_) -> str:
        started = time.monotonic()
        cluster.restart(mode)
        took = time.monotonic() - started
        return f"PostgreSQL restarted (pg_ctl restart -m {mode}: {took:.1f} s down)"

    return restart_postgres
