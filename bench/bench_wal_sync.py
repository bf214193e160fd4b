"""What one sync of a SQLite WAL costs on this disk, on the event loop and through the worker
thread (bot.storage.walsync), against a write with no sync (issue #12, sixth pass: a lone
chat step syncs on the loop). Prints one line per mode; nothing is asserted.

    .venv/bin/python -m bench.bench_wal_sync [--writes 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from bot.storage.walsync import WalSync


async def run(writes: int) -> None:
    db = Path(tempfile.mkdtemp(prefix="taiqu-walsync-")) / "x.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # as the step's inline connection
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    wal = WalSync(db)
    for mode in ("thread", "inline", "thread", "inline", "none"):
        took = []
        for i in range(writes):
            started = time.perf_counter()
            conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (i % 5, "x" * 300))
            if mode == "thread":
                await wal.synced()
            elif mode == "inline":
                await wal.synced(alone=True)
            took.append(time.perf_counter() - started)
            await asyncio.sleep(0.001)  # a step at a time, as one person types
        took.sort()
        print(f"{mode:7} p50 {took[len(took) // 2] * 1e3:.3f} ms  "
              f"p90 {took[len(took) * 9 // 10] * 1e3:.3f} ms  "
              f"WAL {os.path.getsize(f'{db}-wal') // 1024} KB")
    await wal.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--writes", type=int, default=300)
    asyncio.run(run(p.parse_args().writes))


if __name__ == "__main__":
    main()
