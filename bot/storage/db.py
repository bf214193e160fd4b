"""SQLite through aiosqlite: one connection, WAL, foreign keys, numbered migrations."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Row = aiosqlite.Row
SYNCHRONOUS_MODES = ("NORMAL", "FULL")


def iso(dt: datetime) -> str:
    """Timestamps are stored as UTC ISO-8601 text, so text order is time order."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime reached the database")
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def migrations() -> list[tuple[int, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.iterdir()):
        m = _MIGRATION_NAME.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return found


class Tx:
    """Statements inside one transaction (the database lock is already held)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        cur = await self.conn.execute(sql, params)
        return cur.lastrowid

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(sql, rows)

    # execute_fetchall is one trip to aiosqlite's thread (a cursor is three): reads are on
    # every update's path, so this is most of the storage cost of a chat step.
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.conn.execute_fetchall(sql, params)
        return next(iter(rows), None)  # type: ignore[arg-type]

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.conn.execute_fetchall(sql, params))


class Database:
    def __init__(self, path: Path | str, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        # FULL: "✅ 已保存" is only said after a commit that survives a power cut. WAL with
        # NORMAL may lose the last commits (the WAL is not synced per commit).
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.synchronous = synchronous
        self._conn: aiosqlite.Connection | None = None
        # One connection serves every coroutine; the lock keeps their transactions apart.
        # (busy_timeout: another process, e.g. a bulk import, may hold the write lock a while.)
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None  # the task inside a transaction

    async def connect(self, migrate_to: int | None = None) -> Database:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={self.synchronous}")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=30000")
        self._conn = conn
        await self.migrate(migrate_to)
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Database:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not connected")
        return self._conn

    async def schema_version(self) -> int:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self, target: int | None = None) -> int:
        """Apply every migration newer than the file's user_version (up to `target`)."""
        current = await self.schema_version()
        for number, path in migrations():
            if number <= current or (target is not None and number > target):
                continue
            script = path.read_text(encoding="utf-8")
            async with self._lock:
                try:
                    await self.conn.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={number};\nCOMMIT;"
                    )
                except Exception:
                    if self.conn.in_transaction:
                        await self.conn.execute("ROLLBACK")
                    raise
            current = number
        return current

    def _not_reentrant(self) -> None:
        # The lock is not re-entrant: a query on the Database from inside a transaction would
        # wait for itself forever. Fail loudly instead; inside a transaction use the Tx.
        if self._owner is not None and self._owner is asyncio.current_task():
            raise RuntimeError("Database used inside its own transaction: use the Tx")

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        self._not_reentrant()
        async with self._lock:
            self._owner = asyncio.current_task()
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(self.conn)
                except BaseException:
                    await self.conn.execute("ROLLBACK")
                    raise
                else:
                    await self.conn.execute("COMMIT")
            finally:
                self._owner = None

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._not_reentrant()
        async with self._lock:
            return await Tx(self.conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._not_reentrant()
        async with self._lock:
            return await Tx(self.conn).fetchall(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """A single statement in its own (autocommit) transaction."""
        self._not_reentrant()
        async with self._lock:
            return await Tx(self.conn).execute(sql, params)
