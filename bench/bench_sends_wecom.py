"""Replies ahead of pushes on WeCom (issue #12): bench_sends' part 1 through the real WeCom
channel.

    .venv/bin/python -m bench.bench_sends_wecom [--quick] [--users N] [--rates 35,20]
                                                [--seconds S] [--sends-per-second R,...]
                                                [--json out.json]

`--users` WeCom members (3,000) with one open item each, on the loopback fake WeCom
(tests/fakewecom.py: like WeCom it silently drops a member's 31st message in a minute and
1001st in an hour; it has no app-wide limit, WeCom publishes none). For `--seconds` (60)
members chosen at random (one message in flight each) write "待办" at `--rates` a second
(Poisson arrivals, bench_sends' driver), each an encrypted, signed callback POSTed to the
real callback endpoint from a thread of its own (bench_wecom's Poster). At t = 2 s the
morning digest for all of them starts (TAIQU_DIGEST_WINDOW_MINUTES=0), driven by the
deployed ReminderScheduler on a clock shifted to 08:01:00: WeCom asks bulk sends to keep
out of :00 and :30, so on WeCom the 08:00 digest goes at the first scan of 08:01
(data/send_pacing.json). A reply's latency runs from the callback's POST to its first
message reaching the fake. Variants, one after the other in the same process and run:
  wecom-echo     a bare WeCom echo: decrypt, send the text back with message/send (no inbox,
                 no outbox, no budget, no core): the machine's share
  wecom@R        WeComChannel as deployed (inbox, core, outbox, per-member budget, the app's
                 two-lane budget) with TAIQU_WECOM_SENDS_PER_SECOND=R (`--sends-per-second`,
                 default 50: the default, not a figure WeCom publishes)
Every member must hold exactly one digest (lost 0, doubled 0) and the fake must have dropped
nothing for a per-member limit. Prints a markdown table (bench_sends' columns; the column of
refusals is what the fake dropped); goals are reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.bench_reminders import (
    FANOUT_START,
    ShiftedClock,
    bench_registry,
    machine,
    pct,
    progress,
    settings_for,
    tg_id,
)
from bench.bench_sends import (
    DIGEST_MARK,
    Arrived,
    Say,
    WaveResult,
    drive_replies,
    floats,
    load,
    replies_during_the_digest,
    report,
    seed_wave,
    table,
    tally,
    time_reply_waits,
    wave_arguments,
    wave_table,
)
from bench.bench_wecom import Poster
from bot.assistant import Assistant
from bot.channels.wecom.api import WeComClient
from bot.channels.wecom.channel import WeComChannel
from bot.channels.wecom.crypto import WeComCrypto
from bot.channels.wecom.messages import TextMessage, parse_envelope, parse_message
from bot.channels.wecom.store import Queued
from bot.notify import Dispatcher
from bot.reminders import ReminderService
from bot.scheduler import ReminderScheduler
from bot.sendbudget import Lane
from bot.services import Services
from tests.fakewecom import FakeWeCom, Sent
from tests.wecom_harness import wecom_settings

# The wave's first scan is at 08:01:00 (WeCom: no bulk sends at :00), 2 s after the start.
WAVE_AT = FANOUT_START + timedelta(minutes=1)


@dataclass
class WeComWaveResult(WaveResult):
    sends_per_second: float | None = None  # the app's budget (None: the echo, unlimited)
    dropped: int = 0  # messages the fake dropped for a member's limit (WeCom: silently)
    sent: int = 0  # messages the fake delivered in the run (replies and digests)
    stages: dict[str, str] = field(default_factory=dict)  # "a→b": "p50 / p99" seconds
    cpu_s: float = 0.0  # this process's CPU seconds in the wave (bot, fake, driver)
    wall_s: float = 0.0


STAGES = ("posted", "acked", "picked", "read", "answered", "queued")  # then "delivered"


class Stages:
    """Where a reply's time goes: per member, when the latest "待办" passed each stage;
    at the reply's first message, the time between each stage and the next."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, float]] = {}
        self.spans: dict[str, list[float]] = {f"{a}→{b}": [] for a, b in
                                              zip(STAGES, (*STAGES[1:], "delivered"),
                                                  strict=True)}

    def mark(self, member: str, stage: str) -> None:
        stamps = self.at.setdefault(member, {})
        if stage == "posted":
            stamps.clear()
        stamps.setdefault(stage, time.monotonic())

    def delivered(self, member: str) -> None:
        stamps = self.at.pop(member, {})
        if all(stage in stamps for stage in STAGES):
            stamps["delivered"] = time.monotonic()
            for span, values in self.spans.items():
                a, b = span.split("→")
                values.append(stamps[b] - stamps[a])


class WeComArrivals(Arrived):
    """What reaches the fake WeCom, timed. A message sent in the push lane is part of a
    digest (its text starts with DIGEST_MARK; a card may follow it); one in the reply lane
    is a reply. The lane is the outbox row's, noted as the Sender hands it over: a person's
    messages go one at a time, so the one in flight to a member is the one arriving."""

    def __init__(self, fake: FakeWeCom) -> None:
        super().__init__()
        self.in_flight: dict[str, Lane] = {}
        self.stages = Stages()
        deliver = fake._deliver

        def delivered(msg: Sent) -> None:
            deliver(msg)
            if not msg.delivered:
                return
            if self.in_flight.get(msg.touser, Lane.REPLY) is Lane.REPLY:
                self.saw(msg.touser, False)
                self.stages.delivered(msg.touser)
            elif msg.msgtype == "text" and msg.text.startswith(DIGEST_MARK):
                self.saw(msg.touser, True)

        fake._deliver = delivered  # type: ignore[method-assign]

    def follow(self, channel: WeComChannel) -> None:
        """Note the lane of each message the channel hands to WeCom, and the stages of the
        replies' way through it (hooks on the store's methods, looked up at each call)."""
        store, inbox = channel.store, channel.store.inbox
        next_in, handled = inbox.next_in, store.handled

        async def reading(person: str, now: Any) -> Any:
            self.stages.mark(person, "picked")
            entry = await next_in(person, now)
            if entry is not None:
                self.stages.mark(person, "read")
            return entry

        async def queueing(row_id: Any, external_id: str, items: Any, now: Any,
                           lane: Lane = Lane.REPLY) -> list[int]:
            if lane is Lane.REPLY:
                self.stages.mark(external_id, "answered")
            ids = await handled(row_id, external_id, items, now, lane)
            if lane is Lane.REPLY:
                self.stages.mark(external_id, "queued")
            return ids

        inbox.next_in = reading  # type: ignore[method-assign]
        store.handled = queueing  # type: ignore[method-assign]
        sender = channel.sender
        handover = sender._deliver

        async def noted(q: Queued) -> None:
            self.in_flight[q.external_id] = q.lane
            await handover(q)

        sender._deliver = noted  # type: ignore[method-assign]


def says_on_wecom(fake: FakeWeCom, poster: Poster, url: str, stages: Stages) -> Say:
    async def say(member: Any) -> None:
        stages.mark(member, "posted")
        query, body = fake.encrypt_callback(fake.text_xml(member, "待办"))
        await poster.post(url, query, body)
        stages.mark(member, "acked")

    return say


@contextlib.asynccontextmanager
async def wecom_echo(fake: FakeWeCom) -> AsyncIterator[str]:
    """The bare bot on WeCom: the callback decrypted (the channel's own crypto and parser),
    answered with an empty 200, its text sent back with message/send; nothing else. Yields
    the callback URL."""
    crypto = WeComCrypto(fake.token, fake.aes_key, fake.corp_id)
    client = WeComClient(fake.corp_id, fake.secret, fake.agent_id, base_url=fake.base_url)
    sending: set[asyncio.Task[Any]] = set()

    async def callback(request: web.Request) -> web.Response:
        q = request.query
        envelope = parse_envelope(await request.read(), max_bytes=64 * 1024)
        msg = parse_message(crypto.decrypt_msg(q["msg_signature"], q["timestamp"], q["nonce"],
                                               envelope.encrypt))
        if isinstance(msg, TextMessage):
            task = asyncio.create_task(client.send_text(msg.from_user, msg.content))
            sending.add(task)
            task.add_done_callback(sending.discard)
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/echo", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/echo"
    finally:
        await asyncio.gather(*sending, return_exceptions=True)
        await runner.cleanup()
        await client.aclose()


async def run_wave_wecom(workdir: Path, sends_per_second: float | None, users: int, rate: float,
                         seconds: float, seed: int, timeout_s: float) -> WeComWaveResult:
    """One wave; `sends_per_second` None: the echo."""
    variant = "wecom-echo" if sends_per_second is None else f"wecom@{sends_per_second:g}/s"
    res = WeComWaveResult(variant, rate, users, seconds, sends_per_second=sends_per_second)
    db_path = workdir / f"wave-wecom-{sends_per_second}-{rate:g}.db"
    await seed_wave(db_path, users, "wecom")
    members = [str(tg_id(u)) for u in range(1, users + 1)]
    poster = Poster()
    cpu0, wall0 = time.process_time(), time.monotonic()
    try:
        async with FakeWeCom() as fake:
            watch = WeComArrivals(fake)
            if sends_per_second is None:
                async with wecom_echo(fake) as url:
                    say = says_on_wecom(fake, poster, url, watch.stages)
                    await drive_replies(say, watch, res, members, seed)
            else:
                await wave_through_wecom(fake, poster, watch, res, db_path, members,
                                         sends_per_second, seed, timeout_s)
            res.stages = {span: f"{pct(v, 0.5):.3f} / {pct(v, 0.99):.3f}"
                          for span, v in watch.stages.spans.items() if v}
            res.dropped = len(fake.dropped)
            res.sent = sum(1 for m in fake.messages if m.delivered)
        res.cpu_s, res.wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        poster.close()
    return res


async def wave_through_wecom(fake: FakeWeCom, poster: Poster, watch: WeComArrivals,
                             res: WeComWaveResult, db_path: Path, members: list[str],
                             sends_per_second: float, seed: int, timeout_s: float) -> None:
    settings = settings_for(db_path, digest_window_minutes=0)
    services = await Services.open(settings, ShiftedClock(WAVE_AT - timedelta(seconds=2)))
    channel = WeComChannel(Assistant(services), settings,
                           wecom=wecom_settings(fake, sends_per_second=sends_per_second))
    watch.follow(channel)
    assert channel.sender.app_budget is not None
    time_reply_waits(channel.sender.app_budget, res)
    await channel.start()
    service = ReminderService(services, Dispatcher.for_channels(services, [channel]),
                              router=bench_registry())
    scheduler = ReminderScheduler(service, settings.scan_interval_seconds)
    try:
        say = says_on_wecom(fake, poster, channel.url, watch.stages)
        await replies_during_the_digest(watch, res, members, seed, timeout_s, say, scheduler)
    finally:
        await scheduler.stop()
        await channel.stop()
        await services.close()
    await tally(watch, res, members)


def render(results: dict[str, Any]) -> str:
    out = ["## Sends on WeCom: replies ahead of pushes (issue #12)\n",
           "Machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()),
           f"Load average before / after: {results['load_before']} / {results['load_after']}\n",
           wave_table(results["waves"], tuple(w["variant"] for w in results["waves"]
                                              if w["sends_per_second"] is not None),
                      ("dropped by WeCom", "dropped"), lose_on_refused=True),
           "\nWhat the process did in each wave (bot, fake WeCom and driver share it; the "
           "callback endpoint is a process of its own):\n",
           table(["variant", "replies", "messages delivered", "CPU s", "wall s"],
                 [[w["variant"], f"{w['rate']:g}/s", str(w["sent"]), f"{w['cpu_s']:.0f}",
                   f"{w['wall_s']:.0f}"] for w in results["waves"]])]
    staged = [w for w in results["waves"] if w["stages"]]
    if staged:
        spans = list(staged[0]["stages"])
        out += ["\nWhere a reply's time goes, p50 / p99 s (posted: the callback POST; acked: "
                "its 200; picked: the inbox worker asks for it; read; answered: the core's "
                "answer is ready; queued: in the outbox; delivered: at the fake):\n",
                table(["variant", "replies", *spans],
                      [[w["variant"], f"{w['rate']:g}/s", *(w["stages"].get(k, "-")
                                                            for k in spans)] for w in staged])]
    return "\n".join(out)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, Any] = {"machine": machine(), "load_before": load(), "waves": []}
    with tempfile.TemporaryDirectory(prefix="bench-sends-wecom-") as tmp:
        for rate in args.rates:
            for budget in (None, *args.sends_per_second):
                progress(f"wave: {'echo' if budget is None else f'channel at {budget:g}/s'}, "
                         f"{rate:g} replies/s, {args.users} members")
                r = await run_wave_wecom(Path(tmp), budget, args.users, rate, args.seconds,
                                         args.seed, args.timeout)
                r.variant = f"{args.label}{r.variant}"
                results["waves"].append(r.summary())
                progress(f"  {r.summary()}")
    results["load_after"] = load()
    return results


def main(argv: list[str] | None = None) -> int:
    p = wave_arguments(__doc__, "300 members, 15 s")
    p.add_argument("--sends-per-second", type=floats, default=[50.0],
                   help="TAIQU_WECOM_SENDS_PER_SECOND for the channel's runs, comma separated")
    p.add_argument("--label", default="", help="put before each variant's name (e.g. main: "
                   "for a run of main's code, see BENCHMARKS.md)")
    args = p.parse_args(argv)
    if args.quick:
        args.users, args.seconds = 300, 15.0
    results = asyncio.run(main_async(args))
    return report(results, render(results), args.json)


if __name__ == "__main__":
    sys.exit(main())
