"""Importing a 100,000-household arrears list in chat while a manager keeps working (#14 §1).

    .venv/bin/python -m bench.bench_arrears_import [--rows 100000] [--before-ref REF]
                                                   [--json out.json]

One process, as the bot runs: one Services (the real SQLite Database: WAL, busy timeout),
one Assistant. The lead sends the list as a chat file (the marketing system's GBK CSV with
a title row) and presses 确认导入; at the same time a manager fills 工作日志 forms through
the same Assistant, step after step, every step timed (issue #12's rule: no chat step over
200 ms). Then the next month's list (10% of the households gone = paid, 10% with a new
amount, 5% new) is imported the same way: the reconciliation. Peak memory is the process's
resident set (ru_maxrss) over the run, against the baseline before the first file.

With --before-ref, the same run is made first with the code of REF (extracted with `git
archive`, in a process of its own, as bench_import_stall does), so "before" and "after" are
measured side by side under the same machine load, each with its own idle figures.

Prints a markdown table (BENCHMARKS.md); asserts only that every row was imported and every
form saved, so a broken run cannot look fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_customers import machine, ms, pct, table
from bench.bench_import_stall import extract

ROOT = Path(__file__).resolve().parent.parent

GOAL_S = 0.2
TEAM = "城东供电所"
NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
SEED = 14
AREAS = [f"{n}号台区" for n in range(1, 51)]
MANAGERS = 10


def rss_mb() -> float:
    """The resident set now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler:
    """The highest resident set seen while an import runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.peak = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.peak = max(self.peak, rss_mb())
            await asyncio.sleep(0.02)


def households(rows: int, rng: random.Random) -> list[tuple[str, str, str, str, str, str]]:
    return [(f"32{i:08d}", f"户主{i}", rng.choice(AREAS), f"{rng.randint(1, 500_000) / 100:.2f}",
             f"2026{rng.randint(1, 10):02d}", rng.choice(("否", "否", "否", "费控")))
            for i in range(rows)]


def next_month(first: list[tuple[str, ...]], rng: random.Random) -> list[tuple[str, ...]]:
    """10% paid (gone), 10% with a new amount, 5% new households."""
    out: list[tuple[str, ...]] = []
    for r in first:
        roll = rng.random()
        if roll < 0.10:
            continue
        if roll < 0.20:
            r = (*r[:3], f"{rng.randint(1, 500_000) / 100:.2f}", *r[4:])
        out.append(r)
    start = len(first)
    out += [(f"32{i:08d}", f"新户{i}", rng.choice(AREAS), "88.80", "202611", "否")
            for i in range(start, start + len(first) // 20)]
    return out


def gbk_csv(rows: list[tuple[str, ...]]) -> bytes:
    head = ["城东供电所 欠费明细表", "用户编号,用户名称,台区名称,欠费金额(元),电费年月,费控标志"]
    return "\r\n".join([*head, *(",".join(r) for r in rows), ""]).encode("gbk")


async def build(services: Any) -> None:
    from bot.models import Role

    async with services.db.tx() as tx:
        team_id = await services.people.ensure_team(tx, TEAM, NOW)
        ids = [await services.people.ensure_area(tx, team_id, a, NOW) for a in AREAS]
        per = len(AREAS) // MANAGERS
        for m in range(MANAGERS):
            user_id = await services.people.create_user(
                tx, f"经理{m}", Role.MANAGER, team_id, ids[m * per:(m + 1) * per], NOW)
            await services.people.link_identity(tx, "test", f"经理{m}", user_id, NOW)
        lead = await services.people.create_user(tx, "王班长", Role.LEAD, team_id, [], NOW)
        await services.people.link_identity(tx, "test", "王班长", lead, NOW)


class Manager:
    """经理0 filling 工作日志 forms through the shared Assistant, every step timed."""

    def __init__(self, chat: Any) -> None:
        self.chat = chat
        self.steps: list[tuple[float, float]] = []
        self.saved = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.step(self.chat.say("巡视 1号台区 昨天下午3点 2号杆拉线松动"))
            await self.step(self.chat.say("拉线需紧固"))
            await self.step(self.chat.say("跳过"))
            await self.step(self.chat.location(31.82, 117.23))
            await self.step(self.chat.press("保存"))
            assert "已保存工作日志" in self.chat.text, self.chat.text
            self.saved += 1

    async def step(self, coro: Any) -> None:
        t0 = time.perf_counter()
        await coro
        self.steps.append((t0, time.perf_counter() - t0))


async def one_import(lead: Any, manager: Manager, name: str,
                     data: bytes) -> dict[str, Any]:
    """The file sent and confirmed while the manager works; the steps that overlap it."""
    from bot import arrears_io

    real_stage = arrears_io.stage_list
    staged_summary: list[Any] = []

    async def stage(*args: Any, **kwargs: Any) -> Any:
        summary = await real_stage(*args, **kwargs)
        staged_summary.append(summary)
        return summary

    arrears_io.stage_list = stage  # type: ignore[assignment]
    started = time.perf_counter()
    await lead.file(name, data)
    staged = time.perf_counter()
    assert "确认导入" in str(lead.last), lead.text[:300]
    await lead.press("确认导入")
    ended = time.perf_counter()
    assert lead.text.startswith("✅"), lead.text[:300]
    arrears_io.stage_list = real_stage  # type: ignore[assignment]
    spanning = [s for t0, s in manager.steps if t0 < ended and t0 + s > started]
    slow = [(round(t0 - started, 2), round(s, 3)) for t0, s in manager.steps
            if t0 < ended and t0 + s > started and s > GOAL_S]
    return {"file": name, "stage_s": staged - started, "apply_s": ended - staged,
            "summary": lead.text.splitlines()[1], "steps": spanning,
            "slow": slow, "t0": started, "reader_mb": staged_summary[0].reader_mb}


async def main_async(rows: int) -> dict[str, Any]:
    from bot.assistant import Assistant
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.services import Services
    from tests.conftest import Chat

    base = Path(tempfile.mkdtemp(prefix="bench_arrears_"))
    rng = random.Random(SEED)
    first = households(rows, rng)
    second = next_month(first, rng)
    files = [("11月欠费.csv", gbk_csv(first)), ("12月欠费.csv", gbk_csv(second))]
    del first, second
    clock = FakeClock(NOW)
    start_load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    services = await Services.open(load_settings(db_path=base / "taiqu.db"), clock)
    try:
        await build(services)
        assistant = Assistant(services)
        lead, chat = Chat(assistant, "test", "王班长"), Chat(assistant, "test", "经理0")
        manager = Manager(chat)
        stop = asyncio.Event()
        working = asyncio.create_task(manager.run(stop))
        await asyncio.sleep(2.0)  # the idle baseline
        idle = [s for _, s in manager.steps]
        baseline = rss_mb()
        sampler = Sampler()
        sampling = asyncio.create_task(sampler.run(stop))
        runs = []
        for name, data in files:
            runs.append(await one_import(lead, manager, name, data))
        stop.set()
        await working
        await sampling
        count = await services.db.fetchone("SELECT count(*) FROM arrears")
        assert count is not None and count[0] >= rows, count
        return {"machine": machine(), "rows": rows, "idle": idle, "runs": runs,
                "rss_base_mb": baseline, "rss_peak_mb": sampler.peak, "saved": manager.saved,
                "start_load": start_load,
                "load": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
    finally:
        await services.close()
        shutil.rmtree(base, ignore_errors=True)


def render(results: list[tuple[str, dict[str, Any]]]) -> str:
    """One table for the runs (label "" for this tree, "before" for --before-ref's)."""
    out, rows = [], []
    for label, res in results:
        m = res["machine"]
        idle = res["idle"]
        out.append(f"{label or 'This tree'}: run {m['date']}; {m['cpu']}, {m['cores']} cores; "
                   f"Python {m['python']}, SQLite {m['sqlite']}; load average before "
                   f"{res['start_load']}, after {res['load']}; {res['rows']:,} households; "
                   f"resident memory during the imports at most {res['rss_peak_mb']:.0f} MB, "
                   f"{res['rss_base_mb']:.0f} MB before them (the two files held in memory "
                   f"included); idle chat steps {len(idle)}, p50 {ms(pct(idle, 0.5))} ms, "
                   f"p99 {ms(pct(idle, 0.99))} ms, max {ms(max(idle))} ms.\n")
        for r in res["runs"]:
            steps = r["steps"]
            over = sum(s > GOAL_S for s in steps)
            rows.append([f"{label} {r['file']}".strip(), f"{r['stage_s']:.1f}",
                         f"{r['apply_s']:.1f}", f"{r['reader_mb']:.0f}", r["summary"],
                         str(len(steps)), ms(pct(steps, 0.5)) if steps else "—",
                         ms(pct(steps, 0.99)) if steps else "—",
                         ms(max(steps)) if steps else "—", str(over),
                         "met" if not over else "missed"])
    out.append(table(["list", "preview s", "apply s", "reader process MB", "what changed",
                      "chat steps", "p50 ms", "p99 ms", "max ms",
                      f"steps > {GOAL_S * 1000:.0f} ms", "goal"],
                     rows))
    return "\n".join(out)


def before(ref: str, rows: int) -> dict[str, Any]:
    """The same run with the code of `ref`, in its own process (its `bot` imported first)."""
    base = Path(tempfile.mkdtemp(prefix="bench_arrears_before_"))
    try:
        tree = extract(ref, base / "tree")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
        env["PYTHONPATH"] = os.pathsep.join((str(tree), str(ROOT)))  # bench and tests: ROOT's
        subprocess.run([sys.executable, "-m", "bench.bench_arrears_import", "--rows",
                        str(rows), "--json", str(base / "before.json")], cwd=tree, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        res: dict[str, Any] = json.loads((base / "before.json").read_text())
        return res
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--before-ref", default=None,
                    help="first run the same with the code of this git ref")
    ap.add_argument("--json")
    args = ap.parse_args()
    results = [("before", before(args.before_ref, args.rows))] if args.before_ref else []
    results.append(("", asyncio.run(main_async(args.rows))))
    print(render(results))
    if args.json:
        out = results[-1][1] if len(results) == 1 else dict(results)
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    sys.exit(main())
