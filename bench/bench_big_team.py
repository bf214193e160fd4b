"""A chat step's CPU against the size of the manager's team (issue #12): a manager (and a lead)
of a small team (30 台区) and of a 5,000-台区 team with 5,000 managers, in one SQLite file
made by the real migrations.

    python -m bench.bench_big_team [--quick] [--rounds 40] [--before-ref eaddcbd] [--json out]

Each code (this tree, and with --before-ref that ref's, `git archive`d) runs in a fresh
subprocess on the same data (the 'before' code first, on its own schema; then this tree after
its migrations). The subprocess talks to the core as a channel does (Assistant.handle, the
dialogue tests' Chat) and times each step: CPU (time.process_time: the event loop and
aiosqlite's thread) and wall time, the store's background writes included (Database.settle).
Steps, in this order each round:

- /todo; a free-text message no feature takes (今天天气不错); the first line of a form
  (记录巡视 3号台区, which names one of the team's 台区);
- inside the form: 现在 (its time), then 取消 twice (asked, then cancelled).

The first round is a warm-up (imports, caches) and is not counted. Per step the median over
the rounds is shown. Nothing is asserted but that each step got the reply it should.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Tuesday
CREATED = "2026-11-01T00:00:00+00:00"
# (team, 台区, managers): the measured people own 3号台区 and 5号台区 of their team.
TEAMS = (("城东供电所", 30, 10), ("城南供电所", 5000, 5000))
QUICK_TEAMS = (("城东供电所", 30, 10), ("城南供电所", 5000, 1000))
# (label, what is typed, a word the reply must contain)
STEPS = (("/todo", "/todo", ""), ("free text", "今天天气不错", "今天天气不错"),
         ("form's first line", "记录巡视 3号台区", "什么时候"),
         ("in a form", "现在", "做了什么"), ("取消 (asked)", "取消", ""),
         ("取消 (done)", "取消", ""))


# --- the database ------------------------------------------------------------------------------
def build_db(path: Path, teams: tuple[tuple[str, int, int], ...],
             migrate_to: int | None = None) -> dict[str, int]:
    """Migrate with the real code (up to `migrate_to`: the 'before' code's schema), then fill
    with sqlite3. Each team: its areas (N号台区), its managers (one 台区 each, round robin;
    the measured manager owns 3号 and 5号), a lead; both measured people have an identity."""
    from bot.storage.db import Database

    async def migrate() -> None:
        await (await Database(path).connect(migrate_to)).close()

    asyncio.run(migrate())
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    for team, n_areas, n_managers in teams:
        tid = con.execute("INSERT INTO teams(name, created_at) VALUES (?, ?)",
                          (team, CREATED)).lastrowid
        first = con.execute("SELECT coalesce(max(id), 0) FROM areas").fetchone()[0] + 1
        con.executemany("INSERT INTO areas(id, team_id, name, created_at) VALUES (?, ?, ?, ?)",
                        [(first + k, tid, f"{k + 1}号台区", CREATED) for k in range(n_areas)])
        for role, who in (("manager", "manager"), ("lead", "lead")):
            uid = con.execute("INSERT INTO users(name, role, team_id, created_at) "
                              "VALUES (?, ?, ?, ?)", (f"{team}{who}", role, tid, CREATED)).lastrowid
            con.execute("INSERT INTO identities(channel, external_id, user_id, created_at) "
                        "VALUES ('test', ?, ?, ?)", (f"{team}:{who}", uid, CREATED))
            if role == "manager":
                con.executemany("INSERT INTO user_areas VALUES (?, ?)",
                                [(uid, first + 2), (uid, first + 4)])
        others = [(f"经理{m}", tid, CREATED) for m in range(n_managers - 1)]
        ids = [con.execute("INSERT INTO users(name, role, team_id, created_at) "
                           "VALUES (?, 'manager', ?, ?)", o).lastrowid for o in others]
        con.executemany("INSERT INTO user_areas VALUES (?, ?)",
                        [(uid, first + k % n_areas) for k, uid in enumerate(ids)])
    con.commit()
    con.execute("ANALYZE")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("teams", "areas", "users", "user_areas")}
    con.close()
    return counts


# --- the steps, in this (child) process --------------------------------------------------------
async def child(db_path: str, rounds: int) -> dict[str, Any]:
    from bot.assistant import Assistant
    from bot.channels.telegram import TELEGRAM_CAPS
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.events import Incoming
    from bot.services import Services

    services = await Services.open(load_settings(db_path=db_path), FakeClock(NOW))
    core = Assistant(services)
    core.register_channel("test", TELEGRAM_CAPS)
    db = services.db
    out: dict[str, Any] = {}
    for team in (t for t, _, _ in TEAMS):
        for who in ("manager", "lead"):
            cpu: dict[str, list[float]] = {label: [] for label, _, _ in STEPS}
            wall: dict[str, list[float]] = {label: [] for label, _, _ in STEPS}
            for r in range(rounds + 1):
                for label, text, want in STEPS:
                    await db.settle()
                    c0, w0 = time.process_time(), time.perf_counter()
                    res = await core.handle(Incoming("test", f"{team}:{who}", text=text))
                    w1 = time.perf_counter()
                    await db.settle()
                    c1 = time.process_time()
                    said = "\n".join(x.text for x in res.replies)
                    assert want in said, f"{team} {who} {text!r}: {said[:200]!r}"
                    if r:  # round 0 warms up
                        cpu[label].append((c1 - c0) * 1000)
                        wall[label].append((w1 - w0) * 1000)
            out[f"{team}:{who}"] = {
                label: {"cpu_ms": statistics.median(cpu[label]),
                        "p50_ms": statistics.median(wall[label])} for label, _, _ in STEPS}
    await services.close()
    return out


# --- driver ------------------------------------------------------------------------------------
def run_child(db: Path, rounds: int, tree: Path) -> dict[str, Any]:
    proc = subprocess.run([PY, str(ROOT / "bench" / "bench_big_team.py"), "--child",
                           "--db", str(db), "--rounds", str(rounds)], cwd=tree,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)})
    if proc.returncode:
        raise SystemExit(f"child ({tree}) failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 managers in the big team "
                    "(still 5,000 台区) and 10 rounds")
    ap.add_argument("--rounds", type=int, help="measured rounds per person (default 40)")
    ap.add_argument("--before-ref", help="also time this git ref's code on the same data")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--db")
    args = ap.parse_args()
    rounds = args.rounds or (10 if args.quick else 40)
    if args.child:
        print(json.dumps(asyncio.run(child(args.db, rounds))))
        return
    # Here, not at the top: the child runs in the 'before' tree, which may have no bench/.
    from bench.bench_report import extract, migrate_now, table
    from bench.province import load_averages

    teams = QUICK_TEAMS if args.quick else TEAMS
    tmp = Path(tempfile.mkdtemp(prefix="bench_big_team_"))
    try:
        before = extract(args.before_ref, tmp / "before") if args.before_ref else None
        db = tmp / "big_team.db"
        counts = build_db(db, teams, before[1] if before else None)
        load_before = load_averages()
        results: dict[str, dict[str, Any]] = {}
        if before:
            results["before"] = run_child(db, rounds, before[0])
            migrate_now(db)
        results["after"] = run_child(db, rounds, ROOT)
        load_after = load_averages()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sizes = {t: (a, m) for t, a, m in teams}
    rows = []
    for code, res in results.items():
        for key, steps in res.items():
            team, who = key.split(":")
            a, m = sizes[team]
            rows += [[code, f"{a:,} 台区 / {m:,} managers", who, label,
                      f"{v['cpu_ms']:.2f}", f"{v['p50_ms']:.2f}"] for label, v in steps.items()]
    print(f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {'quick' if args.quick else 'full'}, "
          f"{rounds} rounds; Python {platform.python_version()}, SQLite "
          f"{sqlite3.sqlite_version}, {os.cpu_count()} cores; {counts}; load average "
          f"{load_before} before, {load_after} after.\n")
    print(table(["code", "team", "who", "step", "CPU ms (median)", "wall p50 ms"], rows))
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "rounds": rounds,
                                         "load": [load_before, load_after],
                                         "results": results}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
