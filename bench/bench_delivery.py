"""Delivery under faults: how many reminders arrive twice, or never, through the real Telegram
channel on the loopback fake Bot API; and what synchronous=FULL costs a form step.

    .venv/bin/python -m bench.bench_delivery [--reminders 200] [--ratio 0.1] [--parts ...]

Parts (all by default):
  lost       N reminders, a `ratio` of sendMessage calls carried out by the fake but their
             answer lost: "lost" drops the connection, "timeout" holds the answer longer than
             PTB's 5 s read timeout. Scans until every row is settled, the fake clock moved
             30 s between scans (the faults stay on for the re-sends).
  sigterm    N reminders, 150 ms per sendMessage; `taiqu-bot run` (bot.cli._run, in this
             process) gets SIGTERM 0.5 s after its first push, is started again, until all
             are sent.
  durability bench_forms' load run (`taiqu-nolimit`, real subprocess, 1 and 50 users)
             with TAIQU_SQLITE_SYNCHRONOUS=NORMAL and FULL alternately, same session.

Counted in the fake: per chat, messages of the reminder; duplicates = extra copies, lost = chats
without one, marked = copies starting with the "possible repeat" line. Works on older trees
too (copy this file and tests/fakebotapi.py there) to compare before/after in one session.
Temporary files go to $TMPDIR (use a real disk for the durability part, not tmpfs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import Chat
from tests.fakebotapi import DEFAULT_TOKEN, FakeBotAPI

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 27, 10, 30, tzinfo=SHANGHAI)  # complaints accepted (Friday)
DUE = datetime(2026, 11, 27, 15, 1, tzinfo=SHANGHAI)  # their 'contact.half' reminders are due
FIRST_CHAT = 500_000
MARK = "🔁"  # the "possible repeat" line (reminder.maybe_repeat) starts with it
KIND = "contact.half"


# --- seeding ------------------------------------------------------------------------------------
async def complaint(services: Services, chat_id: int) -> None:
    chat = Chat(Assistant(services), "telegram", str(chat_id))
    await chat.say("登记投诉")
    await chat.say("跳过")
    await chat.press("投诉")
    for _ in range(3):
        await chat.say("跳过")
    await chat.press("现在")
    await chat.say(f"客户{chat_id} 反映电压低")
    await chat.press("保存")
    if "已登记投诉工单" not in chat.text:
        raise RuntimeError(chat.text)


async def seed(path: Path, n: int) -> None:
    """n Telegram managers, each with one complaint (one 'contact.half' reminder due at DUE)."""
    services = await Services.open(load_settings(db_path=path), FakeClock(T0))
    try:
        for i in range(n):
            invite = await services.people.create_invite(
                role=Role.MANAGER, team="城东供电所", areas=["3号台区"], name=f"经理{i}",
                now=T0, ttl=timedelta(days=7))
            await services.people.redeem_invite(invite.code, channel="telegram",
                                                external_id=str(FIRST_CHAT + i),
                                                fallback_name=f"经理{i}", now=T0)
            await complaint(services, FIRST_CHAT + i)
    finally:
        await services.close()


def tg_settings(db: Path, fake: FakeBotAPI, **extra: Any) -> Settings:
    return load_settings(db_path=db, telegram_token=DEFAULT_TOKEN,
                         telegram_base_url=fake.base_url,
                         telegram_base_file_url=fake.base_file_url, **extra)


async def open_rows(db: Path) -> int:
    services = await Services.open(load_settings(db_path=db), FakeClock(DUE))
    try:
        row = await services.db.fetchone(
            "SELECT count(*) FROM reminders WHERE kind = ? AND state IN ('pending', 'sending')",
            (KIND,))
        return int(row[0]) if row else 0
    finally:
        await services.close()


def count(fake: FakeBotAPI, n: int) -> dict[str, int]:
    dup = lost = marked = 0
    for i in range(n):
        texts = [str(m.get("text") or "") for m in fake.sent(FIRST_CHAT + i)]
        copies = [t for t in texts if "投诉工单" in t]
        lost += not copies
        dup += max(0, len(copies) - 1)
        marked += sum(t.startswith(MARK) for t in copies)
    return {"reminders": n, "duplicated": dup, "lost": lost, "marked_as_repeat": marked,
            "answers_lost": getattr(fake, "answers_lost", 0),
            "sendMessage_calls": len(fake.calls_to("sendMessage"))}


# --- part 1: answers lost after Telegram accepted the message ----------------------------------
async def lost_answers(template: Path, workdir: Path, n: int, ratio: float,
                       kind: str) -> dict[str, Any]:
    db = workdir / f"lost-{kind}.db"
    shutil.copy(template, db)
    clock = FakeClock(DUE)
    async with FakeBotAPI() as fake:
        fake.hang_seconds = 8.0  # > PTB's default read timeout (5 s)
        settings = tg_settings(db, fake)
        services = await Services.open(settings, clock)
        channel = TelegramChannel(Assistant(services), settings)
        await channel.start()
        started = time.perf_counter()
        scans = 0
        try:
            service = ReminderService(services, Dispatcher(services, [channel.notifier]))
            fake.fail_ratio("sendMessage", ratio, kinds=(kind,), seed=11)
            while scans < 100:
                await service.scan_once()
                scans += 1
                if not await open_rows(db):
                    break
                clock.advance(seconds=30)
            fake.clear_faults()
        finally:
            await channel.stop()
            await services.close()
        return count(fake, n) | {"fault": f"{ratio:.0%} {kind}", "scans": scans,
                                 "wall_s": round(time.perf_counter() - started, 1)}


# --- part 2: SIGTERM with pushes in flight -----------------------------------------------------
async def sigterm_restarts(template: Path, workdir: Path, n: int, latency: float,
                           after: float) -> dict[str, Any]:
    import bot.services
    from bot.cli import _run

    db = workdir / "sigterm.db"
    shutil.copy(template, db)
    clock = FakeClock(DUE)
    real_clock = bot.services.SystemClock
    bot.services.SystemClock = lambda: clock  # type: ignore[assignment, misc, return-value]
    restarts = 0
    started = time.perf_counter()
    try:
        async with FakeBotAPI() as fake:
            fake.latency["sendMessage"] = latency
            settings = tg_settings(db, fake, scan_interval_seconds=0.5)
            while restarts < 60 and await open_rows(db):
                calls = len(fake.calls_to("sendMessage"))
                run = asyncio.create_task(_run(settings))
                deadline = time.perf_counter() + 30
                while len(fake.calls_to("sendMessage")) == calls and not run.done() \
                        and time.perf_counter() < deadline:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(after)
                os.kill(os.getpid(), signal.SIGTERM)
                await asyncio.wait_for(run, 60)
                restarts += 1
            await asyncio.sleep(0.5)  # a push cut off by the old shutdown may still land
            return count(fake, n) | {"restarts": restarts, "latency_ms": int(latency * 1000),
                                     "wall_s": round(time.perf_counter() - started, 1)}
    finally:
        bot.services.SystemClock = real_clock  # type: ignore[misc]


# --- part 3: synchronous NORMAL vs FULL ----------------------------------------------------------
async def durability(users: list[int], repeats: int) -> list[dict[str, Any]]:
    import bench.bench_forms as bf

    base = Path(tempfile.mkdtemp(prefix="taiqu-bench-sync-"))
    plain_env: Callable[..., dict[str, str]] = bf.bot_env
    out: list[dict[str, Any]] = []
    try:
        for n in users:
            template = base / f"seed-{n}.db"
            await bf.seed_db(template, n)
            forms = 20 if n == 1 else 4
            pools: dict[str, list[Any]] = {"NORMAL": [], "FULL": []}
            for rep in range(repeats):  # alternate, so drifting load hits both alike
                order = ("NORMAL", "FULL") if rep % 2 == 0 else ("FULL", "NORMAL")
                for mode in order:
                    bf.bot_env = lambda fake, db, m=mode: plain_env(fake, db) | {  # type: ignore[misc]
                        "TAIQU_SQLITE_SYNCHRONOUS": m}
                    run = await bf.load_run("taiqu-nolimit", n, forms, f"s{n}{mode}{rep}",
                                            template, 120.0)
                    pools[mode].append(run)
                    print(f"  sync={mode:6} users={n:<3} p50={bf.ms(bf.pct(run.all_samples, .5))}"
                          f"ms p99={bf.ms(bf.pct(run.all_samples, .99))}ms wall={run.wall:.1f}s "
                          f"other-load={run.other_load:.2f}", file=sys.stderr)
            for mode, runs in pools.items():
                samples = [x for r in runs for x in r.samples[-1]]  # step 7: 保存 (the commit)
                steps = [x for r in runs for x in r.all_samples]
                out.append({"synchronous": mode, "users": n, "runs": len(runs),
                            "steps": len(steps), "p50_ms": bf.pct(steps, 0.5) * 1000,
                            "p99_ms": bf.pct(steps, 0.99) * 1000,
                            "save_p50_ms": bf.pct(samples, 0.5) * 1000,
                            "save_p99_ms": bf.pct(samples, 0.99) * 1000,
                            "forms_per_s": sum(r.forms_done for r in runs)
                            / sum(r.wall for r in runs),
                            "other_load": statistics.mean(r.other_load for r in runs)})
    finally:
        bf.bot_env = plain_env  # type: ignore[misc]
        shutil.rmtree(base, ignore_errors=True)
    return out


# --- main ----------------------------------------------------------------------------------------
def md_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[k]:.1f}" if isinstance(r[k], float) else str(r[k])
                                       for k in keys) + " |")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    workdir = Path(tempfile.mkdtemp(prefix="taiqu-bench-delivery-"))
    try:
        if {"lost", "sigterm"} & set(args.parts):
            template = workdir / "seed.db"
            await seed(template, args.reminders)
        if "lost" in args.parts:
            results["lost"] = [await lost_answers(template, workdir, args.reminders, args.ratio, k)
                               for k in ("lost", "timeout")]
        if "sigterm" in args.parts:
            results["sigterm"] = [await sigterm_restarts(template, workdir, args.reminders,
                                                         0.15, 0.5)]
        if "durability" in args.parts:
            results["durability"] = await durability([1, 50], args.repeats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_delivery", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reminders", type=int, default=200)
    p.add_argument("--ratio", type=float, default=0.1)
    p.add_argument("--parts", nargs="+", default=["lost", "sigterm", "durability"],
                   choices=["lost", "sigterm", "durability"])
    p.add_argument("--repeats", type=int, default=3, help="durability runs per mode")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    results = asyncio.run(main_async(args))
    for part in ("lost", "sigterm", "durability"):
        if part in results:
            print(f"\n### {part}\n\n{md_table(results[part])}")
    print(f"\nload average before {results['load_before']}, after {results['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
