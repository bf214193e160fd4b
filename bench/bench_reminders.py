"""Reminders at scale (issue #4): finding the due rows in a big table, draining them, and the
08:00 digest fan-out through the real Telegram channel against the loopback fake Bot API.

    .venv/bin/python -m bench.bench_reminders [--quick] [--fanout digests|reminders]
                                              [--rows N] [--users N] [--json out.json]

Part 1 (find + drain). A fresh SQLite file made by the real migrations gets 5,000 users in 200
teams and `--rows` reminder rows (bulk INSERT through the sqlite3 module, outside every
measurement): 10,000 due ('pending', due in the last 6 h, 5% urgent, a few 'sending' left by a
crash), ~15% future 'pending', the rest settled in the past ('sent', 'digested', 'cancelled',
'failed'). The timed call is exactly the product's `Reminders.due(now)`; its SQL is captured
from that call and shown with EXPLAIN QUERY PLAN. The table is measured at 1/10 of its size
first and then topped up, with the same 10,000 due rows, to show time and memory do not grow
with it. Then `ReminderService.scan_once` drains the 10,000 with a no-op notifier (Dispatcher ->
identities -> notifier, like a real channel) and a tiny synthetic reminder kind ("bench") whose
render returns a Reply, so the machinery is measured, not a record module.

Part 2 (fan-out). 5,000 users, each with one open item today, get their 08:00 digest through
`TelegramChannel` exactly as deployed (its `TelegramNotifier`, `AIORateLimiter(max_retries=5)`,
long polling running), driven by the deployed `ReminderScheduler` (APScheduler, 60 s interval).
The fake Bot API fails 10% of sendMessage calls with 429 (retry_after=1) or 502. The clock is
the real clock shifted so that the run starts at 08:00:00 local: time runs at real speed, so
the scan interval, the rows' back-off and the rate limiter's sleeps share one time base and the
wall time is what production would see. Every chat in the fake must hold exactly one message.

Prints markdown tables (see BENCHMARKS.md). Correctness (nothing lost or duplicated, every row
settled) is checked and reported; timing goals are reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.events import GLOBAL_TOKEN, Button, Reply, callback
from bot.notify import Dispatcher
from bot.registry import Registry, ReminderKind, TodoItem
from bot.reminders import ReminderService, ScanResult
from bot.scheduler import ReminderScheduler
from bot.services import Ctx, Services
from bot.storage.db import Database, from_iso, iso
from bot.storage.reminders import Reminder, Reminders
from tests.fakebotapi import DEFAULT_TOKEN, FakeBotAPI

TZ = ZoneInfo("Asia/Shanghai")
# Part 1 runs at a Tuesday 10:30 (the morning digest already went out at 08:00).
FIND_NOW = datetime(2026, 12, 1, 10, 30, tzinfo=TZ)
# Part 2 starts on Wednesday at 08:00:00, the digest time.
FANOUT_START = datetime(2026, 12, 2, 8, 0, tzinfo=TZ)
TEAMS = 200
USERS_PER_TEAM = 25  # one lead and 24 managers
DUE = 10_000
SUBJECT = "bench"
RECORD_SUBJECTS = ("complaint", "arrears", "outage", "repair")
RECORD_KINDS = ("contact.half", "contact.soon", "reply.due", "overdue", "followup", "notice")
TG_ID_BASE = 5_300_000_000  # Telegram user ids are 10-digit numbers nowadays
LIMIT = 30.0  # messages/s, Telegram's overall flood limit and AIORateLimiter's default
FAULT_RATIO = 0.10


# --- the synthetic reminder kind --------------------------------------------------------------
def bench_registry() -> Registry:
    """Only the 'bench' kind: render is a Reply, the to-do list is the user's own bench rows."""
    reg = Registry()

    async def render(ctx: Ctx, r: Reminder) -> Reply | None:
        return Reply(f"⏰ 巡视任务 #{r.subject_id}：{r.kind}，请在今天处理",
                     [[Button("📄 打开", callback(GLOBAL_TOKEN, "cmd", "todo"))]])

    async def todo(ctx: Ctx) -> list[TodoItem]:
        rows = await ctx.services.db.fetchall(
            "SELECT subject_id, due_at FROM reminders WHERE user_id = ? AND subject = ? "
            "AND state IN ('pending', 'held') ORDER BY due_at", (ctx.user.id, SUBJECT))
        items = []
        for row in rows:
            due = from_iso(row["due_at"]).astimezone(ctx.tz)
            items.append(TodoItem(
                due=due, text=f"巡视任务 #{row['subject_id']}：今天 {due:%H:%M} 前完成",
                button=Button(f"📄 #{row['subject_id']}", callback(GLOBAL_TOKEN, "cmd", "todo"))))
        return items

    reg.reminder_kind(SUBJECT, ReminderKind(render=render, todo=todo))
    return reg


@dataclass
class NoopNotifier:
    """Accepts every push at once (part 1 measures our side of delivery, not a network)."""

    channel: str = "bench"
    pushes: int = 0

    async def push(self, external_id: str, reply: Reply) -> None:
        self.pushes += 1


class ShiftedClock:
    """The real clock, shifted so that it reads `start` now and then runs at real speed."""

    def __init__(self, start: datetime) -> None:
        self._offset = start.astimezone(UTC) - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset


# --- data -------------------------------------------------------------------------------------
def settings_for(db_path: Path, **extra: Any) -> Settings:
    return load_settings(db_path=db_path, timezone="Asia/Shanghai", **extra)


async def migrate(db_path: Path) -> None:
    db = await Database(db_path).connect()
    await db.close()


def tg_id(user_id: int) -> int:
    return TG_ID_BASE + user_id * 7919  # distinct, realistic-looking Telegram ids


def seed_people(db_path: Path, users: int, channel: str, created: datetime) -> None:
    """Teams, areas, users (one lead per team), their chat identity and settings rows."""
    con = sqlite3.connect(db_path)
    ts = iso(created)
    teams = max(1, min(TEAMS, users // USERS_PER_TEAM or 1))
    with con:
        con.executemany("INSERT INTO teams(id, name, created_at) VALUES (?, ?, ?)",
                        [(t, f"第{t}供电所", ts) for t in range(1, teams + 1)])
        con.executemany("INSERT INTO areas(team_id, name, created_at) VALUES (?, ?, ?)",
                        [(t, f"{a}号台区", ts) for t in range(1, teams + 1) for a in (1, 2, 3)])
        rows = []
        for u in range(1, users + 1):
            team = (u - 1) % teams + 1
            role = "lead" if (u - 1) // teams == 0 else "manager"
            rows.append((u, f"经理{u:04d}", role, team, ts))
        con.executemany("INSERT INTO users(id, name, role, team_id, created_at) "
                        "VALUES (?, ?, ?, ?, ?)", rows)
        con.executemany("INSERT INTO identities(channel, external_id, user_id, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        [(channel, str(tg_id(u)), u, ts) for u in range(1, users + 1)])
    con.close()


def team_of(user_id: int, users: int) -> int:
    teams = max(1, min(TEAMS, users // USERS_PER_TEAM or 1))
    return (user_id - 1) % teams + 1


def reminder_rows(rng: random.Random, first_id: int, count: int, due_ids: set[int],
                  now: datetime, users: int) -> Iterator[tuple[Any, ...]]:
    """Rows as the product writes them; a generator, so the benchmark process stays small."""
    now_ts = now.timestamp()
    day = 86400.0

    def stamp(ts: float) -> str:
        return datetime.fromtimestamp(int(ts), UTC).isoformat(timespec="seconds")

    for i in range(first_id, first_id + count):
        uid = rng.randrange(1, users + 1)
        urgent = 0
        if i in due_ids:
            subject, kind = SUBJECT, rng.choice(RECORD_KINDS)
            due = now_ts - rng.uniform(0, 6 * 3600)
            state = "sending" if rng.random() < 0.002 else "pending"
            urgent = int(rng.random() < 0.05)
        else:
            subject, kind = rng.choice(RECORD_SUBJECTS), rng.choice(RECORD_KINDS)
            x = rng.random()
            if x < 0.15:  # planned for later
                due = now_ts + rng.uniform(60, 30 * day)
                state = "pending"
            else:  # history
                due = now_ts - rng.uniform(60, 365 * day)
                state = rng.choices(("sent", "digested", "cancelled", "failed"),
                                    (72, 10, 17, 1))[0]
            urgent = int(rng.random() < 0.03)
        sent_at = stamp(due + rng.uniform(0, 60)) if state in ("sent", "digested") else None
        yield (i, team_of(uid, users), uid, subject, i, kind, stamp(due), urgent, state,
               1 if state in ("sent", "failed", "sending") else 0, sent_at,
               f"{subject}:{i}:{kind}:{uid}", "{}", stamp(due - rng.uniform(3600, 10 * day)))


def insert_reminders(db_path: Path, rows: Iterator[tuple[Any, ...]]) -> float:
    t0 = time.perf_counter()
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    with con:
        con.executemany(
            "INSERT INTO reminders(id, team_id, user_id, subject, subject_id, kind, due_at, "
            "urgent, state, attempts, sent_at, dedupe_key, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return time.perf_counter() - t0


def mark_digests_done(db_path: Path, users: int, day: datetime) -> None:
    """Part 1 runs at 10:30: the 08:00 digest already went out to everyone."""
    con = sqlite3.connect(db_path)
    with con:
        con.executemany("INSERT INTO job_runs(job, period, user_id, done_at) VALUES "
                        "('digest', ?, ?, ?)",
                        [(day.date().isoformat(), u, iso(day)) for u in range(1, users + 1)])
    con.close()


# --- measuring --------------------------------------------------------------------------------
def proc_status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def reset_hwm() -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def machine() -> dict[str, str]:
    import aiolimiter
    import aiosqlite
    import telegram

    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": model,
            "cores": str(os.cpu_count()), "python": platform.python_version(),
            "python-telegram-bot": telegram.__version__,
            "aiosqlite": getattr(aiosqlite, "__version__", "?"),
            "aiolimiter": getattr(aiolimiter, "__version__", "?"),
            "sqlite": sqlite3.sqlite_version, "kernel": platform.release()}


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- part 1: find and drain -------------------------------------------------------------------
@dataclass
class FindResult:
    rows: int
    due_rows: int = 0
    pending_rows: int = 0
    returned: int = 0
    plan: list[str] = field(default_factory=list)
    sql: str = ""
    cold_ms: float = 0.0
    warm_ms: list[float] = field(default_factory=list)
    sqlite_ms: list[float] = field(default_factory=list)
    tracemalloc_peak_kb: float = 0.0
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    hwm_during_kb: int = 0
    db_mb: float = 0.0


async def measure_find(db_path: Path, total_rows: int, repeats: int) -> FindResult:
    res = FindResult(total_rows)
    res.db_mb = db_path.stat().st_size / 1e6
    services = await Services.open(settings_for(db_path), FakeClock(FIND_NOW))
    try:
        rows = Reminders(services.db)
        now = FIND_NOW
        captured: list[tuple[str, tuple[Any, ...]]] = []
        real_fetchall = services.db.fetchall

        async def spy(sql: str, params: Any = ()) -> Any:
            captured.append((sql, tuple(params)))
            return await real_fetchall(sql, params)

        services.db.fetchall = spy  # type: ignore[method-assign]
        gc.collect()
        res.rss_before_kb = proc_status()["VmRSS"]
        reset_hwm()
        t0 = time.perf_counter()
        due = await rows.due(now)
        res.cold_ms = (time.perf_counter() - t0) * 1000
        services.db.fetchall = real_fetchall  # type: ignore[method-assign]
        res.returned = len(due)
        sql, params = captured[0]
        res.sql = sql
        plan = await services.db.fetchall("EXPLAIN QUERY PLAN " + sql, params)
        res.plan = [str(r["detail"]) for r in plan]
        del due
        for _ in range(repeats):
            t0 = time.perf_counter()
            due = await rows.due(now)
            res.warm_ms.append((time.perf_counter() - t0) * 1000)
            del due
        res.hwm_during_kb = proc_status()["VmHWM"]
        res.rss_after_kb = proc_status()["VmRSS"]
        tracemalloc.start()
        due = await rows.due(now)
        res.tracemalloc_peak_kb = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
        del due
        counts = await services.db.fetchone(
            "SELECT sum(state IN ('pending', 'sending') AND due_at <= ?), "
            "sum(state IN ('pending', 'sending')) FROM reminders", (iso(now),))
        assert counts is not None
        res.due_rows, res.pending_rows = int(counts[0]), int(counts[1])
    finally:
        await services.close()
    # SQLite alone (sync sqlite3, same SQL and parameters): what the query costs without the
    # asyncio thread hop and without building Reminder objects.
    con = sqlite3.connect(db_path)
    for _ in range(repeats):
        t0 = time.perf_counter()
        con.execute(sql, params).fetchall()
        res.sqlite_ms.append((time.perf_counter() - t0) * 1000)
    con.close()
    return res


@dataclass
class DrainResult:
    scans: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0
    pushes: int = 0
    left_due: int = 0
    states: dict[str, int] = field(default_factory=dict)
    traced_scan_peak_kb: float = 0.0
    traced_scan_sent: int = 0


async def drain(db_path: Path) -> DrainResult:
    """Scan until nothing is due, with a no-op notifier; one row per scan entry."""
    out = DrainResult()
    services = await Services.open(settings_for(db_path), FakeClock(FIND_NOW))
    try:
        notifier = NoopNotifier()
        service = ReminderService(services, Dispatcher(services, [notifier]),
                                  registry=bench_registry())
        find_times: list[float] = []
        real_due = service.rows.due

        async def timed_due(now: datetime, limit: int = 1000) -> list[Reminder]:
            t0 = time.perf_counter()
            try:
                return await real_due(now, limit)
            finally:
                find_times.append(time.perf_counter() - t0)

        service.rows.due = timed_due  # type: ignore[method-assign]
        for _ in range(100):
            gc.collect()
            reset_hwm()
            t0 = time.perf_counter()
            r = await service.scan_once()
            wall = time.perf_counter() - t0
            st = proc_status()
            out.scans.append({"wall_s": wall, "find_ms": find_times[-1] * 1000, "sent": r.sent,
                              "held": r.held, "retried": r.retried, "dropped": r.dropped,
                              "digests": r.digests, "rss_kb": st["VmRSS"],
                              "hwm_kb": st["VmHWM"]})
            out.sent += r.sent
            if r.sent == 0:
                break
        out.pushes = notifier.pushes
        row = await services.db.fetchone(
            "SELECT count(*) FROM reminders WHERE state IN ('pending', 'sending') "
            "AND due_at <= ?", (iso(FIND_NOW),))
        out.left_due = int(row[0]) if row else -1
        out.states = {r[0]: r[1] for r in await services.db.fetchall(
            "SELECT state, count(*) FROM reminders WHERE subject = ? GROUP BY state",
            (SUBJECT,))}
        # Python allocations of one full scan (1,000 rows), traced: put 1,000 back and rescan.
        await services.db.execute(
            "UPDATE reminders SET state = 'pending' WHERE id IN (SELECT id FROM reminders "
            "WHERE subject = ? AND state = 'sent' AND due_at <= ? LIMIT 1000)",
            (SUBJECT, iso(FIND_NOW)))
        gc.collect()
        tracemalloc.start()
        r = await service.scan_once()
        out.traced_scan_peak_kb = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
        out.traced_scan_sent = r.sent
    finally:
        await services.close()
    return out


async def part_find(workdir: Path, total: int, users: int, repeats: int) -> dict[str, Any]:
    db_path = workdir / "find.db"
    await migrate(db_path)
    seed_people(db_path, users, "bench", FIND_NOW - timedelta(days=400))
    mark_digests_done(db_path, users, FIND_NOW.replace(hour=8, minute=0))
    rng = random.Random(4)
    small = total // 10
    due_ids = set(rng.sample(range(1, small + 1), DUE))
    progress(f"part 1: inserting {small:,} reminder rows")
    t_small = insert_reminders(db_path, reminder_rows(rng, 1, small, due_ids, FIND_NOW, users))
    finds = [await measure_find(db_path, small, repeats)]
    progress(f"part 1: topping up to {total:,} rows")
    t_big = insert_reminders(db_path, reminder_rows(rng, small + 1, total - small, set(),
                                                    FIND_NOW, users))
    finds.append(await measure_find(db_path, total, repeats))
    progress("part 1: draining the due rows with a no-op notifier")
    drained = await drain(db_path)
    return {"insert_s": t_small + t_big, "finds": finds, "drain": drained}


# --- part 2: the morning fan-out --------------------------------------------------------------
class Counting(logging.Handler):
    """Counts log records by (logger, message template); prints nothing."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[tuple[str, str]] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[(record.name, str(record.msg)[:60])] += 1


@dataclass
class FanoutResult:
    mode: str
    users: int
    interval_s: float
    start_local: str
    wall_s: float = 0.0  # first scan start -> last message accepted by the fake
    first_msg_s: float = 0.0
    delivered: int = 0
    attempts: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    duplicated: int = 0
    strangers: int = 0
    settled: int = 0
    scans: list[dict[str, Any]] = field(default_factory=list)
    limiter_retries: int = 0
    escaped: dict[str, int] = field(default_factory=dict)
    pauses: int = 0
    paused_s: float = 0.0
    window_rates: list[float] = field(default_factory=list)
    rss_peak_kb: int = 0
    rss_start_kb: int = 0
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return self.delivered / self.wall_s if self.wall_s else 0.0

    @property
    def wire_rate(self) -> float:
        return self.attempts / self.wall_s if self.wall_s else 0.0


def seed_open_items(db_path: Path, users: int, mode: str, day_start: datetime) -> None:
    """One open item per user, as one 'bench' reminder row (what the to-do list shows).
    digests: due at 16:00 today (so at 08:00 the digest lists it, nothing is due yet).
    reminders: due at the start (10:00), non-urgent; today's digest already went out."""
    con = sqlite3.connect(db_path)
    due = day_start.replace(hour=16) if mode == "digests" else day_start
    with con:
        con.executemany(
            "INSERT INTO reminders(team_id, user_id, subject, subject_id, kind, due_at, urgent, "
            "dedupe_key, detail, created_at) VALUES (?, ?, ?, ?, 'contact.half', ?, 0, ?, '{}', ?)",
            [(team_of(u, users), u, SUBJECT, u, iso(due), f"{SUBJECT}:{u}:contact.half:{u}",
              iso(day_start - timedelta(days=1))) for u in range(1, users + 1)])
        if mode == "reminders":
            con.executemany(
                "INSERT INTO job_runs(job, period, user_id, done_at) VALUES ('digest', ?, ?, ?)",
                [(day_start.date().isoformat(), u, iso(day_start.replace(hour=8)))
                 for u in range(1, users + 1)])
    con.close()


async def part_fanout(workdir: Path, users: int, mode: str, seed: int,
                      timeout_s: float) -> FanoutResult:
    start = FANOUT_START if mode == "digests" else FANOUT_START.replace(hour=10)
    db_path = workdir / f"fanout-{mode}.db"
    await migrate(db_path)
    seed_people(db_path, users, "telegram", start - timedelta(days=30))
    seed_open_items(db_path, users, mode, start)
    counting = Counting()
    root = logging.getLogger()
    root.addHandler(counting)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        async with FakeBotAPI() as fake:
            settings = settings_for(db_path, telegram_token=DEFAULT_TOKEN,
                                    telegram_base_url=fake.base_url,
                                    telegram_base_file_url=fake.base_file_url)
            res = FanoutResult(mode, users, settings.scan_interval_seconds,
                               f"{start:%Y-%m-%d %H:%M} {start.tzname()}")
            services = await Services.open(settings, ShiftedClock(start))
            channel = TelegramChannel(Assistant(services), settings)  # as deployed
            await channel.start()
            try:
                await run_fanout(fake, services, channel, res, seed, timeout_s)
            finally:
                await channel.stop()
                await services.close()
    finally:
        root.removeHandler(counting)
        root.setLevel(old_level)
    res.limiter_retries = sum(n for (name, msg), n in counting.counts.items()
                              if name.endswith("AIORateLimiter") and "Retrying" in msg)
    res.escaped = {f"{name}: {msg}": n for (name, msg), n in counting.counts.items()
                   if name.startswith("bot.")}
    return res


async def run_fanout(fake: FakeBotAPI, services: Services, channel: TelegramChannel,
                     res: FanoutResult, seed: int, timeout_s: float) -> None:
    bot = fake.bot()
    attempts: list[tuple[float, str | None]] = []  # (time, fault kind or None)
    delivered: list[tuple[float, int]] = []
    pick_fault = fake._pick_fault
    store = bot._store

    def picked(method: str) -> tuple[str, int] | None:
        fault = pick_fault(method)
        if method == "sendMessage":
            attempts.append((time.perf_counter(), fault[0] if fault else None))
        return fault

    def stored(chat: Any, rec: dict[str, Any]) -> dict[str, Any]:
        if rec.get("method") == "sendMessage":
            delivered.append((time.perf_counter(), chat.id))
        return store(chat, rec)

    fake._pick_fault = picked  # type: ignore[method-assign]
    bot._store = stored  # type: ignore[method-assign]
    fake.fail_ratio("sendMessage", FAULT_RATIO, kinds=("429", "502"), seed=seed, retry_after=1)

    service = ReminderService(services, Dispatcher(services, [channel.notifier]),
                              registry=bench_registry())
    scan = service.scan_once
    t_origin = 0.0

    async def timed_scan() -> ScanResult:
        t0 = time.perf_counter()
        r = await scan()
        res.scans.append({"start_s": t0 - t_origin, "wall_s": time.perf_counter() - t0,
                          "digests": r.digests, "sent": r.sent, "retried": r.retried,
                          "failed": r.failed, "held": r.held, "dropped": r.dropped})
        return r

    service.scan_once = timed_scan  # type: ignore[method-assign]
    expected = {tg_id(u) for u in range(1, res.users + 1)}
    gc.collect()
    res.rss_start_kb = proc_status()["VmRSS"]
    reset_hwm()
    scheduler = ReminderScheduler(service, res.interval_s)  # as deployed: APScheduler
    t_origin = time.perf_counter()
    scheduler.start()
    try:
        deadline = t_origin + timeout_s
        while True:
            await asyncio.sleep(0.25)
            got = {cid for _, cid in delivered}
            if expected <= got and await settled_count(services, res.mode) >= res.users:
                break
            if time.perf_counter() > deadline:
                res.timed_out = True
                break
    finally:
        scheduler.stop()
        async with service._scan_lock:  # let a running scan finish before reading
            pass
    await asyncio.sleep(1.5)  # anything still in flight lands (and would count as duplicate)
    res.rss_peak_kb = proc_status()["VmHWM"]
    fake.clear_faults()
    res.settled = await settled_count(services, res.mode)
    res.delivered = len(delivered)
    per_chat = Counter(cid for _, cid in delivered)
    res.lost = sum(1 for c in expected if per_chat[c] == 0)
    res.duplicated = sum(n - 1 for c, n in per_chat.items() if c in expected and n > 1)
    res.strangers = sum(n for c, n in per_chat.items() if c not in expected)
    t_last = max(t for t, _ in delivered) if delivered else t_origin
    res.wall_s = t_last - t_origin
    res.first_msg_s = (min(t for t, _ in delivered) - t_origin) if delivered else 0.0
    window = [(t, k) for t, k in attempts if t <= t_last]
    res.attempts = len(window)
    res.faults = dict(Counter(k for _, k in window if k))
    times = [t for t, _ in window]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b - a > 0.5]
    res.pauses, res.paused_s = len(gaps), sum(gaps)
    ok_times = [t - t_origin for t, _ in delivered]
    span = int(res.wall_s // 10)
    res.window_rates = [sum(1 for t in ok_times if 10 * w <= t < 10 * w + 10) / 10
                        for w in range(span)]


async def settled_count(services: Services, mode: str) -> int:
    if mode == "digests":
        row = await services.db.fetchone(
            "SELECT count(*) FROM job_runs WHERE job = 'digest' AND period = ?",
            (FANOUT_START.date().isoformat(),))
    else:
        row = await services.db.fetchone(
            "SELECT count(*) FROM reminders WHERE subject = ? AND state = 'sent'", (SUBJECT,))
    return int(row[0]) if row else 0
