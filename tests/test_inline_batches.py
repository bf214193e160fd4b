"""A chat step's short batch (a form's save and its close) runs on the event loop on SQLite,
as a form step's write does, with the same durability: committed, then the WAL synced before
the reply (issue #12: the hop to aiosqlite's thread was the last one of a work log's steps).
Long batches, writes outside a step and a busy write lock stay off the loop as before."""
# ruff: noqa: F811  (the `disk` and `full` fixtures are imported, then named as parameters)

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.services import Services
from bot.storage import db as db_module
from bot.storage import walsync
from bot.storage.batch import Batch
from bot.storage.db import Database
from tests.conftest import make_user
from tests.test_step_fsync import HeldSync, disk, form_on_disk, full, greeted  # noqa: F401  (fixtures)
from tests.tg_harness import L

pytestmark = [pytest.mark.sqlite_only("SQLite's inline connection"), pytest.mark.timeout(60)]

FORM = ("记录巡视 3号台区", "现在", "2号杆拉线松动，已紧固", "跳过", "跳过", "跳过")


def worklogs_on_disk(path: Path) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM worklogs").fetchone()[0]


async def test_a_save_commits_on_the_loop_and_is_synced_before_its_reply(
        full: Services, disk: HeldSync, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walsync, "INLINE_MOST_S", 60.0)  # a busy test machine's slow disk
    zhang = await greeted(full)
    for text in FORM:
        await zhang.say(text)
    await full.db.settle()
    full.db.trips.reset()
    disk.threads.clear()
    disk.saw.clear()
    disk.seen = lambda: (worklogs_on_disk(full.settings.db_path),
                         form_on_disk(full.settings.db_path)())
    await zhang.press("保存")
    assert L("form.worklog.saved").split("{")[0] in zhang.text
    assert full.db.trips.trips == 0  # no hop to aiosqlite's thread
    # one sync, on the loop (a lone step), after the record and the form's close committed
    assert disk.threads == [threading.main_thread().name]
    assert disk.saw == [(1, None)]


def rows_batch(n: int, name: str) -> Batch:
    batch = Batch()
    batch.executemany("INSERT INTO teams(name, created_at) VALUES (?, '')",
                      [(f"{name}{i}",) for i in range(n)])
    return batch


async def test_only_a_short_batch_of_a_step_runs_on_the_loop(
        tmp_path: Path, disk: HeldSync) -> None:
    async with Database(tmp_path / "x.db") as db:
        with db.step():
            await db.write_batch(rows_batch(db_module.INLINE_BATCH_ROWS, "a"))
            assert (db.trips.trips, db.trips.inline) == (0, 1)
            await db.write_batch(rows_batch(db_module.INLINE_BATCH_ROWS + 1, "b"))  # an import's
            assert (db.trips.trips, db.trips.inline) == (1, 1)
        await db.write_batch(rows_batch(1, "c"))  # not a chat step's (a scan's): as before
        assert (db.trips.trips, db.trips.inline) == (2, 1)
        row = await db.fetchone("SELECT count(*) FROM teams")
        assert row is not None and row[0] == 2 * db_module.INLINE_BATCH_ROWS + 2


async def test_a_step_batch_waits_off_the_loop_while_another_process_writes(
        tmp_path: Path, disk: HeldSync) -> None:
    async with Database(tmp_path / "x.db") as db:
        other = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # an import in another process holds the lock
        with db.step():
            saving = asyncio.create_task(db.write_batch(rows_batch(2, "d")))
            await asyncio.sleep(0.2)
            assert not saving.done()  # not refused at once: waiting, in the thread
            other.execute("COMMIT")
            await asyncio.wait_for(saving, 10)
        other.close()
        assert db.trips.trips == 1
        row = await db.fetchone("SELECT count(*) FROM teams")
        assert row is not None and row[0] == 2


async def test_a_step_batch_does_not_overtake_a_transaction_queued_before_it(
        tmp_path: Path, disk: HeldSync, monkeypatch: pytest.MonkeyPatch) -> None:
    async with Database(tmp_path / "x.db") as db:
        gate = asyncio.Event()  # the scan has the write connection's turn, not yet its lock
        statement = db._statement

        async def held(sql: str) -> None:
            if sql == "BEGIN IMMEDIATE":
                await gate.wait()
            await statement(sql)

        monkeypatch.setattr(db, "_statement", held)

        async def scan() -> None:
            async with db.tx() as tx:
                await tx.execute("INSERT INTO teams(name, created_at) VALUES ('scan', '')")

        queued = asyncio.create_task(scan())
        await asyncio.sleep(0.05)
        batch = Batch()
        batch.execute("INSERT INTO teams(name, created_at) VALUES ('step', '')")
        with db.step():
            saving = asyncio.create_task(db.write_batch(batch))
        await asyncio.sleep(0.05)
        assert not saving.done()  # behind the scan, as on the write connection
        gate.set()
        await asyncio.wait_for(asyncio.gather(queued, saving), 10)
        names = [r[0] for r in await db.fetchall("SELECT name FROM teams ORDER BY id")]
        assert names == ["scan", "step"]


async def test_a_failed_statement_leaves_nothing_written_nor_open(
        services: Services) -> None:
    await make_user(services, "张三")
    db = services.db
    batch = Batch()
    batch.execute("INSERT INTO teams(name, created_at) VALUES ('x', '')")
    batch.execute("INSERT INTO no_such_table VALUES (1)")
    with db.step(), pytest.raises(sqlite3.OperationalError):
        await db.write_batch(batch)
    assert await db.fetchone("SELECT id FROM teams WHERE name = 'x'") is None
    ok = Batch()
    ok.execute("INSERT INTO teams(name, created_at) VALUES ('y', '')")
    with db.step():
        await db.write_batch(ok)  # the inline connection was not left in a transaction
    assert await db.fetchone("SELECT id FROM teams WHERE name = 'y'") is not None
