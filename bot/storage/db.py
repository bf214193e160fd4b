"""SQLite through aiosqlite: one write connection, WAL, foreign keys, numbered migrations;
reads on a second connection so they never queue behind a write waiting for the lock."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.private_files import create_private, private_dir, tighten

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Row = aiosqlite.Row
log = logging.getLogger(__name__)
SIDE_FILES = ("-wal", "-shm", "-journal")  # what SQLite keeps beside the database file
SYNCHRONOUS_MODES = ("NORMAL", "FULL")
QUEUED = 0.25  # seconds waited for the write connection after which its busy wait is cut


def iso(dt: datetime) -> str:
    """Timestamps are stored as UTC ISO-8601 text, so text order is time order."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime reached the database")
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


class DatabaseBusy(Exception):
    """Another connection (e.g. a CLI import) held the write lock longer than we could wait."""


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED: the write lock was not had within the busy timeout."""
    if isinstance(exc, DatabaseBusy):
        return True
    return isinstance(exc, sqlite3.OperationalError) and getattr(
        exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


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
    def __init__(self, path: Path | str, synchronous: str = "FULL", *,
                 busy_timeout: float = 30.0, quick_wait: float = 2.0) -> None:
        """`busy_timeout`: how long a write waits for another process's write lock;
        `quick_wait`: the same for execute_quick (a user's form step), which must not stall."""
        self.path = Path(path)
        # FULL: "✅ 已保存" is only said after a commit that survives a power cut. WAL with
        # NORMAL may lose the last commits (the WAL is not synced per commit).
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.quick_wait = quick_wait
        self._conn: aiosqlite.Connection | None = None
        # WAL lets these read while another connection writes, so a read never waits for
        # the write lock (None for ":memory:", which a second connection cannot share).
        self._reader: aiosqlite.Connection | None = None
        self._quick: aiosqlite.Connection | None = None  # execute_quick, short busy timeout
        self._quick_lock = asyncio.Lock()  # one quick write in flight: the others give up
        self._behind: set[asyncio.Task[None]] = set()  # write_behind in flight
        # One connection serves every coroutine; the lock keeps their transactions apart.
        # (busy_timeout: another process, e.g. a bulk import, may hold the write lock a while.)
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None  # the task inside a transaction

    async def connect(self, migrate_to: int | None = None) -> Database:
        if str(self.path) != ":memory:":
            self._private_files()
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={self.synchronous}")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")
        self._conn = conn
        await self.migrate(migrate_to)
        if str(self.path) != ":memory:":
            self._reader = await self._second(self.busy_timeout, "PRAGMA query_only=ON")
            self._quick = await self._second(self.quick_wait)
        return self

    def _private_files(self) -> None:
        """Personal data: the directory 0700, the database 0600 before SQLite first opens it
        (SQLite gives its -wal and -shm files the database file's mode); files left 0644 by
        an older version are tightened on start."""
        private_dir(self.path.parent)
        create_private(self.path)
        for suffix in SIDE_FILES:
            tighten(f"{self.path}{suffix}")

    async def close(self) -> None:
        await self.settle()  # bookkeeping still on its way: give it its chance first
        for conn in (self._reader, self._quick, self._conn):
            if conn is not None:
                await conn.close()
        self._conn = self._reader = self._quick = None

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
    async def _write_turn(self) -> AsyncIterator[None]:
        """The write connection for one transaction, waited for at most `busy_timeout` in all:
        a write queued behind others that each waited for another process's lock must not
        wait that long again itself (N queued writes would take N busy timeouts)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout(self.busy_timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise DatabaseBusy("the writes before this one still wait for the lock") from None
        try:
            waited = loop.time() - start
            if waited < QUEUED:  # the usual case: no extra statement
                yield
                return
            left = max(self.busy_timeout - waited, 0.001)
            await self.conn.execute(f"PRAGMA busy_timeout={round(left * 1000)}")
            try:
                yield
            finally:
                await self.conn.execute(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")
        finally:
            self._lock.release()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        self._not_reentrant()
        async with self._write_turn():
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
        if self._reader is not None:  # one call on the reader is atomic: no lock needed
            return await Tx(self._reader).fetchone(sql, params)
        async with self._lock:
            return await Tx(self.conn).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._not_reentrant()
        if self._reader is not None:
            return await Tx(self._reader).fetchall(sql, params)
        async with self._lock:
            return await Tx(self.conn).fetchall(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """A single statement in its own (autocommit) transaction."""
        self._not_reentrant()
        async with self._write_turn():
            return await Tx(self.conn).execute(sql, params)

    async def execute_quick(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """A single statement in its own transaction that waits at most `quick_wait` seconds
        (for another quick write, then for the write lock) and raises DatabaseBusy after."""
        self._not_reentrant()
        if self._quick is None:
            return await self.execute(sql, params)
        try:
            async with asyncio.timeout(self.quick_wait):
                await self._quick_lock.acquire()
        except TimeoutError:
            raise DatabaseBusy("another write is still waiting for the lock") from None
        try:
            return await Tx(self._quick).execute(sql, params)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise DatabaseBusy(str(exc)) from exc
            raise
        finally:
            self._quick_lock.release()

    def write_behind(self, sql: str, params: Sequence[Any], what: str) -> None:
        """Bookkeeping a reply need not wait for (where pushes go, numbered choices kept for a
        restart): written in the background on the quick path, in call order (the quick lock
        is fair); skipped with a log line if the database stays locked."""
        task = asyncio.get_running_loop().create_task(self._write_behind(sql, params, what))
        self._behind.add(task)
        task.add_done_callback(self._behind.discard)

    async def settle(self) -> None:
        """Wait for the write_behind bookkeeping issued so far (e.g. before reading where
        a push should go)."""
        if self._behind:
            await asyncio.gather(*self._behind, return_exceptions=True)

    async def _write_behind(self, sql: str, params: Sequence[Any], what: str) -> None:
        try:
            await self.execute_quick(sql, params)
        except Exception as exc:
            log.warning("%s not written (%s)", what, type(exc).__name__)

    async def _second(self, wait: float, *pragmas: str) -> aiosqlite.Connection:
        """Another connection to the file, with the write connection's durability."""
        sync = (await self.conn.execute_fetchall("PRAGMA synchronous"))[0][0]  # type: ignore[index]
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in (f"PRAGMA synchronous={sync}", "PRAGMA foreign_keys=ON",
                       f"PRAGMA busy_timeout={round(wait * 1000)}", *pragmas):
            await conn.execute(pragma)
        return conn
