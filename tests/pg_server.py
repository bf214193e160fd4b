"""A throwaway PostgreSQL for the test session: initdb + pg_ctl in a temporary directory,
on 127.0.0.1 at a free port, fsync off. Each test gets a fresh database copied from a migrated
template (CREATE DATABASE ... TEMPLATE: a file copy, ~10 ms, instead of every migration).

TAIQU_TEST_DATABASE_URL=postgresql://user@host/db points the suite at an existing server
instead (the user must be allowed to create databases)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bot.storage.pg import PgDatabase

INSTALL_HINT = (
    "The test suite runs the storage tests on PostgreSQL too and needs its server binaries "
    "(initdb, pg_ctl): install them (Debian/Ubuntu: apt-get install -y postgresql), or set "
    "TAIQU_TEST_DATABASE_URL=postgresql://user@host/db to use a server you have.")


DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"  # one directory per installed major version


class PostgresUnavailable(RuntimeError):
    pass


def _binaries() -> Path:
    """The directory holding initdb and pg_ctl: on PATH, or Debian's versioned directory."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for directory in sorted(glob.glob(DEBIAN_BINARIES), reverse=True):
        if Path(directory, "initdb").exists() and Path(directory, "pg_ctl").exists():
            return Path(directory)
    raise PostgresUnavailable(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class PgServer:
    """The session's server (started here, or an existing one) and its migrated template."""

    def __init__(self, url: str | None = None) -> None:
        self.admin_url = url or ""
        self._dir: Path | None = None
        self._bin: Path | None = None
        self.template = f"taiqu_template_{uuid.uuid4().hex[:8]}"
        self._template_ready = False

    # --- a server of our own ---------------------------------------------------------------

    def start(self, *, durable: bool = False) -> PgServer:
        """Start the server; `durable` keeps PostgreSQL's default fsync and synchronous
        commit (as a deployment runs it: the benchmarks), else both are off (tests)."""
        if self.admin_url:
            return self
        self._bin = _binaries()
        self._dir = Path(tempfile.mkdtemp(prefix="taiqu-pg-"))
        port = _free_port()
        self._own_dir()
        self._run("initdb", "-D", str(self._dir / "data"), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        options = f"-p {port} -k {self._dir} -c listen_addresses=127.0.0.1"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self._dir / "data"), "-l", str(self._dir / "log"),
                  "-o", options, "-w", "start")
        self.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        return self

    def stop(self) -> None:
        if self._dir is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self._dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _own_dir(self) -> None:
        """PostgreSQL refuses to run as root: as root, the server runs as `postgres`."""
        assert self._dir is not None
        if os.geteuid() == 0:
            shutil.chown(self._dir, "postgres", "postgres")

    def _run(self, tool: str, *args: str) -> None:
        assert self._bin is not None
        command = [str(self._bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # Run from the server's own directory: the test that happens to start the server may
        # have chdir'ed into its private tmp_path, which the postgres user cannot enter.
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              cwd=self._dir)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{tool} failed: {done.stderr.strip() or done.stdout}")

    @property
    def data_dir(self) -> Path | None:
        """The server's data directory, when this process started it."""
        return None if self._dir is None else self._dir / "data"

    # --- databases -------------------------------------------------------------------------

    async def fresh_database(self) -> str:
        """A new database at the latest schema; its URL."""
        if not self._template_ready:
            await self._admin(f'CREATE DATABASE "{self.template}"')
            await (await PgDatabase(with_database(self.admin_url, self.template)).connect()
                   ).close()
            self._template_ready = True
        name = f"taiqu_test_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return with_database(self.admin_url, name)

    async def empty_database(self) -> str:
        """A new database with no schema at all; its URL."""
        name = f"taiqu_test_{uuid.uuid4().hex[:12]}"
        await self._admin(f'CREATE DATABASE "{name}"')
        return with_database(self.admin_url, name)

    async def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def drop_template(self) -> None:
        if self._template_ready:
            await self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
