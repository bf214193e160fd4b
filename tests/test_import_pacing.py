"""Every import writes in transactions bounded by time as well as rows (issue #12: no chat
step over 200 ms during an import, on a loaded machine too): a transaction that held the write
lock longer than TAIQU_IMPORT_TX_MS halves the next one's rows, a quick one doubles them back
(never above the batch setting), and the import's result is the same whatever the sizes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot import arrears_io
from bot.config import Settings, load_settings
from bot.customers_io import import_customers
from bot.features.lineloss.importer import import_lineloss
from bot.models import Role
from bot.services import Services
from bot.storage import paced as paced_module
from bot.storage.paced import Paced
from tests.arrears_files import gbk_csv
from tests.conftest import make_user
from tests.test_customers_import_batches import _csv

TEAM = "城东供电所"
MOST = 40
ROWS = 200
# 40, 20, 10, 5, 2, then one row at a time: 128 transactions for 200 rows (fixed: 5)
SHRUNK = ROWS - (40 + 20 + 10 + 5 + 2) + 5


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(db_path=tmp_path / "taiqu.db", import_batch_rows=MOST,
                         lineloss_batch_rows=MOST, import_tx_ms=100, import_pause_ms=0)


def _timer(held: list[float]) -> Callable[[], float]:
    """A clock that moves by the next of `held` between a transaction's start and end."""
    now = [0.0]
    calls = [0]

    def timer() -> float:
        calls[0] += 1
        if calls[0] % 2 == 0:  # the end of a transaction
            now[0] += held.pop(0) if held else 0.0
        return now[0]
    return timer


async def test_a_slow_transaction_halves_the_next_and_quick_ones_double_it_back(
        services: Services) -> None:
    paced = Paced(services.db, 8, pause_ms=0, budget_ms=100,
                  timer=_timer([0.2, 0.2, 0.05, 0.001, 0.001, 0.001]))
    sizes = []
    for _ in range(6):
        sizes.append(paced.rows)
        async with paced.tx() as tx:
            await tx.execute("SELECT 1")
    # over the budget: halved; between a quarter and the whole: kept; under: doubled to 8
    assert sizes == [8, 4, 2, 2, 4, 8]
    assert paced.rows == 8 and paced.written == 6
    fixed = Paced(services.db, 8, pause_ms=0, budget_ms=0, timer=_timer([5.0, 5.0]))
    for _ in range(2):
        async with fixed.tx() as tx:
            await tx.execute("SELECT 1")
    assert fixed.rows == 8  # TAIQU_IMPORT_TX_MS=0: the rows stay as set


async def test_after_a_long_transaction_the_pause_outlasts_a_waiting_writers_sleep(
        services: Services) -> None:
    """A writer in another process that waited 200 ms sleeps 50 ms between its tries (SQLite's
    busy handler backs off): a 30 ms pause would let the import take the lock again first."""
    assert [paced_module.busy_sleep(w) for w in (0.0, 0.05, 0.1, 0.2, 0.3, 5.0)] == [
        0.001, 0.02, 0.025, 0.05, 0.1, 0.1]
    paced = Paced(services.db, 8, pause_ms=30, budget_ms=100,
                  timer=_timer([0.01, 0.2, 0.4, 0.01]))
    gaps = []
    for _ in range(4):
        async with paced.tx() as tx:
            await tx.execute("SELECT 1")
        gaps.append(paced.gap)
    assert gaps == [0.03, 0.05, 0.1, 0.03]
    unpaused = Paced(services.db, 8, pause_ms=0, budget_ms=100, timer=_timer([0.4]))
    async with unpaused.tx() as tx:
        await tx.execute("SELECT 1")
    assert unpaused.gap == 0.0  # TAIQU_IMPORT_PAUSE_MS=0: no pause at all, as set


@asynccontextmanager
async def _counted(services: Services, monkeypatch: pytest.MonkeyPatch,
                   ) -> AsyncIterator[list[int]]:
    """Every write transaction taken 1 s (over any budget), and counted."""
    clock = SimpleNamespace(now=0.0)

    def perf_counter() -> float:
        clock.now += 0.5
        return clock.now

    monkeypatch.setattr(paced_module, "time", SimpleNamespace(perf_counter=perf_counter))
    real = services.db.tx
    count = [0]

    def tx() -> Any:
        count[0] += 1
        return real()

    monkeypatch.setattr(services.db, "tx", tx)
    yield count


async def _rows(services: Services, table: str) -> int:
    row = await services.db.fetchone(f"SELECT count(*) FROM {table}")
    assert row is not None
    return int(row[0])


async def _imports_in_smaller_transactions(services: Services, monkeypatch: pytest.MonkeyPatch,
                                           run: Callable[[], Awaitable[Any]],
                                           table: str) -> None:
    async with _counted(services, monkeypatch) as count:
        result = await run()
    assert (result.inserted, result.error_rows) == (ROWS, 0)
    assert count[0] >= SHRUNK
    assert await _rows(services, table) == ROWS


async def test_customer_import_writes_smaller_transactions_when_they_are_slow(
        services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_user(services, "王班长", Role.LEAD, team=TEAM, areas=("3号台区",))
    path = _csv(tmp_path / "many.csv", rows=ROWS)
    await _imports_in_smaller_transactions(
        services, monkeypatch, lambda: import_customers(services, path, TEAM),
        "customer_categories")


async def test_line_loss_import_writes_smaller_transactions_when_they_are_slow(
        services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_user(services, "张三")  # 3号台区, 5号台区
    lines = ["日期,台区,供电量,售电量,线损率"] + [
        f"2026-{1 + d // 28:02d}-{1 + d % 28:02d},{area},1000,950," for d in range(ROWS // 2)
        for area in ("3号台区", "5号台区")]
    path = tmp_path / "lineloss.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    await _imports_in_smaller_transactions(
        services, monkeypatch, lambda: import_lineloss(services, path, TEAM), "lineloss_days")


async def test_arrears_list_stages_and_applies_in_smaller_transactions_when_they_are_slow(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    await make_user(services, "张三", areas=("3号台区",))
    lead = await make_user(services, "王班长", Role.LEAD, areas=())
    data = gbk_csv([(f"32011{i:05d}", f"户{i}", "3号台区", f"{100 + i}", "202610", "否")
                    for i in range(ROWS)])
    async with _counted(services, monkeypatch) as count:
        staged = await arrears_io.stage_list(services, data, lead.team_id, user_id=lead.id)
        staging = count[0]
        done = await arrears_io.apply_list(services, staged.import_id)
    assert staging >= SHRUNK
    assert count[0] - staging >= SHRUNK
    assert (done.added, done.error_rows) == (ROWS, 0)
    assert await _rows(services, "arrears") == ROWS
    assert await _rows(services, "arrears_import_rows") == 0
