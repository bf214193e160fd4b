"""An arrears list import never holds the database for long (issue #12's rule): staging and
applying write in short transactions, so another connection (a chat step) writes between
them; an apply stopped half-way is finished by applying again, nothing doubled."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import arrears_io
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.models import Role
from bot.services import Services
from tests.arrears_files import gbk_csv
from tests.conftest import make_user

TEAM = "城东供电所"
BATCH = 50
ROWS = 300


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(db_path=tmp_path / "taiqu.db", import_batch_rows=BATCH)


def _list(rows: int = ROWS) -> bytes:
    return gbk_csv([(f"32011{i:05d}", f"户{i}", "3号台区", f"{100 + i}", "202610", "否")
                    for i in range(rows)])


async def _count(services: Services, sql: str) -> int:
    row = await services.db.fetchone(sql)
    assert row is not None
    return int(row[0])


class _ChatWriter(threading.Thread):
    """Another connection writing over and over, as the bot's form steps do; records how many
    arrears rows it sees inside each of its own write transactions."""

    def __init__(self, db_path: Path, user_id: int) -> None:
        super().__init__(daemon=True)
        self.db_path, self.user_id = db_path, user_id
        self.seen: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            while not self.stop.is_set():
                con.execute("BEGIN IMMEDIATE")
                self.seen.append(con.execute("SELECT count(*) FROM arrears").fetchone()[0])
                con.execute("INSERT OR REPLACE INTO searches(user_id, query, at) "
                            "VALUES (?, '王', '2026-01-01T00:00:00+00:00')", (self.user_id,))
                con.execute("COMMIT")
                self.stop.wait(0.001)
        finally:
            con.close()


@pytest.mark.sqlite_only("a second sqlite3 connection on the bot's file stands for a chat step")
async def test_another_connection_writes_between_batches(services: Services) -> None:
    await make_user(services, "张三", areas=("3号台区",))
    lead = await make_user(services, "王班长", Role.LEAD, areas=())
    writer = _ChatWriter(services.settings.db_path, lead.id)
    writer.start()
    try:
        staged = await arrears_io.stage_list(services, _list(), lead.team_id,
                                             filename="list.csv", user_id=lead.id)
        done = await arrears_io.apply_list(services, staged.import_id)
    finally:
        writer.stop.set()
        writer.join(10)
    assert (done.added, done.error_rows) == (ROWS, 0)
    during = {n for n in writer.seen if 0 < n < ROWS}
    assert during, f"no write between batches: saw {sorted(set(writer.seen))}"
    assert all(n % BATCH == 0 for n in during), sorted(during)


async def test_an_interrupted_apply_is_finished_by_applying_again(
        services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_user(services, "张三", areas=("3号台区",))
    lead = await make_user(services, "王班长", Role.LEAD, areas=())
    first = await arrears_io.stage_list(services, _list(), lead.team_id, user_id=lead.id)
    await arrears_io.apply_list(services, first.import_id)
    # The next list: the first 100 households paid, amounts changed for the rest.
    second_rows = [(f"32011{i:05d}", f"户{i}", "3号台区", f"{200 + i}", "202610", "否")
                   for i in range(100, ROWS)]
    clock.advance(days=1)
    second = await arrears_io.stage_list(services, gbk_csv(second_rows), lead.team_id,
                                         user_id=lead.id)
    assert (second.updated, second.paid) == (ROWS - 100, 100)
    real = arrears_io._Writer._apply_page
    calls = 0

    async def failing(self: Any, tx: Any, page: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise sqlite3.OperationalError("disk I/O error")
        await real(self, tx, page)

    monkeypatch.setattr(arrears_io._Writer, "_apply_page", failing)
    with pytest.raises(sqlite3.OperationalError):
        await arrears_io.apply_list(services, second.import_id)
    monkeypatch.setattr(arrears_io._Writer, "_apply_page", real)
    with pytest.raises(arrears_io.ImportNotOpen):  # someone may still be applying it
        await arrears_io.apply_list(services, second.import_id)
    clock.set(clock.now() + arrears_io.APPLY_STALLED + timedelta(minutes=1))
    await arrears_io.apply_list(services, second.import_id)
    assert await _count(services, "SELECT count(*) FROM arrears") == ROWS  # none doubled
    assert await _count(services, "SELECT count(*) FROM arrears WHERE status = 'paid'") == 100
    assert await _count(services, "SELECT sum(amount_cents) FROM arrears WHERE status = "
                        "'collecting'") == sum(200 + i for i in range(100, ROWS)) * 100
    assert await _count(services, "SELECT count(*) FROM arrears_import_rows") == 0
