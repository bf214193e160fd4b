"""Bulk writes in short transactions, so an import never stalls a chat (issue #12: no chat
step over 200 ms during a 100,000-row import). Every import writes through one of these: the
customers, the arrears list (staging, applying), the line loss. (Dropping the arrears list's
staged rows keeps its own 1,000-row pages: each holds the lock a few ms, and pacing them
doubled the apply's time for no gain.)

A chat step that needs the write lock while an import holds it waits for the import's
current transaction: in this process on the Database's lock, in another (a CLI import) in
SQLite's busy handler, which sleeps and polls. So each transaction writes at most `most`
rows, and a pause of TAIQU_IMPORT_PAUSE_MS before the next one lets the waiter in. How long
those rows hold the lock depends on the table (a customer with its search indexes costs ten
times a line-loss day) and on the machine's load (measured under load 5-8: 500 customers
held it 115 ms at the median and 318 ms at worst), so the rows are bounded by time as well:
a transaction that held the lock longer than TAIQU_IMPORT_TX_MS halves the next one's rows,
one that held it less than a quarter of that doubles them again, never above `most`.
The pause after a long transaction is longer too: a writer in another process that waited
that long sleeps longer between its tries (SQLite's busy handler backs off), and a pause
shorter than its sleep would let the next transaction take the lock before it woke.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.services import Services
    from bot.storage.db import Backend, Tx

# How long SQLite's default busy handler (sqliteDefaultBusyCallback, used by busy_timeout)
# sleeps between its tries, in ms: the first, the second ...; then the last one over again.
BUSY_SLEEPS_MS = (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100)


def busy_sleep(waited: float) -> float:
    """The sleep (s) a writer is in after waiting `waited` seconds for the lock."""
    slept = 0.0
    for ms in BUSY_SLEEPS_MS:
        if slept + ms > waited * 1000:
            return ms / 1000
        slept += ms
    return BUSY_SLEEPS_MS[-1] / 1000


class Paced:
    """`async with paced.tx() as tx` writes `paced.rows` rows at most, then the next."""

    def __init__(self, db: Backend, most: int, pause_ms: int, budget_ms: int,
                 timer: Callable[[], float] | None = None) -> None:
        self.db = db
        self.most = max(1, most)
        self.rows = self.most  # for the next transaction
        self.pause = pause_ms / 1000
        self.gap = self.pause  # before the next transaction: see fit
        self.budget = budget_ms / 1000  # 0: the rows stay `most`
        self.timer = timer or time.perf_counter
        self.written = 0  # transactions committed

    @classmethod
    def of(cls, services: Services, most: int | None = None) -> Paced:
        """The settings' pacing; `most` rows per transaction (TAIQU_IMPORT_BATCH_ROWS)."""
        s = services.settings
        return cls(services.db, most or s.import_batch_rows, s.import_pause_ms, s.import_tx_ms)

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Tx]:
        if self.written:  # a chat step waiting for the lock gets in first
            await asyncio.sleep(self.gap)
        async with self.db.tx() as tx:
            start = self.timer()  # the lock is held from here (BEGIN IMMEDIATE) to COMMIT
            yield tx
        self.fit(self.timer() - start)
        self.written += 1

    def fit(self, held: float) -> None:
        """The next transaction's rows, and the pause before it, after one that held the
        lock `held` seconds (a writer that came as it began has waited as long)."""
        self.gap = max(self.pause, busy_sleep(held)) if self.pause else 0.0
        if self.budget <= 0:
            return
        if held > self.budget:
            self.rows = max(1, self.rows // 2)
        elif held < self.budget / 4:
            self.rows = min(self.most, self.rows * 2)
