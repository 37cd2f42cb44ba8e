"""A PostgreSQL cluster of our own, to restart for real (issue 15). The shared server on
127.0.0.1:5432 holds other people's databases and CI's, so it is never restarted; this one
lives in a temporary directory, listens on a free port of 127.0.0.1 (its socket in that
directory), trusts every local connection as `postgres`, and skips fsync (there is no machine
crash to survive).

    with PrivatePostgres() as cluster:       # initdb and start; stopped and deleted on exit
        url = cluster.create_database("vs_restart")
        cluster.restart("fast")              # or "immediate": a crash, recovered on start

As root (initdb refuses root) the cluster runs as the `postgres` user. Stopping is guaranteed:
on exit of the `with`, at the interpreter's exit otherwise, and a postmaster that will not stop
is killed by its pid."""

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
# fsync and full_page_writes guard against the machine crashing, not the server: a restart,
# even an immediate one, loses nothing without them. synchronous_commit stays on: off, a crash
# restart would lose commits the app had already acknowledged (an answer answered 200).
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "100",
    "log_min_messages": "warning",
}


class Unavailable(RuntimeError):
    """No PostgreSQL server programs here, or no user to run them as."""


def server_bindir() -> Path:
    """The directory of initdb, pg_ctl and postgres: `pg_config --bindir` (Debian's pg_config
    may come without the server), else the newest /usr/lib/postgresql/*/bin, else the PATH."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, check=True)
            candidates.append(Path(out.stdout.decode().strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates += [Path(p) for p in reversed(versions)]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if all(os.access(bindir / program, os.X_OK) for program in SERVER_PROGRAMS):
            return bindir
    raise Unavailable("no PostgreSQL server programs (initdb, pg_ctl, postgres) on this machine")


def _run_as() -> tuple[list[str], pwd.struct_passwd | None]:
    """The command prefix that drops root to the `postgres` user (none when not root)."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable(
            "running as root and there is no `postgres` user to run initdb as"
        ) from None
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", "postgres", "--"], user
    if setpriv := shutil.which("setpriv"):
        ids = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]
        return [setpriv, *ids, "--"], user
    raise Unavailable("running as root and neither runuser nor setpriv is here")


def unavailable() -> str | None:
    """Why a private cluster cannot be made here, or None when it can."""
    try:
        server_bindir()
        _run_as()
    except Unavailable as exc:
        return str(exc)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    def __init__(self, settings: dict[str, str] | None = None) -> None:
        """`settings`: postgresql.conf lines over SETTINGS (the load bench's durable ones)."""
        self.settings = {**SETTINGS, **(settings or {})}
        self.bindir = server_bindir()
        self.prefix, self.user = _run_as()
        self.root: Path | None = None
        self.port = 0

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        """The server's own log (pg_ctl -l), kept until the cluster is destroyed."""
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> "PrivatePostgres":
        """initdb on the first start, then start the server and wait until it takes
        connections."""
        if self.root is None:
            self._init()
        self._pg_ctl("start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "smart", "fast" (roll back and disconnect) or "immediate" (quit
        at once, as a crash does; the next start recovers from the WAL)."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """What an operator's `pg_ctl restart` (or `systemctl restart postgresql`) does: every
        connection is ended, and the server takes new ones once it is up again."""
        self._pg_ctl("restart", "-m", mode)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server whatever its state (immediate; SIGKILL to a postmaster that stays)
        and delete its directory. Safe to call twice."""
        atexit.unregister(self.destroy)
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._pg_ctl("stop", "-m", "immediate", timeout=20)
        self._kill_postmaster()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> "PrivatePostgres":
        try:
            return self.start()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc) -> None:
        self.destroy()

    # --- inside ----------------------------------------------------------------------------

    def _init(self) -> None:
        # Straight under the temporary directory, not pytest's tmp_path: the `postgres` user
        # must reach it, and a socket path must stay under 108 characters.
        self.root = Path(tempfile.mkdtemp(prefix="voicesurvey-pg-"))
        atexit.register(self.destroy)
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self._run(
            self.bindir / "initdb",
            *("-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync"),
            *("--encoding=UTF8", "--locale=C.UTF-8"),
        )
        self.port = free_port()
        settings = {
            **self.settings,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _pg_ctl(self, action: str, *options: str, timeout: float = 60) -> None:
        self._run(
            self.bindir / "pg_ctl",
            *("-D", self.data, "-l", self.log, "-w", "-t", str(int(timeout)), action, *options),
            timeout=timeout + 10,
        )

    def _run(self, *args, timeout: float = 60) -> None:
        done = subprocess.run(
            [*self.prefix, *map(str, args)],
            cwd=self.root,
            capture_output=True,
            timeout=timeout,
        )
        if done.returncode:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{Path(str(args[0])).name} {args[-1]} failed ({done.returncode}): "
                f"{done.stdout.decode()}{done.stderr.decode()}\n{tail}"
            )

    def _kill_postmaster(self) -> None:
        """SIGKILL the postmaster if it is still there: its backends end when it is gone."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):  # until it is reaped by init (it is not our child)
                os.kill(pid, 0)
                time.sleep(0.05)
