"""WeCom channel (issue #9): callback acknowledgement latency and per-step latency beside
Telegram in one process, and a 5,000-member reminder fan-out under WeCom's per-member limits.

    .venv/bin/python -m bench.bench_wecom [--quick] [--json out.json]

Part 1. One Assistant serves the real WeComChannel (aiohttp callback server, inbox, outbox,
API client) against the loopback FakeWeCom and the real TelegramChannel (PTB long polling,
AIORateLimiter as deployed) against the loopback FakeBotAPI, on one SQLite file, with the
real clock. N WeCom members and N Telegram users (N = 1, 50, 200; "1" is 10 users one after
the other) each run the same 7-step work-log script at once: prefill, a time, content, three
skips, /cancel. For WeCom each step is a callback encrypted and signed by
tests/wecom_reference.py; measured: the POST's answer (the empty 200, "ack") and the first
message WeCom receives for it ("step"). For Telegram: the update's first sendMessage.

Part 2. 5,000 WeCom members each have one due reminder (a synthetic kind, as in
bench_reminders); ReminderService.scan_once pushes them through Dispatcher -> WeComNotifier;
10% of message/send calls fail with 45009, -1 or 502 and are retried by the outbox. Then 100
members with 40 due reminders each (4,000) on a fake clock moved a minute at a time: the
per-member budget holds the excess in the database. Measured: time, lost, doubled, and what
the fake WeCom dropped for being over its limits (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_reminders import SUBJECT, bench_registry
from bot.assistant import Assistant
from bot.channels.telegram import TelegramChannel
from bot.channels.wecom.channel import WeComChannel
from bot.clock import FakeClock
from bot.config import load_settings
from bot.models import Role
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.services import Services
from tests.conftest import telegram_settings
from tests.fakebotapi import FakeBotAPI
from tests.fakewecom import FakeWeCom
from tests.wecom_harness import wecom_settings

SCRIPT = ("记录巡视 3号台区", "刚才", "更换3号杆表箱锁具", "跳过", "跳过", "跳过", "/cancel")
FAULT_RATIO = 0.10
STAGGER_S = 2.0  # part 1: members start their scripts within the first 2 s


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return f"{pct(values, 0.5) * 1000:.1f} / {pct(values, 0.99) * 1000:.1f}"


async def register(services: Services, n: int, level: int) -> tuple[list[str], list[int]]:
    """n WeCom members and n Telegram users, registered by invite as real ones are."""
    wecom = [f"wc{level}_{i}" for i in range(n)]
    telegram = [10_000 * level + i for i in range(n)]
    for channel, ext in [*(("wecom", w) for w in wecom),
                         *(("telegram", str(t)) for t in telegram)]:
        invite = await services.people.create_invite(
            role=Role.MANAGER, team="城东供电所", areas=["3号台区", "5号台区"], name=ext,
            now=services.clock.now(), ttl=timedelta(days=7))
        await services.people.redeem_invite(invite.code, channel=channel, external_id=ext,
                                            fallback_name=ext, now=services.clock.now())
    return wecom, telegram


class Arrivals:
    """One event per member, set when the fake WeCom takes a message for them: the fake's own
    wait_for wakes every waiter on every message, which at 200 waiters costs more CPU than
    the bot under test."""

    def __init__(self, fake: FakeWeCom) -> None:
        self.events: dict[str, asyncio.Event] = {}
        deliver = fake._deliver

        def on_deliver(msg: Any) -> None:
            deliver(msg)
            self.event(msg.touser).set()

        fake._deliver = on_deliver  # type: ignore[method-assign]
        self.fake = fake

    def event(self, user: str) -> asyncio.Event:
        return self.events.setdefault(user, asyncio.Event())

    async def wait(self, user: str, count: int) -> None:
        while len(self.fake.sent(user)) < count:
            ev = self.event(user)
            ev.clear()
            await asyncio.wait_for(ev.wait(), 60)


class Poster:
    """WeCom's side of the callbacks on a thread with its own event loop: the ack is timed
    there, not by the bot's busy loop (which would add its own lag to the measurement)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.session: aiohttp.ClientSession | None = None

    async def _post(self, url: str, query: dict[str, str], body: bytes) -> float:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0))  # one connection per member
        t0 = time.perf_counter()
        async with self.session.post(url, params=query, data=body) as resp:
            await resp.read()
            assert resp.status == 200
        return time.perf_counter() - t0

    async def post(self, url: str, query: dict[str, str], body: bytes) -> float:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            self._post(url, query, body), self.loop))

    def close(self) -> None:
        if self.session is not None:
            asyncio.run_coroutine_threadsafe(self.session.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def wecom_user(fake: FakeWeCom, arrivals: Arrivals, url: str, poster: Poster,
                     user: str, acks: list[float], steps: list[float],
                     start_within: float = 0.0) -> None:
    # People do not all press send in the same millisecond: each starts within the first
    # `start_within` seconds (seeded), then goes as fast as the answers come.
    await asyncio.sleep(random.Random(user).uniform(0, start_within))
    for text in SCRIPT:
        query, body = fake.encrypt_callback(fake.text_xml(user, text))
        before = len(fake.sent(user))
        t0 = time.perf_counter()
        acks.append(await poster.post(url, query, body))
        await arrivals.wait(user, before + 1)
        steps.append(time.perf_counter() - t0)
        await asyncio.sleep(0.05)  # the rest of the answer, and a person reading it


async def telegram_user(tg: FakeBotAPI, chat: int, steps: list[float]) -> None:
    bot = tg.bot()
    for text in SCRIPT:
        t0 = time.perf_counter()
        await bot._respond(chat, lambda t=text: bot.user_sends(chat, t), include_edits=False,
                           timeout=60, idle=0)
        steps.append(time.perf_counter() - t0)
        await asyncio.sleep(0.05)


async def part1(levels: list[str], tmp: Path) -> list[dict[str, Any]]:
    """`levels`: member counts; "200b" is 200 starting in the same instant (a burst)."""
    settings = load_settings(db_path=tmp / "p1.db")
    services = await Services.open(settings)
    rows = []
    async with FakeWeCom() as fake, FakeBotAPI() as tg:
        assistant = Assistant(services)
        wc = WeComChannel(assistant, wecom=wecom_settings(fake))
        tgc = TelegramChannel(assistant, telegram_settings(settings, tg))
        await wc.start()
        await tgc.start()
        arrivals = Arrivals(fake)
        poster = Poster()
        try:
            for spec in levels:
                level, burst = int(spec.rstrip("b")), spec.endswith("b")
                n = 10 if level == 1 else level
                wecom, telegram = await register(services, n, level)
                acks: list[float] = []
                wsteps: list[float] = []
                tsteps: list[float] = []
                load = os.getloadavg()[0]
                t0 = time.perf_counter()
                if level == 1:  # one at a time
                    for w, t in zip(wecom, telegram, strict=True):
                        await asyncio.gather(
                            wecom_user(fake, arrivals, wc.url, poster, w, acks, wsteps),
                            telegram_user(tg, t, tsteps))
                else:
                    await asyncio.gather(
                        *(wecom_user(fake, arrivals, wc.url, poster, w, acks, wsteps,
                                     start_within=0.0 if burst else STAGGER_S)
                          for w in wecom),
                        *(telegram_user(tg, t, tsteps) for t in telegram))
                await wc.idle()
                rows.append({"users": spec, "ack_ms": ms(acks), "ack_max_ms":
                             max(acks) * 1000, "wecom_step_ms": ms(wsteps),
                             "telegram_step_ms": ms(tsteps), "samples": len(acks),
                             "wall_s": time.perf_counter() - t0, "load": load,
                             "dropped": len(fake.dropped), "truncated": len(fake.truncated)})
                print(f"part 1, {spec} users: {rows[-1]}", flush=True)
        finally:
            poster.close()
        await tgc.stop()
        await wc.stop()
    await services.close()
    return rows


async def seed_reminders(services: Services, users: int, per_user: int, now: datetime) -> None:
    """`users` WeCom members (one team each 25) with `per_user` due bench reminders."""
    db = services.db
    ts = now.isoformat(timespec="seconds")
    async with db.tx() as tx:
        teams = max(1, users // 25)
        await tx.executemany("INSERT INTO teams(id, name, created_at) VALUES (?, ?, ?)",
                             [(t, f"第{t}供电所", ts) for t in range(1, teams + 1)])
        await tx.executemany(
            "INSERT INTO users(id, name, role, team_id, created_at) VALUES (?, ?, ?, ?, ?)",
            [(u, f"经理{u}", "manager", (u - 1) % teams + 1, ts) for u in range(1, users + 1)])
        await tx.executemany(
            "INSERT INTO identities(channel, external_id, user_id, created_at) "
            "VALUES ('wecom', ?, ?, ?)", [(f"m{u}", u, ts) for u in range(1, users + 1)])
        await tx.executemany(
            "INSERT INTO user_settings(user_id, quiet_off) VALUES (?, 1)",
            [(u,) for u in range(1, users + 1)])
        due = (now - timedelta(minutes=1)).isoformat(timespec="seconds")
        await tx.executemany(
            "INSERT INTO reminders(team_id, user_id, subject, subject_id, kind, due_at, urgent, "
            "dedupe_key, detail, created_at) VALUES (?, ?, ?, ?, 'contact.half', ?, 0, ?, '{}', ?)",
            [((u - 1) % teams + 1, u, SUBJECT, u * 1000 + k, due, f"b:{u}:{k}", ts)
             for u in range(1, users + 1) for k in range(per_user)])
        await tx.execute("INSERT INTO job_runs(job, period, user_id, done_at) "
                         "SELECT 'digest', ?, id, ? FROM users",
                         (now.astimezone(services.settings.tz).date().isoformat(), ts))


def delivered(fake: FakeWeCom) -> Counter[str]:
    """Reminders each member received (the text part carries the reminder's words)."""
    got: Counter[str] = Counter()
    for m in fake.messages:
        if m.delivered and m.msgtype == "text" and "巡视任务" in m.text:
            got[m.touser] += m.text.count("巡视任务")
    return got


async def unsent(channel: WeComChannel) -> list[tuple[str, float]]:
    return await channel.store.open_recipients(channel.services.clock.now().timestamp())


async def drain(channel: WeComChannel, limit_s: float) -> None:
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        await channel.idle()
        if not await unsent(channel):
            return
        await asyncio.sleep(0.2)


async def part2_fanout(users: int, tmp: Path) -> dict[str, Any]:
    settings = load_settings(db_path=tmp / "p2.db")
    services = await Services.open(settings)
    now = datetime.now(UTC)
    await seed_reminders(services, users, 1, now)
    rng = random.Random(9)
    async with FakeWeCom() as fake:
        channel = WeComChannel(Assistant(services), wecom=wecom_settings(fake))
        await channel.start()
        faults = 0
        for _ in range(int(users * FAULT_RATIO)):
            fake.fail_next("/cgi-bin/message/send", rng.choice(["45009", "-1", "502"]))
            faults += 1
        service = ReminderService(services, Dispatcher.for_channels(services, [channel]),
                                  router=bench_registry())
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        result = await service.scan_once()
        scan_s = time.perf_counter() - t0
        await drain(channel, 600)
        wall = time.perf_counter() - t0
        got = delivered(fake)
        await channel.stop()
    await services.close()
    return {"users": users, "scan_s": scan_s, "wall_s": wall, "sent_rows": result.sent,
            "faults": faults, "lost": sum(1 for u in range(1, users + 1) if not got[f"m{u}"]),
            "doubled": sum(1 for c in got.values() if c > 1),
            "dropped": len(fake.dropped), "truncated": len(fake.truncated),
            "msg_per_s": len([m for m in fake.messages if m.delivered]) / wall, "load": load}


async def part2_burst(users: int, per_user: int, tmp: Path) -> dict[str, Any]:
    """Bursts over the per-member limit, on a fake clock moved a minute at a time (the fake
    WeCom's clock moved with it)."""
    settings = load_settings(db_path=tmp / "p3.db")
    start = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    clock = FakeClock(start)
    services = await Services.open(settings, clock)
    await seed_reminders(services, users, per_user, start)
    async with FakeWeCom() as fake:
        channel = WeComChannel(Assistant(services), wecom=wecom_settings(fake))
        await channel.start()
        service = ReminderService(services, Dispatcher.for_channels(services, [channel]),
                                  router=bench_registry())
        t0 = time.perf_counter()
        await service.scan_once()
        minutes = 0
        while await unsent(channel):
            await channel.idle()
            if not await unsent(channel):
                break
            clock.advance(seconds=61)
            fake.advance(61)
            minutes += 1
            await channel.sender.sweep()
            await channel.idle()
        wall = time.perf_counter() - t0
        got = delivered(fake)
        per_minute = Counter((m.touser, int((m.at - fake.messages[0].at) // 61))
                             for m in fake.messages if m.delivered)
        await channel.stop()
    await services.close()
    return {"users": users, "per_user": per_user, "fake_minutes": minutes, "wall_s": wall,
            "lost": sum(per_user - got[f"m{u}"] for u in range(1, users + 1)
                        if got[f"m{u}"] < per_user),
            "doubled": sum(c - per_user for c in got.values() if c > per_user),
            "dropped": len(fake.dropped), "max_per_member_minute": max(per_minute.values())}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="bench-wecom-"))
    levels = args.levels.split(",") if args.levels else (
        ["1", "20"] if args.quick else ["1", "50", "200", "200b"])
    out: dict[str, Any] = {"machine": {"python": platform.python_version(),
                                       "cpu": platform.processor() or platform.machine(),
                                       "cores": os.cpu_count(),
                                       "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")},
                           "load_start": os.getloadavg()}
    if "1" in args.parts:
        out["part1"] = await part1(levels, tmp)
        out["load_after_part1"] = os.getloadavg()
    if "2" in args.parts:
        out["fanout"] = await part2_fanout(500 if args.quick else 5000, tmp)
        print(f"fan-out: {out['fanout']}", flush=True)
        out["burst"] = await part2_burst(10 if args.quick else 100, 40, tmp)
        print(f"burst: {out['burst']}", flush=True)
    out["load_end"] = os.getloadavg()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--parts", default="1,2", help="1: latency, 2: fan-out (default both)")
    p.add_argument("--levels", default="",
                   help="part 1's user counts, e.g. 1,50,200,200b (b: all start at once)")
    args = p.parse_args()
    out = asyncio.run(main_async(args))
    text = json.dumps(out, ensure_ascii=False, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
