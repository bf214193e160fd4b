"""The store behind every feature. SQLite through aiosqlite (the default): one write
connection, WAL, foreign keys, numbered migrations; reads on a second connection so they never
queue behind a write waiting for the lock, and short reads by key (fetchone_point: a chat
step's one read) on a third, on the event loop itself. PostgreSQL (TAIQU_DATABASE_URL,
bot.storage.pg) has the same interface: `Backend` below is what callers may use."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import sqlite3
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar
from weakref import WeakKeyDictionary

import aiosqlite

from bot.private_files import create_private, private_dir, tighten
from bot.storage.batch import Batch, Played, Statement, play_sync
from bot.storage.walsync import WalSync

if TYPE_CHECKING:
    pass

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Row = aiosqlite.Row
Read = tuple[str, tuple[Any, ...]]  # a SELECT and its parameters, declared before it runs
# What a read's rows become as they come, one at a time (Backend.fetch_into): run where they
# come, on SQLite on the reader's thread, so it touches nothing of the event loop's.
Into = Callable[[Iterator[Row]], Any]
log = logging.getLogger(__name__)
SIDE_FILES = ("-wal", "-shm", "-journal")  # what SQLite keeps beside the database file
SYNCHRONOUS_MODES = ("NORMAL", "FULL")
QUEUED = 0.25  # seconds waited for the write connection after which its busy wait is cut
# Writes on the event loop between two checkpoints of the WAL (done off the loop): about
# SQLite's own default of 1000 pages, as a step writes one to three.
CHECKPOINT_EVERY = 500
# A chat step's batch of at most this many rows of parameters and reads (a form's save and
# its close, a tap's change with its reminders: 3 to 15) runs on the event loop as a form
# step's write does; a longer one (a task to a whole team, an import's chunk) stays in
# aiosqlite's thread, off the loop.
INLINE_BATCH_ROWS = 32
# Whether the running task is a chat step (Backend.step): bookkeeping written behind a reply
# is not, though its task was started from one.
_IN_STEP: contextvars.ContextVar[bool] = contextvars.ContextVar("taiqu_in_step", default=False)
# Bookkeeping the running step's own write carries (Backend.write_along): a statement, its
# parameters and what it is (for the log). None outside a step, and in what is written behind.
Along = tuple[str, tuple[Any, ...], str]
_ALONG: contextvars.ContextVar[list[Along] | None] = contextvars.ContextVar(
    "taiqu_along", default=None)
# Statements another may carry as a data-modifying CTE (PostgreSQL) or after it (SQLite).
_PLAIN_WRITE = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def _plain_write(sql: str) -> bool:
    """A write that may carry the step's bookkeeping (Backend.write_along)."""
    return _PLAIN_WRITE.match(sql) is not None


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
    code = getattr(exc, "sqlite_errorcode", None)  # extended (SQLITE_BUSY_RECOVERY ...)
    return (isinstance(exc, sqlite3.OperationalError) and code is not None
            and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))


def migrations() -> list[tuple[int, Path]]:
    """The one numbered list, as SQLite files; `migration_script` gives a dialect's form."""
    found = []
    for path in sorted(MIGRATIONS_DIR.iterdir()):
        m = _MIGRATION_NAME.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return found


PG_SUFFIX = "pg"  # 0011_x.pg.sql: the PostgreSQL form of 0011_x.sql


def migration_script(path: Path, dialect: str) -> str:
    """A migration's SQL for `dialect`: the file itself, or for PostgreSQL the variant beside
    it (0011_x.pg.sql) where one was needed, else the file, with SQLite's type names rewritten."""
    if dialect == "sqlite":
        return path.read_text(encoding="utf-8")
    variant = path.with_suffix(f".{PG_SUFFIX}.sql")
    return pg_types((variant if variant.exists() else path).read_text(encoding="utf-8"))


# SQLite's type names in PostgreSQL's words; every other statement of the migrations is
# written to run on both. (By hand, not a SQL translator library: four names, and a file that
# needs more gets a .pg.sql variant instead.) `id INTEGER PRIMARY KEY` is SQLite's rowid: a
# value is drawn when none is given, as an identity column does. INTEGER is 64-bit in SQLite.
_PG_TYPES = (
    (re.compile(r"\bid(\s+)INTEGER\s+PRIMARY\s+KEY\b", re.IGNORECASE),
     r"id\1BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.IGNORECASE), "BIGINT"),
    (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.IGNORECASE), "BYTEA"),
)


def pg_types(script: str) -> str:
    for pattern, replacement in _PG_TYPES:
        script = pattern.sub(replacement, script)
    return script


def _fetch_many_sync(conn: sqlite3.Connection, reads: Sequence[Read],
                     into: Sequence[Into] | None = None) -> list[Any]:
    """Each read's rows; with `into`, what each one's makes of them from the cursor, so its
    rows are never held as a list besides what they become."""
    if into is None:
        return [conn.execute(sql, params).fetchall() for sql, params in reads]
    out = []
    for (sql, params), made in zip(reads, into, strict=True):
        cursor = conn.execute(sql, params)
        try:
            out.append(made(iter(cursor)))
        finally:
            cursor.close()
    return out


def _write_then_fetch_sync(conn: sqlite3.Connection, write: Read,
                           reads: Sequence[Read]) -> list[list[Row]]:
    """In autocommit: the write commits (and lets the write lock go) before the first read,
    which then holds no lock at all (WAL), however long it scans."""
    conn.execute(*write)
    return _fetch_many_sync(conn, reads)


def _returning_sync(conn: sqlite3.Connection, write: Read,
                    along: Sequence[Along]) -> tuple[list[Row], list[Along]]:
    """A write with its own RETURNING, then `along` (each its own commit, in autocommit):
    its rows, and what of `along` failed (to be written behind)."""
    rows = conn.execute(*write).fetchall()
    failed = []
    for more in along:
        try:
            conn.execute(more[0], more[1])
        except sqlite3.Error:
            failed.append(more)
    return rows, failed


class Trips:
    """Round trips to the database, counted by the store itself (issue #12: a chat step makes
    at most 2): a hop to SQLite's worker thread, or a request over the network to PostgreSQL
    (BEGIN and COMMIT included). `inline`: SQLite statements run on the event loop
    (fetchone_point, execute_quick), which make no trip. `fsyncs`: syncs of the WAL after
    such writes (bot.storage.walsync), shared by the steps that wait for them: no statement."""

    def __init__(self) -> None:
        self.trips = 0
        self.inline = 0
        self.fsyncs = 0

    def reset(self) -> None:
        self.trips = self.inline = self.fsyncs = 0

    def synced(self) -> None:
        self.fsyncs += 1


class Tx:
    """Statements inside one transaction (the database lock is already held)."""

    def __init__(self, conn: aiosqlite.Connection, trips: Trips) -> None:
        self.conn = conn
        self.rowcount = 0  # rows the last execute inserted, changed or deleted
        self._trips = trips

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """Runs one statement; the new row's id after an INSERT (on both backends)."""
        self._trips.trips += 1
        cur = await self.conn.execute(sql, params)
        self.rowcount = cur.rowcount
        return cur.lastrowid

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._trips.trips += 1
        await self.conn.executemany(sql, rows)

    # execute_fetchall is one trip to aiosqlite's thread (a cursor is three): reads are on
    # every update's path, so this is most of the storage cost of a chat step.
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._trips.trips += 1
        rows = await self.conn.execute_fetchall(sql, params)
        return next(iter(rows), None)  # type: ignore[arg-type]

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._trips.trips += 1
        return list(await self.conn.execute_fetchall(sql, params))


class Prefetched:
    """Rows read with a step's own read, declared before it by the button tapped (issue
    #12: a tapped button's record read with the step's read, in one round trip), for the
    step's handling to find without a trip of its own. Each is served once, to the exact
    SELECT and parameters it was read with; all are dropped at the step's first write, so
    nothing read before a write is served after it."""

    def __init__(self, db: Backend, reads: Sequence[Read], rows: Sequence[list[Row]]) -> None:
        self.db = db
        self.rows = {(sql, tuple(params)): found for (sql, params), found in zip(reads, rows,
                                                                                strict=True)}


# The step's prefetched rows, in the task handling it (and tasks it starts, which share them:
# a write there drops them too). Bookkeeping written behind (Backend.write_behind) is no
# step's write: it neither serves nor drops them.
_PREFETCHED: ContextVar[Prefetched | None] = ContextVar("taiqu_prefetched", default=None)


class Backend:
    """What the two stores share: the interface callers use, and background bookkeeping."""

    dialect: ClassVar[str]
    # Appended to a SELECT that picks rows to claim: rows another transaction is claiming
    # are passed over, not waited for (SQLite has one writer at a time: nothing to skip).
    skip_locked: ClassVar[str] = ""
    # A read in a transaction that another instance must wait for, not overtake (SQLite's
    # one writer at a time already serialises such transactions).
    for_update: ClassVar[str] = ""
    # Rows as one JSON text ('[[1, "a"], ...]', '[]' for none), as a scalar subquery's
    # aggregate: one read brings a record with its children (order: sort by a column).
    json_rows: ClassVar[str] = "json_group_array(json_array({}))"
    busy_timeout: float
    quick_wait: float

    def __init__(self) -> None:
        self._behind: set[asyncio.Task[None]] = set()  # write_behind in flight
        self._owner: asyncio.Task[Any] | None = None  # the task inside a transaction
        self.trips = Trips()
        self._steps = 0  # chat steps in flight (Backend.step)

    @contextmanager
    def step(self) -> Iterator[None]:
        """One chat step in flight (the core's handling of one update, lock waits included):
        a step alone may sync its write on the event loop (bot.storage.walsync)."""
        self._steps += 1
        token, along = _IN_STEP.set(True), _ALONG.set([])
        try:
            yield
        finally:
            held = _ALONG.get() or []
            left = held[:]
            held.clear()  # a task the step started, running on, takes none of them again
            _ALONG.reset(along)
            _IN_STEP.reset(token)
            self._steps -= 1
            for sql, params, what in left:  # the step wrote nothing: behind the reply
                self.write_behind(sql, params, what)

    def write_along(self, sql: str, params: Sequence[Any], what: str) -> None:
        """Bookkeeping (an UPDATE of a row by its key: where pushes go) that the step's own
        next write carries in its round trip (issue #12: a step that writes anyway makes no
        trip more for it); written behind the reply if the step ends without a write, or
        outside a step."""
        along = _ALONG.get()
        if along is None:
            self.write_behind(sql, params, what)
        else:
            along.append((sql, tuple(params), what))

    @contextmanager
    def _carrying(self, may: bool = True) -> Iterator[list[Along]]:
        """What the step's next write carries along (none when it `may` not), taken from the
        step; written behind instead if that write fails (raises)."""
        along = _ALONG.get() if may else None
        taken = along[:] if along else []
        if along:
            along.clear()
        try:
            yield taken
        except BaseException:
            self._along_failed(taken)
            raise

    def _along_failed(self, taken: Sequence[Along]) -> None:
        """The write that carried `taken` failed: they are written behind, as before."""
        for sql, params, what in taken:
            self.write_behind(sql, params, what)

    def _alone(self) -> bool:
        """The running task is the only chat step in flight."""
        return _IN_STEP.get() and self._steps == 1

    async def connect(self, migrate_to: int | None = None) -> Self:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def schema_version(self) -> int:
        raise NotImplementedError

    async def migrate(self, target: int | None = None) -> int:
        raise NotImplementedError

    def tx(self) -> Any:  # an async context manager yielding a Tx
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError

    async def fetch_many(self, reads: Sequence[Read]) -> list[list[Row]]:
        """Several reads in ONE round trip, the rows of each in order (issue #12: /todo reads
        every feature's open items at once). None: no trip."""
        raise NotImplementedError

    async def fetchone_point(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """fetchone for a short read by key (a few indexed rows, as a chat step's one read):
        never a report, a scan or a search, which must stay off the event loop."""
        raise NotImplementedError

    async def fetch_many_point(self, reads: Sequence[Read]) -> list[list[Row]]:
        """fetch_many of short reads by key (a card: its record and the few rows it shows),
        as fetchone_point: on SQLite on the event loop."""
        return await self.fetch_many(reads)

    async def fetch_into(self, reads: Sequence[Read], into: Sequence[Into]) -> list[Any]:
        """fetch_many, each read's rows handed as they come to its `into` (Into), and what
        that makes of them returned in order: for reads too big to hold both as rows and as
        what they become (a team's XLSX entries, issue #12)."""
        raise NotImplementedError

    async def fetch_groups(self, groups: Sequence[Sequence[Read]],
                           into: Sequence[Sequence[Into] | None] = ()) -> list[list[Any]]:
        """The reads several parts declared (each /todo kind's, each report section's), in
        ONE fetch_many: the rows of each group's reads, in order. A read two parts declare
        alike (the working-day calendar) runs once and serves both. `into[n]`: what takes in
        the rows of group n's reads (fetch_into), one for each, in place of their rows."""
        unique: dict[tuple[str, tuple[Any, ...], Into | None], int] = {}
        keys = [[(sql, tuple(params), made) for (sql, params), made in zip(
            group, (into[n] if n < len(into) else None) or [None] * len(group), strict=True)]
            for n, group in enumerate(groups)]
        for key in (k for group in keys for k in group):
            unique.setdefault(key, len(unique))
        reads = [(sql, params) for sql, params, _ in unique]
        fetched = await self.fetch_many(reads) if not any(into) else \
            await self.fetch_into(reads, [made or list for _, _, made in unique])
        return [[fetched[unique[key]] for key in group] for group in keys]

    async def fetch_many_after(self, write: Read, reads: Sequence[Read]) -> list[list[Row]]:
        """fetch_many of `reads` that may scan (a search), after one short write committed on
        its own (a one-row upsert: the search its ◀️ ▶️ page through), in ONE round trip. The
        reads never run inside the write's transaction: a scan holds no write lock. Whether
        they see the write differs (PostgreSQL: not, one statement's snapshot): read nothing
        it writes."""
        await self.execute(*write)
        return await self.fetch_many(reads)

    async def fetch_point_with(self, sql: str, params: Sequence[Any],
                               more: Sequence[Read]) -> tuple[Row | None, list[list[Row]]]:
        """A point read of one row (fetchone_point: the step's) and the rows of `more`, short
        reads by key, in one round trip; the point row comes as fetchone_point gives it."""
        raise NotImplementedError

    @contextmanager
    def prefetched(self, reads: Sequence[Read], rows: Sequence[list[Row]]) -> Iterator[None]:
        """Within: `reads` answered with `rows` (read already, see Prefetched) by this
        store's reads in this task, each once, until the first write."""
        token = _PREFETCHED.set(Prefetched(self, reads, rows) if reads else None)
        try:
            yield
        finally:
            _PREFETCHED.reset(token)

    def served(self, read: Read) -> list[Row] | None:
        """`read`'s rows if the step read them with its own read (once, before its first
        write), else None: no round trip (e.g. FormSpec.save_reads, for a write that can do
        without them)."""
        return self._served(*read)

    def _prefetched(self) -> dict[tuple[str, tuple[Any, ...]], list[Row]] | None:
        """The rows this step prefetched from this backend and has not used yet, if any."""
        held = _PREFETCHED.get()
        return held.rows if held is not None and held.db is self and held.rows else None

    def _served(self, sql: str, params: Sequence[Any]) -> list[Row] | None:
        """This read's rows if the step prefetched them (once), else None."""
        rows = self._prefetched()
        return rows.pop((sql, tuple(params)), None) if rows is not None else None

    def _held(self, sql: str, params: Sequence[Any]) -> list[Row] | None:
        """This read's rows if the step prefetched them, left there for _served."""
        rows = self._prefetched()
        return rows.get((sql, tuple(params))) if rows is not None else None

    def _written(self) -> None:
        """A write of the step: what was prefetched before it may be stale now."""
        held = _PREFETCHED.get()
        if held is not None and held.db is self:
            held.rows.clear()

    async def _many_served(self, reads: Sequence[Read],
                           fetch: Callable[[Sequence[Read]], Awaitable[list[list[Row]]]],
                           ) -> list[list[Row]]:
        """fetch_many's rows: the prefetched ones served, the others fetched (one trip)."""
        got = [self._served(sql, params) for sql, params in reads]
        missing = [read for read, rows in zip(reads, got, strict=True) if rows is None]
        if not missing:
            return got  # type: ignore[return-value]
        fetched = iter(await fetch(missing))
        return [rows if rows is not None else next(fetched) for rows in got]

    async def _into_served(self, reads: Sequence[Read], into: Sequence[Into],
                           fetch: Callable[[Sequence[Read], Sequence[Into]],
                                           Awaitable[list[Any]]]) -> list[Any]:
        """fetch_into's results, each Into run once and in the reads' order (one may use what
        an earlier one made): all fetched in one trip, or, should the step have prefetched
        any of them, their rows as fetch_many's, then made."""
        if all(self._held(sql, params) is None for sql, params in reads):
            return await fetch(reads, into)
        rows = await self._many_served(
            reads, lambda missing: fetch(missing, [list] * len(missing)))
        return [made(iter(got)) for made, got in zip(into, rows, strict=True)]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        raise NotImplementedError

    async def execute_quick(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        raise NotImplementedError

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """One write statement with its own RETURNING, in its own transaction: what it wrote,
        in one round trip (no BEGIN and COMMIT, and no wait for this instance's turn at
        transactions on PostgreSQL: the statement alone is atomic)."""
        raise NotImplementedError

    async def write_batch(self, batch: Batch) -> Played:
        """A transaction declared beforehand (bot.storage.batch), in one round trip where
        the backend can: a form's save and its close in one; with the step's bookkeeping
        (write_along) at its end, unless the batch writes its tables itself (PostgreSQL
        would then run it statement by statement)."""
        written = {st.table for st in batch.statements}
        extra = [Statement(sql, (params,)) for sql, params, _ in _ALONG.get() or ()]
        if not extra or not written or any(st.table in written for st in extra):
            return await self._play_batch(batch)
        carrying = Batch([*batch.statements, *extra], batch.reads, batch.refused_reads)
        with self._carrying():
            played = await self._play_batch(carrying)
        batch.ran = carrying.ran
        return played

    async def _play_batch(self, batch: Batch) -> Played:
        raise NotImplementedError

    async def _execute_threaded(self, sql: str, params: Sequence[Any]) -> int | None:
        return await self.execute_quick(sql, params)

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _not_reentrant(self) -> None:
        # The lock is not re-entrant: a query on the Database from inside a transaction would
        # wait for itself forever. Fail loudly instead; inside a transaction use the Tx.
        if self._owner is not None and self._owner is asyncio.current_task():
            raise RuntimeError("Database used inside its own transaction: use the Tx")

    def write_behind(self, sql: str, params: Sequence[Any], what: str, *,
                     threaded: bool = False) -> None:
        """Bookkeeping a reply need not wait for (where pushes go, numbered choices kept for a
        restart): written in the background on the quick path, in call order (the quick lock
        is fair); skipped with a log line if the database stays locked. `threaded`: never on
        the event loop (SQLite)."""
        behind = contextvars.copy_context()
        behind.run(_IN_STEP.set, False)  # not the step's own: it never syncs on the loop
        behind.run(_ALONG.set, None)  # nor carries the step's bookkeeping
        task = asyncio.get_running_loop().create_task(
            self._write_behind(sql, params, what, threaded), context=behind)
        self._behind.add(task)
        task.add_done_callback(self._behind.discard)

    async def settle(self) -> None:
        """Wait for the write_behind bookkeeping issued so far (e.g. before reading where
        a push should go)."""
        if self._behind:
            await asyncio.gather(*self._behind, return_exceptions=True)

    async def _write_behind(self, sql: str, params: Sequence[Any], what: str,
                            threaded: bool) -> None:
        _PREFETCHED.set(None)  # this task's own context: the step's rows stay as they are
        try:
            await (self._execute_threaded(sql, params) if threaded
                   else self.execute_quick(sql, params))
        except Exception as exc:
            log.warning("%s not written (%s)", what, type(exc).__name__)


_Held = TypeVar("_Held")
_HELD: WeakKeyDictionary[Backend, dict[type[Any], Any]] = WeakKeyDictionary()


def held_by(db: Backend, kind: type[_Held]) -> _Held:
    """The one `kind()` of this database handle: what the step reads bring and later steps
    use (bot.workcal.CalendarCache, bot.storage.team_areas.TeamAreasCache)."""
    held = _HELD.setdefault(db, {})
    found = held.get(kind)
    if found is None:
        found = held[kind] = kind()
    return found  # type: ignore[no-any-return]


class Database(Backend):
    """SQLite."""

    dialect = "sqlite"

    def __init__(self, path: Path | str, synchronous: str = "FULL", *,
                 busy_timeout: float = 30.0, quick_wait: float = 2.0,
                 step_synchronous: str = "FULL") -> None:
        """`busy_timeout`: how long a write waits for another process's write lock;
        `quick_wait`: the same for execute_quick (a user's form step), which must not stall;
        `step_synchronous`: how execute_quick's writes on the event loop reach the disk
        (FULL: synced before it returns, by a shared sync off the loop; NORMAL: not synced)."""
        super().__init__()
        self.path = Path(path)
        # FULL: "✅ 已保存" is only said after a commit that survives a power cut. WAL with
        # NORMAL may lose the last commits (the WAL is not synced per commit).
        for mode in (synchronous, step_synchronous):
            if mode not in SYNCHRONOUS_MODES:
                raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}")
        self.synchronous = synchronous
        self.step_synchronous = step_synchronous
        self._inline_writes = 0  # since the last checkpoint asked for
        self.busy_timeout = busy_timeout
        self.quick_wait = quick_wait
        self._conn: aiosqlite.Connection | None = None
        # WAL lets these read while another connection writes, so a read never waits for
        # the write lock (None for ":memory:", which a second connection cannot share).
        self._reader: aiosqlite.Connection | None = None
        self._quick: aiosqlite.Connection | None = None  # execute_quick, short busy timeout
        # fetch_many_after (a search that saves its query): its scans queue on a thread of
        # their own, not before the quick writes that fall back to `_quick`'s thread.
        self._scans: aiosqlite.Connection | None = None
        # fetchone_point and execute_quick, on the event loop
        self._inline: sqlite3.Connection | None = None
        self._wal_sync: WalSync | None = None  # step_synchronous FULL: their writes synced
        self._quick_lock = asyncio.Lock()  # one quick write in flight: the others give up
        # One connection serves every coroutine; the lock keeps their transactions apart.
        # (busy_timeout: another process, e.g. a bulk import, may hold the write lock a while.)
        self._lock = asyncio.Lock()

    async def connect(self, migrate_to: int | None = None) -> Self:
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
            self._scans = await self._second(self.quick_wait)
            self._inline = self._inline_connection()
            if self.step_synchronous == "FULL":
                self._wal_sync = WalSync(self.path, self.trips.synced)
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
        if self._wal_sync is not None:
            await self._wal_sync.close()
            self._wal_sync = None
        if self._inline is not None:
            self._inline.close()
        for conn in (self._reader, self._quick, self._scans, self._conn):
            if conn is not None:
                await conn.close()
        self._conn = self._reader = self._quick = self._scans = self._inline = None

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
            script = migration_script(path, self.dialect)
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
            await self._statement(f"PRAGMA busy_timeout={round(left * 1000)}")
            try:
                yield
            finally:
                await self._statement(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")
        finally:
            self._lock.release()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        self._not_reentrant()
        self._written()
        async with self._write_turn():
            self._owner = asyncio.current_task()
            try:
                await self._statement("BEGIN IMMEDIATE")
                try:
                    yield Tx(self.conn, self.trips)
                except BaseException:
                    await self._statement("ROLLBACK")
                    raise
                else:
                    await self._statement("COMMIT")
            finally:
                self._owner = None

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._not_reentrant()
        if (served := self._served(sql, params)) is not None:
            return next(iter(served), None)
        if self._reader is not None:  # one call on the reader is atomic: no lock needed
            return await Tx(self._reader, self.trips).fetchone(sql, params)
        async with self._lock:
            return await Tx(self.conn, self.trips).fetchone(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._not_reentrant()
        if (served := self._served(sql, params)) is not None:
            return served
        if self._reader is not None:
            return await Tx(self._reader, self.trips).fetchall(sql, params)
        async with self._lock:
            return await Tx(self.conn, self.trips).fetchall(sql, params)

    async def fetch_many(self, reads: Sequence[Read]) -> list[list[Row]]:
        """All of them in one hop to the reader's thread (each read of a Tx is a hop)."""
        self._not_reentrant()
        return await self._many_served(reads, self._fetch_many_threaded)

    async def fetch_into(self, reads: Sequence[Read], into: Sequence[Into]) -> list[Any]:
        """In one hop to the reader's thread, as fetch_many: the Intos run there."""
        self._not_reentrant()
        return await self._into_served(reads, into, self._fetch_many_threaded)

    async def _fetch_many_threaded(self, reads: Sequence[Read],
                                   into: Sequence[Into] | None = None) -> list[Any]:
        if not reads:
            return []
        if self._reader is not None:
            return await self._fetch_many(self._reader, reads, into)
        async with self._lock:
            return await self._fetch_many(self.conn, reads, into)

    async def _fetch_many(self, conn: aiosqlite.Connection, reads: Sequence[Read],
                          into: Sequence[Into] | None = None) -> list[Any]:
        self.trips.trips += 1
        rows: list[Any] = await conn._execute(_fetch_many_sync, conn._conn, reads, into)
        return rows

    async def fetchone_point(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """On the event loop, without the hop to aiosqlite's thread (~0.2 ms of CPU and two
        loop turns, more than the read itself: an indexed read of a WAL database takes
        microseconds and never waits for a writer). Should SQLite still answer busy (a
        reader can meet a WAL reset), the read is done the usual way, off the loop."""
        self._not_reentrant()
        if self._inline is None:
            return await self.fetchone(sql, params)
        if (served := self._served(sql, params)) is not None:
            return next(iter(served), None)
        try:
            row = self._inline.execute(sql, params).fetchone()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            return await self.fetchone(sql, params)
        self.trips.inline += 1
        return row  # type: ignore[no-any-return]

    async def fetch_many_point(self, reads: Sequence[Read]) -> list[list[Row]]:
        """On the event loop, without the hop to the reader's thread (see fetchone_point)."""
        self._not_reentrant()
        return await self._many_served(reads, self._fetch_many_inline)

    async def _fetch_many_inline(self, reads: Sequence[Read]) -> list[list[Row]]:
        if self._inline is None or not reads:
            return await self._fetch_many_threaded(reads)
        try:
            rows = _fetch_many_sync(self._inline, reads)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            return await self._fetch_many_threaded(reads)
        self.trips.inline += 1
        return rows

    async def fetch_many_after(self, write: Read, reads: Sequence[Read]) -> list[list[Row]]:
        """One hop to a connection of its own: the write in its own autocommit transaction,
        waiting for the write lock at most `quick_wait` as a form step's write does (then
        DatabaseBusy), then the reads on the same connection outside any transaction. Not on
        the event loop (a search scans, and would stall every chat), nor inside a transaction
        of the write connection (it would hold the write lock, and this process's other
        writes, for the whole scan), nor on `_quick` (a form step's write that falls back
        there, or a checkpoint, would queue behind the scan: 0.5 s stalls, bench_search_step)."""
        self._not_reentrant()
        if self._scans is None:
            return await super().fetch_many_after(write, reads)
        self._written()
        self.trips.trips += 1
        conn = self._scans
        try:
            rows: list[list[Row]] = await conn._execute(_write_then_fetch_sync, conn._conn,
                                                        write, reads)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise DatabaseBusy(str(exc)) from exc
            raise
        return rows

    async def fetch_point_with(self, sql: str, params: Sequence[Any],
                               more: Sequence[Read]) -> tuple[Row | None, list[list[Row]]]:
        """On the event loop, as fetchone_point (the same inline connection: the same rows)."""
        if not more:
            return await self.fetchone_point(sql, params), []
        self._not_reentrant()
        first, *rest = await self._fetch_many_inline([(sql, tuple(params)), *more])
        return next(iter(first), None), rest

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """A single statement in its own (autocommit) transaction."""
        self._not_reentrant()
        self._written()
        async with self._write_turn():
            return await Tx(self.conn, self.trips).execute(sql, params)

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """With the step's bookkeeping (write_along) after it, in the same hop."""
        self._not_reentrant()
        self._written()
        with self._carrying(_plain_write(sql)) as along:
            async with self._write_turn():
                self.trips.trips += 1
                conn = self.conn
                rows: list[Row]
                rows, failed = await conn._execute(_returning_sync, conn._conn,
                                                   (sql, tuple(params)), along)
        self._along_failed(failed)
        return rows

    async def _play_batch(self, batch: Batch) -> Played:
        """A chat step's short batch on the event loop (`_play_inline`); else the whole
        transaction in one hop to the write connection's thread (each statement of a Tx is
        a hop of its own). aiosqlite has no public call for running a function in its thread;
        `_execute` is the queue every one of its calls goes through."""
        self._not_reentrant()
        self._written()
        if (played := self._play_inline(batch)) is not None:
            await self._synced_inline()
            return played
        async with self._write_turn():
            self.trips.trips += 1
            conn = self.conn
            ids: Played = await conn._execute(play_sync, conn._conn, batch)
            return ids

    def _play_inline(self, batch: Batch) -> Played | None:
        """A chat step's short batch (INLINE_BATCH_ROWS) in one transaction on the inline
        connection, as `_write_inline` writes a form step (issue #12: the hop to aiosqlite's
        thread cost a save ~0.1-0.2 ms of CPU and two loop turns). None, nothing written,
        when it is not for here: a long batch, one outside a step, a transaction queued or
        running on the write connection (the batch must not overtake it), the write lock
        taken (busy: it waits off the loop as before), or a save that would be less durable
        than the write connection's (step_synchronous NORMAL under synchronous FULL)."""
        if (self._inline is None or not _IN_STEP.get() or self._lock.locked()
                or self._quick_lock.locked()
                or (self._wal_sync is None and self.synchronous == "FULL")
                or sum(len(st.rows) for st in batch.statements) + len(batch.reads)
                > INLINE_BATCH_ROWS):
            return None
        try:
            played = play_sync(self._inline, batch)
        except sqlite3.OperationalError as exc:
            if self._inline.in_transaction:  # failed at COMMIT: never left open on the loop
                self._inline.execute("ROLLBACK")
            if is_busy(exc):  # nothing written: off the loop, waiting, as before
                return None
            raise
        self._wrote_inline()
        return played

    async def execute_quick(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """A single statement in its own transaction that waits at most `quick_wait` seconds
        (for another quick write, then for the write lock) and raises DatabaseBusy after."""
        self._not_reentrant()
        self._written()
        if self._quick is None:
            return await self.execute(sql, params)
        if not self._quick_lock.locked():  # none queued to overtake
            with self._carrying(_plain_write(sql)) as along:
                written, rowid = self._write_inline(sql, params, along)
            if not written:
                self._along_failed(along)
            else:
                await self._synced_inline()
                return rowid
        return await self._execute_threaded(sql, params)

    async def _execute_threaded(self, sql: str, params: Sequence[Any]) -> int | None:
        """execute_quick on its own connection, off the loop."""
        if self._quick is None:
            return await self.execute(sql, params)
        try:
            async with asyncio.timeout(self.quick_wait):
                await self._quick_lock.acquire()
        except TimeoutError:
            raise DatabaseBusy("another write is still waiting for the lock") from None
        try:
            return await Tx(self._quick, self.trips).execute(sql, params)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise DatabaseBusy(str(exc)) from exc
            raise
        finally:
            self._quick_lock.release()

    def _write_inline(self, sql: str, params: Sequence[Any],
                      along: Sequence[Along] = ()) -> tuple[bool, int | None]:
        """A form step's write (a draft, bookkeeping) on the event loop: a one-row upsert of
        a WAL database takes microseconds, less than the hop to aiosqlite's thread (~0.1 ms
        of CPU and two loop turns, issue #12). Never waits: when the write lock is taken (a
        save in progress, an import) it is not written here (False) and execute_quick waits
        off the loop as before. Committed with synchronous NORMAL (a sync here would stall
        every chat: ~0.14 ms quiet, p99 ~8 ms and up to 45 ms under load); with
        step_synchronous FULL execute_quick then awaits the WAL's shared sync off the loop
        (bot.storage.walsync), so the step is as durable as with FULL. `along`: the step's
        bookkeeping, each statement its own commit after it (one failing is written behind)."""
        assert self._inline is not None
        try:
            cur = self._inline.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                return False, None
            raise
        rowid = cur.lastrowid
        for n, (more, more_params, _) in enumerate(along):
            try:
                self._inline.execute(more, more_params)
            except sqlite3.Error:
                self._along_failed(along[n:n + 1])
        self._wrote_inline()
        return True, rowid

    async def _synced_inline(self) -> None:
        """A write committed on the event loop (synchronous NORMAL there), made durable
        before the step goes on when steps are FULL: the WAL's shared sync, off the loop."""
        if self._wal_sync is not None:
            await self._wal_sync.synced(alone=self._alone())

    def _wrote_inline(self) -> None:
        """A write committed on the event loop: counted, and a checkpoint asked for (off
        the loop) every CHECKPOINT_EVERY of them."""
        self.trips.inline += 1
        self._inline_writes += 1
        if self._inline_writes >= CHECKPOINT_EVERY:
            self._inline_writes = 0
            self._checkpoint_behind()

    def _checkpoint_behind(self) -> None:
        """The WAL copied back into the database off the loop (the inline connection never
        checkpoints itself: that would sync the file on the loop)."""
        self.write_behind("PRAGMA wal_checkpoint(PASSIVE)", (), "checkpoint", threaded=True)

    async def _statement(self, sql: str) -> None:
        """BEGIN, COMMIT, a pragma: a trip like any statement."""
        self.trips.trips += 1
        await self.conn.execute(sql)

    def _inline_connection(self) -> sqlite3.Connection:
        """The connection of fetchone_point and _write_inline, in the event loop's thread:
        never waiting (busy_timeout 0: a busy answer goes to the threaded connections),
        never syncing per commit nor checkpointing (either would block the loop on disk)."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for pragma in ("PRAGMA busy_timeout=0", "PRAGMA foreign_keys=ON",
                       "PRAGMA synchronous=NORMAL", "PRAGMA wal_autocheckpoint=0"):
            conn.execute(pragma)
        return conn

    async def _second(self, wait: float, *pragmas: str) -> aiosqlite.Connection:
        """Another connection to the file, with the write connection's durability."""
        sync = (await self.conn.execute_fetchall("PRAGMA synchronous"))[0][0]  # type: ignore[index]
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        for pragma in (f"PRAGMA synchronous={sync}", "PRAGMA foreign_keys=ON",
                       f"PRAGMA busy_timeout={round(wait * 1000)}", *pragmas):
            await conn.execute(pragma)
        return conn
