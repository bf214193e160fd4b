"""A year of daily line loss for 5,000 台区 (issue #14 §2): 1,825,000 rows imported while a
manager chats on the same SQLite file.

    .venv/bin/python -m bench.bench_lineloss_import [--areas 5000] [--days 365]
                                                    [--batch-rows N] [--before-ref REF]
                                                    [--json out.json]

The file is a GBK CSV as the 用电信息采集 system exports it (a title row, 统计日期, 台区编号,
台区名称, 供入电量, 用电量, 台区线损率). 2% of the areas end the year with two abnormal days, so
the detection after the import opens that many items. The import runs as `taiqu-bot lineloss
import` does, in its own process (its time, its peak memory VmHWM, the time of the detection
alone); meanwhile one manager fills 工作日志 forms through the real Assistant on the same file
(bench_import_stall's User) and every step is timed. A second import of the same file then
shows the re-import (every row an update, no item opened twice). With --before-ref, the
same two imports run first with the code of REF (extracted with `git archive`, as
bench_import_stall does) on a fresh copy of the same database, so "before" and "after" are
measured in the same run under the same machine load.

Prints a markdown table (BENCHMARKS.md); asserts only that every row was imported, the items
were opened once, and the forms were saved, so a broken run cannot look fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.bench_customers import IMPORT_TEAM, NOW, SEED, machine, ms, pct, table
from bench.bench_import_stall import User, extract

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GOAL_S = 0.2  # no chat step over 200 ms during the import
ABNORMAL_SHARE = 0.02  # areas whose last two days are abnormal: the items the run opens
RUN = 2  # data/lineloss.json's days_in_a_row
HEADER = "统计日期,供电单位,台区编号,台区名称,供入电量(kWh),用电量(kWh),台区线损率(%)"

WORKER = """
import asyncio, json, sys, time
from pathlib import Path
from bot.clock import FakeClock
from bot.config import load_settings
from bot.features.lineloss import detect, importer
from bot.services import Services
from bench.bench_customers import NOW, vm

async def main():
    services = await Services.open(load_settings(db_path=sys.argv[1]), FakeClock(NOW))
    follow = detect.follow_up
    timed = {}

    async def follow_up(*args):  # the detection's own time
        t0 = time.perf_counter()
        try:
            return await follow(*args)
        finally:
            timed["detect_s"] = time.perf_counter() - t0

    detect.follow_up = follow_up
    try:
        base = vm("VmRSS")
        print("START", flush=True)
        t0 = time.perf_counter()
        r = await importer.import_lineloss(services, Path(sys.argv[2]), sys.argv[3])
        print(json.dumps({"seconds": time.perf_counter() - t0, "inserted": r.inserted,
                          "updated": r.updated, "errors": r.error_rows,
                          "opened": len(r.follow.opened), "base_kb": base,
                          "peak_kb": vm("VmHWM"), **timed}), flush=True)
    finally:
        await services.close()

asyncio.run(main())
"""


def area_name(i: int) -> str:
    return f"{i + 1}号台区"


async def build_template(path: Path, areas: int) -> None:
    """The team with `areas` 台区 (a manager per 100 of them), its lead, and 张三 who chats."""
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.models import Role
    from bot.services import Services

    services = await Services.open(load_settings(db_path=path), FakeClock(NOW))
    try:
        names = [area_name(i) for i in range(areas)]
        invite = await services.people.create_invite(
            role=Role.MANAGER, team=IMPORT_TEAM, areas=names[:3], name="张三", now=NOW,
            ttl=timedelta(days=7))
        await services.people.redeem_invite(invite.code, channel="test", external_id="张三",
                                            fallback_name="张三", now=NOW)
        await services.people.create_invite(role=Role.LEAD, team=IMPORT_TEAM, areas=[],
                                            name="王班长", now=NOW, ttl=timedelta(days=7))
    finally:
        await services.close()
    con = sqlite3.connect(path)
    try:
        team_id = con.execute("SELECT id FROM teams").fetchone()[0]
        con.executemany("INSERT OR IGNORE INTO areas(team_id, name, code, created_at) "
                        "VALUES (?, ?, ?, ?)", [(team_id, n, f"00{i + 1:05d}", NOW.isoformat())
                                                for i, n in enumerate(names)])
        for m in range(3, areas, 100):  # 张三 has the first three; the rest by hundreds
            uid = con.execute("INSERT INTO users(name, role, team_id, created_at) "
                              "VALUES (?, 'manager', ?, ?)",
                              (f"经理{m}", team_id, NOW.isoformat())).lastrowid
            con.execute("INSERT INTO user_areas(user_id, area_id) SELECT ?, id FROM areas "
                        "WHERE team_id = ? AND id > ? ORDER BY id LIMIT 100",
                        (uid, team_id, m))
        con.commit()
    finally:
        con.close()


def write_csv(path: Path, areas: int, days: int) -> int:
    """A year ending the day before NOW, day by day as the system exports; GBK."""
    rng = random.Random(SEED)
    last = NOW.date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    bad = set(rng.sample(range(areas), int(areas * ABNORMAL_SHARE)))
    supplied = [rng.uniform(400, 3000) for _ in range(areas)]
    with path.open("w", encoding="gbk", newline="") as fh:
        fh.write(f"台区日线损统计（{first} 至 {last}）\r\n{HEADER}\r\n")
        for d in range(days):
            day = first + timedelta(days=d)
            stamp = f"{day:%Y/%m/%d},{IMPORT_TEAM}"
            lines = []
            for i in range(areas):
                s = supplied[i] * rng.uniform(0.85, 1.15)
                rate = rng.uniform(13, 18) if i in bad and d >= days - RUN else rng.uniform(2, 8)
                sold = s * (1 - rate / 100)
                lines.append(f"{stamp},00{i + 1:05d},{area_name(i)},{s:.1f},{sold:.1f},"
                             f"{(s - sold) / s * 100:.2f}\r\n")
            fh.write("".join(lines))
    return len(bad) if days >= RUN else 0  # a shorter file opens nothing


async def one_import(label: str, db: Path, csv_path: Path, batch_rows: int | None,
                     tree: Path = ROOT) -> dict[str, Any]:
    user = User(db, area_name(0))
    stop = asyncio.Event()
    chatting = asyncio.create_task(user.run(stop))
    await asyncio.sleep(2.0)  # the idle baseline: the same user's steps with no import
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys((str(tree), str(ROOT))))  # bench: ROOT's
    if batch_rows:
        env["TAIQU_LINELOSS_BATCH_ROWS"] = str(batch_rows)
    proc = await asyncio.create_subprocess_exec(
        PY, "-c", WORKER, str(db), str(csv_path), IMPORT_TEAM, cwd=tree, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    assert line.strip() == b"START", line
    started = time.perf_counter()
    out, err = await proc.communicate()
    ended = time.perf_counter()
    stop.set()
    await chatting
    if proc.returncode != 0:
        raise RuntimeError(f"{label} import failed:\n{err.decode()}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    idle = [s for t0, s in user.steps if t0 + s < started]
    spanning = [s for t0, s in user.steps if t0 < ended and t0 + s > started]
    return {"label": label, **result, "wall_s": ended - started, "idle": idle,
            "spanning": spanning, "saved": user.saved}


def stats(xs: list[float]) -> list[str]:
    if not xs:
        return ["0", "—", "—", "—"]
    return [str(len(xs)), ms(pct(xs, 0.5)), ms(pct(xs, 0.99)), ms(max(xs))]


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [f"Run {m['date']}; {m['cpu']}, {m['cores']} cores; Python {m['python']}, SQLite "
           f"{m['sqlite']}; load average before the run {res['load']}; {res['areas']:,} 台区 × "
           f"{res['days']} days = {res['rows']:,} rows, GBK CSV {res['mb']:.0f} MB; "
           f"{res['batch_rows'] or 'default'} rows per transaction; load average after "
           f"{res['load_after']}"
           + (f"; before = `{res['before_ref']}`, after = this tree" if res["before_ref"]
              else "") + ".\n"]
    rows = []
    for r in res["runs"]:
        over = sum(s > GOAL_S for s in r["spanning"])
        rows.append([r["label"], f"{r['seconds']:.1f}", f"{r['rows_per_s']:,.0f}",
                     f"{r.get('detect_s', 0):.2f}", str(r["opened"]),
                     f"{(r['peak_kb'] - r['base_kb']) / 1024:.0f}",
                     f"{r['peak_kb'] / 1024:.0f}", *stats(r["idle"])[1:],
                     *stats(r["spanning"]), str(over), "met" if not over else "missed"])
    out.append(table(["import", "s", "rows/s", "detection s", "items opened",
                      "peak RSS growth MB", "peak RSS MB", "idle p50 ms", "idle p99 ms",
                      "idle max ms", "chat steps during import", "p50 ms", "p99 ms",
                      "max ms", f"steps > {GOAL_S * 1000:.0f} ms", "goal"], rows))
    return "\n".join(out)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="bench_lineloss_"))
    try:
        template = base / "template.db"
        await build_template(template, args.areas)
        csv_path = base / "lineloss.csv"
        expected = write_csv(csv_path, args.areas, args.days)
        rows = args.areas * args.days
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        trees = [("", ROOT)]
        if args.before_ref:
            trees.insert(0, ("before: ", extract(args.before_ref, base / "before")))
        runs = []
        for prefix, tree in trees:
            db = base / f"{tree.name}.db"
            shutil.copy(template, db)
            for n, label in enumerate(("first import", "same file again")):
                print(f"{prefix}{label} ...", file=sys.stderr)
                r = await one_import(prefix + label, db, csv_path, args.batch_rows, tree)
                assert r["errors"] == 0 and r["inserted"] + r["updated"] == rows, r
                assert r["opened"] == (expected if not n else 0), r
                assert r["saved"] > 0, r
                r["rows_per_s"] = rows / r["seconds"]
                runs.append(r)
        return {"machine": machine(), "load": load, "areas": args.areas, "days": args.days,
                "rows": rows, "mb": csv_path.stat().st_size / 1e6, "runs": runs,
                "batch_rows": args.batch_rows, "before_ref": args.before_ref,
                "load_after": " ".join(Path("/proc/loadavg").read_text().split()[:3])}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--areas", type=int, default=5000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--batch-rows", type=int, default=None,
                    help="TAIQU_LINELOSS_BATCH_ROWS for the import (default: the setting's)")
    ap.add_argument("--before-ref", default=None,
                    help="also run the imports with the code of this git ref, first")
    ap.add_argument("--json")
    args = ap.parse_args()
    res = asyncio.run(main_async(args))
    print(render(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
