"""Round trips and time per step of the most used steps that are no form (issue #12): 待办
(/todo) of a manager and of a lead with open items of five kinds (a visit due, a medical
household's cut-off, a complaint, a repair, a hazard), /start, /help, the menu and /settings,
through the real core on a real SQLite file or a throwaway PostgreSQL. The store counts the
round trips (Backend.trips: hops to SQLite's worker thread or the event-loop statements, or
requests to PostgreSQL); the time is the step's wall time, so it is only as good as the
machine's load (record `uptime`).

    .venv/bin/python -m bench.bench_todo [--backend postgresql] [--steps 200] [--before-ref REF]

With --before-ref the same run is made first with the code of REF (`git archive` into a
temporary directory, this script copied in), side by side in one table. Nothing is asserted
(tests/test_round_trips.py asserts the counts)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.bench_round_trips import on_store
from bot.assistant import Assistant
from bot.models import Role
from bot.services import Services
from bot.storage.db import Backend
from tests.conftest import Chat, make_user
from tests.test_todo_lists import add_customer, medical_arrears_notice_served, register_complaint

# (who, what is said): the steps measured, each `--steps` times.
STEPS = (("manager", "/todo"), ("lead", "/todo"), ("manager", "/start"),
         ("manager", "/help"), ("manager", "菜单"), ("manager", "/settings"))
RECORDS = ((("say", "报修 3号台区 变压器冒烟"), ("press", "现在")),
           (("say", "登记隐患 3号台区 2号杆拉线松动 严重"), ("press", "跳过"), ("press", "跳过")))


async def measure(backend: str, steps: int) -> list[dict[str, Any]]:
    return await on_store(backend, lambda services: _steps(services, steps))


async def _steps(services: Services, steps: int) -> list[dict[str, Any]]:
    manager = await make_user(services, "张三")
    await make_user(services, "王班长", role=Role.LEAD, areas=())
    core = Assistant(services)
    chats = {"manager": Chat(core, "test", "张三"), "lead": Chat(core, "test", "王班长")}
    zhang = chats["manager"]
    await add_customer(services, manager, "李奶奶", "5500012345", ("medical",), every=30)
    await medical_arrears_notice_served(zhang)
    await register_complaint(zhang)
    for record in RECORDS:
        for how, text in record:
            await (zhang.say(text) if how == "say" else zhang.press(text))
        await zhang.press("保存")
    db = services.db
    out = []
    for who, text in STEPS:
        out.append(await timed(db, lambda c=chats[who], t=text: c.say(t), steps,
                               f"{text} ({who})"))
    return out


async def timed(db: Backend, act: Callable[[], Awaitable[Any]], steps: int,
                name: str) -> dict[str, Any]:
    """`act` run `steps` times (after once to warm: the first of a kind reads what it
    keeps): its round trips (the store's count) and its p50 and p95 wall time."""
    await act()
    trips, took = [], []
    for _ in range(steps):
        await db.settle()
        db.trips.reset()
        start = time.perf_counter()
        await act()
        took.append((time.perf_counter() - start) * 1000)
        await db.settle()
        trips.append(db.trips.trips + db.trips.inline)
    took.sort()
    return {"step": name, "trips": statistics.mean(trips), "p50": took[len(took) // 2],
            "p95": took[int(len(took) * 0.95)]}


def run_before(ref: str, module: str, argv: list[str],
               copied: list[Path]) -> list[dict[str, Any]]:
    """The same run with the code of `ref`, in a process of its own: `module` with `argv`
    in a `git archive` of it, with the `copied` files (the bench itself) as they are now."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = subprocess.run(["git", "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=tree, check=True)
        for path in (*copied, Path(__file__)):  # this module too: the helpers here
            shutil.copy(path, Path(tmp) / path.parent.name / path.name)
        out = Path(tmp) / "before.json"
        subprocess.run([sys.executable, "-m", module, *argv, "--json", str(out)], cwd=tmp,
                       check=True)
        rows: list[dict[str, Any]] = json.loads(out.read_text())
        return rows


def print_table(rows: list[dict[str, Any]], before: list[dict[str, Any]] | None,
                ref: str | None) -> None:
    """Round trips and p50 / p95 ms of each step, with the `before` run's beside them."""
    if before is None:
        print("| step | round trips | p50 ms | p95 ms |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['step']} | {r['trips']:.0f} | {r['p50']:.2f} | {r['p95']:.2f} |")
        return
    print(f"| step | round trips {ref} → now | p50 ms {ref} → now "
          f"| p95 ms {ref} → now |\n|---|---|---|---|")
    for b, r in zip(before, rows, strict=True):
        print(f"| {r['step']} | {b['trips']:.0f} → {r['trips']:.0f} | {b['p50']:.2f} → "
              f"{r['p50']:.2f} | {b['p95']:.2f} → {r['p95']:.2f} |")


def bench_main(module: str, measure: Callable[[str, int], Awaitable[list[dict[str, Any]]]],
               steps: int, copied: list[Path]) -> None:
    """A bench's command line: `--backend`, `--steps` (default `steps`), `--before-ref` (the
    same run first with the code of REF, `copied` as they are now), `--json`."""
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--before-ref")
    p.add_argument("--json")
    args = p.parse_args()
    before = run_before(args.before_ref, module, [
        "--backend", args.backend, "--steps", str(args.steps)], copied) \
        if args.before_ref else None
    rows = asyncio.run(measure(args.backend, args.steps))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    print(f"{args.backend}, {args.steps} steps each\n")
    print_table(rows, before, args.before_ref)


if __name__ == "__main__":
    here = Path(__file__)
    bench_main("bench.bench_todo", measure, 200, [here.with_name("bench_round_trips.py")])
