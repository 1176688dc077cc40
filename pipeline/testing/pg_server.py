"""A throw-away PostgreSQL server for tests and benchmarks: initdb into a temp dir, listen on a unix socket there.

Nothing listens on TCP, so parallel servers never clash over ports. PostgreSQL refuses to
run as root, so as root every server command runs as the `postgres` user via runuser.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"
PORT = 5432  # only names the socket file inside the private directory
START_TIMEOUT_S = 60
INSTALL_HINT = "install the Debian package 'postgresql' (make setup does: it is in DEBIAN_PACKAGES)"
FAST_TEST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailable(RuntimeError):
    """The server could not be started; the message says why and what to install or fix."""


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian layout)."""
    found = sorted(glob.glob(BIN_GLOB), key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()])
    candidates = [Path(p) for p in found if (Path(p) / "initdb").exists()]
    if not candidates:
        raise PostgresUnavailable(f"no PostgreSQL server binaries under {BIN_GLOB}: {INSTALL_HINT}")
    return candidates[-1]


class TemporaryPostgres:
    """`with TemporaryPostgres() as server: server.url("dbname")` - stopped and deleted on exit."""

    def __init__(self, settings: Mapping[str, str] | None = None):
        self.settings = dict(settings or {})
        self.bin_dir = find_bin_dir()
        self.as_root = os.geteuid() == 0
        self.root: Path | None = None

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / tool), *args]
        return ["runuser", "-u", SERVER_USER, "--", *command] if self.as_root else command

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(self._command(tool, *args), capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            log = self.root / "server.log" if self.root else None
            tail = log.read_text().strip().splitlines()[-3:] if log and log.exists() else []
            raise PostgresUnavailable(f"PostgreSQL {tool} failed: {' | '.join(detail[-3:] + tail)}; {INSTALL_HINT} "
                                      f"and run the tests as a user that may start it")

    def start(self) -> TemporaryPostgres:
        self.root = Path(tempfile.mkdtemp(prefix="results-pg-"))
        if self.as_root:
            shutil.chown(self.root, SERVER_USER, SERVER_USER)
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", SERVER_USER, "--auth=trust", "-E", "UTF8", "--locale=C")
        options = [f"-c listen_addresses='' -k {self.root} -p {PORT}"]
        options += [f"-c {key}={value}" for key, value in self.settings.items()]
        self._run("pg_ctl", "-D", str(data), "-l", str(self.root / "server.log"), "-w",
                  "-t", str(START_TIMEOUT_S), "-o", " ".join(options), "start")
        return self

    def url(self, database: str = "postgres") -> str:
        assert self.root is not None, "start() the server first"
        return f"postgresql://{SERVER_USER}@/{database}?host={self.root}&port={PORT}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> TemporaryPostgres:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
