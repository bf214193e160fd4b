"""PostgreSQL through asyncpg (TAIQU_DATABASE_URL): the SQLite Database's interface on a
connection pool, so several instances can share one store.

Callers keep SQLite's SQL: `?` placeholders (translated here), ISO-8601 text timestamps (TEXT
columns on both, so comparisons and code are the same), 0/1 integers for flags, the new id
from execute() after an INSERT and rows readable by name and by index (asyncpg's Record).
The few SQLite functions the code calls (group_concat, julianday, json_extract, datetime,
printf) exist on PostgreSQL as SQL functions (migration 0020's PostgreSQL form)."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, Self

import asyncpg

from bot.storage.batch import (
    JSON_ROWS,
    PG_REFUSED,
    SQL_TOKENS,
    Batch,
    Played,
    Unchanged,
    pg_one_statement,
    play,
    refusal,
)
from bot.storage.db import (
    Along,
    Backend,
    DatabaseBusy,
    Into,
    Read,
    Row,
    Trips,
    _plain_write,
    iso,
    migration_script,
    migrations,
)

# pg_advisory_lock key held while migrating: instances starting together migrate one by one.
MIGRATION_LOCK = 0x7461_6971_7500  # "taiqu" in ASCII, as a bigint
# Ids a table gave out that stay used after their row is gone (0015_risky_actions.sql).
IDS_ALSO_IN = {"worklogs": "worklog_tombstones"}
VERSIONS = "schema_migrations"  # one row per applied migration (SQLite: PRAGMA user_version)

_INSERT_TABLE = re.compile(r"^\s*INSERT\s+INTO\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_STATUS_COUNT = re.compile(r"(\d+)$")


@functools.lru_cache(maxsize=2048)
def pg_sql(sql: str) -> str:
    """SQLite's `?` placeholders as PostgreSQL's `$1, $2, ...`, once per statement text.
    By hand: asyncpg takes only `$n`, and no maintained library translates just that."""
    number = 0

    def numbered(match: re.Match[str]) -> str:
        nonlocal number
        if match.group() != "?":
            return match.group()
        number += 1
        return f"${number}"

    return SQL_TOKENS.sub(numbered, sql)


@functools.lru_cache(maxsize=2048)
def _insert_table(sql: str) -> str | None:
    """The table an INSERT without its own RETURNING writes to (None for other statements)."""
    m = _INSERT_TABLE.match(sql)
    return m.group(1).lower() if m and not _RETURNING.search(sql) else None


def _status_count(status: str) -> int:
    """Rows a command touched, from its status ("UPDATE 3", "INSERT 0 1")."""
    m = _STATUS_COUNT.search(status or "")
    return int(m.group(1)) if m else 0


def _sqlite_number(text: str) -> int | float:
    """numeric as SQLite gives it: SUM of integers is an integer (PostgreSQL: a Decimal,
    which callers formatting counts or doing float arithmetic do not expect)."""
    return float(text) if any(c in text for c in ".eEN") else int(text)


def _many_sql(reads: Sequence[Read], write: Read | None = None) -> tuple[str, ...]:
    """One SELECT of each read's rows as a JSON column; `write` beside it, a data-modifying
    CTE (run once and to completion, whether or not the SELECT looks at it)."""
    columns = ", ".join(JSON_ROWS.format(sql) for sql, _ in reads)
    written, first = (f"WITH written AS ({write[0]}) ", tuple(write[1])) if write else ("", ())
    return (pg_sql(f"{written}SELECT {columns}"), *first,
            *(p for _, params in reads for p in params))


def json_rows(text: str) -> list[Row]:
    """A JSON_ROWS column's rows."""
    return list(json_each(text))


def json_each(text: str) -> Iterator[Row]:
    """A JSON_ROWS column's rows, each made as it is asked for (Into)."""
    return (JsonRow(r) for r in json.loads(text, object_pairs_hook=list))


def _said(batch: Batch, detail: str | None) -> None:
    """The refused reads a batch's one statement carried out in its failure's DETAIL (a
    JSON array of each read's JSON_ROWS: bot.storage.batch._refused_reads)."""
    if not batch.refused_reads or not detail:
        return
    for read, rows in zip(batch.refused_reads, json.loads(detail, object_pairs_hook=list),
                          strict=True):
        read.value = [JsonRow(r) for r in rows]


class JsonRow(tuple[Any, ...]):
    """A row read back from JSON, readable by index and by name as asyncpg's Record is.
    A float column holding a whole number comes back as an int (JSON keeps no type):
    records convert by their annotations (bot.records.runtime.from_row)."""

    _keys: list[str]
    _names: dict[str, int]

    def __new__(cls, pairs: list[tuple[str, Any]]) -> JsonRow:
        row = super().__new__(cls, (v for _, v in pairs))
        row._keys = [name for name, _ in pairs]
        row._names = {}
        for n, name in enumerate(row._keys):
            row._names.setdefault(name, n)  # the first of a repeated name, as asyncpg's Record
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        return super().__getitem__(self._names[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._keys)


class CountedConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that counts its requests to the server in the store's Trips
    (every query with arguments goes through _execute / _executemany; BEGIN, COMMIT and
    other argument-less statements through execute)."""

    __slots__ = ("trips",)

    async def _execute(self, *args: Any, **kwargs: Any) -> Any:
        self.trips.trips += 1
        return await super()._execute(*args, **kwargs)

    async def _executemany(self, *args: Any, **kwargs: Any) -> Any:
        self.trips.trips += 1
        return await super()._executemany(*args, **kwargs)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        if not args:  # with arguments it goes through _execute, counted there
            self.trips.trips += 1
        return await super().execute(query, *args, timeout=timeout)  # type: ignore[no-any-return]


async def _init_connection(conn: asyncpg.Connection, trips: Trips) -> None:
    conn.trips = trips
    await conn.set_type_codec("numeric", schema="pg_catalog", encoder=str,
                              decoder=_sqlite_number, format="text")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection going back to the pool needs beyond asyncpg's own rollback of an
    open transaction: nothing. asyncpg's default reset (RESET ALL, UNLISTEN, advisory
    unlock ...) is one more round trip on every read and write, and the store leaves no
    session state behind: no SET, no LISTEN, no cursor outside a transaction, and the one
    advisory lock (migrate) is released in its own finally."""


def with_along(sql: str, params: Sequence[Any],
               along: Sequence[Along]) -> tuple[str, Sequence[Any]]:
    """A plain write with `along` (Backend.write_along) as data-modifying CTEs before it."""
    if not along:
        return sql, params
    ctes = ", ".join(f"along_{n} AS ({more})" for n, (more, _, _) in enumerate(along))
    return f"WITH {ctes} {sql}", (*(p for _, more_params, _ in along for p in more_params),
                                  *params)


class PgTx:
    """Statements inside one transaction on one pooled connection."""

    def __init__(self, conn: asyncpg.Connection, id_tables: frozenset[str]) -> None:
        self.conn = conn
        self._id_tables = id_tables
        self.rowcount = 0  # rows the last execute inserted, changed or deleted

    async def execute(self, sql: str, params: Sequence[Any] = (),
                      along: Sequence[Along] = ()) -> int | None:
        """Runs one statement; the new row's id after an INSERT into a table with an id
        (SQLite's lastrowid), read with RETURNING. `along`: plain writes run with it, each a
        data-modifying CTE before it (their status is not its)."""
        table = _insert_table(sql)
        sql, params = with_along(sql, params, along)
        if table in self._id_tables:
            rows = await self.conn.fetch(pg_sql(sql.rstrip().rstrip(";")) + " RETURNING id",
                                         *params)
            self.rowcount = len(rows)
            return int(rows[-1][0]) if rows else None
        self.rowcount = _status_count(await self.conn.execute(pg_sql(sql), *params))
        return None

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.conn.executemany(pg_sql(sql), list(rows))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self.conn.fetchrow(pg_sql(sql), *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.conn.fetch(pg_sql(sql), *params))


class PgDatabase(Backend):
    """PostgreSQL. An instance's transactions take turns, as on SQLite's one write
    connection, so code written for SQLite stays correct; reads and single statements run
    side by side on the pool. Instances among themselves rely on PostgreSQL's locks."""

    dialect = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    for_update = " FOR UPDATE"
    json_rows = "coalesce(json_agg(json_build_array({}))::text, '[]')"

    def __init__(self, url: str, *, busy_timeout: float = 30.0, quick_wait: float = 2.0,
                 pool_size: int = 10) -> None:
        super().__init__()
        self.url = url
        self.busy_timeout = busy_timeout
        self.quick_wait = quick_wait
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._quick_lock = asyncio.Lock()  # quick writes in call order (write_behind's promise)
        self._id_tables: frozenset[str] = frozenset()

    async def connect(self, migrate_to: int | None = None) -> Self:
        self._pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=self.pool_size, connection_class=CountedConnection,
            init=functools.partial(_init_connection, trips=self.trips), reset=_keep_session)
        try:
            await self.migrate(migrate_to)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        await self.settle()
        if self._pool is not None:
            await self._pool.close()
        self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not connected")
        return self._pool

    async def schema_version(self) -> int:
        async with self.pool.acquire() as conn:
            return await _version(conn)

    async def migrate(self, target: int | None = None) -> int:
        """Apply every migration newer than the recorded version (up to `target`), each in
        its own transaction, under an advisory lock: a second instance starting at the same
        time waits, then finds the work done."""
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
            try:
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSIONS} ("
                                   "version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)")
                current = await _version(conn)
                for number, path in migrations():
                    if number <= current or (target is not None and number > target):
                        continue
                    async with conn.transaction():
                        await conn.execute(migration_script(path, self.dialect))
                        await conn.execute(f"INSERT INTO {VERSIONS}(version, applied_at) "
                                           "VALUES ($1, $2)", number, iso(datetime.now(UTC)))
                    current = number
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
            self._id_tables = frozenset(r[0] for r in await conn.fetch(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND column_name = 'id'"))
        return current

    async def restart_identities(self) -> None:
        """Every id column continues after its table's highest id (rows were written with
        their ids given, e.g. by `db copy`, which leaves the sequences where they were),
        and after the ids it gave out that live on elsewhere (a withdrawn log's number)."""
        async with self.tx() as tx:
            for table, column in await tx.fetchall(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND is_identity = 'YES'"):
                ids = f"SELECT {column} AS id FROM {table}"
                if table in IDS_ALSO_IN:
                    ids += f" UNION ALL SELECT id FROM {IDS_ALSO_IN[table]}"
                await tx.fetchone(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                    f"coalesce((SELECT max(id) FROM ({ids}) AS ids), 0) + 1, false)")

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """This instance's transactions one at a time, waited for at most busy_timeout."""
        try:
            async with asyncio.timeout(self.busy_timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise DatabaseBusy("the writes before this one still wait") from None
        try:
            yield
        finally:
            self._lock.release()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[PgTx]:
        self._not_reentrant()
        self._written()
        async with self._turn():
            self._owner = asyncio.current_task()
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    yield PgTx(conn, self._id_tables)
            finally:
                self._owner = None

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._not_reentrant()
        if (served := self._served(sql, params)) is not None:
            return next(iter(served), None)
        return await self.pool.fetchrow(pg_sql(sql), *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._not_reentrant()
        if (served := self._served(sql, params)) is not None:
            return served
        return list(await self.pool.fetch(pg_sql(sql), *params))

    async def fetchone_point(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self.fetchone(sql, params)  # one round trip either way

    async def fetch_many(self, reads: Sequence[Read]) -> list[list[Row]]:
        """One statement: each read's rows as a JSON column (asyncpg sends one statement
        per request, and a read of several results is what JSON aggregates are for)."""
        self._not_reentrant()
        return await self._many_served(reads, self._fetch_many)

    async def fetch_into(self, reads: Sequence[Read], into: Sequence[Into]) -> list[Any]:
        """One statement, as fetch_many: each read's JSON column made into its rows as its
        Into asks for them, one column after the other."""
        self._not_reentrant()
        return await self._into_served(reads, into, self._fetch_many)

    async def _fetch_many(self, reads: Sequence[Read],
                          into: Sequence[Into] | None = None) -> list[Any]:
        made = into or [list] * len(reads)
        if len(reads) <= 1:
            return [m(iter(await self.fetchall(sql, params)))
                    for (sql, params), m in zip(reads, made, strict=True)]
        row = await self.pool.fetchrow(*_many_sql(reads))
        return [m(json_each(row[n])) for n, m in enumerate(made)]

    async def fetch_many_after(self, write: Read, reads: Sequence[Read]) -> list[list[Row]]:
        """One statement: the write a CTE beside fetch_many's SELECT (it commits with it: the
        row it upserts stays locked for the scan, against this person's other searches only)."""
        self._not_reentrant()
        self._written()
        try:
            async with asyncio.timeout(self.busy_timeout), self.pool.acquire() as conn:
                row = await conn.fetchrow(*_many_sql(reads, write))
        except TimeoutError:
            raise DatabaseBusy(f"not written within {self.busy_timeout:g} s") from None
        return [json_rows(row[n]) for n in range(len(reads))]

    async def fetch_point_with(self, sql: str, params: Sequence[Any],
                               more: Sequence[Read]) -> tuple[Row | None, list[list[Row]]]:
        """One statement: the point read's columns as asyncpg gives them (not through JSON,
        which keeps no type: a step's read comes out as without `more`), `more` as JSON
        columns beside them."""
        if not more:
            return await self.fetchone_point(sql, params), []
        self._not_reentrant()
        columns = ", ".join(f"{JSON_ROWS.format(read)} AS prefetch_{n}"
                            for n, (read, _) in enumerate(more))
        row = await self.pool.fetchrow(
            pg_sql(f"SELECT point_q.*, {columns} FROM ({sql}) point_q"),
            *(p for _, read_params in more for p in read_params), *params)
        if row is None:  # no point row to carry them: read apart
            return None, await self._fetch_many(more)
        return row, [json_rows(row[f"prefetch_{n}"]) for n in range(len(more))]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """A single statement in its own transaction."""
        return await self._single(sql, params, self.busy_timeout)

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """In this instance's turn at transactions, as a transaction would be: webhook
        inboxes write one per update, and unbounded they took the pool's connections from
        the form steps' quick writes (which then held forms in memory, unseen by the other
        instances)."""
        self._not_reentrant()
        self._written()
        with self._carrying(_plain_write(sql)) as along:
            async with self._turn(), self.pool.acquire() as conn:
                return await PgTx(conn, self._id_tables).fetchall(
                    *with_along(sql, params, along))

    async def execute_quick(self, sql: str, params: Sequence[Any] = ()) -> int | None:
        """A single statement that waits at most `quick_wait` seconds (for a connection, then
        for row locks) and raises DatabaseBusy after; one at a time, in call order. The
        step's bookkeeping (write_along) comes with it as data-modifying CTEs: one request."""
        with self._carrying(_plain_write(sql)) as along:
            return await self._single(sql, params, self.quick_wait, self._quick_lock, along)

    async def _play_batch(self, batch: Batch) -> Played:
        """One statement (a data-modifying CTE per write, bot.storage.batch) when it can be,
        else statement by statement in one transaction; the latter also when the one
        statement failed (e.g. a form token saved before: `existing` and `if_new` apply)."""
        self._not_reentrant()
        self._written()
        one = pg_one_statement(batch, self._id_tables)
        if one is not None:
            row, refused = None, None
            async with self._turn():
                try:
                    async with asyncio.timeout(self.busy_timeout), \
                            self.pool.acquire() as conn:
                        row = await conn.fetchrow(one[0], *one[1])
                except asyncpg.PostgresError as e:
                    # a guard that refused it says which; else run again below, statement
                    # by statement, where it shows
                    if e.sqlstate == PG_REFUSED:
                        refused = refusal(batch, str(e.args[0]))  # the message
                        if refused is not None:
                            _said(batch, getattr(e, "detail", None))
                except TimeoutError:
                    raise DatabaseBusy(f"not written within {self.busy_timeout:g} s") from None
            if refused is not None:
                raise refused
            if row is not None:
                for k, read in enumerate(batch.reads):
                    read.value = json_rows(row[f"v{k}"]) if read.rows else row[f"v{k}"]
                # an asyncpg Record iterates its values: the names are its keys()
                played = Played({int(k[1:]): int(row[k]) for k in row.keys()  # noqa: SIM118
                                 if k.startswith("r") and row[k] is not None})
                batch.ran = played
                return played
        try:
            async with self.tx() as tx:
                return await play(tx, batch)
        except Unchanged:
            if batch.refused_reads:  # a batch too big or varied for one statement: rare
                for read, rows in zip(batch.refused_reads, await self._fetch_many(
                        [(r.sql, r.params) for r in batch.refused_reads]), strict=True):
                    read.value = rows
            raise

    async def _single(self, sql: str, params: Sequence[Any], wait: float,
                      turn: asyncio.Lock | None = None, along: Sequence[Along] = ()
                      ) -> int | None:
        self._not_reentrant()
        self._written()
        try:
            async with asyncio.timeout(wait), turn or nullcontext(), self.pool.acquire() as conn:
                return await PgTx(conn, self._id_tables).execute(sql, params, along)
        except TimeoutError:
            raise DatabaseBusy(f"not written within {wait:g} s") from None


async def _version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", VERSIONS)
    if not exists:
        return 0
    return int(await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {VERSIONS}"))
