"""Replies ahead of pushes in the send budget, and the Monday report's pace (issue #12).

    .venv/bin/python -m bench.bench_sends [--quick] [--users N] [--rates 35,20]
                                          [--seconds S] [--monday N] [--json out.json]
                                          [--pg | --pg-only] [--variants echo,lanes]

Part 1 (replies during the digest wave). `--users` managers (3,000) with a Telegram identity
and one open item each; the fake Bot API refuses (429, retry_after 1) any sendMessage /
sendPhoto / sendDocument beyond 30 in the last second, as Telegram's flood limit does. For
`--seconds` (60) managers chosen at random (one message in flight each, as on a phone) write
"待办" at `--rates` a second (Poisson arrivals); at t = 2 s the 08:00 digest wave for all of
them starts (TAIQU_DIGEST_WINDOW_MINUTES=0: everyone at once, the hardest case), driven by the
deployed ReminderScheduler on a clock shifted to 08:00 that runs at real speed. A reply's
latency is from the update being queued in the fake to the bot's answer arriving there.
Variants, one after the other in the same process and run:
  echo     bare PTB echo bot (build_echo_app, AIORateLimiter), replies only, no digest
  fifo     TelegramChannel with PTB's AIORateLimiter (one queue: what main had)
  lanes    TelegramChannel as deployed now (the core's two-lane SendBudget)
  lanes-paid  the same with TAIQU_TELEGRAM_PAID_REPLIES on: a reply that would wait more
           than TAIQU_TELEGRAM_PAID_AFTER_SECONDS goes with allow_paid_broadcast (the fake
           counts those against 1000 a second, not the 30; 0.1 Star each)
Every chat must hold exactly one digest (lost 0, doubled 0); every message a reply.
With --pg (issue #11), the same on a throwaway PostgreSQL (tests/pg_server.py; the people
copied in by `db copy`) with two instances in this process: one polls and answers every
manager, the other holds the scan and sends the digest wave. Variants:
  pg-alone   each instance with its own in-process budget at the full rate (before)
  pg-shared  the bot token's budget shared through the database (as deployed)
  pg-paid    the same with TAIQU_TELEGRAM_PAID_REPLIES on (paid pace and day's cap shared)
For these the table also gives a reply's wait in the send budget alone.

Part 2 (the Monday report for `--monday` people, 33,000). Simulated on a fast fake clock:
the real `weekly_report_job` inside the real `ReminderService.scan_once`, scans an interval
(60 s) apart as ReminderScheduler starts them, pushes through the Dispatcher to a notifier
that takes each message (text, each file) from a SendBudget at the Telegram budget (28/s)
whose sleeps move the fake clock. The report itself is stubbed (not measured here: one
manager's scoped report costs ~0.02 s, BENCHMARKS.md "Reports read only what they report"),
leads carry two files (XLSX + chart). Reported: minutes of fake time until everyone has it,
scans, sends, lost/doubled; also with the managers' files sent unasked (as before).

Prints markdown tables; goals are reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram.ext import AIORateLimiter

from bench.bench_reminders import (
    FANOUT_START,
    ShiftedClock,
    bench_registry,
    machine,
    migrate,
    pct,
    progress,
    seed_open_items,
    seed_people,
    settings_for,
    tg_id,
)
from bot.assistant import Assistant
from bot.channels.telegram import LaneRateLimiter, TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings
from bot.events import Attachment, Reply
from bot.features.reports import handlers as report_handlers
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.scheduler import ReminderScheduler
from bot.sendbudget import Lane, SendBudget, current_lane
from bot.services import Services
from bot.storage.copy import copy_database
from bot.storage.db import Database
from bot.storage.pg import PgDatabase
from tests.fakebotapi import DEFAULT_TOKEN, FakeBotAPI, build_echo_app, run_polling
from tests.pg_server import PgServer

LIMIT = 30  # Telegram: messages a second per bot token
DIGEST_MARK = "☀️"
GOAL_P99_S = 2.0
GOAL_MONDAY_MIN = 30.0


# --- part 1 -----------------------------------------------------------------------------------
def enforce_flood_limit(fake: FakeBotAPI, per_second: int) -> Counter[str]:
    """The fake answers 429 (retry_after 1) to a free send beyond `per_second` in the last
    second (a paid one, allow_paid_broadcast, is counted against 1000 a second instead)."""
    fake.flood_limit = per_second
    return fake.flood_refused


@dataclass
class WaveResult:
    variant: str
    rate: float
    users: int
    seconds: float
    replies_asked: int = 0
    replies_got: int = 0
    latencies: list[float] = field(default_factory=list)
    digest_s: float | None = None  # from the wave's start until every chat has its digest
    digests: int = 0
    lost: int = 0
    doubled: int = 0
    refused_429: int = 0
    timed_out: bool = False
    budget_waits: list[float] = field(default_factory=list)  # a reply's wait in the budget
    # pg-shared: statements the answering instance sent to the store (its chat steps and
    # its send budget's bookings) per message it sent, and of them the budget's bookings
    trips_per_reply: float | None = None
    bookings_per_reply: float | None = None
    paid: int = 0  # sends made with allow_paid_broadcast (the *-paid variants): 0.1 Star each

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        lat = d.pop("latencies")
        d.update(p50=pct(lat, 0.5), p99=pct(lat, 0.99), max=max(lat, default=float("nan")))
        waits = d.pop("budget_waits")
        d.update(budget_p50=pct(waits, 0.5), budget_p99=pct(waits, 0.99))
        return d


class Arrived:
    """When each person got what, timed as it reaches the fake: replies, and digests (the
    message that starts with DIGEST_MARK). The fakes' hooks (Watch, and bench_sends_wecom's)
    call `saw`."""

    def __init__(self) -> None:
        self.replies: dict[Any, list[float]] = {}
        self.digests: Counter[Any] = Counter()
        self.last_digest = 0.0

    def saw(self, who: Any, digest: bool) -> None:
        now = time.monotonic()
        if digest:
            self.digests[who] += 1
            self.last_digest = now
        else:
            self.replies.setdefault(who, []).append(now)


class Watch(Arrived):
    """The fake Bot API's store, timed."""

    def __init__(self, fake: FakeBotAPI) -> None:
        super().__init__()
        bot = fake.bot()
        store = bot._store

        def stored(chat: Any, rec: dict[str, Any]) -> dict[str, Any]:
            if rec.get("method") == "sendMessage":
                self.saw(chat.id, str(rec.get("text") or "").startswith(DIGEST_MARK))
            return store(chat, rec)

        bot._store = stored  # type: ignore[method-assign]


Say = Callable[[Any], Awaitable[None]]  # a person writes "待办" (to the bot under test)


def says_on_telegram(fake: FakeBotAPI) -> Say:
    async def say(chat: Any) -> None:
        fake.user_sends(chat, "待办")

    return say


async def drive_replies(say: Say, watch: Arrived, res: WaveResult, chats: list[Any],
                        seed: int) -> None:
    """Poisson arrivals at res.rate for res.seconds; one message in flight per person.
    A reply's latency runs from just before `say` until its first message reaches the fake."""
    rng = random.Random(seed)
    waiting: set[Any] = set()
    pending: list[asyncio.Task[None]] = []

    async def one(chat: Any) -> None:
        seen = len(watch.replies.get(chat, []))
        t0 = time.monotonic()
        await say(chat)
        res.replies_asked += 1
        deadline = t0 + 120
        while time.monotonic() < deadline:
            got = watch.replies.get(chat, [])
            if len(got) > seen:
                res.latencies.append(got[seen] - t0)
                res.replies_got += 1
                break
            await asyncio.sleep(0.01)
        waiting.discard(chat)

    end = time.monotonic() + res.seconds
    while time.monotonic() < end:
        await asyncio.sleep(rng.expovariate(res.rate))
        free = [c for c in rng.sample(chats, 8) if c not in waiting]
        if free:
            waiting.add(free[0])
            pending.append(asyncio.create_task(one(free[0])))
    await asyncio.gather(*pending)


async def seed_wave(db_path: Path, users: int, channel: str) -> None:
    """The people of a wave on `channel` (their ids: str(tg_id(n))), one open item each for
    the digest to list."""
    await migrate(db_path)
    seed_people(db_path, users, channel, FANOUT_START - timedelta(days=30))
    seed_open_items(db_path, users, "digests", FANOUT_START)


async def run_wave(workdir: Path, variant: str, users: int, rate: float, seconds: float,
                   seed: int, timeout_s: float) -> WaveResult:
    res = WaveResult(variant, rate, users, seconds)
    db_path = workdir / f"wave-{variant}-{rate:g}.db"
    await seed_wave(db_path, users, "telegram")
    chats = [tg_id(u) for u in range(1, users + 1)]
    async with FakeBotAPI() as fake:
        refused = enforce_flood_limit(fake, LIMIT)
        watch = Watch(fake)
        if variant == "echo":
            app = build_echo_app(fake, DEFAULT_TOKEN, rate_limiter=AIORateLimiter(max_retries=5))
            async with run_polling(app):
                await drive_replies(says_on_telegram(fake), watch, res, chats, seed)
        else:
            await wave_through_taiqu(fake, watch, res, db_path, chats, variant, seed, timeout_s)
        res.refused_429 = sum(refused.values())
        res.paid = fake.paid_sends
    return res


async def wave_through_taiqu(fake: FakeBotAPI, watch: Watch, res: WaveResult, db_path: Path,
                             chats: list[int], variant: str, seed: int,
                             timeout_s: float) -> None:
    settings = bench_settings(fake, db_path, telegram_paid_replies=variant == "lanes-paid")
    services = await Services.open(settings, ShiftedClock(FANOUT_START - timedelta(seconds=2)))
    channel = TelegramChannel(Assistant(services), settings, rate_limiter=variant != "fifo")
    if variant == "fifo":  # what main had: PTB's AIORateLimiter, one queue for all sends
        channel.app.bot._rate_limiter = AIORateLimiter(max_retries=5)
    await channel.start()
    service = ReminderService(services, Dispatcher(services, [channel.notifier]),
                              router=bench_registry())
    scheduler = ReminderScheduler(service, settings.scan_interval_seconds)
    try:
        await replies_during_the_digest(watch, res, chats, seed, timeout_s,
                                        says_on_telegram(fake), scheduler)
    finally:
        await scheduler.stop()
        await channel.stop()
        await services.close()
    await tally(watch, res, chats)


def bench_settings(fake: FakeBotAPI, db_path: Path, **extra: Any) -> Settings:
    return settings_for(db_path, telegram_token=DEFAULT_TOKEN, telegram_base_url=fake.base_url,
                        telegram_base_file_url=fake.base_file_url, digest_window_minutes=0,
                        **extra)


async def replies_during_the_digest(watch: Arrived, res: WaveResult, chats: list[Any],
                                    seed: int, timeout_s: float, say: Say,
                                    scheduler: ReminderScheduler) -> None:
    """Replies for res.seconds; at t = 2 s the scheduler starts (the digest wave)."""
    replies = asyncio.create_task(drive_replies(say, watch, res, chats, seed))
    await asyncio.sleep(2.0)
    wave_start = time.monotonic()
    scheduler.start()
    deadline = wave_start + timeout_s
    while len(watch.digests) < len(chats) and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    res.timed_out = len(watch.digests) < len(chats)
    if not res.timed_out:
        res.digest_s = watch.last_digest - wave_start
    await replies


async def tally(watch: Arrived, res: WaveResult, chats: list[Any]) -> None:
    await asyncio.sleep(0.5)
    res.digests = sum(watch.digests.values())
    res.lost = sum(1 for c in chats if watch.digests[c] == 0)
    res.doubled = sum(n - 1 for n in watch.digests.values() if n > 1)


# --- part 1 on PostgreSQL: two instances, one bot token -----------------------------------------
async def run_wave_pg(workdir: Path, server: PgServer, variant: str, users: int, rate: float,
                      seconds: float, seed: int, timeout_s: float) -> WaveResult:
    """Two instances on one PostgreSQL: one answers the managers (it polls), the other holds
    the scan and sends the digest wave. `pg-shared`: the token's budget shared through the
    database (as deployed); `pg-alone`: each instance with its own in-process budget at
    the full rate (what the instances did before the budget was shared)."""
    res = WaveResult(variant, rate, users, seconds)
    db_path = workdir / f"wave-{variant}-{rate:g}.db"
    await seed_wave(db_path, users, "telegram")
    url = await server.fresh_database()
    async with Database(db_path) as source, PgDatabase(url) as target:
        await copy_database(source, target)
    chats = [tg_id(u) for u in range(1, users + 1)]
    try:
        async with FakeBotAPI() as fake:
            refused = enforce_flood_limit(fake, LIMIT)
            watch = Watch(fake)
            settings = bench_settings(fake, db_path, database_url=url,
                                      telegram_paid_replies=variant == "pg-paid")
            await two_instances(fake, watch, res, settings, chats, variant, seed, timeout_s)
            res.refused_429 = sum(refused.values())
            res.paid = fake.paid_sends
    finally:
        await server.drop(url)
    return res


def time_reply_waits(budget: SendBudget, res: WaveResult) -> None:
    """How long each reply waited in the send budget (the rest of its latency is the
    machine: polling, the chat step, the event loop shared with the fake and the driver)."""
    acquire = budget.acquire

    async def timed(lane: Lane | None = None) -> None:
        t0 = time.monotonic()
        await acquire(lane)
        if (current_lane() if lane is None else lane) is Lane.REPLY:
            res.budget_waits.append(time.monotonic() - t0)

    budget.acquire = timed


async def two_instances(fake: FakeBotAPI, watch: Watch, res: WaveResult, settings: Settings,
                        chats: list[int], variant: str, seed: int, timeout_s: float) -> None:
    clock = ShiftedClock(FANOUT_START - timedelta(seconds=2))
    answering, scanning = (await Services.open(settings, clock),
                           await Services.open(settings, clock))
    channels = [TelegramChannel(Assistant(s), settings) for s in (answering, scanning)]
    if variant == "pg-alone":
        for ch in channels:
            ch.app.bot._rate_limiter = LaneRateLimiter(SendBudget(  # type: ignore[attr-defined]
                settings.telegram_sends_per_second, push_min_share=settings.push_min_share))
    time_reply_waits(channels[0].app.bot.rate_limiter.budget, res)  # type: ignore[union-attr]
    await channels[0].start()  # polls: every manager's message goes to it
    budget = channels[0].app.bot.rate_limiter.budget  # type: ignore[union-attr]
    booked = getattr(budget, "bookings", None)  # None: one statement a send (before blocks)
    answering.db.trips.reset()
    await channels[1].app.initialize()  # sends only
    service = ReminderService(scanning, Dispatcher(scanning, [channels[1].notifier]),
                              router=bench_registry())
    scheduler = ReminderScheduler(service, settings.scan_interval_seconds)
    try:
        await replies_during_the_digest(watch, res, chats, seed, timeout_s,
                                        says_on_telegram(fake), scheduler)
        paid = channels[0].app.bot.rate_limiter.paid  # type: ignore[union-attr]
        sent = (sum(budget.granted.values()) + (paid.sent if paid else 0)
                if variant != "pg-alone" else 0)
        if sent:
            # the paid pace's bookings count too (the day's count is one of the statements)
            paid_booked = getattr(paid.budget, "bookings", 0) if paid else 0
            res.trips_per_reply = (answering.db.trips.trips + answering.db.trips.inline) / sent
            res.bookings_per_reply = ((budget.bookings - booked + paid_booked) / sent
                                      if booked is not None else 1.0)
    finally:
        await scheduler.stop()
        await channels[0].stop()
        await channels[1].app.shutdown()
        await answering.close()
        await scanning.close()
    await tally(watch, res, chats)


# --- part 2 -----------------------------------------------------------------------------------
@dataclass
class MondayResult:
    people: int
    managers_files: str
    sends: int = 0
    scans: int = 0
    minutes: float = 0.0
    got: int = 0
    lost: int = 0
    doubled: int = 0
    wall_s: float = 0.0


class BudgetNotifier:
    """Takes every message (text, each file) from a SendBudget at Telegram's rate."""

    channel = "telegram"

    def __init__(self, budget: SendBudget) -> None:
        self.budget = budget
        self.got: Counter[str] = Counter()
        self.sends = 0

    async def push(self, external_id: str, reply: Reply) -> None:
        for _ in range(1 + len(reply.attachments)):
            await self.budget.acquire()
            self.sends += 1
        self.got[external_id] += 1


async def run_monday(workdir: Path, people: int, files_unasked: bool) -> MondayResult:
    res = MondayResult(people, "unasked (as before)" if files_unasked else "on a tap")
    db_path = workdir / f"monday-{people}-{files_unasked}.db"
    await migrate(db_path)
    monday = FANOUT_START.replace(day=7, hour=8, minute=30)  # Monday 2026-12-07 08:30
    seed_people(db_path, people, "telegram", monday - timedelta(days=40))
    settings = settings_for(db_path)
    clock = FakeClock(monday)
    services = await Services.open(settings, clock)

    def mono() -> float:
        return clock.now().timestamp()

    async def fake_sleep(seconds: float) -> None:  # the budget's one sleeper moves time
        clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    budget = SendBudget(settings.telegram_sends_per_second, push_min_share=0.1,
                        clock=mono, sleep=fake_sleep)
    notifier = BudgetNotifier(budget)
    registry = bench_registry()  # no open items: the Monday report is the only push
    registry.every_scan(report_handlers.weekly_report_job)
    service = ReminderService(services, Dispatcher(services, [notifier]), router=registry)
    xlsx = Attachment("report.xlsx", b"x" * 20_000)
    png = Attachment("chart.png", b"p" * 40_000, "photo")

    async def stub_reply(services_: Services, user: Any, period: Any, now: Any,
                         team_replies: Any) -> Reply:
        lead = user.role.value == "lead"
        files = [xlsx, png] if lead else ([xlsx] if files_unasked else [])
        return Reply(f"📬 上周工作汇总 {user.name}", attachments=files)

    original = report_handlers._weekly_reply
    report_handlers._weekly_reply = stub_reply  # type: ignore[assignment]
    t0 = time.perf_counter()
    try:
        while True:
            started = clock.now()
            await service.scan_once()
            res.scans += 1
            row = await services.db.fetchone(
                "SELECT count(*) FROM job_runs WHERE job = 'weekly_report'")
            if row is not None and row[0] >= people:
                break
            spent = (clock.now() - started).total_seconds()
            clock.advance(seconds=max(0.0, settings.scan_interval_seconds - spent))
    finally:
        report_handlers._weekly_reply = original  # type: ignore[assignment]
        await services.close()
    res.wall_s = time.perf_counter() - t0
    res.minutes = (clock.now() - monday).total_seconds() / 60
    res.sends = notifier.sends
    res.got = len(notifier.got)
    res.lost = people - res.got
    res.doubled = sum(n - 1 for n in notifier.got.values() if n > 1)
    return res


# --- output -----------------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def wave_table(waves: list[dict[str, Any]], judged: tuple[str, ...],
               refused: tuple[str, str] = ("429s", "refused_429"), lose_on_refused: bool = False
               ) -> str:
    """Part 1's table; the goal is judged for the `judged` variants (the deployed ones).
    `refused`: the column's title and the summary key of what the fake refused or dropped
    (a message WeCom drops is lost: `lose_on_refused`; a 429 is sent again)."""
    rows = []
    paid = any("paid" in w["variant"] for w in waves)  # the column only beside a paid wave
    for w in waves:
        met = ("ok" if w["p99"] < GOAL_P99_S and not w["timed_out"] and w["lost"] == 0
               and w["doubled"] == 0 and not (lose_on_refused and w[refused[1]]) else "**missed**"
               ) if w["variant"] in judged else "-"
        digest = ("-" if "echo" in w["variant"] else
                  "not complete" if w["timed_out"] else f"{w['digest_s']:.0f} s")
        rows.append([w["variant"], f"{w['rate']:g}/s", f"{w['replies_got']}/{w['replies_asked']}",
                     f"{w['p50']:.2f}", f"{w['p99']:.2f}", f"{w['max']:.2f}", digest,
                     str(w["lost"]), str(w["doubled"]), str(w[refused[1]]),
                     f"{w['budget_p50']:.2f} / {w['budget_p99']:.2f}",
                     "-" if w.get("trips_per_reply") is None else
                     f"{w['trips_per_reply']:.2f} / {w['bookings_per_reply']:.2f}",
                     *([paid_cell(w)] if paid else []), met])
    return table(["variant", "replies", "answered", "p50 s", "p99 s", "max s",
                  "digest complete", "lost", "doubled", refused[0],
                  "reply's wait in the budget p50 / p99 s",
                  "answering instance: statements / bookings per message sent",
                  *(["paid sends (Stars)"] if paid else []), "goal p99<2 s"], rows)


def paid_cell(w: dict[str, Any]) -> str:
    """Sends made with allow_paid_broadcast and what they cost (0.1 Star each)."""
    paid = int(w.get("paid") or 0)
    return f"{paid} ({paid / 10:g})" if paid or "paid" in w["variant"] else "-"


def render(results: dict[str, Any]) -> str:
    out = ["## Sends: replies ahead of pushes, the Monday report (issue #12)\n"]
    out.append("Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()))
    out.append(f"Load average before / after: {results['load_before']} / {results['load_after']}\n")
    if results["waves"]:
        out.append(wave_table(results["waves"], ("lanes", "pg-shared", "lanes-paid",
                                                 "pg-paid")))
    rows = []
    for m in results["monday"]:
        met = "ok" if m["minutes"] <= GOAL_MONDAY_MIN and m["lost"] == 0 else "**missed**"
        rows.append([str(m["people"]), m["managers_files"], str(m["sends"]), str(m["scans"]),
                     f"{m['minutes']:.1f}", str(m["lost"]), str(m["doubled"]),
                     f"{m['wall_s']:.0f}", met])
    if not rows:
        return "\n".join(out)
    out.append("\nMonday report (fake clock; Telegram budget TAIQU_TELEGRAM_SENDS_PER_SECOND=28; "
               "stubbed report text):\n")
    out.append(table(["people", "managers' files", "sends", "scans", "minutes (fake clock)",
                      "lost", "doubled", "real s", "goal ≤30 min"], rows))
    return "\n".join(out)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "load_before": load(), "waves": [],
                               "monday": []}
    with tempfile.TemporaryDirectory(prefix="bench-sends-") as tmp:
        workdir = Path(tmp)
        for rate in args.rates if not args.pg_only else []:
            for variant in [v for v in ("echo", "fifo", "lanes", "lanes-paid")
                            if v in args.variants]:
                progress(f"wave: {variant} at {rate:g} replies/s, {args.users} users")
                r = await run_wave(workdir, variant, args.users, rate, args.seconds, args.seed,
                                   args.timeout)
                results["waves"].append(r.summary())
                progress(f"  {r.summary() | {'latencies': None}}")
        if args.pg:
            server = PgServer(os.environ.get("TAIQU_TEST_DATABASE_URL")).start()
            try:
                for rate in args.rates:
                    for variant in [v for v in ("pg-alone", "pg-shared", "pg-paid")
                                    if v in args.variants]:
                        progress(f"wave: {variant} at {rate:g} replies/s, {args.users} users, "
                                 "two instances on PostgreSQL")
                        r = await run_wave_pg(workdir, server, variant, args.users, rate,
                                              args.seconds, args.seed, args.timeout)
                        results["waves"].append(r.summary())
                        progress(f"  {r.summary() | {'latencies': None}}")
            finally:
                server.stop()
        for unasked in (False, True) if args.monday and not args.pg_only else ():
            progress(f"monday: {args.monday} people, managers' files unasked={unasked}")
            m = await run_monday(workdir, args.monday, unasked)
            results["monday"].append(asdict(m))
            progress(f"  {asdict(m)}")
    results["load_after"] = load()
    return results


def floats(text: str) -> list[float]:
    return [float(x) for x in str(text).split(",") if x]


def wave_arguments(doc: str, quick: str) -> argparse.ArgumentParser:
    """The options of part 1's waves (here and in bench_sends_wecom); `quick`: its help."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--rates", type=floats, default=[35.0, 20.0],
                   help="replies a second, comma separated (empty: no waves)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--timeout", type=float, default=400.0, help="per wave, seconds")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--json", type=Path)
    return p


def report(results: dict[str, Any], text: str, path: Path | None) -> int:
    """Print the tables; write the results as JSON to `path` if given."""
    print(text)
    if path:
        path.write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = wave_arguments(__doc__, "300 users, 15 s, 3,300 on Monday")
    p.add_argument("--monday", type=int, default=33_000, help="people (0: no Monday report)")
    p.add_argument("--variants", default="echo,fifo,lanes,pg-alone,pg-shared",
                   help="which waves to run, comma separated")
    p.add_argument("--pg", action="store_true",
                   help="also two instances on a throwaway PostgreSQL (pg-alone, pg-shared, "
                   "pg-paid)")
    p.add_argument("--pg-only", action="store_true", help="only the PostgreSQL waves")
    args = p.parse_args(argv)
    args.variants = set(str(args.variants).split(","))
    args.pg = args.pg or args.pg_only
    if args.quick:
        args.users, args.seconds, args.monday = 300, 15.0, 3300
    results = asyncio.run(main_async(args))
    return report(results, render(results), args.json)


if __name__ == "__main__":
    sys.exit(main())
