"""A form step on SQLite is as durable as with synchronous=FULL without a sync on the event
loop while other chats are in flight (issue #12, TAIQU_SQLITE_STEP_SYNCHRONOUS=FULL, the
default): the step commits on the loop, then its reply waits for a sync of the WAL in a worker
thread, one sync shared by the steps that committed meanwhile (bot.storage.walsync). A lone
step syncs on the loop: nobody to share with or to stall. NORMAL makes no sync. Real SQLite
files; the sync itself is replaced by one the test holds back or fails."""

from __future__ import annotations

import asyncio
import errno
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import Settings
from bot.services import Services
from bot.storage import walsync
from bot.storage.conversations import PUT
from bot.storage.db import Database
from tests.conftest import Chat, make_user
from tests.tg_harness import L

pytestmark = [pytest.mark.sqlite_only("the sync of SQLite's write-ahead log"),
              pytest.mark.timeout(60)]


class HeldSync:
    """Stands for the disk: counts the syncs of the WAL, holds them until released, or fails
    them; then syncs for real."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.go = threading.Event()
        self.go.set()
        self.fail = False
        self.threads: list[str] = []  # where each sync ran
        self.seen: Callable[[], object] = lambda: None  # what the disk saw at each sync
        self.saw: list[object] = []

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        self.saw.append(self.seen())
        self.started.set()
        self.go.wait(30)
        if self.fail:
            raise OSError(errno.EIO, "Input/output error")
        walsync.os.fsync(fd)

    def hold(self) -> None:
        self.go.clear()
        self.started.clear()


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldSync]:
    held = HeldSync()
    monkeypatch.setattr(walsync, "_sync", held)
    try:
        yield held
    finally:
        held.go.set()  # never leave the worker thread waiting


async def opened(settings: Settings, clock: FakeClock, mode: str) -> Services:
    return await Services.open(
        settings.model_copy(update={"sqlite_step_synchronous": mode}), clock)


@pytest.fixture
async def full(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    assert settings.sqlite_step_synchronous == "FULL"  # the default
    services = await Services.open(settings, clock)
    yield services
    await services.close()


async def until(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")


async def greeted(services: Services) -> Chat:
    """张三, who has said 你好 (his first step's bookkeeping written)."""
    await make_user(services, "张三")
    zhang = Chat(Assistant(services), "test", "张三")
    await zhang.say("你好")
    await services.db.settle()
    return zhang


async def test_a_step_is_answered_only_once_its_write_is_synced(
        full: Services, disk: HeldSync) -> None:
    zhang = await greeted(full)
    disk.hold()
    with full.db.step():  # another chat's step in flight: the sync goes to the thread
        step = asyncio.create_task(zhang.say("记录巡视 3号台区"))
        await asyncio.to_thread(disk.started.wait, 10)
    assert disk.threads[-1].startswith("taiqu-walsync")
    draft = await full.db.fetchone("SELECT form FROM conversations")
    assert draft is not None and draft["form"] == "worklog"  # committed, on the loop
    await asyncio.sleep(0.2)
    assert not step.done()  # ... but not answered before it is on the disk
    disk.go.set()
    out = await asyncio.wait_for(step, 10)
    assert L("form.worklog.time") in "\n".join(r.text for r in out.replies)


def form_on_disk(path: Path) -> Callable[[], object]:
    """The open form as another connection sees it (committed or not), read at the sync."""
    def seen() -> object:
        with sqlite3.connect(path) as conn:
            row = conn.execute("SELECT form FROM conversations").fetchone()
        return row[0] if row else None
    return seen


async def test_a_lone_step_syncs_on_the_loop_after_its_commit(
        full: Services, disk: HeldSync) -> None:
    zhang = await greeted(full)
    disk.threads.clear()
    disk.seen = form_on_disk(full.settings.db_path)
    out = await zhang.say("记录巡视 3号台区")
    assert disk.threads == [threading.main_thread().name]  # no hop: nothing to share
    assert disk.saw == ["worklog"]  # after the commit, before the reply was returned
    assert L("form.worklog.time") in "\n".join(r.text for r in out.replies)


async def test_bookkeeping_written_behind_a_reply_syncs_off_the_loop(
        tmp_path: Path, disk: HeldSync) -> None:
    async with Database(tmp_path / "x.db") as db:
        await db.execute("INSERT INTO teams(name, created_at) VALUES ('t', '')")
        with db.step():  # a lone step: its own write syncs on the loop ...
            db.write_behind("UPDATE teams SET name = 'u'", (), "name")  # ... this one not
            await db.settle()
            await db.execute_quick("UPDATE teams SET name = 'v'")
        assert disk.threads[0].startswith("taiqu-walsync")
        assert disk.threads[1:] == [threading.main_thread().name]


async def test_a_slow_disk_sends_the_syncs_back_to_the_thread(
        full: Services, disk: HeldSync, monkeypatch: pytest.MonkeyPatch) -> None:
    zhang = await greeted(full)
    monkeypatch.setattr(walsync, "INLINE_MOST_S", 0.0)  # every sync on the loop is too slow
    disk.threads.clear()
    for text in ("记录巡视 3号台区", "现在", "2号杆拉线松动"):
        await zhang.say(text)
    assert disk.threads[0] == threading.main_thread().name
    assert disk.threads[1:] and all(t.startswith("taiqu-walsync") for t in disk.threads[1:])


async def test_the_syncs_come_back_to_the_loop_once_the_disk_is_quick_again(
        full: Services, disk: HeldSync, monkeypatch: pytest.MonkeyPatch) -> None:
    zhang = await greeted(full)
    slow = {"left": 1}  # the first sync is slow (the scheduler, an import ...), then quick

    def sync(fd: int) -> None:
        disk(fd)
        if slow["left"]:
            slow["left"] -= 1
            time.sleep(walsync.INLINE_MOST_S * 4)

    monkeypatch.setattr(walsync, "_sync", sync)
    monkeypatch.setattr(walsync, "BACK_AFTER", 3)
    disk.threads.clear()
    await zhang.say("记录巡视 3号台区")  # slow on the loop: the next ones go to the thread
    for text in ("现在", "2号杆拉线松动", "无", "跳过", "跳过"):
        await zhang.say(text)
    main = threading.main_thread().name
    assert disk.threads[0] == main
    assert [t == main for t in disk.threads[1:6]] == [False, False, False, True, True]


async def test_steps_committed_while_a_sync_runs_share_the_next_one(
        tmp_path: Path, disk: HeldSync) -> None:
    async with Database(tmp_path / "x.db") as db:
        await db.execute("INSERT INTO teams(name, created_at) VALUES ('t', '')")
        for i in range(6):
            await db.execute("INSERT INTO users(name, role, team_id, created_at) "
                             "VALUES (?, 'manager', 1, '')", (f"u{i}",))
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a WAL begun anew: synced too
        db.trips.reset()

        def put(user: int) -> asyncio.Task[int | None]:
            return asyncio.create_task(db.execute_quick(
                PUT, (user, "worklog", f"t{user}", "{}", "2026-12-01T00:00:00+00:00",
                      "2026-12-01T00:00:00+00:00")))

        disk.hold()
        first = put(1)
        await asyncio.to_thread(disk.started.wait, 10)
        rest = [put(u) for u in range(2, 7)]  # commit while the first sync runs
        await until(lambda: db.trips.inline == 6)
        await asyncio.sleep(0.1)
        assert not any(t.done() for t in (first, *rest))
        disk.go.set()
        await asyncio.wait_for(asyncio.gather(first, *rest), 10)
        assert (disk.calls, db.trips.fsyncs, db.trips.trips) == (2, 2, 0)


async def test_a_failed_sync_fails_the_step_and_says_so(full: Services, disk: HeldSync) -> None:
    zhang = await greeted(full)
    disk.fail = True
    out = await zhang.say("记录巡视 3号台区")
    assert [r.text for r in out.replies] == [L("error.not_durable")]
    disk.fail = False  # the disk is back: the next step goes on as usual
    out = await zhang.say("/help")
    assert L("form.worklog.time") in "\n".join(r.text for r in out.replies)


@pytest.mark.parametrize(("mode", "syncs"), [("NORMAL", False), ("FULL", True)])
async def test_only_full_syncs_the_steps(settings: Settings, clock: FakeClock, disk: HeldSync,
                                         mode: str, syncs: bool) -> None:
    services = await opened(settings, clock, mode)
    try:
        await make_user(services, "张三")
        zhang = Chat(Assistant(services), "test", "张三")
        for text in ("你好", "记录巡视 3号台区", "现在", "2号杆拉线松动"):
            await zhang.say(text)
        await services.db.settle()
        assert (disk.calls > 0, services.db.trips.fsyncs > 0) == (syncs, syncs)
    finally:
        await services.close()


async def test_close_waits_for_a_sync_under_way(tmp_path: Path, disk: HeldSync) -> None:
    db = await Database(tmp_path / "x.db").connect()
    await db.execute("INSERT INTO teams(name, created_at) VALUES ('t', '')")
    disk.hold()
    write = asyncio.create_task(db.execute_quick("UPDATE teams SET name = 'u'"))
    await asyncio.to_thread(disk.started.wait, 10)
    closing = asyncio.create_task(db.close())
    await asyncio.sleep(0.1)
    assert not closing.done()
    disk.go.set()
    await asyncio.wait_for(asyncio.gather(write, closing), 10)
    assert db.trips.fsyncs == 1
