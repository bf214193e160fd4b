"""`taiqu-bot db copy --to postgresql://...`: a SQLite deployment moved to PostgreSQL whole.

Every table, parents before children (foreign keys), in batches, ids kept (the identity
sequences then continue after the highest). Run twice, nothing is doubled: a row whose key is
already in the target is left as the target has it (a row changed there since the first run
keeps its newer value), rows only in the target stay. A table without any key is copied only
while it is empty in the target. The counts are checked at the end of each table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from graphlib import TopologicalSorter

from bot.storage.db import Database
from bot.storage.pg import PgDatabase


class CopyError(Exception):
    pass


@dataclass(frozen=True)
class TableCopy:
    table: str
    source_rows: int
    copied: int  # new in the target
    target_rows: int  # after the copy


async def copy_database(source: Database, target: PgDatabase, *, batch_rows: int = 1000,
                        progress: Callable[[TableCopy], None] | None = None) -> list[TableCopy]:
    """Copy `source` into `target`; both connected, at the same schema version."""
    version, target_version = await source.schema_version(), await target.schema_version()
    if version != target_version:
        raise CopyError(f"schema versions differ: source {version}, target {target_version} "
                        "(upgrade the SQLite file first: start this taiqu-bot on it once)")
    done = []
    for table in await _tables_parents_first(source):
        copied = await _copy_table(source, target, table, batch_rows)
        counted = await _count(source, table), await _count(target, table)
        if counted[1] < counted[0]:
            raise CopyError(f"{table}: {counted[0]} rows in the source, {counted[1]} in the target")
        result = TableCopy(table, counted[0], copied, counted[1])
        done.append(result)
        if progress is not None:
            progress(result)
    await target.restart_identities()
    return done


async def _tables_parents_first(source: Database) -> list[str]:
    tables = [r[0] for r in await source.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]
    graph: dict[str, set[str]] = {}
    for table in tables:
        parents = {r["table"] for r in await source.fetchall(
            f"SELECT * FROM pragma_foreign_key_list('{table}')")}
        graph[table] = parents - {table}
    return list(TopologicalSorter(graph).static_order())


async def _count(db: Database | PgDatabase, table: str) -> int:
    row = await db.fetchone(f"SELECT count(*) FROM {table}")
    return int(row[0]) if row else 0


async def _has_key(source: Database, table: str) -> bool:
    """A primary key or a unique index: what makes a second copy of a row a conflict."""
    if any(r["pk"] for r in await source.fetchall(f"SELECT pk FROM pragma_table_info('{table}')")):
        return True
    return any(r["unique"] for r in await source.fetchall(
        f"SELECT \"unique\" FROM pragma_index_list('{table}')"))


async def _copy_table(source: Database, target: PgDatabase, table: str, batch_rows: int) -> int:
    keyed = await _has_key(source, table)
    if not keyed and await _count(target, table):
        return 0  # no key to tell a copied row from a new one: copied once, into an empty table
    columns = [r["name"] for r in await source.fetchall(
        f"SELECT name FROM pragma_table_info('{table}') ORDER BY cid")]
    names = ", ".join(columns)
    insert = (f"INSERT INTO {table}({names}) VALUES ({', '.join('?' for _ in columns)})"
              + (" ON CONFLICT DO NOTHING" if keyed else ""))
    before, last = await _count(target, table), 0
    while True:  # keyset pages by rowid: each page is one index range, however far in
        rows = await source.fetchall(
            f"SELECT rowid, {names} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (last, batch_rows))
        if not rows:
            break
        async with target.tx() as tx:
            await tx.executemany(insert, [tuple(r)[1:] for r in rows])
        last = rows[-1][0]
    return await _count(target, table) - before
