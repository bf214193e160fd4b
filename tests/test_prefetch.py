"""A tapped button's declared reads (Router.button(reads=...)), read with the step's own read
in one round trip and served to its handler by the store (issue #12): each once, to the exact
SELECT and parameters, never after a write of the step; a forged or stale button's data
reads nothing more and is answered as before."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.assistant import Assistant
from bot.channels.telegram import TELEGRAM_CAPS
from bot.events import Outcome
from bot.router import Router, one_id
from bot.services import Ctx, Services
from bot.storage.batch import Batch
from bot.storage.db import Backend, Read, Row
from bot.storage.steps import step_sql
from tests.conftest import Chat, make_user
from tests.tg_harness import L

pytestmark = pytest.mark.both_backends


def name_read(user_id: int) -> Read:
    return "SELECT name FROM users WHERE id = ?", (user_id,)


RENAME = "UPDATE users SET name = ? WHERE id = ?"


async def tx_write(db: Backend, uid: int) -> None:
    async with db.tx() as tx:
        await tx.execute(RENAME, ("李四", uid))


async def batch_write(db: Backend, uid: int) -> None:
    batch = Batch()
    batch.execute(RENAME, ("李四", uid))
    await db.write_batch(batch)


async def returning_write(db: Backend, uid: int) -> None:
    await db.write_returning(RENAME + " RETURNING id", ("李四", uid))


WRITES: dict[str, Callable[[Backend, int], Awaitable[Any]]] = {
    "execute": lambda db, uid: db.execute(RENAME, ("李四", uid)),
    "execute_quick": lambda db, uid: db.execute_quick(RENAME, ("李四", uid)),
    "tx": tx_write, "write_batch": batch_write, "write_returning": returning_write}


async def name_by(db: Backend, how: str, read: Read) -> str:
    if how == "fetchone":
        row = await db.fetchone(*read)
    elif how == "fetchone_point":
        row = await db.fetchone_point(*read)
    elif how == "fetchall":
        row = (await db.fetchall(*read))[0]
    else:
        row = (await getattr(db, how)([read]))[0][0]
    assert row is not None
    return str(row["name"])


def trips(db: Backend) -> int:
    return db.trips.trips + db.trips.inline


async def read_ahead(services: Services) -> tuple[Backend, int, Read, list[list[Row]]]:
    """张三's name read as a step's declared read: the store, his id, the read, its rows."""
    user = await make_user(services, "张三")
    read = name_read(user.id)
    first, rows = await services.db.fetch_point_with(*read, [read])
    assert first is not None and first["name"] == "张三" and rows[0][0]["name"] == "张三"
    return services.db, user.id, read, rows


@pytest.mark.parametrize("how", ["fetchone", "fetchone_point", "fetchall", "fetch_many",
                                 "fetch_many_point"])
async def test_a_prefetched_read_is_served_once_by_every_read(services: Services,
                                                              how: str) -> None:
    db, uid, read, rows = await read_ahead(services)
    await db.execute(RENAME, ("王五", uid))  # behind the step's back: shows what is served
    with db.prefetched([read], rows):
        before = trips(db)
        assert await name_by(db, how, read) == "张三"
        assert trips(db) == before  # served: no round trip
        assert await name_by(db, how, read) == "王五"  # once: then read as usual
        assert trips(db) == before + 1
    with db.prefetched([read], rows):
        # another SELECT (even one that reads the same) is never served
        other = (read[0] + " AND 1 = 1", read[1])
        assert await name_by(db, how, other) == "王五"
    assert await name_by(db, how, read) == "王五"  # nothing served outside the step


@pytest.mark.parametrize("write", sorted(WRITES))
async def test_nothing_prefetched_is_served_after_a_write_of_the_step(services: Services,
                                                                     write: str) -> None:
    db, uid, read, rows = await read_ahead(services)
    with db.prefetched([read], rows):
        await WRITES[write](db, uid)
        assert await name_by(db, "fetchone_point", read) == "李四"


async def test_bookkeeping_written_behind_neither_serves_nor_drops(services: Services) -> None:
    db, uid, read, rows = await read_ahead(services)
    await db.execute(RENAME, ("王五", uid))
    with db.prefetched([read], rows):
        db.write_behind("UPDATE users SET locale = locale WHERE id = ?", (uid,), "test")
        await db.settle()
        assert await name_by(db, "fetchone", read) == "张三"


async def test_the_steps_row_is_the_same_with_reads_beside_it(services: Services) -> None:
    """On PostgreSQL the declared reads come as JSON columns beside the step's row, which
    keeps asyncpg's types (JSON keeps none): a step reads the same with them or without."""
    db = services.db
    user = await make_user(services, "张三")
    params = (None, None, None, "test", "张三")  # the held versions: none
    alone = await db.fetchone_point(step_sql(db.json_rows), params)
    row, (names,) = await db.fetch_point_with(step_sql(db.json_rows), params,
                                              [name_read(user.id)])
    assert alone is not None and row is not None
    keys = list(alone.keys())
    assert [(k, row[k], type(row[k])) for k in keys] == [
        (k, alone[k], type(alone[k])) for k in keys]
    assert [r["name"] for r in names] == ["张三"]


def renaming_router(seen: list[str]) -> Router:
    """A button that declares it reads a name, but renames before it reads it
    (`-|t.rename|USER_ID`)."""
    router = Router("t")

    @router.button("rename", reads=one_id(lambda ctx, uid: [name_read(uid)]))
    async def rename(app: Assistant, ctx: Ctx, draft: object, arg: str) -> Outcome:
        db = ctx.services.db
        await db.execute(RENAME, ("李四", int(arg)))
        after = await db.fetchone_point(*name_read(int(arg)))
        assert after is not None
        seen.append(after["name"])
        return Outcome().add("ok")

    return router


async def test_a_step_reads_its_own_write_after_a_prefetched_read(services: Services) -> None:
    user = await make_user(services, "张三")
    seen: list[str] = []
    core = Assistant(services, renaming_router(seen))
    zhang = Chat(core, "test", "张三")
    await zhang.say("你好")  # who this chat is: the person the button's reads are for
    db = services.db
    db.trips.reset()
    await zhang.tap(f"-|t.rename|{user.id}")
    await db.settle()
    assert seen == ["李四"]
    assert (db.trips.trips + db.trips.inline) == 3  # the step's read (and the name), two more


async def hazard_of_another_team(services: Services, assistant: Assistant) -> None:
    await make_user(services, "赵六", team="城西供电所", areas=("7号台区",))
    other = Chat(assistant, "test", "赵六")
    await other.say("登记隐患 7号台区 2号杆拉线松动 严重")
    await other.press("跳过")
    await other.press("跳过")
    await other.press("保存")
    assert "#1" in other.text


@pytest.mark.parametrize("data", ["-|hazards.hz|1", "-|hazards.hzs|1", "-|hazards.hzh|1",
                                  "-|hazards.hz|1x", "-|hazards.hz|", "-|hazards.hzs|1:2",
                                  "-|customers.reveal|1", "-|outages.outp|1:1",
                                  "-|hz|1", "-|worklog.logedit|99"])
async def test_a_forged_or_stale_button_is_answered_as_before(
        services: Services, assistant: Assistant, data: str) -> None:
    """Another team's record, or data that is not a record's id: the reply is the one the
    same button gets without declared reads (nothing more is read for what is not ids)."""
    await hazard_of_another_team(services, assistant)
    await make_user(services, "张三")
    plain = Assistant(services)
    plain.register_channel("test", TELEGRAM_CAPS)
    plain.router.button_reads.clear()  # the same features, declaring nothing
    replies = []
    for core in (assistant, plain):
        zhang = Chat(core, "test", "张三")
        await zhang.say("你好")
        out = await zhang.tap(data)
        replies.append((out.toast, zhang.text))
    assert replies[0] == replies[1]
    if data.endswith("|1") and "hazards" in data:
        assert L("hazard.not_found") in replies[0][1]
