"""A customer import writes in short transactions (issue #12): another connection on the same
file (a chat step of the bot process) can write between its batches, and an import stopped
half-way says how far it got and finishes idempotently when run again."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from bot import customers_io
from bot.config import Settings, load_settings
from bot.customers_io import COLUMNS, CustomersIOError, import_customers
from bot.models import Role
from bot.services import Services
from tests.conftest import make_user

TEAM = "城东供电所"
BATCH = 50
ROWS = 300


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(db_path=tmp_path / "taiqu.db", import_batch_rows=BATCH)


def _csv(path: Path, rows: int = ROWS, tail: str = "") -> Path:
    lines = [",".join(c.header for c in COLUMNS)]
    lines += [f"32011{i:05d},客户{i},3号台区,东门村{i}号,138{i:08d},独居,,,,,,"
              for i in range(rows)]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


async def _count(services: Services, table: str) -> int:
    row = await services.db.fetchone(f"SELECT count(*) FROM {table}")
    assert row is not None
    return int(row[0])


class _ChatWriter(threading.Thread):
    """Another connection writing over and over, as the bot's form steps do; records the
    number of customers it sees inside each of its own write transactions."""

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
                self.seen.append(con.execute("SELECT count(*) FROM customers").fetchone()[0])
                con.execute("INSERT OR REPLACE INTO searches(user_id, query, at) "
                            "VALUES (?, '王', '2026-01-01T00:00:00+00:00')", (self.user_id,))
                con.execute("COMMIT")
                self.stop.wait(0.001)
        finally:
            con.close()


async def test_another_connection_writes_between_batches(services: Services,
                                                         tmp_path: Path) -> None:
    lead = await make_user(services, "王班长", Role.LEAD, team=TEAM, areas=("3号台区",))
    path = _csv(tmp_path / "many.csv")
    writer = _ChatWriter(services.settings.db_path, lead.id)
    writer.start()
    try:
        result = await import_customers(services, path, TEAM)
    finally:
        writer.stop.set()
        writer.join(10)
    assert (result.inserted, result.error_rows) == (ROWS, 0)
    # The writer got the lock while the import was under way (one long transaction would
    # let it see only 0 or all), and only ever between whole batches.
    during = {n for n in writer.seen if 0 < n < ROWS}
    assert during, f"no write between batches: saw {sorted(set(writer.seen))}"
    assert all(n % BATCH == 0 for n in during), sorted(during)


async def test_interrupted_import_says_how_far_and_a_rerun_finishes(
        services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.customers_io import ImportInterrupted

    await make_user(services, "王班长", Role.LEAD, team=TEAM, areas=("3号台区",))
    path = _csv(tmp_path / "many.csv")
    real_flush = customers_io._flush
    calls = 0

    async def failing_flush(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise sqlite3.OperationalError("disk I/O error")
        await real_flush(*args)

    monkeypatch.setattr(customers_io, "_flush", failing_flush)
    with pytest.raises(ImportInterrupted) as stopped:
        await import_customers(services, path, TEAM)
    # Two batches of 50 are in: data rows 2..101 of the file (the header is row 1).
    assert stopped.value.row == 2 * BATCH + 1
    assert "第 101 行及之前的客户已导入（新增 100，更新 0）" in str(stopped.value)
    assert "disk I/O error" in str(stopped.value) and "Run the same command again" in str(
        stopped.value)
    assert await _count(services, "customers") == 2 * BATCH
    assert await _count(services, "audit_log WHERE action = 'import'") == 0

    monkeypatch.setattr(customers_io, "_flush", real_flush)
    again = await import_customers(services, path, TEAM)
    assert (again.inserted, again.updated, again.error_rows) == (ROWS - 2 * BATCH, 2 * BATCH, 0)
    assert await _count(services, "customers") == ROWS
    assert await _count(services, "customer_categories") == ROWS  # nothing doubled
    assert await _count(services, "audit_log WHERE action = 'import'") == 1


async def test_file_error_late_in_the_file_writes_nothing(services: Services,
                                                          tmp_path: Path) -> None:
    """Validation reads the whole file before the first write: all-or-nothing for the file."""
    await make_user(services, "王班长", Role.LEAD, team=TEAM, areas=("3号台区",))
    huge = "x" * 200_000  # beyond the csv module's field limit: a malformed file
    path = _csv(tmp_path / "bad.csv", tail=f"3201199999,坏行,3号台区,{huge},13800000000,独居\n")
    with pytest.raises(CustomersIOError, match="CSV"):
        await import_customers(services, path, TEAM)
    assert await _count(services, "customers") == 0
