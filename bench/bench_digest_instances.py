"""The morning digest for 30,000 people under the Telegram send limit, with N instances on one
PostgreSQL: time to complete, lost, doubled (issue #11).

    .venv/bin/python -m bench.bench_digest_instances [--users 30000] [--instances 1]
                                                     [--window 0] [--kill-after S]
                                                     [--timeout 2700] [--json out.json]

A PostgreSQL server of its own (tests/pg_server.py, durable), a database made by the real
migrations, `--users` people in teams of 25 with a Telegram identity and one open free
reminder due tonight each, so each is owed one digest today. `--instances` processes of
`taiqu-bot run` exactly as deployed (TAIQU_TELEGRAM_SENDS_PER_SECOND 28, by webhook so they do
not compete for getUpdates; no update arrives), TAIQU_DIGEST_TIME set to the current minute and
TAIQU_DIGEST_WINDOW_MINUTES to `--window` (0: everyone at once, the hardest case; the
product's default spreads it over 30 minutes). The loopback fake Bot API refuses (429,
retry_after 1) any send beyond 30 in the last second, as Telegram's flood limit does, and
counts every message per chat. `--kill-after S` kills -9 the instance holding the scan lease S
seconds in (another takes over when the lease expires, TAIQU_INSTANCE_LEASE_SECONDS 45).
Run again with more instances once the send budget is shared between instances (issue #11):
the table shows sends per second at the fake, refusals and doubles per instance count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from bench.bench_forms import BOTS, BotProcess, bot_env, busy_seconds, machine, table
from bench.bench_instances import SECRET, free_port
from bench.bench_reminder_rows import TG_ID_BASE, people_sql, series
from bench.bench_sends import enforce_flood_limit
from bench.province import BenchPostgres, load_averages, wait_for_port
from bot.storage.db import iso
from bot.storage.pg import PgDatabase
from tests.fakebotapi import FakeBotAPI

TZ = ZoneInfo("Asia/Shanghai")
FLOOD_LIMIT = 30  # Telegram's: messages a second per bot token
DIGEST_MARK = "☀️"  # how digest.title begins (zh_CN)


@dataclass
class DigestResult:
    users: int
    instances: int
    window_min: int
    kill_after: float | None
    complete_s: float = 0.0  # instances started -> the last person's first digest arrived
    first_s: float = 0.0
    delivered: int = 0
    other_messages: int = 0  # anything but a digest (should be 0)
    lost: int = 0
    doubled: int = 0
    job_runs: int = 0
    refused_429: int = 0
    max_per_second: int = 0
    mean_rate: float = 0.0
    killed_pid: int | None = None
    timed_out: bool = False
    instance_cpu: list[float] = field(default_factory=list)
    pg_cpu: float = 0.0
    other_load: float = 0.0
    loads: list[str] = field(default_factory=list)
    progress: list[tuple[int, int]] = field(default_factory=list)  # (second, people reached)


async def seed(url: str, users: int, now: datetime) -> None:
    await (await PgDatabase(url).connect()).close()  # the real migrations
    conn = await asyncpg.connect(url)
    try:
        for sql in people_sql("postgresql", users, channel="telegram", digest_done=False):
            await conn.execute(sql)
        tonight = now.astimezone(TZ).replace(hour=23, minute=0, second=0, microsecond=0)
        teams = max(1, users // 25)
        await conn.execute(
            "INSERT INTO free_reminders(team_id, user_id, what, remind_at, urgent, state, "
            f"created_at) SELECT (i - 1) % {teams} + 1, i, '抄表 ' || i, $1, 0, 'open', $2 "
            f"FROM {series('postgresql', 1, users)}", iso(tonight), iso(now - timedelta(days=1)))
        # Last week's Monday report already went out: only digests are pushed here.
        today = now.astimezone(TZ).date()
        last_monday = today - timedelta(days=today.weekday() + 7)
        await conn.execute(
            "INSERT INTO job_runs(job, period, user_id, done_at) SELECT 'weekly_report', $1, "
            f"i, $2 FROM {series('postgresql', 1, users)}", last_monday.isoformat(), iso(now))
    finally:
        await conn.close()
    db = await PgDatabase(url).connect()
    try:
        await db.restart_identities()  # rows were written with their ids
    finally:
        await db.close()


async def lease_holder_pid(url: str) -> int | None:
    conn = await asyncpg.connect(url)
    try:
        holder = await conn.fetchval("SELECT holder FROM instance_leases WHERE name = $1",
                                     "reminder-scan")
    finally:
        await conn.close()
    return int(str(holder).split(":")[1]) if holder else None


async def count_job_runs(url: str, period: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM job_runs WHERE job = 'digest' AND period = $1", period))
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> DigestResult:
    res = DigestResult(args.users, args.instances, args.window, args.kill_after)
    pg = BenchPostgres().start()
    workdir = Path(tempfile.mkdtemp(prefix="taiqu-bench-digest-"))
    try:
        url = await pg.create("digest")
        now = datetime.now(UTC)
        await seed(url, args.users, now)
        period = now.astimezone(TZ).date().isoformat()
        async with FakeBotAPI() as fake:
            refused = enforce_flood_limit(fake, FLOOD_LIMIT)
            bot = fake.bot()
            arrivals: list[tuple[float, int]] = []
            store = bot._store

            def stored(chat: Any, rec: dict[str, Any]) -> dict[str, Any]:
                if rec.get("method") == "sendMessage":
                    if str(rec.get("text", "")).startswith(DIGEST_MARK):
                        arrivals.append((time.perf_counter(), chat.id))
                    else:
                        res.other_messages += 1
                return store(chat, rec)

            bot._store = stored  # type: ignore[method-assign]
            local = datetime.now(TZ)
            procs: list[BotProcess] = []
            ports = [free_port() for _ in range(args.instances)]
            t0 = time.perf_counter()
            busy0 = busy_seconds()
            pg0 = pg.cpu_seconds()
            for i, port in enumerate(ports):
                env = bot_env(fake, workdir / "unused.db", url) | {
                    "TAIQU_TELEGRAM_WEBHOOK_URL": "https://bot.example.org/tg",
                    "TAIQU_TELEGRAM_WEBHOOK_SECRET": SECRET,
                    "TAIQU_TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
                    "TAIQU_DIGEST_TIME": f"{local:%H:%M}",
                    "TAIQU_DIGEST_WINDOW_MINUTES": str(args.window)}
                home = workdir / f"i{i}"
                home.mkdir()
                proc = BotProcess(BOTS["taiqu"][1], env, home)
                await proc.start(None)
                procs.append(proc)
            for port in ports:
                await wait_for_port("127.0.0.1", port, 60)
            expected = {TG_ID_BASE + u for u in range(1, args.users + 1)}
            reached: set[int] = set()
            seen = 0
            cpu_last = {p.pid: 0.0 for p in procs}
            next_log = 30.0
            while True:
                await asyncio.sleep(1.0)
                elapsed = time.perf_counter() - t0
                reached.update(c for _, c in arrivals[seen:])
                seen = len(arrivals)
                for p in procs:
                    if p.proc is not None and p.proc.returncode is None:
                        cpu_last[p.pid] = p.cpu_seconds()
                res.progress.append((int(elapsed), len(reached & expected)))
                if (args.kill_after is not None and res.killed_pid is None
                        and elapsed >= args.kill_after):
                    pid = await lease_holder_pid(url)
                    if pid is not None:
                        os.kill(pid, signal.SIGKILL)
                        res.killed_pid = pid
                        print(f"  killed the lease holder, pid {pid}", file=sys.stderr)
                if elapsed >= next_log:
                    next_log += 30
                    res.loads.append(f"{int(elapsed)} s: {load_averages()}")
                    print(f"  {int(elapsed)} s: {len(reached):,} reached, "
                          f"{len(arrivals):,} sent, 429s {sum(refused.values()):,}, "
                          f"load {load_averages()}", file=sys.stderr)
                if expected <= reached:
                    res.job_runs = await count_job_runs(url, period)
                    if res.job_runs >= args.users:
                        break
                if elapsed > args.timeout:
                    res.timed_out = True
                    break
            await asyncio.sleep(5.0)  # anything still in flight lands (a double counts)
            wall = time.perf_counter() - t0
            res.instance_cpu = list(cpu_last.values())
            res.pg_cpu = pg.cpu_seconds() - pg0
            res.other_load = max(0.0, busy_seconds() - busy0 - sum(res.instance_cpu)
                                 - res.pg_cpu) / wall
            for p in procs:
                await p.stop()
        res.job_runs = await count_job_runs(url, period)
        per_chat = Counter(c for _, c in arrivals)
        res.delivered = len(arrivals)
        res.lost = sum(1 for c in expected if per_chat[c] == 0)
        res.doubled = sum(n - 1 for c, n in per_chat.items() if n > 1)
        firsts = {}
        for t, c in arrivals:
            firsts.setdefault(c, t)
        if firsts:
            res.complete_s = max(firsts.values()) - t0
            res.first_s = min(firsts.values()) - t0
            res.mean_rate = len(firsts) / max(1e-9, res.complete_s - res.first_s)
        res.max_per_second = max(Counter(int(t - t0) for t, _ in arrivals).values(), default=0)
        res.refused_429 = sum(refused.values())
    finally:
        pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return res


def render(res: DigestResult, m: dict[str, str]) -> str:
    out = [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['date']}.\n"]
    out.append(table(
        ["people", "instances", "window min", "killed lease holder at", "first s",
         "complete s (min)", "mean digests/s", "max msgs in 1 s", "429s", "delivered",
         "lost", "doubled", "other messages", "job_runs", "instance CPU s", "PostgreSQL CPU s",
         "other load cores"],
        [[f"{res.users:,}", str(res.instances), str(res.window_min),
          f"{res.kill_after:g} s (pid {res.killed_pid})" if res.kill_after else "-",
          f"{res.first_s:.1f}", f"{res.complete_s:.0f} ({res.complete_s / 60:.1f})"
          + (" **timed out**" if res.timed_out else ""),
          f"{res.mean_rate:.1f}", str(res.max_per_second), f"{res.refused_429:,}",
          f"{res.delivered:,}", str(res.lost), str(res.doubled),
          str(res.other_messages), f"{res.job_runs:,}",
          " + ".join(f"{c:.0f}" for c in res.instance_cpu), f"{res.pg_cpu:.0f}",
          f"{res.other_load:.2f}"]]))
    out.append("\nLoad averages (1/5/15 min) during the run: " + "; ".join(res.loads[::4]))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_digest_instances",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=30_000)
    p.add_argument("--instances", type=int, default=1)
    p.add_argument("--window", type=int, default=0, help="TAIQU_DIGEST_WINDOW_MINUTES")
    p.add_argument("--kill-after", type=float, default=None)
    p.add_argument("--timeout", type=float, default=2700.0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    m = machine()
    res = asyncio.run(run(args))
    print(render(res, m))
    if args.json:
        args.json.write_text(json.dumps(asdict(res), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
