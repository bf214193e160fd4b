"""A customer search saves its query (what its ◀️ ▶️ page through) in the round trip of its
reads (Backend.fetch_many_after), and ▶️ has it from the step's read (issue #12: a step
makes at most 2 round trips). On SQLite the reads, which may scan a province team's
100,000 customers, run off the event loop and hold no write lock meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from bot.features.customers.handlers import page
from bot.services import Ctx, Services
from bot.storage.customers import Customers
from bot.storage.db import Database
from tests.conftest import Chat, make_user
from tests.test_round_trips import counted
from tests.test_todo_lists import add_customer

pytestmark = pytest.mark.both_backends


async def test_the_write_and_the_reads_are_one_round_trip(services: Services) -> None:
    user = await make_user(services, "张三")
    saved = Customers.search_saved(user, "李四", services.clock.now())
    rows, trips = await counted(services, lambda: services.db.fetch_many_after(saved, [
        ("SELECT count(*) FROM users WHERE name = ?", ("张三",)),
        ("SELECT name FROM users ORDER BY id", ())]))
    assert trips == 1
    assert [r[0] for r in rows[0]] == [1] and [r[0] for r in rows[1]] == ["张三"]
    assert await services.customers.last_search(user) == "李四"
    again = Customers.search_saved(user, "王五", services.clock.now())  # the upsert's update
    await services.db.fetch_many_after(again, [("SELECT 1", ())])
    assert await services.customers.last_search(user) == "王五"


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_on_sqlite_the_reads_run_off_the_loop_with_the_write_committed_and_no_lock(
        services: Services) -> None:
    """While the search reads, another connection can take the write lock (a chat's save, an
    import's batch) and already sees the saved query: the reads are not in its transaction."""
    user = await make_user(services, "张三")
    db = services.db
    assert isinstance(db, Database)
    loop_thread = threading.current_thread()
    seen: list[tuple[bool, str | None, bool]] = []

    def probe() -> int:
        other = sqlite3.connect(db.path, isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the lock is held
            other.execute("ROLLBACK")
            free = True
        except sqlite3.OperationalError:
            free = False
        row = other.execute("SELECT query FROM searches WHERE user_id = ?",
                            (user.id,)).fetchone()
        other.close()
        seen.append((free, row[0] if row else None,
                     threading.current_thread() is not loop_thread))
        return 1

    for conn in (db._scans, db._quick, db._reader):  # whichever runs the reads
        if conn is not None:
            await conn.create_function("probe", 0, probe)
    saved = Customers.search_saved(user, "李四", services.clock.now())
    rows = await db.fetch_many_after(saved, [("SELECT probe()", ())])
    assert rows[0][0][0] == 1
    assert seen == [(True, "李四", True)]


async def test_paging_without_the_steps_read_reads_the_search(
        services: Services, zhang: Chat) -> None:
    """▶️ takes the query from the step's read; a Ctx made elsewhere (None) reads it."""
    user = await services.people.by_identity("test", "张三")
    assert user is not None
    for n in range(10):
        await add_customer(services, user, f"客户{n}", f"55000200{n:02}", (), None)
    await zhang.say("查客户 客户")
    assert "第 1–8 户" in zhang.text
    out = await page(Ctx(services, user, services.clock.now()), 8)
    assert "第 9–10 户" in out.replies[0].text
    await zhang.press("下一页")
    assert "第 9–10 户" in zhang.text


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_on_sqlite_a_form_steps_write_does_not_queue_behind_a_search(
        services: Services) -> None:
    """A form step's write that cannot go inline waits in the quick connection's thread (as
    does a checkpoint): a search scanning meanwhile must not be ahead of it there."""
    user = await make_user(services, "张三")
    db = services.db
    assert isinstance(db, Database)
    scanning, go_on = threading.Event(), threading.Event()

    def slow() -> int:  # a long scan, held until the write is done
        scanning.set()
        go_on.wait(10)
        return 1

    for conn in (db._scans, db._quick, db._reader):
        if conn is not None:
            await conn.create_function("slow", 0, slow)
    saved = Customers.search_saved(user, "李四", services.clock.now())
    search = asyncio.create_task(db.fetch_many_after(saved, [("SELECT slow()", ())]))
    try:
        while not scanning.is_set():
            await asyncio.sleep(0.01)
        async with asyncio.timeout(5):  # the fallback of Database.execute_quick
            await db._execute_threaded("UPDATE users SET name = name WHERE id = ?", (user.id,))
    finally:
        go_on.set()
        await search
