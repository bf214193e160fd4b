"""Shared pieces of the province-scale benchmarks (issue #11): a throwaway PostgreSQL of the
benchmark's own (tests/pg_server.py, durable: fsync and synchronous commit on, as deployed),
its CPU, databases cloned from a seeded template, and the machine's load averages."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import asyncpg

from tests.pg_server import PgServer, with_database

TICK = os.sysconf("SC_CLK_TCK")


def load_averages() -> str:
    """uptime's 1/5/15-minute load averages (other sessions share these 2 cores)."""
    return " / ".join(Path("/proc/loadavg").read_text().split()[:3])


def _stat_fields(pid: int) -> list[str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    out.append(int(entry.name))
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its children, live ones and those already reaped (a PostgreSQL
    backend that ended is counted in the postmaster's cutime/cstime)."""
    f = _stat_fields(pid)
    total = sum(int(x) for x in f[11:15])
    for child in _children(pid):
        with contextlib.suppress(OSError):
            total += sum(int(x) for x in _stat_fields(child)[11:13])
    return total / TICK


class BenchPostgres:
    """A PostgreSQL server started for one benchmark run, removed at the end."""

    def __init__(self) -> None:
        self.server = PgServer()

    def start(self) -> BenchPostgres:
        self.server.start(durable=True)
        return self

    def stop(self) -> None:
        self.server.stop()

    @property
    def postmaster(self) -> int:
        data = self.server.data_dir
        assert data is not None
        return int((data / "postmaster.pid").read_text().split()[0])

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.postmaster)

    def url(self, database: str) -> str:
        return with_database(self.server.admin_url, database)

    async def admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.server.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of `template`, a file copy); its URL."""
        await self.drop(name)
        clone = f' TEMPLATE "{template}"' if template else ""
        await self.admin(f'CREATE DATABASE "{name}"{clone}')
        return self.url(name)

    async def drop(self, name: str) -> None:
        await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def version(self) -> str:
        conn = await asyncpg.connect(self.server.admin_url)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()


async def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Until something accepts connections on host:port (a bot's webhook listener)."""
    import asyncio

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:g} s")
