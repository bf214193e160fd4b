"""Per-step latency and CPU of a chat step on PostgreSQL vs SQLite vs a bare echo bot, in the
same run (issue #11).

    .venv/bin/python -m bench.bench_store_steps [--users 1,50,200] [--rounds 3] [--quick]
                                                [--json out.json]

bench_forms's harness: simulated managers fill whole 工作日志 forms (7 typed steps) through the
real Telegram channel (long polling, `rate_limiter=False`) against the loopback fake Bot API.
Three bots, each a fresh subprocess per run, in rotating order each round:
  echo     bare PTB echo bot (build_echo_app)
  sqlite   `taiqu-bot run` on a SQLite file (TAIQU_DB_PATH), as the embedded default
  pg       `taiqu-bot run` on PostgreSQL (TAIQU_DATABASE_URL), a server this benchmark starts
           itself (tests/pg_server.py, PostgreSQL's defaults: fsync and synchronous commit on)
Bot CPU is the bot process's; PostgreSQL's CPU (postmaster and backends) is counted apart,
so "CPU per step" for pg is bot + server. Prints markdown tables; nothing is asserted.

--baseline DIR: also `sqlite-base` and `pg-base`, the same from another checkout (e.g. `git
archive` of main): before and after side by side in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import bench_forms
from bench.bench_forms import (
    Pooled,
    Run,
    load_run,
    machine,
    ms,
    pct,
    seed_db,
    table,
)
from bench.province import BenchPostgres, load_averages

BOTS = ("echo", "sqlite", "pg")
BASE_BOTS = ("sqlite-base", "pg-base")  # --baseline: the same bots from that checkout


def forms_per_user(users: int, quick: bool) -> int:
    if quick:
        return 10 if users == 1 else 2 if users <= 50 else 1
    return 20 if users == 1 else 4 if users <= 50 else 2


async def one_run(pg: BenchPostgres, kind: str, users: int, forms: int, tag: str,
                  sqlite_seed: Path, step_timeout: float) -> Run:
    bot = "taiqu-baseline" if kind.endswith("-base") else "taiqu-nolimit"
    if kind == "echo":
        run = await load_run("echo", users, forms, tag, None, step_timeout)
    elif kind.startswith("sqlite"):
        run = await load_run(bot, users, forms, tag, sqlite_seed, step_timeout)
    else:
        url = await pg.create(f"run_{tag}", template=f"seed_{users}")
        try:
            run = await load_run(bot, users, forms, tag, None, step_timeout,
                                 database_url=url, db_cpu_seconds=pg.cpu_seconds)
        finally:
            await pg.drop(f"run_{tag}")
    run.bot = kind
    return run


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    users = sorted({int(u) for u in args.users.split(",")})
    rounds = 1 if args.quick else args.rounds
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "users": users, "rounds": rounds}
    base = Path(tempfile.mkdtemp(prefix="taiqu-bench-store-"))
    pg = BenchPostgres().start()
    try:
        results["machine"]["postgresql"] = await pg.version()
        for setting in args.pg_setting:  # e.g. synchronous_commit=off: what commits wait for
            name, _, value = setting.partition("=")
            await pg.admin(f"ALTER SYSTEM SET {name} = '{value}'")
            await pg.admin("SELECT pg_reload_conf()")
        results["pg_settings"] = args.pg_setting
        seeds: dict[int, Path] = {}
        for n in users:
            seeds[n] = base / f"seed-{n}.db"
            await seed_db(seeds[n], n)
            await pg.create(f"seed_{n}")
            await seed_db(None, n, database_url=pg.url(f"seed_{n}"))
        runs: list[tuple[Run, str]] = []
        i = 0
        kinds = [b for b in BOTS if b in args.bots.split(",")]
        if args.baseline is not None:
            kinds += [b for b in BASE_BOTS if b.removesuffix("-base") in kinds]
        for n in users:
            forms = forms_per_user(n, args.quick)
            for r in range(rounds):
                k = r % len(kinds)
                for kind in kinds[k:] + kinds[:k]:  # each bot first once in len(kinds) rounds
                    tag = f"r{i:02d}"
                    i += 1
                    run = await one_run(pg, kind, n, forms, tag, seeds[n], args.step_timeout)
                    load = load_averages()
                    runs.append((run, load))
                    print(f"  {kind:6} users={n:<4} steps={run.steps:<5} "
                          f"p50={ms(pct(run.all_samples, 0.5))}ms "
                          f"p99={ms(pct(run.all_samples, 0.99))}ms wall={run.wall:.1f}s "
                          f"bot={run.bot_cpu:.1f}s pg={run.db_cpu:.1f}s "
                          f"other={run.other_load:.2f} load={load}", file=sys.stderr)
        results["runs"] = runs
        results["elapsed"] = time.perf_counter() - started
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    return results


def pooled(results: dict[str, Any]) -> dict[tuple[str, int], Pooled]:
    pools: dict[tuple[str, int], Pooled] = {}
    for run, _ in results["runs"]:
        pools.setdefault((run.bot, run.users), Pooled(run.bot, run.users, [])).runs.append(run)
    return pools


def db_cpu_ms(p: Pooled) -> float:
    return 1000 * sum(r.db_cpu for r in p.runs) / max(1, len(p.samples))


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    settings = ", ".join(results.get("pg_settings") or []) or "defaults"
    out = [f"PostgreSQL settings: {settings}.\n", "#### Machine\n", table(
        ["date", "CPU", "cores", "Python", "PTB", "SQLite", "PostgreSQL", "kernel"],
        [[m["date"], m["cpu"], m["cores"], m["python"], m["python-telegram-bot"], m["sqlite"],
          m["postgresql"], m["kernel"]]])]
    pools = pooled(results)
    loads: dict[tuple[str, int], list[str]] = {}
    for run, load in results["runs"]:
        loads.setdefault((run.bot, run.users), []).append(load)
    rows = []
    for n in results["users"]:
        for kind in BOTS + BASE_BOTS:
            p = pools.get((kind, n))
            if p is None:
                continue
            form = kind != "echo"
            checks = (f"{p.total('db_rows')} / {p.total('lost')} / {p.total('duplicated')} / "
                      f"{p.total('unconfirmed')}" if form else "n/a")
            bad = "/".join(str(sum(getattr(r, k) for r in p.runs))
                           for k in ("bad_replies", "timeouts", "extra_messages"))
            rows.append([kind, str(n), str(len(p.runs)), str(len(p.samples)), ms(p.p(0.5)),
                         ms(p.p(0.99)), f"{p.steps_per_s:.0f}", f"{p.cpu_per_step_ms:.2f}",
                         f"{db_cpu_ms(p):.2f}", f"{p.cpu_per_step_ms + db_cpu_ms(p):.2f}",
                         f"{p.harness_load:.2f}", f"{p.other_load:.2f}",
                         "; ".join(loads[(kind, n)]), checks, bad])
    out.append("\n#### Per-step latency and CPU: echo vs SQLite vs PostgreSQL "
               "(rate_limiter=False)\n")
    out.append(table(["bot", "users", "runs", "steps", "p50 ms", "p99 ms", "steps/s",
                      "bot CPU ms/step", "PostgreSQL CPU ms/step", "total CPU ms/step",
                      "harness cores", "other load cores", "load avg 1/5/15 after each run",
                      "DB rows / lost / dup / unconfirmed", "bad/timeout/extra"], rows))
    versus = []
    for n in results["users"]:
        echo = pools.get(("echo", n))
        for after, before in zip(BOTS[1:], BASE_BOTS, strict=True):
            a, b = pools.get((after, n)), pools.get((before, n))
            if echo is None or a is None or b is None:
                continue
            versus.append([str(n), after,
                           f"{ms(a.p(0.5))} / {ms(b.p(0.5))} / {ms(echo.p(0.5))}",
                           f"{a.p(0.5) / echo.p(0.5):.2f}x", f"{b.p(0.5) / echo.p(0.5):.2f}x",
                           f"{a.cpu_per_step_ms + db_cpu_ms(a):.2f} / "
                           f"{b.cpu_per_step_ms + db_cpu_ms(b):.2f} / {echo.cpu_per_step_ms:.2f}"])
    if versus:
        out.append("\n#### This checkout vs --baseline, same run\n")
        out.append(table(["users", "store", "p50 after / before / echo ms",
                          "after/echo p50 (goal <= 1.5x)", "before/echo p50",
                          "CPU ms/step after / before / echo (bot+server)"], versus))
    rows = []
    for n in results["users"]:
        echo, lite, pg = (pools.get((k, n)) for k in BOTS)
        if not (echo and lite and pg):
            continue
        per_round = ", ".join(
            f"{pct(b.all_samples, 0.5) / pct(a.all_samples, 0.5):.2f}"
            for a, b in zip(lite.runs, pg.runs, strict=False))
        rows.append([str(n), f"{ms(echo.p(0.5))} / {ms(lite.p(0.5))} / {ms(pg.p(0.5))}",
                     f"{lite.p(0.5) / echo.p(0.5):.2f}x", f"{pg.p(0.5) / echo.p(0.5):.2f}x",
                     f"{pg.p(0.5) / lite.p(0.5):.2f}x", per_round,
                     f"{ms(echo.p(0.99))} / {ms(lite.p(0.99))} / {ms(pg.p(0.99))}",
                     f"{pg.p(0.99) / lite.p(0.99):.2f}x",
                     f"{(pg.cpu_per_step_ms + db_cpu_ms(pg)) / lite.cpu_per_step_ms:.2f}x"])
    out.append("\n#### Ratios\n")
    out.append(table(["users", "p50 echo / SQLite / PG ms", "SQLite/echo p50", "PG/echo p50",
                      "PG/SQLite p50", "PG/SQLite p50 per round",
                      "p99 echo / SQLite / PG ms", "PG/SQLite p99",
                      "PG (bot+server) / SQLite CPU per step"], rows))
    out.append(f"\nTotal benchmark time {results['elapsed']:.0f} s.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_store_steps", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", default="1,50,200")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="1 round, fewer forms")
    p.add_argument("--step-timeout", type=float, default=120.0)
    p.add_argument("--bots", default=",".join(BOTS), help="which of echo,sqlite,pg to run")
    p.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                   help="a PostgreSQL setting for this run (ALTER SYSTEM), e.g. "
                        "synchronous_commit=off")
    p.add_argument("--json", type=Path)
    p.add_argument("--baseline", type=Path,
                   help="also run sqlite and pg from this checkout (sqlite-base, pg-base)")
    args = p.parse_args(argv)
    if args.baseline is not None:
        bench_forms.BASELINE = args.baseline.resolve()
    results = asyncio.run(main_async(args))
    print(render(results))
    if args.json:
        pools = pooled(results)
        args.json.write_text(json.dumps({
            "machine": results["machine"], "elapsed": results["elapsed"],
            "pools": [{"bot": k[0], "users": k[1], "p50_s": v.p(0.5), "p99_s": v.p(0.99),
                       "bot_cpu_ms": v.cpu_per_step_ms, "db_cpu_ms": db_cpu_ms(v),
                       "other_load": v.other_load} for k, v in pools.items()]},
            ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
