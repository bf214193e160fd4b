"""The features' report sections at scale (issue #12: a chat step makes at most 2 round trips;
/report read each section separately): the time and round trips of every section of a
team's (or one manager's) last-week report, this tree against `--before-ref`, same data.

    .venv/bin/python -m bench.bench_report_sections --db REPORT.db [--before-ref b8c9e2a]

REPORT.db is a database bench_report builds (`--keep PATH`, e.g. its 5,000-manager team);
it is copied first, so the cache is left as it was. Each code runs in a fresh process:
one cold run, then `--runs` more (median)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_report import NOW, ROOT, extract, table

PY = sys.executable


async def child(db_path: str, team: str, runs: int, manager: bool) -> dict[str, Any]:
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.features.reports.figures import Scope
    from bot.features.reports.handlers import feature_parts
    from bot.features.reports.ranges import parse_range
    from bot.services import Services

    services = await Services.open(load_settings(db_path=db_path), FakeClock(NOW))
    db = services.db
    row = await db.fetchone("SELECT id FROM teams WHERE name = ?", (team,))
    assert row is not None
    scope = Scope(row[0], team)
    if manager:
        m = await db.fetchone("SELECT id, name FROM users WHERE team_id = ? AND "
                              "role = 'manager' ORDER BY id LIMIT 1", (row[0],))
        assert m is not None
        scope = Scope(row[0], team, m[0], m[1])
    period = parse_range("上周", NOW)

    async def once() -> tuple[float, int, int]:
        await db.settle()
        db.trips.reset()
        t0 = time.perf_counter()
        parts = await feature_parts(services, scope, period, NOW, "zh_CN")
        took = time.perf_counter() - t0
        return took, db.trips.trips + db.trips.inline, sum(len(p.lines) for p in parts)

    cold, trips, lines = await once()
    warm = statistics.median([(await once())[0] for _ in range(runs)])
    await services.close()
    return {"cold_s": cold, "warm_s": warm, "trips": trips, "lines": lines}


def run_child(db: Path, team: str, runs: int, manager: bool, tree: Path) -> dict[str, Any]:
    """In a fresh process with the code of `tree` (this one's, or the 'before' code)."""
    argv = [PY, str(ROOT / "bench" / "bench_report_sections.py"), "--child", "--db", str(db),
            "--team", team, "--runs", str(runs), *(["--manager"] if manager else [])]
    proc = subprocess.run(argv, cwd=tree, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": "0",
                               "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"})
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--team", default="城东供电所")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--before-ref")
    ap.add_argument("--manager", action="store_true")
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.db, args.team, args.runs, args.manager))))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_sections_"))
    db = tmp / "report.db"
    shutil.copy(args.db, db)
    codes: list[tuple[str, Path]] = [("after", ROOT)]
    if args.before_ref:
        codes.insert(0, ("before", extract(args.before_ref, tmp / "before")[0]))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    rows = []
    for code, tree in codes:
        for manager in (False, True):
            r = run_child(db, args.team, args.runs, manager, tree)
            rows.append([code, "one manager" if manager else "team", str(r["trips"]),
                         f"{r['cold_s']:.3f}", f"{r['warm_s']:.3f}", str(r["lines"])])
    after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average before {load}, after {after}\n")
    print(table(["code", "report", "round trips", "cold s", "warm s", "lines"], rows))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
