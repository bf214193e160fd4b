"""1, 2 and 3 instances on one PostgreSQL, by webhook behind a round-robin proxy, at 200 and
1,000 simulated users: throughput and per-step latency (issue #11).

    .venv/bin/python -m bench.bench_instances [--instances 1,2,3] [--users 200,1000]
                                              [--forms 1] [--rounds 1] [--json out.json]

Processes, all on this machine: a PostgreSQL server the benchmark starts (tests/pg_server.py,
PostgreSQL's defaults: fsync and synchronous commit on); N instances of `taiqu-bot run` with
TAIQU_TELEGRAM_WEBHOOK_URL set (each its own port, `rate_limiter=False` as in bench_forms:
with the deployed 28 sends/s every instance count gives 28 replies/s); `bench.rrproxy` in
front of them (each POST to the next instance); this process: the loopback fake Bot API
(where the replies land) and the simulated users. A user's update is POSTed to the proxy as
Telegram POSTs a webhook (at most 40 requests open at once, Telegram's default
max_connections); the next step goes as soon as the reply to the last one arrives (no think
time). Latency: update created -> the bot's reply arriving in the fake. Every confirmed form
is checked in the database afterwards (lost, doubled). CPU of every process is read from
/proc; the machine has 2 cores, so N instances + PostgreSQL + proxy + load generator share
them: the table says how busy each was. `--baseline DIR` (e.g. `git archive` of main) runs
each configuration a second time with the instances running that checkout's code, alternating,
so that before and after are measured side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_forms import (
    BOTS,
    FIRST_CHAT,
    PY,
    STEP_NAMES,
    BotProcess,
    Run,
    Wire,
    bot_env,
    busy_seconds,
    check_saved,
    drive_users,
    machine,
    ms,
    pct,
    saved_worklogs,
    seed_db,
    table,
    warm_up,
)
from bench.province import BenchPostgres, load_averages, wait_for_port
from tests.fakebotapi import FakeBotAPI

SECRET = "bench-webhook-secret-0123456789"
PATH = "/tg"
TELEGRAM_MAX_CONNECTIONS = 40  # setWebhook's default: requests Telegram keeps open at once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebhookWire(Wire):
    """The user's update is POSTed to the proxy (as Telegram would) instead of waiting in
    the fake for getUpdates."""

    def __init__(self, fake: FakeBotAPI, url: str) -> None:
        super().__init__(fake)
        self.url = url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.open_requests = asyncio.Semaphore(TELEGRAM_MAX_CONNECTIONS)
        self.failed_posts = 0
        self.post_seconds: list[float] = []  # POST -> the proxy's answer (recorded: 200)
        self._posts: set[asyncio.Task[None]] = set()

    def send(self, chat_id: int, text: str) -> tuple[float, asyncio.Future[dict[str, Any]]]:
        t0, fut = super().send(chat_id, text)
        update = self.bot.updates.pop()  # the one just queued: it is POSTed, not polled
        task = asyncio.get_running_loop().create_task(self._post(update))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)
        return t0, fut

    async def _post(self, update: dict[str, Any]) -> None:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        for _ in range(20):  # Telegram retries until it gets a 2xx
            async with self.open_requests:
                t0 = time.perf_counter()
                try:
                    async with self.session.post(self.url, json=update, headers=headers) as r:
                        if 200 <= r.status < 300:
                            self.post_seconds.append(time.perf_counter() - t0)
                            return
                except aiohttp.ClientError:
                    pass
            self.failed_posts += 1
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        await self.session.close()


@dataclass
class Cluster:
    instances: list[BotProcess] = field(default_factory=list)
    proxy: BotProcess | None = None

    def cpu(self) -> list[float]:
        return [p.cpu_seconds() for p in self.instances]

    async def stop(self) -> None:
        for p in [*self.instances, *([self.proxy] if self.proxy else [])]:
            code = await p.stop()
            if code not in (0, None, -signal.SIGTERM):
                print(f"  ! {p.argv} exited with {code}:\n{p.log_tail()}", file=sys.stderr)


async def start_cluster(fake: FakeBotAPI, url: str, n: int, proxy_port: int,
                        workdir: Path, code: Path | None = None) -> Cluster:
    cluster = Cluster()
    ports = [free_port() for _ in range(n)]
    for i, port in enumerate(ports):
        env = bot_env(fake, workdir / "unused.db", url) | {
            "TAIQU_TELEGRAM_WEBHOOK_URL": f"https://bot.example.org{PATH}",
            "TAIQU_TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TAIQU_TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{port}"}
        if code is not None:  # the instances run another checkout's bot/ (--baseline)
            env["PYTHONPATH"] = str(code)
        home = workdir / f"i{i}"
        home.mkdir()
        proc = BotProcess(BOTS["taiqu-nolimit"][1], env, home)
        await proc.start(None)
        cluster.instances.append(proc)
    for port in ports:
        await wait_for_port("127.0.0.1", port, 60)
    upstream = ",".join(f"http://127.0.0.1:{p}" for p in ports)
    cluster.proxy = BotProcess([PY, "-m", "bench.rrproxy", "--listen",
                                f"127.0.0.1:{proxy_port}", "--upstream", upstream],
                               bot_env(fake, workdir / "unused.db"), workdir)
    await cluster.proxy.start(None)
    await wait_for_port("127.0.0.1", proxy_port, 30)
    return cluster


@dataclass
class ClusterRun:
    run: Run
    instances: int
    instance_cpu: list[float] = field(default_factory=list)
    pg_cpu: float = 0.0
    proxy_cpu: float = 0.0
    failed_posts: int = 0
    post_p50: float = 0.0
    load: str = ""
    code: str = "this checkout"


async def cluster_run(pg: BenchPostgres, n: int, users: int, forms: int, tag: str,
                      step_timeout: float, code: Path | None = None) -> ClusterRun:
    run = Run(f"{n} instance(s)", users, forms, tag)
    out = ClusterRun(run, n, code=f"baseline {code.name}" if code else "this checkout")
    url = await pg.create(f"run_{tag}", template=f"seed_{users}")
    workdir = Path(tempfile.mkdtemp(prefix="taiqu-bench-inst-"))
    done: set[str] = set()
    try:
        async with FakeBotAPI() as fake:
            proxy_port = free_port()
            wire = WebhookWire(fake, f"http://127.0.0.1:{proxy_port}{PATH}")
            cluster = await start_cluster(fake, url, n, proxy_port, workdir, code)
            try:
                for _ in range(n):  # each instance answers at least one warm-up step
                    await warm_up(wire, tag, True)
                assert cluster.proxy is not None
                cpu0, proxy0, pg0 = cluster.cpu(), cluster.proxy.cpu_seconds(), pg.cpu_seconds()
                harness0, busy0 = time.process_time(), busy_seconds()
                t0 = time.perf_counter()
                await drive_users(wire, run, users, forms, tag, True, step_timeout, done)
                run.wall = time.perf_counter() - t0
                out.instance_cpu = [b - a for a, b in zip(cpu0, cluster.cpu(), strict=True)]
                out.proxy_cpu = cluster.proxy.cpu_seconds() - proxy0
                out.pg_cpu = pg.cpu_seconds() - pg0
                run.bot_cpu = sum(out.instance_cpu)
                run.db_cpu = out.pg_cpu
                run.harness_cpu = time.process_time() - harness0
                other = (busy_seconds() - busy0 - run.bot_cpu - run.harness_cpu - out.pg_cpu
                         - out.proxy_cpu)
                run.other_load = max(0.0, other) / run.wall
                out.load = load_averages()
                await asyncio.sleep(0.3)
                run.extra_messages = sum(
                    max(0, wire.messages(FIRST_CHAT + i) - forms * len(STEP_NAMES))
                    for i in range(users))
                out.failed_posts = wire.failed_posts
                out.post_p50 = pct(wire.post_seconds, 0.5)
            finally:
                await cluster.stop()
                await wire.close()
        check_saved(run, *await saved_worklogs(workdir / "unused.db", url, tag), done)
    finally:
        await pg.drop(f"run_{tag}")
        shutil.rmtree(workdir, ignore_errors=True)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(x) for x in args.instances.split(",")]
    users = [int(x) for x in args.users.split(",")]
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "runs": []}
    pg = BenchPostgres().start()
    try:
        results["machine"]["postgresql"] = await pg.version()
        for u in users:
            await pg.create(f"seed_{u}")
            await seed_db(None, u, database_url=pg.url(f"seed_{u}"))
        i = 0
        for r in range(args.rounds):
            for u in users:
                order = counts if r % 2 == 0 else list(reversed(counts))
                codes = [None, *([args.baseline.resolve()] if args.baseline else [])]
                for n, code in ((n, c) for n in order
                                for c in (codes if r % 2 == 0 else codes[::-1])):
                    tag = f"c{i:02d}"
                    i += 1
                    res = await cluster_run(pg, n, u, args.forms, tag, args.step_timeout,
                                            code)
                    results["runs"].append(res)
                    x = res.run
                    print(f"  [{res.code}] instances={n} users={u:<5} steps={x.steps:<5} "
                          f"p50={ms(pct(x.all_samples, 0.5))}ms "
                          f"p99={ms(pct(x.all_samples, 0.99))}ms "
                          f"steps/s={x.steps / max(x.wall, 1e-9):.0f} "
                          f"inst={[round(c, 1) for c in res.instance_cpu]} "
                          f"pg={res.pg_cpu:.1f}s proxy={res.proxy_cpu:.1f}s "
                          f"post={ms(res.post_p50)}ms other={x.other_load:.2f} "
                          f"load={res.load} lost={x.lost} "
                          f"dup={x.duplicated} timeouts={x.timeouts}", file=sys.stderr)
        results["elapsed"] = time.perf_counter() - started
    finally:
        pg.stop()
    return results


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, PTB "
           f"{m['python-telegram-bot']}, PostgreSQL {m['postgresql']}, {m['date']}.\n"]
    rows = []
    for res in sorted(results["runs"], key=lambda c: (c.run.users, c.instances, c.code)):
        x: Run = res.run
        wall = max(x.wall, 1e-9)
        rows.append([res.code, str(res.instances), str(x.users), str(x.steps),
                     ms(pct(x.all_samples, 0.5)), ms(pct(x.all_samples, 0.99)),
                     f"{x.steps / wall:.0f}", f"{x.forms_done / wall:.1f}",
                     " + ".join(f"{c / wall:.2f}" for c in res.instance_cpu),
                     f"{res.pg_cpu / wall:.2f}", f"{res.proxy_cpu / wall:.2f}",
                     f"{x.harness_cpu / wall:.2f}", f"{x.other_load:.2f}",
                     f"{1000 * (x.bot_cpu + res.pg_cpu) / max(1, x.steps):.2f}", res.load,
                     f"{x.forms_done} / {x.lost} / {x.duplicated} / {x.unconfirmed}",
                     f"{x.bad_replies}/{x.timeouts}/{x.extra_messages}/{res.failed_posts}"])
    out.append(table(["code", "instances", "users", "steps", "p50 ms", "p99 ms", "steps/s",
                      "forms/s",
                      "instance cores (each)", "PostgreSQL cores", "proxy cores",
                      "load generator cores", "other load cores",
                      "bot+PG CPU ms/step", "load avg 1/5/15 after",
                      "forms confirmed / lost / dup / unconfirmed",
                      "bad/timeout/extra replies/failed POSTs"], rows))
    out.append(f"\nTotal benchmark time {results['elapsed']:.0f} s.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_instances", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", default="1,2,3")
    p.add_argument("--users", default="200,1000")
    p.add_argument("--forms", type=int, default=1, help="forms per user per run")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--step-timeout", type=float, default=180.0)
    p.add_argument("--json", type=Path)
    p.add_argument("--baseline", type=Path, help="another checkout, run side by side")
    args = p.parse_args(argv)
    results = asyncio.run(main_async(args))
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps([
            {"code": c.code, "instances": c.instances, "users": c.run.users, "steps": c.run.steps,
             "p50_s": pct(c.run.all_samples, 0.5), "p99_s": pct(c.run.all_samples, 0.99),
             "wall_s": c.run.wall, "instance_cpu_s": c.instance_cpu, "pg_cpu_s": c.pg_cpu,
             "proxy_cpu_s": c.proxy_cpu, "lost": c.run.lost, "dup": c.run.duplicated,
             "load": c.load} for c in results["runs"]], indent=1))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
