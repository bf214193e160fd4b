"""Database round trips per chat step (issue #12): one manager fills a whole 工作日志 form
through the real core (Assistant, Services, a real SQLite file or a throwaway PostgreSQL), and
the store's own count (Backend.trips) is taken per step: on SQLite each hop to aiosqlite's
worker thread (BEGIN, a statement, a fetch, COMMIT), on PostgreSQL each request over the
network (BEGIN and COMMIT included); "on the loop" are SQLite statements run on the event
loop (reads by key, a form step's write: no hop). Bookkeeping written behind the reply counts
too. The goal in issue #12 is at most 2
per step.

    .venv/bin/python -m bench.bench_round_trips [--backend postgresql] [--json out.json]
    .venv/bin/python -m bench.bench_round_trips --taps [--backend postgresql]

--taps: instead, the buttons tapped on a saved record (its card, a transition's form opened,
a one-tap transition, a 📞 reveal, 修改, 恢复), in the team tests/test_read_round_trips.py
builds. Run it from another tree (e.g. `git archive <ref>`, this file copied in) for that
code's counts. `--races N`: instead, a special customer's 保存 refused by a change made
meanwhile (the 户号 registered by another since it was typed; the record edited by another
since the edit opened), counted with the form's save_reads read with the tap and on the
first tap since a restart (no guess of the form: the refused write reads why), then an
ordinary 保存 (no race) timed N times each, alternately with its save_reads and without.
`--timed N`: then the cards' buttons N times each, alternately through a core
whose buttons declare their reads and one whose declare none (Router.button_reads emptied):
the wall time of a step both ways, in one run (the machine's load shared alike).

Prints a markdown table; nothing is asserted (tests/test_round_trips.py asserts)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bench.bench_forms import STEP_NAMES, form_steps
from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.events import Incoming
from bot.models import Role
from bot.services import Services

T = TypeVar("T")


@contextlib.asynccontextmanager
async def store(backend: str, tmp: Path) -> AsyncIterator[Settings]:
    if backend == "sqlite":
        yield load_settings(db_path=tmp / "bench.db")
        return
    from tests.pg_server import PgServer  # a throwaway server, as the tests start one

    server = PgServer().start()
    try:
        yield load_settings(db_path=tmp / "unused.db",
                            database_url=await server.fresh_database())
    finally:
        server.stop()


async def on_store(backend: str, run: Callable[[Services], Awaitable[T]]) -> T:
    """`run` on fresh Services over a new store (T0 = Fri 2026-11-27 10:30 Shanghai)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with store(backend, Path(tmp)) as settings:
            services = await Services.open(settings, FakeClock(datetime(2026, 11, 27, 2, 30,
                                                                         tzinfo=UTC)))
            try:
                return await run(services)
            finally:
                await services.close()


async def measure(forms: int, backend: str = "sqlite") -> list[dict[str, Any]]:
    return await on_store(backend, lambda services: _fill_forms(services, forms))


async def _fill_forms(services: Services, forms: int) -> list[dict[str, Any]]:
    invite = await services.people.create_invite(
        role=Role.MANAGER, team="城东供电所", areas=["3号台区", "5号台区"], name="张三",
        now=services.clock.now(), ttl=timedelta(days=7))
    await services.people.redeem_invite(invite.code, channel="bench", external_id="z",
                                        fallback_name="张三", now=services.clock.now())
    core = Assistant(services)
    await core.handle(Incoming("bench", "z", text="你好"))  # warm caches
    db = services.db
    per_step: list[list[int]] = [[] for _ in STEP_NAMES]
    inline: list[list[int]] = [[] for _ in STEP_NAMES]
    for n in range(forms):
        for i, (text, expect) in enumerate(form_steps(f"第{n}次")):
            await db.settle()
            db.trips.reset()
            out = await core.handle(Incoming("bench", "z", text=text))
            await db.settle()  # write-behind bookkeeping counts too
            per_step[i].append(db.trips.trips)
            inline[i].append(db.trips.inline)
            assert any(expect in r.text for r in out.replies), (text, out)
    return [{"step": name, "min": min(c), "max": max(c), "mean": sum(c) / len(c),
             "inline": sum(r) / len(r)}
            for name, c, r in zip(STEP_NAMES, per_step, inline, strict=True)]


# (who taps, what, whether a form it opens is closed after it): in this order, as each
# changes what the next finds (the hazard 处理中 after 转报班长 was opened and closed).
TAPS = (("张三", "-|hazards.hz|1", False), ("张三", "-|outages.out|1", False),
        ("张三", "-|customers.cust|1", False), ("张三", "-|worklog.log|2", False),
        ("张三", "-|arrears.arr|2", False), ("张三", "-|customers.reveal|1", False),
        ("张三", "-|customers.revealE|1", False), ("张三", "-|outages.outp|1:1", False),
        ("张三", "-|hazards.hzh|1", True), ("张三", "-|hazards.hzc|1", True),
        ("张三", "-|complaints.cplc|1", True), ("张三", "-|repairs.repa|1", True),
        ("张三", "-|worklog.logedit|1", True), ("张三", "-|customers.custedit|1", True),
        ("张三", "-|customers.custoff|1", True), ("张三", "-|hazards.hzs|1", False),
        ("张三", "-|outages.outn|1", False), ("张三", "-|outages.outc|1:1", False),
        ("张三", "-|outages.outh|1:1:0", False), ("张三", "-|outages.outh|1:1:0", False),
        ("张三", "-|hazards.fromlog|2", True), ("王班长", "-|worklog.logcmt|1", True),
        ("王班长", "-|arrears.arry|1", True), ("张三", "-|todo.snz|1:0", False))


CARDS = ("-|hazards.hz|1", "-|outages.out|1", "-|customers.cust|1", "-|worklog.log|2",
         "-|arrears.arr|2", "-|tasks.tk|1")


async def measure_taps(backend: str = "sqlite", timed: int = 0) -> list[dict[str, Any]]:
    return await on_store(backend, lambda services: _tap(services, timed))


async def _tap(services: Services, timed: int) -> list[dict[str, Any]]:
    from tests.conftest import Chat
    from tests.test_read_round_trips import a_team_with_one_of_everything

    core = Assistant(services)
    await a_team_with_one_of_everything(services, core)
    db = services.db
    rows = []
    if timed:
        bare = Assistant(services)
        bare.router.button_reads.clear()  # the same buttons, none declaring its reads
        return [await _timed(services, core, bare, data, timed) for data in CARDS]
    for who, data, closes in TAPS:
        chat = Chat(core, "test", who)
        await chat.say("你好")  # the chat seen since the start, as any but a first step
        await db.settle()
        db.trips.reset()
        out = await chat.tap(data)
        await db.settle()
        rows.append({"step": data, "trips": db.trips.trips, "inline": db.trips.inline,
                     "reply": (out.toast or "") + chat.text.replace("\n", " ")[:60]})
        if closes:  # the form it opened closed, as 放弃 would (not counted)
            user = await services.people.by_identity("test", who)
            assert user is not None
            await services.conversations.delete(user.id)
    # 恢复 a customer taken off the register (停用 saved first, not counted)
    zhang = Chat(core, "test", "张三")
    await zhang.tap("-|customers.custoff|1")
    await zhang.say("已搬走")
    await zhang.press("保存")
    await zhang.say("你好")
    await db.settle()
    db.trips.reset()
    await zhang.tap("-|customers.custon|1")
    await db.settle()
    rows.append({"step": "-|customers.custon|1", "trips": db.trips.trips,
                 "inline": db.trips.inline})
    return rows


async def _timed(services: Services, core: Assistant, bare: Assistant, data: str,
                 times: int) -> dict[str, Any]:
    from tests.conftest import Chat

    took: dict[str, list[float]] = {"declared": [], "none": []}
    chats = {"declared": Chat(core, "test", "张三"), "none": Chat(bare, "test", "张三")}
    for chat in chats.values():
        await chat.say("你好")
    for _ in range(times):
        for way, chat in chats.items():
            await services.db.settle()
            start = time.perf_counter()
            await chat.tap(data)
            took[way].append((time.perf_counter() - start) * 1000)
    return {"step": data, **{f"{way}_p50": statistics.median(ms) for way, ms in took.items()},
            **{f"{way}_p90": statistics.quantiles(ms, n=10)[-1] for way, ms in took.items()}}


RACES = ("户号 registered meanwhile", "edit over another's")


async def measure_races(backend: str = "sqlite", timed: int = 0) -> list[dict[str, Any]]:
    return await on_store(backend, lambda services: _races(services, timed))


async def _races(services: Services, timed: int) -> list[dict[str, Any]]:
    from bot.channels.telegram import TELEGRAM_CAPS
    from tests.conftest import Chat, make_user
    from tests.test_saves_read_at_write import edited_by_another_meanwhile, fill_register_form
    from tests.test_todo_lists import add_customer

    db = services.db
    core = Assistant(services)
    await make_user(services, "张三", areas=("3号台区",))
    wang = await make_user(services, "王五")
    zhang = Chat(core, "test", "张三")
    await zhang.say("你好")

    async def counted(chat: Chat) -> int:
        await db.settle()
        db.trips.reset()
        await chat.press("保存")
        await db.settle()
        return db.trips.trips + db.trips.inline

    def restarted(seen: Chat) -> Chat:
        other = Assistant(services)
        other.register_channel("test", TELEGRAM_CAPS)
        return Chat(other, seen.channel, seen.external_id, seen.last)

    rows: list[dict[str, Any]] = []
    for n, race in enumerate(RACES):
        trips = {}
        for way in ("with the tap", "first tap since a restart"):
            await db.execute("DELETE FROM conversations")
            account = f"55000{n}{len(trips)}2345"
            if race == RACES[0]:
                await fill_register_form(zhang, account)
                await add_customer(services, wang, "赵奶奶", account, (), None)
            else:
                await edited_by_another_meanwhile(services, zhang, account)
            trips[way] = await counted(zhang if way == "with the tap" else restarted(zhang))
        rows.append({"step": race, **trips})
    if timed:
        took: dict[str, list[float]] = {"declared": [], "none": []}
        declared = core.engine.save_reads
        for i in range(timed):
            for k, way in enumerate(took):
                await fill_register_form(zhang, f"77{i:05d}{k}00")
                core.engine.save_reads = declared if way == "declared" else (  # type: ignore
                    lambda user_id, token: [])
                await db.settle()
                start = time.perf_counter()
                await zhang.press("保存")
                took[way].append((time.perf_counter() - start) * 1000)
                assert "⚠️" not in zhang.text, zhang.text  # saved, no race
        core.engine.save_reads = declared  # type: ignore[method-assign]
        rows.append({"step": "保存 (no race)",
                     **{f"{way}_p50": statistics.median(ms) for way, ms in took.items()},
                     **{f"{way}_p90": statistics.quantiles(ms, n=10)[-1]
                        for way, ms in took.items()}})
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--forms", type=int, default=5)
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--json")
    p.add_argument("--taps", action="store_true", help="buttons tapped on saved records")
    p.add_argument("--timed", type=int, default=0, help="with --taps: time the cards N times")
    p.add_argument("--races", type=int, default=-1,
                   help="saves refused by a change meanwhile; N: an ordinary 保存 timed N times")
    p.add_argument("--postgresql", action="store_true",
                   help="the same as --backend postgresql (a server of its own, issue #11)")
    args = p.parse_args()
    backend = "postgresql" if args.postgresql else args.backend
    if args.races >= 0:
        races = asyncio.run(measure_races(backend, args.races))
        print(f"{backend}\n\n| 保存 refused by | round trips: save_reads read with the tap | "
              "first tap since a restart |\n|---|---|---|")
        for r in races[:len(RACES)]:
            print(f"| {r['step']} | {r['with the tap']} | {r['first tap since a restart']} |")
        for r in races[len(RACES):]:
            print(f"\n{args.races} ordinary 保存 each way, alternately: p50 "
                  f"{r['declared_p50']:.2f} ms with save_reads / {r['none_p50']:.2f} ms without;"
                  f" p90 {r['declared_p90']:.2f} / {r['none_p90']:.2f} ms")
        return
    if args.taps and args.timed:
        timed = asyncio.run(measure_taps(backend, args.timed))
        print(f"{backend}, {args.timed} taps each way, alternately\n\n| card | p50 ms declared / "
              "none | p90 ms declared / none |\n|---|---|---|")
        for r in timed:
            print(f"| `{r['step']}` | {r['declared_p50']:.2f} / {r['none_p50']:.2f} | "
                  f"{r['declared_p90']:.2f} / {r['none_p90']:.2f} |")
        return
    if args.taps:
        taps = asyncio.run(measure_taps(backend))
        print(f"{backend}\n\n| button | round trips | of them on the loop (SQLite) | reply |\n"
              "|---|---|---|---|")
        for r in taps:
            print(f"| `{r['step']}` | {r['trips'] + r['inline']} | {r['inline']} |"
                  f" {r.get('reply', '')} |")
        if args.json:
            Path(args.json).write_text(json.dumps(taps, ensure_ascii=False, indent=1))
        return
    rows = asyncio.run(measure(args.forms, backend))
    print(f"{backend}\n\n| step | round trips (min / mean / max) | on the loop |\n"
          "|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['min']} / {r['mean']:.1f} / {r['max']} | {r['inline']:.1f} |")
    total = sum(r["mean"] for r in rows)
    print(f"| whole form | {total:.1f} (mean {total / len(rows):.1f} per step) | |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
