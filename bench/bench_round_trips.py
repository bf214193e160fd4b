"""Database round trips per chat step (issue #12): one manager fills a whole 工作日志 form
through the real core (Assistant, Services, a real SQLite file), and every hop to aiosqlite's
worker thread is counted per step (each `await` on the connection: BEGIN, a statement, a
fetch, COMMIT). The goal in issue #12 is at most 2 per step.

With `--postgresql` the store is a PostgreSQL server the benchmark starts (issue #11) and the
round trips to it are counted: each statement, and BEGIN and COMMIT of each transaction; the
transactions are counted apart (one instance runs them one at a time).

    .venv/bin/python -m bench.bench_round_trips [--postgresql] [--json out.json]

Prints a markdown table; nothing is asserted."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bench.bench_forms import STEP_NAMES, form_steps
from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import load_settings
from bot.events import Incoming
from bot.models import Role
from bot.services import Services

HOPS: Counter[str] = Counter()
_original = aiosqlite.Connection._execute


async def _counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
    HOPS["hops"] += 1
    return await _original(self, fn, *args, **kwargs)


def _count_postgresql() -> None:
    """Count asyncpg round trips: PgTx's statements, the pool's single reads, BEGIN+COMMIT."""
    from bot.storage import pg

    def counted(owner: Any, name: str, hops: int, key: str = "hops") -> None:
        real = getattr(owner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            HOPS[key] += 1
            HOPS["hops"] += hops if key != "hops" else 0
            return await real(*args, **kwargs)

        setattr(owner, name, call)

    for name in ("execute", "fetchone", "fetchall"):
        counted(pg.PgTx, name, 1)
    for name in ("fetchone", "fetchall"):
        counted(pg.PgDatabase, name, 1)
    real_tx = pg.PgDatabase.tx

    def tx(self: Any) -> Any:
        HOPS["hops"] += 2  # BEGIN, COMMIT
        HOPS["tx"] += 1
        return real_tx(self)

    pg.PgDatabase.tx = tx  # type: ignore[method-assign]


async def measure(forms: int, postgresql: bool = False) -> list[dict[str, Any]]:
    aiosqlite.Connection._execute = _counted  # type: ignore[method-assign]
    server = None
    if postgresql:
        from bench.province import BenchPostgres

        server = BenchPostgres().start()
        _count_postgresql()
    with tempfile.TemporaryDirectory() as tmp:
        where: dict[str, Any] = {"db_path": Path(tmp) / "bench.db"}
        if server is not None:
            where = {"database_url": await server.create("round_trips")}
        settings = load_settings(**where)
        services = await Services.open(settings, FakeClock(datetime(2026, 11, 27, 2, 30,
                                                                     tzinfo=UTC)))
        try:
            invite = await services.people.create_invite(
                role=Role.MANAGER, team="城东供电所", areas=["3号台区", "5号台区"], name="张三",
                now=services.clock.now(), ttl=timedelta(days=7))
            await services.people.redeem_invite(invite.code, channel="bench",
                                                external_id="z", fallback_name="张三",
                                                now=services.clock.now())
            core = Assistant(services)
            await core.handle(Incoming("bench", "z", text="你好"))  # warm caches
            per_step: list[list[int]] = [[] for _ in STEP_NAMES]
            per_step_tx: list[list[int]] = [[] for _ in STEP_NAMES]
            for n in range(forms):
                for i, (text, expect) in enumerate(form_steps(f"第{n}次")):
                    await services.db.settle()
                    HOPS.clear()
                    out = await core.handle(Incoming("bench", "z", text=text))
                    await services.db.settle()  # write-behind bookkeeping counts too
                    per_step[i].append(HOPS["hops"])
                    per_step_tx[i].append(HOPS["tx"])
                    assert any(expect in r.text for r in out.replies), (text, out)
        finally:
            await services.close()
            aiosqlite.Connection._execute = _original  # type: ignore[method-assign]
            if server is not None:
                server.stop()
    return [{"step": name, "min": min(c), "max": max(c), "mean": sum(c) / len(c),
             "tx": sum(t) / len(t)}
            for name, c, t in zip(STEP_NAMES, per_step, per_step_tx, strict=True)]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--forms", type=int, default=5)
    p.add_argument("--json")
    p.add_argument("--postgresql", action="store_true",
                   help="on a PostgreSQL server of its own (issue #11)")
    args = p.parse_args()
    rows = asyncio.run(measure(args.forms, args.postgresql))
    print("| step | round trips (min / mean / max) | transactions (mean) |\n|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['min']} / {r['mean']:.1f} / {r['max']} | {r['tx']:.1f} |")
    total = sum(r["mean"] for r in rows)
    print(f"| whole form | {total:.1f} (mean {total / len(rows):.1f} per step) |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
