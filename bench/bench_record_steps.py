"""Database round trips of the outage, arrears and hazard steps that read before their write
(issue #12: a chat step makes at most 2): each 保存 and the buttons that open 通知书已送达,
已停电 and 转报班长, through the real core on a real SQLite file or a throwaway PostgreSQL,
counted by the store (Backend.trips + SQLite's statements on the loop; bookkeeping written
behind the reply included), as tests/test_round_trips.py counts them.

    .venv/bin/python -m bench.bench_record_steps [--backend postgresql]
        [--baseline DIR] [--json out.json]

`--baseline DIR`: the same steps on another tree of the code (e.g. `git archive f232e93`
unpacked in DIR), in a process of its own, side by side. Round trips are deterministic: the
machine's load changes the time, not the count. Nothing is asserted."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.bench_round_trips import on_store
from bot.assistant import Assistant
from bot.models import Role
from bot.services import Services

# (step, what is done first, the step): ("say"|"press"|"tap", text or button data) each.
Act = tuple[str, str]
SAVED = (("press", "保存"),)
STEPS: tuple[tuple[str, tuple[Act, ...], tuple[Act, ...]], ...] = (
    ("outage 保存", (("say", "登记停电"), ("press", "3号台区"), ("press", "完成"),
                   ("press", "计划检修"), ("say", "12月5日8点"), ("say", "17点"),
                   ("say", "10kV东风线检修")), SAVED),
    ("arrears 保存", (("say", "/arrears"), ("say", "5500012345"), ("say", "王五"),
                    ("say", "500元"), ("say", "10月1日"), ("press", "否")), SAVED),
    ("通知书已送达 open", (), (("tap", "-|arrears.arrn|1"),)),
    ("通知书已送达 保存", (("press", "现在"),), SAVED),
    ("已停电 open", (("clock", "10"),), (("tap", "-|arrears.arrc|1"),)),
    ("已停电 保存", (("press", "现在"),), SAVED),
    ("hazard 保存", (("say", "登记隐患 3号台区 2号杆拉线松动 严重"), ("press", "跳过"),
                   ("press", "跳过")), SAVED),
    ("转报班长 open", (), (("tap", "-|hazards.hzh|1"),)),
    ("转报班长 保存", (("say", "需要停电处理"),), SAVED),
)


async def _steps(services: Services) -> list[dict[str, Any]]:
    from tests.conftest import Chat, make_user  # the tests' own way to talk to the core

    await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    zhang = Chat(Assistant(services), "test", "张三")
    await zhang.say("你好")
    db, rows = services.db, []

    async def do(how: str, what: str) -> None:
        if how == "clock":  # days on: the notice period is over
            services.clock.advance(days=int(what))  # type: ignore[attr-defined]
            await zhang.say("你好")  # where the person was seen is written now, not counted
        else:
            await (zhang.say(what) if how == "say" else zhang.press(what) if how == "press"
                   else zhang.tap(what))

    for name, before, step in STEPS:
        for how, what in before:
            await do(how, what)
        await db.settle()
        db.trips.reset()
        for how, what in step:
            await do(how, what)
        await db.settle()
        rows.append({"step": name, "trips": db.trips.trips, "inline": db.trips.inline,
                     "reply": (zhang.last.replies[-1].text.splitlines() or [""])[0]
                     if zhang.last and zhang.last.replies else ""})
    return rows


def measure(backend: str) -> list[dict[str, Any]]:
    return asyncio.run(on_store(backend, _steps))


def baseline(tree: Path, backend: str) -> list[dict[str, Any]]:
    """This script's steps on the code in `tree`, in a process of its own."""
    code = ("import json, runpy, sys; sys.path.insert(0, sys.argv[1]); "
            "m = runpy.run_path(sys.argv[2]); print(json.dumps(m['measure'](sys.argv[3]), "
            "ensure_ascii=False))")
    out = subprocess.run([sys.executable, "-c", code, str(tree), __file__, backend],
                         cwd=tree, check=True, capture_output=True, text=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def total(r: dict[str, Any]) -> int:
    return int(r["trips"]) + int(r["inline"])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--baseline", type=Path, help="another tree of the code, side by side")
    p.add_argument("--json")
    args = p.parse_args()
    rows = measure(args.backend)
    base = baseline(args.baseline, args.backend) if args.baseline else None
    head = "| step | round trips (to the store + on SQLite's loop) |"
    print(f"{args.backend}\n\n" + (f"{head} baseline |\n|---|---|---|" if base
                                   else f"{head}\n|---|---|"))
    for n, r in enumerate(rows):
        was = f" {total(base[n])} ({base[n]['trips']} + {base[n]['inline']}) |" if base else ""
        print(f"| {r['step']} | {total(r)} ({r['trips']} + {r['inline']}) |{was}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "baseline": base},
                                              ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
