"""A form step's durability on SQLite against its latency (issue #12): the step's write
committed on the event loop and not synced (TAIQU_SQLITE_STEP_SYNCHRONOUS=NORMAL), committed on
the loop then synced by a shared sync of the WAL off the loop (FULL, bot.storage.walsync),
main's FULL before that (the write off the loop, synced by SQLite) and SQLite's FULL on the
loop (an experiment: the sync stalls the loop), side by side in one run.

    python -m bench.bench_step_sync [--users 1,50] [--seconds 8] [--rounds 2] [--rate 300]
                                    [--e2e] [--baseline DIR] [--json out.json]

Part 1, the store alone (this process): `users` managers each make steps as a chat step does
(read_step's read by key on the loop, then Conversations.put's execute_quick of a ~600-byte
form state), `rate` steps a second in all (about what the bot's CPU allows at 50 users; one
user steps every 1/rate s). Per step: read to write returned (for FULL: synced). The loop's
longest stall: a task sleeping 1 ms, its largest overshoot. Syncs per step: WAL syncs made.

Part 2 (--e2e): bench_forms' simulated managers filling 工作日志 forms through the real
Telegram channel (rate_limiter=False) against the fake Bot API, with each setting, the bare
echo bot, and with --baseline DIR main's checkout with FULL (`git archive d8e8604 | tar -x -C
DIR`), each a fresh subprocess, in rotating order. Prints markdown tables; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import bench_forms
from bench.bench_forms import load_run, machine, ms, pct, seed_db, table
from bench.province import load_averages
from bot.storage.conversations import PUT
from bot.storage.db import Database

STATE = json.dumps({"values": {"area": 3, "time": "2026-12-01T08:00:00+08:00",
                               "content": "2号杆拉线松动，已紧固" * 8},
                    "history": ["area", "time", "content"], "skipped": [], "editing": False,
                    "errors": 0, "notices": {}, "step": "problems", "meta": {}},
                   ensure_ascii=False)
NOW = "2026-12-01T00:00:00+00:00"


class ThreadedSteps(Database):
    """Main's FULL before this change: every step's write off the loop on aiosqlite's thread,
    its commit synced by SQLite (synchronous FULL)."""

    def _write_inline(self, sql: str, params: Any) -> tuple[bool, int | None]:
        return False, None


class SyncOnLoop(Database):
    """The experiment that stalled every chat: the inline connection with synchronous FULL,
    so SQLite syncs the WAL inside the commit, on the event loop."""

    def _inline_connection(self) -> sqlite3.Connection:
        conn = super()._inline_connection()
        conn.execute("PRAGMA synchronous=FULL")
        return conn


# label -> (class, step_synchronous)
MODES: dict[str, tuple[type[Database], str]] = {
    "NORMAL (no sync)": (Database, "NORMAL"),
    "FULL: group sync off the loop (new default)": (Database, "FULL"),
    "FULL before: write off the loop (main)": (ThreadedSteps, "FULL"),
    "FULL on the loop (experiment)": (SyncOnLoop, "NORMAL"),
}


@dataclass
class StoreRun:
    mode: str
    users: int
    samples: list[float] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)
    syncs: int = 0
    hops: int = 0
    cpu: float = 0.0
    wall: float = 0.0


async def store_run(mode: str, users: int, seconds: float, rate: float, base: Path) -> StoreRun:
    cls, step_sync = MODES[mode]
    run = StoreRun(mode, users)
    path = base / f"store-{len(list(base.iterdir()))}.db"
    async with cls(path, step_synchronous=step_sync) as db:
        await db.execute("INSERT INTO teams(name, created_at) VALUES ('t', ?)", (NOW,))
        for i in range(users):
            await db.execute("INSERT INTO users(name, role, team_id, created_at) "
                             "VALUES (?, 'manager', 1, ?)", (f"u{i}", NOW))
        loop = asyncio.get_running_loop()
        stop = loop.time() + seconds
        gap = users / rate

        async def watch() -> None:  # the loop's stalls: how late a 1 ms sleep wakes
            while loop.time() < stop:
                t0 = loop.time()
                await asyncio.sleep(0.001)
                run.stalls.append(loop.time() - t0 - 0.001)

        async def user(uid: int) -> None:
            await asyncio.sleep(random.uniform(0, gap))
            step = 0
            while loop.time() < stop:
                t0 = time.perf_counter()
                step += 1  # a row that changes (SQLite writes nothing for the same bytes)
                await db.fetchone_point("SELECT * FROM conversations WHERE user_id = ?",
                                        (uid,))
                await db.execute_quick(PUT, (uid, "worklog", f"t{uid}-{step}", STATE, NOW,
                                             NOW))
                run.samples.append(time.perf_counter() - t0)
                await asyncio.sleep(max(0.0, gap - (time.perf_counter() - t0))
                                    * random.uniform(0.8, 1.2))

        db.trips.reset()
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(watch(), *(user(i + 1) for i in range(users)))
        await db.settle()
        run.wall, run.cpu = time.perf_counter() - t0, time.process_time() - cpu0
        run.syncs, run.hops = db.trips.fsyncs, db.trips.trips
    return run


def store_table(runs: list[StoreRun]) -> str:
    rows = []
    for users in sorted({r.users for r in runs}):
        for mode in MODES:
            pool = [r for r in runs if r.users == users and r.mode == mode]
            if not pool:
                continue
            xs = [x for r in pool for x in r.samples]
            stalls = [x for r in pool for x in r.stalls]
            steps = len(xs)
            syncs = sum(r.syncs for r in pool)
            rows.append([str(users), mode, str(steps), ms(pct(xs, 0.5)), ms(pct(xs, 0.99)),
                         ms(max(xs)), ms(pct(stalls, 0.99)), ms(max(stalls)),
                         f"{syncs / steps:.2f}" if "group" in mode else "-",
                         f"{sum(r.hops for r in pool) / steps:.1f}",
                         f"{sum(r.cpu for r in pool) / steps * 1e6:.0f}"])
    return table(["users", "step write", "steps", "p50 ms", "p99 ms", "max ms",
                  "loop stall p99 ms", "loop stall max ms", "WAL syncs / step",
                  "hops / step", "CPU µs / step"], rows)


# --- part 2: the bot end to end ----------------------------------------------------------------
E2E = {  # label -> (bench_forms bot, settings)
    "echo": ("echo", {}),
    "taiqu NORMAL": ("taiqu-nolimit", {"TAIQU_SQLITE_STEP_SYNCHRONOUS": "NORMAL"}),
    "taiqu FULL (group sync)": ("taiqu-nolimit", {"TAIQU_SQLITE_STEP_SYNCHRONOUS": "FULL"}),
    "main FULL (write off the loop)": ("taiqu-baseline",
                                       {"TAIQU_SQLITE_STEP_SYNCHRONOUS": "FULL"}),
}


async def e2e(users: list[int], rounds: int, base: Path) -> list[tuple[str, int, Any]]:
    labels = [k for k in E2E if E2E[k][0] != "taiqu-baseline" or bench_forms.BASELINE]
    templates = {}
    for n in users:
        templates[n] = base / f"seed-{n}.db"
        await seed_db(templates[n], n)
    out = []
    for r in range(rounds):
        for n in users:
            forms = 10 if n == 1 else 2
            order = labels[r % len(labels):] + labels[:r % len(labels)]  # rotate
            for label in order:
                bot, settings = E2E[label]
                run = await load_run(bot, n, forms, f"r{r}{n}{len(out)}",
                                     templates[n] if bot != "echo" else None, 120.0,
                                     settings=settings)
                print(f"  {label:32} users={n:<3} p50={ms(pct(run.all_samples, 0.5))}ms "
                      f"p99={ms(pct(run.all_samples, 0.99))}ms lost={run.lost} "
                      f"load {load_averages()}", file=sys.stderr)
                out.append((label, n, run))
    return out


def e2e_table(runs: list[tuple[str, int, Any]]) -> str:
    rows = []
    for n in sorted({n for _, n, _ in runs}):
        echo = [x for lab, u, r in runs if u == n and lab == "echo" for x in r.all_samples]
        for label in E2E:
            pool = [r for lab, u, r in runs if u == n and lab == label]
            if not pool:
                continue
            xs = [x for r in pool for x in r.all_samples]
            steps = len(xs)
            cpu = sum(r.bot_cpu for r in pool) / steps * 1000
            checks = ("-" if label == "echo" else
                      f"{sum(r.lost or 0 for r in pool)} / {sum(r.duplicated or 0 for r in pool)}")
            rows.append([str(n), label, str(steps), ms(pct(xs, 0.5)), ms(pct(xs, 0.99)),
                         ms(max(xs)), f"{pct(xs, 0.5) / pct(echo, 0.5):.2f}x" if echo else "-",
                         f"{cpu:.2f}", checks,
                         f"{sum(r.other_load for r in pool) / len(pool):.2f}"])
    return table(["users", "bot", "steps", "p50 ms", "p99 ms", "max ms", "p50 / echo",
                  "bot CPU ms / step", "lost / doubled", "other load (cores)"], rows)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    users = sorted({int(u) for u in args.users.split(",")})
    results: dict[str, Any] = {"machine": machine(), "load_before": load_averages()}
    base = Path(tempfile.mkdtemp(prefix="taiqu-bench-stepsync-"))
    runs: list[StoreRun] = []
    try:
        for r in range(args.rounds):
            for n in users:
                modes = list(MODES)
                for mode in modes[r % len(modes):] + modes[:r % len(modes)]:
                    run = await store_run(mode, n, args.seconds, args.rate, base)
                    print(f"  {mode:44} users={n:<3} steps={len(run.samples):<5} "
                          f"p50={ms(pct(run.samples, 0.5))}ms "
                          f"p99={ms(pct(run.samples, 0.99))}ms "
                          f"stall max={ms(max(run.stalls))}ms", file=sys.stderr)
                    runs.append(run)
        results["store"] = runs
        results["load_after_store"] = load_averages()
        if args.e2e:
            results["e2e"] = await e2e(users, args.rounds, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results["load_after"] = load_averages()
    return results


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    m = results["machine"]
    out = [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, SQLite "
           f"{m['sqlite']}, kernel {m['kernel']}, {m['date']}. Load averages (1/5/15 min) "
           f"before {results['load_before']}, after the store runs "
           f"{results['load_after_store']}, at the end {results['load_after']}.\n",
           f"### The store alone: a step's read and write, {args.rate:g} steps/s in all, "
           f"{args.seconds:g} s x {args.rounds} rounds per setting\n",
           store_table(results["store"])]
    if "e2e" in results:
        out += ["\n### End to end: 工作日志 forms through the Telegram channel "
                "(rate_limiter=False), fake Bot API\n", e2e_table(results["e2e"])]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_step_sync", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="1,50")
    p.add_argument("--seconds", type=float, default=8.0, help="per store run")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--rate", type=float, default=300.0, help="steps/s offered in all")
    p.add_argument("--e2e", action="store_true", help="also the bot end to end")
    p.add_argument("--baseline", type=Path, help="main's checkout, run with FULL (--e2e)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    bench_forms.BASELINE = args.baseline.resolve() if args.baseline else None
    results = asyncio.run(main_async(args))
    text = render(results, args)
    print(text)
    if args.json:
        store = [{"mode": r.mode, "users": r.users, "steps": len(r.samples),
                  "p50_s": pct(r.samples, 0.5), "p99_s": pct(r.samples, 0.99),
                  "max_s": max(r.samples), "stall_max_s": max(r.stalls), "syncs": r.syncs}
                 for r in results["store"]]
        args.json.write_text(json.dumps({"machine": results["machine"], "store": store,
                                         "markdown": text}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
