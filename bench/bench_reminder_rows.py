"""The reminder scan and claim with 10 million reminder rows, on PostgreSQL and SQLite (#11).

    .venv/bin/python -m bench.bench_reminder_rows [--rows 10000000] [--due 5000]
                                                  [--users 30000] [--stores pg,sqlite]
                                                  [--repeats 5] [--json out.json]

A fresh store made by the real migrations gets `--users` people (one lead per 25, their
Telegram identity, today's digest already sent) and `--rows` reminder rows, generated in the
database (generate_series on PostgreSQL, a recursive CTE on SQLite, 1,000,000 rows per
transaction, the secondary indexes dropped during the fill and rebuilt from their own
definitions after): `--due` pending and due in the last 6 hours (5% urgent), 2% pending for
the next 30 days, 0.01% held for a digest, the rest settled over the past year (sent 72%,
cancelled 17%, digested 10%, failed 1%). PostgreSQL then gets VACUUM ANALYZE (what
autovacuum does soon after a bulk load); SQLite gets nothing, as the product runs none.

Measured with the product's own code (`ReminderService`, `Reminders`), `repeats` times each:
  idle scan   `scan_once()` at a moment nothing is due (what every scan costs all day)
  find        `Reminders.due(now, 1000)`: the read that starts each scan
  claim       `Reminders.due(now, 1000, claim_until=...)`: the read, then claiming the batch
              (UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING *);
              released after each repeat
  drain       `scan_once()` at `now`: every due row sent through a no-op notifier
Every statement of the idle scan and of the claim is captured with its time, and its plan
(EXPLAIN / EXPLAIN QUERY PLAN) is printed: a full scan of `reminders` is a finding.
The stores live in a temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.bench_reminders import (
    FIND_NOW,
    SUBJECT,
    NoopNotifier,
    bench_registry,
    machine,
    progress,
)
from bench.province import BenchPostgres, load_averages
from bot.clock import FakeClock
from bot.config import load_settings
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from bot.storage import db as sqlite_db
from bot.storage import pg as pg_db
from bot.storage.db import iso
from bot.storage.reminders import Reminders

CHUNK = 1_000_000
TG_ID_BASE = 5_300_000_000  # a person's chat id: this + their user id
NOW_EPOCH = int(FIND_NOW.timestamp())
IDLE_NOW = FIND_NOW - timedelta(hours=7)  # before every due row: nothing is due
DAY = 86_400


# --- generating the rows in the database --------------------------------------------------------
def series(dialect: str, first: int, last: int) -> str:
    """A FROM-able set of integers i in [first, last]."""
    if dialect == "postgresql":
        return f"generate_series({first}::bigint, {last}::bigint) AS s(i)"
    return (f"(WITH RECURSIVE s(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM s "
            f"WHERE i < {last}) SELECT i FROM s) AS s")


def stamp(dialect: str, epoch: str) -> str:
    """SQL text of an epoch-seconds expression as bot.storage.db.iso writes it."""
    if dialect == "postgresql":
        return (f"to_char(to_timestamp({epoch}) AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'")
    return f"strftime('%Y-%m-%dT%H:%M:%S', {epoch}, 'unixepoch') || '+00:00'"


def people_sql(dialect: str, users: int, channel: str = "bench",
               digest_done: bool = True) -> list[str]:
    """Teams of 25 (the first `teams` users lead them), each person's chat identity (id
    5300000000 + user id) and, with `digest_done`, today's digest marked sent."""
    teams = max(1, users // 25)
    ts = f"'{iso(FIND_NOW - timedelta(days=400))}'"
    day = FIND_NOW.date().isoformat()
    done = f"'{iso(FIND_NOW.replace(hour=8, minute=0))}'"
    statements = [
        f"INSERT INTO teams(id, name, created_at) SELECT i, 'T' || i, {ts} "
        f"FROM {series(dialect, 1, teams)}",
        f"INSERT INTO users(id, name, role, team_id, created_at) SELECT i, 'U' || i, "
        f"CASE WHEN i <= {teams} THEN 'lead' ELSE 'manager' END, (i - 1) % {teams} + 1, {ts} "
        f"FROM {series(dialect, 1, users)}",
        f"INSERT INTO identities(channel, external_id, user_id, created_at) "
        f"SELECT '{channel}', CAST({TG_ID_BASE} + i AS TEXT), i, {ts} "
        f"FROM {series(dialect, 1, users)}",
    ]
    if digest_done:
        statements.append(
            f"INSERT INTO job_runs(job, period, user_id, done_at) SELECT 'digest', '{day}', i, "
            f"{done} FROM {series(dialect, 1, users)}")
    return statements


def reminders_sql(dialect: str, first: int, last: int, rows: int, due: int, users: int) -> str:
    """Rows first..last of the table: every (rows // due)-th is due, the rest by a hash."""
    teams = max(1, users // 25)
    step = max(1, rows // due)
    h = "((i * 7919) % 10000)"  # a spread-out bucket 0..9999 per row
    is_due = f"(i % {step} = 0 AND i / {step} <= {due})"
    state = (f"CASE WHEN {is_due} THEN 'pending' WHEN {h} < 200 THEN 'pending' "
             f"WHEN {h} = 9999 THEN 'held' WHEN {h} < 7400 THEN 'sent' "
             f"WHEN {h} < 9100 THEN 'cancelled' WHEN {h} < 9990 THEN 'digested' "
             "ELSE 'failed' END")
    due_epoch = (f"CASE WHEN {is_due} THEN {NOW_EPOCH} - (i * 13) % 21600 "
                 f"WHEN {h} < 200 THEN {NOW_EPOCH} + 60 + (i * 31) % (30 * {DAY}) "
                 f"ELSE {NOW_EPOCH} - 60 - (i * 7907) % (365 * {DAY}) END")
    subject = (f"CASE WHEN {is_due} OR {h} < 200 OR {h} = 9999 THEN '{SUBJECT}' "
               "ELSE 'complaint' END")
    user = f"((i * 104729) % {users} + 1)"
    return (
        "INSERT INTO reminders(id, team_id, user_id, subject, subject_id, kind, due_at, urgent, "
        "state, attempts, sent_at, dedupe_key, detail, created_at) "
        f"SELECT i, ({user} - 1) % {teams} + 1, {user}, {subject}, i, 'contact.half', "
        f"{stamp(dialect, due_epoch)}, CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END, {state}, "
        f"CASE WHEN {h} BETWEEN 200 AND 7399 THEN 1 ELSE 0 END, "
        f"CASE WHEN {h} BETWEEN 200 AND 7399 THEN {stamp(dialect, due_epoch)} END, "
        f"'bench:' || i, '{{}}', {stamp(dialect, f'{NOW_EPOCH} - 400 * {DAY}')} "
        f"FROM {series(dialect, first, last)}")


class Store:
    """Raw SQL on the benchmark's store, outside the product (filling, plans)."""

    dialect = ""

    async def run(self, sql: str) -> None: ...
    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...
    async def plan(self, sql: str, params: tuple[Any, ...]) -> list[str]: ...
    async def size_mb(self) -> float: ...
    async def close(self) -> None: ...


class PgStore(Store):
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None

    async def open(self) -> PgStore:
        import asyncpg

        self.conn = await asyncpg.connect(self.url)
        return self

    async def run(self, sql: str) -> None:
        await self.conn.execute(sql)

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self.conn.fetch(pg_db.pg_sql(sql), *params)]

    async def plan(self, sql: str, params: tuple[Any, ...]) -> list[str]:
        rows = await self.conn.fetch("EXPLAIN " + pg_db.pg_sql(sql), *params)
        return [r[0] for r in rows]

    async def size_mb(self) -> float:
        return float(await self.conn.fetchval(
            "SELECT pg_total_relation_size('reminders')")) / 1e6

    async def close(self) -> None:
        await self.conn.close()


class SqliteStore(Store):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.con = sqlite3.connect(path, isolation_level=None)

    async def run(self, sql: str) -> None:
        self.con.execute(sql)

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql, params).fetchall())

    async def plan(self, sql: str, params: tuple[Any, ...]) -> list[str]:
        return [str(r[3]) for r in self.con.execute("EXPLAIN QUERY PLAN " + sql, params)]

    async def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6

    async def close(self) -> None:
        self.con.close()


async def secondary_indexes(store: Store) -> list[tuple[str, str]]:
    """(name, CREATE statement) of reminders' indexes that are not its key or UNIQUE."""
    if store.dialect == "postgresql":
        rows = await store.rows(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reminders' AND "
            "indexname NOT IN (SELECT conname FROM pg_constraint)")
    else:
        rows = await store.rows("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                "AND tbl_name = 'reminders' AND sql IS NOT NULL")
    return [(str(a), str(b)) for a, b in rows]


async def fill(store: Store, rows: int, due: int, users: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for sql in people_sql(store.dialect, users):
        await store.run(sql)
    indexes = await secondary_indexes(store)
    for name, _ in indexes:
        await store.run(f"DROP INDEX {name}")
    for first in range(1, rows + 1, CHUNK):
        last = min(rows, first + CHUNK - 1)
        await store.run("BEGIN")
        await store.run(reminders_sql(store.dialect, first, last, rows, due, users))
        await store.run("COMMIT")
        progress(f"{store.dialect}: {last:,} rows ({time.perf_counter() - t0:.0f} s)")
    t1 = time.perf_counter()
    for _, create in indexes:
        await store.run(create)
    t2 = time.perf_counter()
    if store.dialect == "postgresql":
        await store.run("VACUUM ANALYZE reminders")
        await store.run("SELECT setval(pg_get_serial_sequence('reminders', 'id'), "
                        f"{rows + 1}, false)")
    return {"insert_s": t1 - t0, "index_s": t2 - t1, "vacuum_s": time.perf_counter() - t2}


# --- measuring with the product's code --------------------------------------------------------
@dataclass
class Statement:
    sql: str
    params: tuple[Any, ...]
    seconds: list[float] = field(default_factory=list)


class Spy:
    """Every statement the store runs, timed (SQLite's Tx; PostgreSQL's PgTx and the pool's
    single reads), grouped by its text."""

    def __init__(self) -> None:
        self.statements: dict[str, Statement] = {}
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str) -> None:
        real = getattr(owner, name)
        spy = self

        async def timed(*args: Any) -> Any:
            sql, params = (args[1], args[2] if len(args) > 2 else ()) \
                if isinstance(owner, type) else (args[0], args[1] if len(args) > 1 else ())
            t0 = time.perf_counter()
            try:
                return await real(*args)
            finally:
                st = spy.statements.setdefault(sql, Statement(sql, tuple(params)))
                st.seconds.append(time.perf_counter() - t0)

        self._undo.append((owner, name, real))
        setattr(owner, name, timed)

    def attach(self, db: Any) -> Spy:
        for name in ("execute", "fetchone", "fetchall"):
            self.wrap(sqlite_db.Tx, name)
            self.wrap(pg_db.PgTx, name)
        if isinstance(db, pg_db.PgDatabase):
            self.wrap(db, "fetchone")
            self.wrap(db, "fetchall")
        return self

    def detach(self) -> None:
        for owner, name, real in reversed(self._undo):
            setattr(owner, name, real)
        self._undo.clear()


async def median_ms(fn: Callable[[], Awaitable[Any]], repeats: int,
                    after: Callable[[], Awaitable[Any]] | None = None) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = await fn()
        times.append((time.perf_counter() - t0) * 1000)
        if after is not None:
            await after()
    return statistics.median(times), out


def full_scan(dialect: str, plan: list[str]) -> bool:
    """Whether the plan reads all of `reminders` or all of one of its full indexes: a seq
    scan, or an index searched without its leading column (PostgreSQL: reminders_user
    searched by state alone; SQLite: SCAN ... USING [COVERING] INDEX). Scanning the partial
    reminders_due index (pending and sending rows only) is not counted."""
    text = " ".join(plan)
    if dialect == "postgresql":
        return ("Seq Scan on reminders" in text
                or ("using reminders_user" in text and "Index Cond: (state" in text))
    return any(line.startswith("SCAN reminders") and "reminders_due" not in line
               for line in plan)


def heaviest_others(spy: Spy, count: int = 4) -> list[dict[str, Any]]:
    """The statements on other tables that took the most time in total."""
    others = [st for st in spy.statements.values() if "reminders" not in st.sql]
    others.sort(key=lambda st: -sum(st.seconds))
    return [{"sql": " ".join(st.sql.split()), "calls": len(st.seconds),
             "total_ms": sum(st.seconds) * 1000} for st in others[:count]]


async def plans(store: Store, spy: Spy) -> list[dict[str, Any]]:
    out = []
    for st in spy.statements.values():
        if "reminders" not in st.sql:
            continue
        plan = await store.plan(st.sql, st.params)
        out.append({"sql": " ".join(st.sql.split()), "calls": len(st.seconds),
                    "median_ms": statistics.median(st.seconds) * 1000,
                    "plan": plan, "full_scan": full_scan(store.dialect, plan)})
    return out


async def measure(settings_kw: dict[str, Any], store: Store, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    settings = load_settings(timezone="Asia/Shanghai", **settings_kw)
    clock = FakeClock(IDLE_NOW)
    services = await Services.open(settings, clock)
    try:
        service = ReminderService(services, Dispatcher(services, [NoopNotifier()]),
                                  router=bench_registry())
        rows = Reminders(services.db)
        spy = Spy().attach(services.db)
        try:
            out["idle_scan_ms"], _ = await median_ms(service.scan_once, repeats)
            out["idle_plans"] = await plans(store, spy)
            out["idle_others"] = heaviest_others(spy)
        finally:
            spy.detach()
        clock.set(FIND_NOW)
        out["find_ms"], found = await median_ms(lambda: rows.due(FIND_NOW, 1000), repeats)
        out["found"] = len(found)
        claimed: list[int] = []

        async def claim() -> Any:
            got = await rows.due(FIND_NOW, 1000, claim_until=FIND_NOW + timedelta(minutes=5))
            claimed[:] = [r.id for r in got]
            return got

        async def release() -> None:
            await rows.unclaim(claimed)

        spy = Spy().attach(services.db)
        try:
            out["claim_ms"], got = await median_ms(claim, repeats, release)
            out["claim_plans"] = await plans(store, spy)
        finally:
            spy.detach()
        out["claimed"] = len(got)
        t0 = time.perf_counter()
        total = 0
        for _ in range(20):
            r = await service.scan_once()
            total += r.sent
            if r.sent == 0:
                break
        out["drain_s"] = time.perf_counter() - t0
        out["drained"] = total
        left = await services.db.fetchone(
            "SELECT count(*) FROM reminders WHERE state IN ('pending', 'sending') "
            "AND due_at <= ?", (iso(FIND_NOW),))
        out["left_due"] = int(left[0]) if left else -1
    finally:
        await services.close()
    return out


async def one_store(kind: str, args: argparse.Namespace, workdir: Path,
                    pg: BenchPostgres | None) -> dict[str, Any]:
    progress(f"{kind}: migrating a new store")
    store: Store
    if kind == "pg":
        assert pg is not None
        url = await pg.create("reminders")
        await (await pg_db.PgDatabase(url).connect()).close()
        store = await PgStore(url).open()
        settings_kw: dict[str, Any] = {"database_url": url}
    else:
        path = workdir / "reminders.db"
        await (await sqlite_db.Database(path).connect()).close()
        store = SqliteStore(path)
        settings_kw = {"db_path": path}
    try:
        res: dict[str, Any] = {"store": kind, "rows": args.rows, "due": args.due,
                               "users": args.users, "load_before_fill": load_averages()}
        res["fill"] = await fill(store, args.rows, args.due, args.users)
        res["size_mb"] = await store.size_mb()
        counts = await store.rows("SELECT state, count(*) FROM reminders GROUP BY state")
        res["states"] = {str(a): int(b) for a, b in counts}
        res["load_before_measure"] = load_averages()
        progress(f"{kind}: measuring")
        res |= await measure(settings_kw, store, args.repeats)
        res["load_after"] = load_averages()
    finally:
        await store.close()
        if pg is not None and kind == "pg":
            await pg.drop("reminders")
    return res


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    kinds = [k.strip() for k in args.stores.split(",") if k.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="taiqu-bench-rows-"))
    pg = BenchPostgres().start() if "pg" in kinds else None
    results: dict[str, Any] = {"machine": machine(), "stores": []}
    try:
        if pg is not None:
            results["machine"]["postgresql"] = await pg.version()
        for kind in kinds:
            results["stores"].append(await one_store(kind, args, workdir, pg))
            if kind == "sqlite":
                shutil.rmtree(workdir, ignore_errors=True)
                workdir.mkdir()
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


# --- reporting --------------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, SQLite "
           f"{m['sqlite']}, PostgreSQL {m.get('postgresql', '-')}, {m['date']}.\n"]
    rows = []
    for r in results["stores"]:
        f = r["fill"]
        rows.append([r["store"], f"{r['rows']:,}", f"{r['size_mb']:,.0f}",
                     f"{f['insert_s']:.0f} + {f['index_s']:.0f} + {f['vacuum_s']:.0f}",
                     f"{r['idle_scan_ms']:.1f}", f"{r['find_ms']:.1f} ({r['found']})",
                     f"{r['claim_ms']:.1f} ({r['claimed']})",
                     f"{r['drain_s']:.1f} ({r['drained']:,}, "
                     f"{r['drained'] / max(r['drain_s'], 1e-9):.0f}/s)",
                     str(r["left_due"]), f"{r['load_before_measure']} → {r['load_after']}"])
    out.append(table(["store", "rows", "table + indexes MB", "fill s (insert + index + vacuum)",
                      "idle scan ms (median)", "find ms (rows)", "claim 1,000 ms (rows)",
                      "drain s (sent, rate)", "due left", "load avg 1/5/15 before → after"],
                     rows))
    for r in results["stores"]:
        out.append(f"\nStates ({r['store']}): " + ", ".join(
            f"{k} {v:,}" for k, v in sorted(r["states"].items(), key=lambda kv: -kv[1])))
        for title, key in (("idle scan", "idle_plans"), ("claim", "claim_plans")):
            out.append(f"\n{r['store']}, statements on `reminders` in one {title}:\n")
            out.append(table(["statement", "calls", "median ms", "full scan?", "plan"], [
                [p["sql"][:140].replace("|", "\\|"), str(p["calls"]), f"{p['median_ms']:.2f}",
                 "**yes**" if p["full_scan"] else "no",
                 "<br>".join(x.strip() for x in p["plan"][:6]).replace("|", "\\|")]
                for p in r[key]]))
        out.append(f"\n{r['store']}, heaviest other statements of the idle scans "
                   f"(all {len(r.get('idle_others', []))} listed, total over the repeats):\n")
        out.append(table(["statement", "calls", "total ms"], [
            [o["sql"][:140].replace("|", "\\|"), str(o["calls"]), f"{o['total_ms']:.0f}"]
            for o in r.get("idle_others", [])]))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_reminder_rows", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--due", type=int, default=5_000)
    p.add_argument("--users", type=int, default=30_000)
    p.add_argument("--stores", default="pg,sqlite")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results = asyncio.run(main_async(args))
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

