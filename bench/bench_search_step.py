"""查客户 as a whole chat step in a province team of 100,000 customers, and whether another
manager's chat stalls meanwhile (issue #12: a step makes at most 2 round trips; no chat step
over 200 ms).

    .venv/bin/python -m bench.bench_search_step [--rows 100000] [--before-ref f232e93]
                                                [--rounds 2] [--json out.json]

One SQLite file (real migrations) holds one team with `--rows` customers (bench_customers'
generator) and two managers. Each variant runs in its own subprocess on a fresh copy of it,
with the code of `--before-ref` (extracted with `git archive`) or of this tree, alternating
`--rounds` times, so both see the same machine load:

1. quiet: manager A sends a shuffled mix of 查客户 texts (bench_customers.query_mix) through
   the real Assistant, and taps ▶️ where a result has one; each step is timed and its
   statements counted (Backend.trips, write-behind settled: what tests count).
2. together: manager B fills 工作日志 forms step after step (its writes take the quick path)
   for a few seconds alone, then while A searches without a pause; B's steps are timed.

Prints markdown tables; nothing is asserted except that every search answered and every
form was saved, so a broken run cannot look fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.bench_customers import (
    NOW,
    SEED,
    build_search_db,
    machine,
    table,
)
from bench.bench_import_stall import extract, stats

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GOAL_S = 0.2

# One variant's run, in the tree's own code (cwd and PYTHONPATH: the tree; `tests` for Chat).
WORKER = r"""
import asyncio, json, random, sys, time
from bench.bench_customers import NOW, query_mix
from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.config import load_settings
from bot.services import Services
from tests.conftest import Chat

spec = json.loads(sys.argv[1])

async def timed(chat, coro, out):
    t0 = time.perf_counter()
    await coro
    out.append(time.perf_counter() - t0)

async def writer(services, stop, out):
    chat = Chat(Assistant(services), "bench", "w")
    while not stop.is_set():
        await timed(chat, chat.say(f"巡视 {spec['area']} 昨天下午3点 2号杆拉线松动"), out)
        await timed(chat, chat.say("拉线需紧固"), out)
        await timed(chat, chat.say("跳过"), out)
        await timed(chat, chat.location(31.82, 117.23), out)
        await timed(chat, chat.press("保存"), out)
        assert "已保存工作日志" in chat.text, chat.text

async def searching(services, chat, mix, steps, trips, kinds, stop=None):
    db = services.db
    for kind, text in mix:
        if stop is not None and stop.is_set():
            return
        await db.settle(); db.trips.reset()
        await timed(chat, chat.say(f"查客户 {text}".strip()), steps)
        await db.settle()
        trips.append(db.trips.trips + db.trips.inline); kinds.append(kind)
        assert chat.text
        if "下一页" in "".join(b.label for r in chat.last.replies for row in r.buttons
                               for b in row):
            await db.settle(); db.trips.reset()
            await timed(chat, chat.press("下一页"), steps)
            await db.settle()
            trips.append(db.trips.trips + db.trips.inline); kinds.append("▶️")

async def main():
    services = await Services.open(load_settings(db_path=spec["db"]), FakeClock(NOW))
    areas = [r[0] for r in await services.db.fetchall(
        "SELECT name FROM areas WHERE team_id = (SELECT team_id FROM users WHERE name = '经理甲')")]
    team = await services.db.fetchall(
        "SELECT name, account_no, active FROM customers WHERE team_id = "
        "(SELECT team_id FROM users WHERE name = '经理甲')")
    mix = query_mix(random.Random(spec["seed"]), team, areas, spec["per_kind"])
    chat = Chat(Assistant(services), "bench", "m")
    res = {"quiet": [], "quiet_trips": [], "quiet_kinds": []}
    try:
        await searching(services, chat, mix[:30], [], [], [])  # warm-up
        await searching(services, chat, mix, res["quiet"], res["quiet_trips"], res["quiet_kinds"])
        idle, during = [], []
        stop = asyncio.Event()
        w = asyncio.create_task(writer(services, stop, idle))
        await asyncio.sleep(spec["seconds"])
        stop.set(); await w
        stop = asyncio.Event()
        w = asyncio.create_task(writer(services, stop, during))
        searched = []
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < spec["seconds"]:
            await searching(services, chat, mix, searched, [], [], None)
        stop.set(); await w
        res |= {"idle": idle, "during": during, "searched": searched}
    finally:
        await services.close()
    print(json.dumps(res))

asyncio.run(main())
"""


async def build(path: Path, rows: int) -> dict[str, Any]:
    """One team with every customer, its manager 经理甲 (bench:m) and a second manager (bench:w)."""
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.models import Role
    from bot.services import Services

    info = await build_search_db(path, rows, 1)
    services = await Services.open(load_settings(db_path=path), FakeClock(NOW))
    try:
        row = await services.db.fetchone(
            "SELECT t.name, (SELECT min(a.name) FROM areas a WHERE a.team_id = t.id) "
            "FROM teams t JOIN users u ON u.team_id = t.id WHERE u.name = '经理甲'")
        assert row is not None
        invite = await services.people.create_invite(
            role=Role.MANAGER, team=row[0], areas=[row[1]], name="经理乙", now=NOW,
            ttl=timedelta(days=7))
        await services.people.redeem_invite(invite.code, channel="bench", external_id="w",
                                            fallback_name="w", now=NOW)
    finally:
        await services.close()
    return info | {"area": row[1]}


def one_run(tree: Path, template: Path, base: Path, label: str, spec: dict[str, Any]
            ) -> dict[str, Any]:
    db = base / f"{label}.db"
    shutil.copy(template, db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAIQU_")}
    env["PYTHONPATH"] = f"{tree}{os.pathsep}{ROOT}"
    done = subprocess.run([PY, "-c", WORKER, json.dumps(spec | {"db": str(db)})], cwd=tree,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"label": label}


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    out = [f"Run {m['date']}; {m['cpu']}, {m['cores']} cores; Python {m['python']}, SQLite "
           f"{m['sqlite']}; {res['rows']:,} customers in the searching team; load average "
           f"before {res['load_before']}, after {res['load_after']}; before = "
           f"`{res['before_ref']}`, after = this tree.\n"]
    rows = []
    for r in res["runs"]:
        kinds: dict[str, list[int]] = {}
        for k, n in zip(r["quiet_kinds"], r["quiet_trips"], strict=True):
            kinds.setdefault("▶️" if k == "▶️" else "查客户", []).append(n)
        trips = "; ".join(f"{k} {min(v)}–{max(v)}" for k, v in sorted(kinds.items()))
        rows.append([r["label"], *stats(r["quiet"]), trips])
    out.append(table(["code", "search steps", "p50 ms", "p99 ms", "max ms",
                      "round trips per step"], rows))
    out.append("")
    rows = []
    for r in res["runs"]:
        over = sum(s > GOAL_S for s in r["during"])
        rows.append([r["label"], *stats(r["idle"]), *stats(r["during"]),
                     str(len(r["searched"])), str(over)])
    out.append(table(["code", "B's steps alone", "p50 ms", "p99 ms", "max ms",
                      "B's steps while A searches", "p50 ms", "p99 ms", "max ms",
                      "A's searches meanwhile", f"B's steps > {GOAL_S * 1000:.0f} ms"], rows))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_search_step", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--before-ref", default="f232e93")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--per-kind", type=int, default=20, help="queries per kind (7 kinds)")
    p.add_argument("--seconds", type=float, default=8.0, help="B alone, then B with A")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench_search_step_"))
    try:
        template = base / "template.db"
        info = asyncio.run(build(template, args.rows))
        before = extract(args.before_ref, base / "before")
        shutil.copytree(ROOT / "tests", before / "tests")  # Chat, as the tree's core sees it
        spec = {"seed": SEED + 7, "per_kind": args.per_kind, "seconds": args.seconds,
                "area": info["area"]}
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        runs = []
        for n in range(args.rounds):
            for label, tree in (("before", before), ("after", ROOT)):
                runs.append(one_run(tree, template, base, f"{label} #{n + 1}", spec))
        res = {"machine": machine(), "rows": args.rows, "before_ref": args.before_ref,
               "load_before": load_before,
               "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()), "runs": runs}
        print(render(res))
        if args.json:
            args.json.write_text(json.dumps(res, ensure_ascii=False))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
