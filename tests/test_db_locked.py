"""Another process (e.g. `customers import` from the CLI) holds the SQLite write lock: other
users still get answers at once, and an answer typed meanwhile is kept, or the reply says
honestly that it was not."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.services import Services
from bot.storage.batch import Batch, Played
from tests.conftest import Chat, make_user

pytestmark = pytest.mark.timeout(60)
PROMPT = 1.0  # seconds: what "answers at once" means here, with room for a loaded machine


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Short waits keep the test fast; the defaults are a few seconds.
    return load_settings(db_path=tmp_path / "taiqu.db", db_write_wait_seconds=0.3,
                         db_busy_timeout_seconds=0.5)


@pytest.fixture
async def services(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    s = await Services.open(settings, clock)
    yield s
    await s.close()


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """A second connection, as another process would have, holding the write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def stored_values(path: Path) -> dict[str, object]:
    """The open form as it is in the file, read by yet another connection."""
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT state FROM conversations WHERE user_id = 1").fetchone()
    return json.loads(row[0])["values"] if row else {}


async def timed(coro: object) -> float:
    start = time.monotonic()
    await asyncio.wait_for(coro, 10)  # type: ignore[arg-type]
    return time.monotonic() - start


async def test_locked_database_stalls_no_one_and_the_answer_is_kept(
        services: Services, settings: Settings) -> None:
    assistant = Assistant(services)
    await make_user(services, "张三")
    await make_user(services, "李四")
    zhang, li = Chat(assistant, "test", "张三"), Chat(assistant, "test", "李四")
    await zhang.say("记录巡视 3号台区 昨天下午3点")
    assert "做了什么" in zhang.text
    with write_lock_held(settings.db_path):
        answer = asyncio.create_task(zhang.say("更换3号表箱门锁"))
        await asyncio.sleep(0.05)  # 张三's write is now waiting for the lock
        assert await timed(li.say("/help")) < PROMPT
        assert "使用帮助" in li.text
        assert await timed(li.say("我的日志")) < PROMPT  # read-only steps too
        await asyncio.wait_for(answer, 10)
        assert "发现了什么问题" in zhang.text  # the answer was taken ...
        assert await timed(zhang.say("拉线需紧固")) < PROMPT  # ... and the next step is quick
        assert "照片" in zhang.text
        assert stored_values(settings.db_path).get("content") is None  # not in the file yet
    # ... and both reach the file once the lock is free.
    for _ in range(100):
        values = stored_values(settings.db_path)
        if values.get("problems"):
            break
        await asyncio.sleep(0.05)
    assert values["content"] == "更换3号表箱门锁" and values["problems"] == "拉线需紧固"


async def test_a_write_that_cannot_wait_says_it_was_not_saved(
        services: Services, settings: Settings) -> None:
    assistant = Assistant(services)
    await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    with write_lock_held(settings.db_path):
        await asyncio.wait_for(zhang.say("/lang en"), 10)
    assert "没有保存" in zhang.text and "没有丢失" not in zhang.text
    user = await services.people.by_identity("test", "张三")
    assert user is not None and user.locale != "en"  # really not saved, as it said


async def test_a_form_saved_as_the_lock_frees_does_not_come_back(
        services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last answer was held in memory; 保存 was pressed as the import ended. The
    background write of the held form and the save then raced: when the save won, the held
    form was written back after it, and the saved form came back as open."""
    assistant = Assistant(services)
    await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    await zhang.say("跳过")
    await zhang.say("跳过")
    db = services.db
    quick = db.execute_quick
    gate, at_gate = asyncio.Event(), asyncio.Event()

    async def held_write(sql: str, params: tuple = ()) -> object:
        if asyncio.current_task() is services.conversations._flusher:  # the background write
            at_gate.set()
            await gate.wait()  # ... has read the held form, and is slower than the save
        return await quick(sql, params)

    monkeypatch.setattr(db, "execute_quick", held_write)
    with write_lock_held(settings.db_path):
        await asyncio.wait_for(zhang.say("跳过"), 10)  # the last answer: held in memory
        assert "请确认工作日志" in zhang.text and services.conversations.held == 1
    await asyncio.wait_for(at_gate.wait(), 10)
    flusher = services.conversations._flusher
    assert flusher is not None
    save = asyncio.create_task(zhang.say("保存"))
    await asyncio.sleep(0.3)
    gate.set()
    await asyncio.wait_for(save, 10)
    assert "已保存工作日志 #1" in zhang.text
    await asyncio.wait_for(flusher, 10)  # the background write is over
    assert await services.conversations.get(1) is None
    assert await db.fetchone("SELECT user_id FROM conversations") is None
    await zhang.say("/logs")
    assert "你正在填写" not in zhang.text


async def test_writes_do_not_queue_behind_each_other_for_the_busy_timeout(
        services: Services, settings: Settings) -> None:
    """Every write waits at most the busy timeout in all (TAIQU_DB_BUSY_TIMEOUT_SECONDS),
    not that long again for each write queued before it on the one connection: four users'
    writes during an import were answered after 0.5, 1.0, 1.5 and 2.0 s (30, 60, 90 and
    120 s with the default 30 s)."""
    assistant = Assistant(services)
    chats = []
    for name in ("张三", "李四", "王五", "赵六"):
        await make_user(services, name)
        chats.append(Chat(assistant, "test", name))
    with write_lock_held(settings.db_path):
        waits = await asyncio.gather(*(timed(c.say("/lang en")) for c in chats))
    assert max(waits) < settings.db_busy_timeout_seconds + 0.7, waits
    assert all("没有保存" in c.text for c in chats)
    await chats[0].say("/lang en")  # the lock is free again: writes work, at full wait
    assert "English" in chats[0].text or "language" in chats[0].text.lower()
    # ... and the write connection waits the whole busy timeout again
    assert list((await services.db.conn.execute_fetchall("PRAGMA busy_timeout"))[0]) == [500]


async def test_a_save_that_committed_is_confirmed_though_the_lock_is_taken_right_after(
        services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry was saved; an import took the write lock right after. The reply said
    "这条消息没有保存，请稍后再发一次" (so the manager typed the log again: a second entry)
    and the saved form stayed open. The entry and the form's close are one transaction now
    (issue #12), and the card is worded without reading anything back."""
    assistant = Assistant(services)
    await make_user(services, "张三")
    zhang = Chat(assistant, "test", "张三")
    await zhang.say("巡视 3号台区 昨天下午3点 更换表箱")
    for _ in range(3):
        await zhang.say("跳过")
    write = services.db.write_batch
    other = sqlite3.connect(settings.db_path, isolation_level=None, check_same_thread=False)

    async def write_then_import_starts(batch: Batch) -> Played:
        ids = await write(batch)
        other.execute("BEGIN IMMEDIATE")  # the import begins: the lock is taken
        return ids

    monkeypatch.setattr(services.db, "write_batch", write_then_import_starts)
    try:
        await asyncio.wait_for(zhang.say("保存"), 10)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "已保存工作日志 #1" in zhang.text and "没有保存" not in zhang.text
    for _ in range(100):  # the closed form reaches the file once the lock is free
        if not services.conversations.held:
            break
        await asyncio.sleep(0.05)
    assert await services.conversations.get(1) is None
    await zhang.say("/logs")
    assert "你正在填写" not in zhang.text
