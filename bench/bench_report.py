"""Weekly report time and memory at scale (issue #5).

    .venv/bin/python -m bench.bench_report [--quick] [--runs 3] [--json out.json]

One SQLite file (made by the real migrations, filled with sqlite3 outside the measurement)
holds a year (2025-12-08 .. 2026-12-06) of generated work for two teams: 城东供电所 with 50
managers (~100,000 log entries) and 城南供电所 with 500 managers (~1,000,000), plus their
complaints, arrears, outages with special-customer checklists, repairs and reminders.

Each scenario runs in a fresh subprocess, so its peak memory is its own: the process imports
the bot, opens the database, then times the scenario once ("cold": first use, which for
files includes importing matplotlib and loading the CJK font) and `--runs` more times
("warm", median). Memory is VmHWM (peak RSS) minus VmRSS just before the first run, so
native memory (SQLite, matplotlib, Agg buffers) counts too. Scenarios:

- message: figures + the chat text for last week (what the Monday push computes first);
- files: message + the XLSX + the PNG chart (what a lead receives);
- manager: one manager's own report with its XLSX;
- paper: /export 日志 上周 (the printable XLSX) for the whole team;
- year: /report over the whole year with files (the range bounds the work, not the file);
- reply: a lead's /report as the chat sends it (handlers.report_reply: the figures, every
  feature's section, the XLSX and the chart; the reads' round trips counted).

Nothing is asserted except that every run produced what it should (entry counts match the
database, the PNG and XLSX are non-empty), so a broken run cannot look fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SEED = 20261207
TZ = ZoneInfo("Asia/Shanghai")
FIRST_DAY = date(2025, 12, 8)
LAST_DAY = date(2026, 12, 6)  # a year (52 weeks) ending with the reported week
NOW = datetime(2026, 12, 7, 8, 31, tzinfo=TZ)  # Monday: last week is 11-30 .. 12-06
TEAMS = (("城东供电所", 50), ("城南供电所", 500))
ITEMS = ("visit", "publicity", "errand", "patrol", "repair", "collect", "lineloss",
         "emergency", "service")
ITEM_WEIGHTS = (14, 5, 5, 25, 10, 15, 8, 3, 15)
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐"
            "许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程")
GIVEN = ("秀英", "建国", "海燕", "志强", "伟", "红梅", "俊杰", "文斌", "晓东", "立新", "国庆",
         "玉兰", "浩然", "子涵", "明", "磊", "勇", "娟", "涛", "超", "长林", "世平", "欧阳")
CONTENT = ("巡视 {a}，2号杆拉线松动，已紧固", "走访独居老人，检查室内线路和漏保",
           "催收电费，客户承诺本周缴清", "宣传安全用电和防汛知识", "处理表箱锈蚀，更换表箱锁",
           "线损分析：{a} 本月线损率偏高，核对户变关系", "受理客户增容申请，资料已收齐",
           "报修处理：低压线路接头发热，已更换", "应急处置：树障导致跳闸，已清理恢复送电")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def local(day: date, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(minutes=minute)


# --- the database ------------------------------------------------------------------------------
def build_db(path: Path, days: int, teams: tuple[tuple[str, int], ...] = TEAMS,
             migrate_to: int | None = None) -> dict[str, int]:
    """Migrate with the real code (up to `migrate_to`: the schema of the 'before' code), then
    bulk-fill with sqlite3. Returns row counts."""
    from bot.storage.db import Database

    async def migrate() -> None:
        db = await Database(path).connect(migrate_to)
        await db.close()

    asyncio.run(migrate())
    rng = random.Random(SEED)
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    created = iso(local(FIRST_DAY - timedelta(days=30), 9 * 60))
    first = LAST_DAY - timedelta(days=days - 1)
    log_id = 0
    for team_name, managers in teams:
        tid = con.execute("INSERT INTO teams(name, created_at) VALUES (?, ?)",
                          (team_name, created)).lastrowid
        con.execute("INSERT INTO users(name, role, team_id, created_at) VALUES (?, 'lead', ?, ?)",
                    (f"{team_name}班长", tid, created))
        users: list[tuple[int, list[int], list[int]]] = []  # (user, areas, customers)
        for m in range(managers):
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (f"{m}" if m >= 40 else "")
            uid = con.execute("INSERT INTO users(name, role, team_id, created_at) "
                              "VALUES (?, 'manager', ?, ?)", (name, tid, created)).lastrowid
            areas = []
            for k in range(3):
                aid = con.execute("INSERT INTO areas(team_id, name, created_at) VALUES (?, ?, ?)",
                                  (tid, f"{team_name[:2]}{m}-{k}号台区", created)).lastrowid
                con.execute("INSERT INTO user_areas VALUES (?, ?)", (uid, aid))
                areas.append(aid)
            custs = []
            for c in range(8):
                cid = con.execute(
                    "INSERT INTO customers(team_id, area_id, account_no, name, address, phone, "
                    "created_at) VALUES (?, ?, ?, ?, '东门村3组', '13800001234', ?)",
                    (tid, rng.choice(areas), f"55{tid:02d}{uid:05d}{c:03d}",
                     rng.choice(SURNAMES) + rng.choice(GIVEN), created)).lastrowid
                con.execute("INSERT INTO customer_categories VALUES (?, ?)",
                            (cid, rng.choice(("elderly", "medical", "low_income", "disabled"))))
                custs.append(cid)
            users.append((uid, areas, custs))  # type: ignore[arg-type]
        logs, items = [], []
        complaints, arrears, outages, notices, outage_areas, repairs, reminders = ([] for _ in
                                                                                   range(7))
        for uid, areas, custs in users:
            day = first
            while day <= LAST_DAY:
                for _ in range(max(0, round(rng.gauss(5.5, 1.5)))):
                    log_id += 1
                    at = local(day, rng.randrange(7 * 60, 20 * 60))
                    area = rng.choice(areas)
                    chosen = set(rng.choices(ITEMS, ITEM_WEIGHTS, k=rng.choice((1, 1, 2))))
                    cust = rng.choice(custs) if "visit" in chosen and rng.random() < 0.3 else None
                    logs.append((log_id, tid, area, uid, iso(at),
                                 rng.choice(CONTENT).format(a=f"{area}号台区"),
                                 "2号杆有鸟窝" if rng.random() < 0.1 else None, iso(at), cust))
                    items += [(log_id, i) for i in chosen]
                if rng.random() < 1 / 7:  # a complaint a week
                    acc = local(day, rng.randrange(8 * 60, 18 * 60))
                    cdue, rdue = acc + timedelta(days=1), acc + timedelta(days=9)
                    contacted = acc + timedelta(hours=rng.choice((2, 5, 20, 30)))
                    replied = acc + timedelta(days=rng.choice((3, 6, 8, 10)))
                    done = replied < local(LAST_DAY, 0)
                    complaints.append((tid, uid, "complaint", iso(acc), iso(cdue), iso(rdue),
                                       iso(contacted), iso(replied) if done else None,
                                       "closed" if done else "contacted", iso(acc)))
                    reminders.append((tid, uid, "complaint", len(complaints), "reply.due",
                                      iso(rdue), "sent", iso(rdue),
                                      f"c{tid}:{uid}:{len(complaints)}"))
                if rng.random() < 2 / 7:  # two arrears a week
                    made = local(day, 9 * 60)
                    paid = made + timedelta(days=rng.randint(1, 40))
                    cut = rng.random() < 0.3
                    restore_due = paid + timedelta(hours=24) if cut else None
                    restored = paid + timedelta(hours=rng.choice((3, 20, 30))) if cut else None
                    is_paid = paid < local(LAST_DAY, 0) and rng.random() < 0.85
                    arrears.append((
                        tid, uid, f"5500{uid:06d}", rng.choice(SURNAMES) + "某",
                        rng.randint(2000, 200000), "2025-10-01", iso(made),
                        iso(made + timedelta(days=2)) if rng.random() < 0.5 else None,
                        iso(made + timedelta(days=9)) if cut else None,
                        iso(paid) if is_paid else None,
                        iso(restore_due) if is_paid and restore_due else None,
                        iso(restored) if is_paid and restored else None,
                        ("restored" if cut else "paid") if is_paid else "collecting"))
                if rng.random() < 0.2 / 7:  # an outage every five weeks
                    start = local(day, 9 * 60)
                    outages.append((tid, uid, "planned", iso(start),
                                    iso(start + timedelta(hours=6)),
                                    iso(start - timedelta(days=7)),
                                    iso(start - timedelta(days=rng.choice((6, 8, 9)))), "done"))
                    oid = len(outages)
                    outage_areas.append((oid, rng.choice(areas)))
                    for c in rng.sample(custs, 3):
                        told = start - timedelta(days=1) if rng.random() < 0.8 else None
                        notices.append((oid, c, iso(told) if told else None))
                if rng.random() < 0.5 / 7:  # a repair every two weeks
                    got = local(day, rng.randrange(0, 24 * 60))
                    repairs.append((tid, uid, rng.choice(areas), iso(got),
                                    iso(got + timedelta(minutes=90)),
                                    iso(got + timedelta(minutes=rng.choice((40, 70, 120)))),
                                    "arrived"))
                day += timedelta(days=1)
        con.executemany("INSERT INTO worklogs(id, team_id, area_id, user_id, occurred_at, "
                        "content, problems, created_at, customer_id) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?)", logs)
        con.executemany("INSERT INTO worklog_items VALUES (?, ?)", items)
        con.executemany("INSERT INTO complaints(team_id, user_id, kind, accepted_at, contact_due, "
                        "reply_due, contacted_at, replied_at, status, created_at, content, "
                        "ruleset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '电压低', 'sgcc-2011')",
                        complaints)
        base = con.execute("SELECT coalesce(max(id), 0) FROM complaints").fetchone()[0] - len(
            complaints)
        con.executemany("INSERT INTO reminders(team_id, user_id, subject, subject_id, kind, "
                        "due_at, state, sent_at, dedupe_key, created_at) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, '2025-11-01T00:00:00+00:00')",
                        [(r[0], r[1], r[2], r[3] + base, *r[4:]) for r in reminders])
        con.executemany("INSERT INTO arrears(team_id, user_id, account_no, customer_name, "
                        "amount_cents, since, created_at, notice_served_at, cut_off_at, paid_at, "
                        "restore_due, restored_at, status, ruleset) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sgcc-2011')", arrears)
        obase = con.execute("SELECT coalesce(max(id), 0) FROM outages").fetchone()[0]
        con.executemany("INSERT INTO outages(team_id, user_id, kind, starts_at, ends_at, "
                        "notice_due, notice_posted_at, status, reason, ruleset, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '检修', 'sgcc-2011', ?)",
                        [(*o, o[3]) for o in outages])
        con.executemany("INSERT INTO outage_areas VALUES (?, ?)",
                        [(o + obase, a) for o, a in outage_areas])
        con.executemany("INSERT INTO outage_notices(outage_id, customer_id, told_at) "
                        "VALUES (?, ?, ?)", [(o + obase, c, t) for o, c, t in notices])
        con.executemany("INSERT INTO repairs(team_id, user_id, area_id, received_at, "
                        "arrival_due, arrived_at, status, description, ruleset, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, '故障', 'sgcc-2011', ?)",
                        [(*r, r[3]) for r in repairs])
        con.commit()
    con.execute("ANALYZE")
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (
        "worklogs", "worklog_items", "complaints", "arrears", "outages", "outage_notices",
        "repairs", "reminders", "users", "customers")}
    con.close()
    return counts


# --- one scenario in this (child) process ------------------------------------------------------
def vm(field: str) -> int:
    """kB from /proc/self/status (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each run's peak is its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


async def child(db_path: str, scenario: str, team: str, runs: int) -> dict[str, Any]:
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.features.reports import chart, paper, text, xlsx
    from bot.features.reports.figures import Scope, compute, count_logs, load_logs
    from bot.features.reports.ranges import Period, parse_range
    from bot.services import Services

    services = await Services.open(load_settings(db_path=db_path), FakeClock(NOW))
    row = await services.db.fetchone("SELECT id FROM teams WHERE name = ?", (team,))
    assert row is not None
    tid = row[0]
    scope = Scope(tid, team)
    period = parse_range("上周", NOW)
    if scenario == "manager":
        m = await services.db.fetchone("SELECT id, name FROM users WHERE team_id = ? AND "
                                       "role = 'manager' ORDER BY id LIMIT 1", (tid,))
        assert m is not None
        scope = Scope(tid, team, m[0], m[1])
    if scenario == "year":
        period = Period(FIRST_DAY, LAST_DAY, TZ)
    expected = await count_logs(services.db, scope, period)
    out: dict[str, Any] = {"entries": expected}

    async def once() -> dict[str, int]:
        if scenario == "reply":
            from bot.features.reports.handlers import report_reply

            await services.db.settle()
            services.db.trips.reset()
            reply = await report_reply(services, scope, period, NOW, "zh_CN")
            assert len(reply.attachments) == 2 and len(reply.text) <= 4096
            return {"chars": len(reply.text), "trips": services.db.trips.trips,
                    **{a.filename[-4:]: len(a.data) for a in reply.attachments}}
        if scenario == "paper":
            logs = await load_logs(services.db, scope, period)
            data = paper.build(logs, team, period, "zh_CN")
            assert len(logs) == expected and data
            return {"xlsx": len(data)}
        fig = await compute(services.db, scope, period, NOW, detail=scenario != "message")
        assert fig.total.entries == expected
        msg = text.render(fig, "zh_CN", files=scenario != "message")
        assert len(msg) <= 4096
        sizes = {"chars": len(msg)}
        if scenario != "message":
            sizes["xlsx"] = len(xlsx.build(fig, "zh_CN"))
            if scope.team_wide:
                sizes["png"] = len(chart.render(fig, "zh_CN"))
        return sizes

    before = vm("VmRSS")
    reset_peak()
    t0 = time.perf_counter()
    out["sizes"] = await once()
    out["cold_s"] = time.perf_counter() - t0
    out["cold_peak_mb"] = (vm("VmHWM") - before) / 1024
    times, peaks = [], []
    for _ in range(runs):
        base = vm("VmRSS")
        reset_peak()
        t0 = time.perf_counter()
        await once()
        times.append(time.perf_counter() - t0)
        peaks.append((vm("VmHWM") - base) / 1024)
    out["warm_s"] = statistics.median(times)
    out["warm_peak_mb"] = max(peaks)
    out["rss_mb"] = vm("VmRSS") / 1024
    await services.close()
    return out


# --- driver ------------------------------------------------------------------------------------
def run_child(db: Path, scenario: str, team: str, runs: int,
              tree: Path = ROOT) -> dict[str, Any]:
    """One scenario in a fresh process, with the code of `tree` (ROOT, or the 'before' code)."""
    proc = subprocess.run([PY, str(ROOT / "bench" / "bench_report.py"), "--child", scenario,
                           "--db", str(db), "--team", team, "--runs", str(runs)], cwd=tree,
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)})
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def extract(ref: str, into: Path) -> tuple[Path, int]:
    """The code of `ref` (the 'before' reports) and the last migration it knows."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref, "bot", "locales", "data", "pyproject.toml"],
                             cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    last = max(int(p.name[:4]) for p in (into / "bot/storage/migrations").glob("[0-9]*.sql"))
    return into, last


def migrate_now(db: Path) -> float:
    """This tree's migrations on a database the 'before' code has used; seconds taken."""
    from bot.storage.db import Database

    async def go() -> None:
        await (await Database(db).connect()).close()

    t0 = time.perf_counter()
    asyncio.run(go())
    return time.perf_counter() - t0


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="8 weeks of data instead of a year")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--keep", help="build (or reuse) the database at this path")
    ap.add_argument("--child")
    ap.add_argument("--db")
    ap.add_argument("--team")
    ap.add_argument("--teams", default=",".join(str(m) for _, m in TEAMS),
                    help="managers per team, e.g. 50,500,5000 (5000: issue #12)")
    ap.add_argument("--before-ref", help="also time this git ref's code on the same data, "
                    "first on its own schema, then this tree after its migrations")
    ap.add_argument("--scenarios", default="message,files,manager,paper,year")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.db, args.child, args.team, args.runs))))
        return
    days = 56 if args.quick else (LAST_DAY - FIRST_DAY).days + 1
    tmp = Path(tempfile.mkdtemp(prefix="bench_report_"))
    db = Path(args.keep) if args.keep else tmp / "report.db"
    names = ("城东供电所", "城南供电所", "城西供电所", "城北供电所")
    teams = tuple(zip(names, (int(m) for m in args.teams.split(",")), strict=False))
    before = extract(args.before_ref, tmp / "before") if args.before_ref else None
    t0 = time.perf_counter()
    if not db.exists():
        counts = build_db(db, days, teams, before[1] if before else None)
    else:
        con = sqlite3.connect(db)
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("worklogs", "complaints", "arrears", "outages", "repairs",
                            "reminders")}
        con.close()
    print(f"database: {db.stat().st_size / 2**20:.0f} MB, {counts} "
          f"({time.perf_counter() - t0:.0f} s to build)", file=sys.stderr)
    results = []
    scenarios = args.scenarios.split(",")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    codes: list[tuple[str, Path]] = [("after", ROOT)]
    if before:
        codes.insert(0, ("before", before[0]))
    for code, tree in codes:
        if code == "after" and before:
            print(f"migrated in {migrate_now(db):.0f} s", file=sys.stderr)
        for team, managers in teams:
            for scenario in scenarios:
                if scenario == "year" and managers > 50:
                    continue  # a year of 500 managers is 1M entries: beyond one chat report
                print(f"{code} {team} {scenario} ...", file=sys.stderr)
                r = run_child(db, scenario, team, args.runs, tree)
                r.update(team=team, managers=managers, scenario=scenario, code=code)
                results.append(r)
    rows = []
    for r in results:
        sizes = r["sizes"]
        files = ", ".join(f"{k} {v / 1024:.0f} KB" if k != "trips" else f"{v} round trips"
                          for k, v in sizes.items() if k != "chars")
        rows.append([r["code"], f"{r['managers']}", r["scenario"], f"{r['entries']:,}",
                     f"{r['cold_s']:.2f}", f"{r['warm_s']:.2f}", f"{r['cold_peak_mb']:.0f}",
                     f"{r['warm_peak_mb']:.0f}", str(sizes.get("chars", "")), files or "—"])
    print(f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {'quick' if args.quick else 'full'}; "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} cores; database {db.stat().st_size / 2**20:.0f} MB, "
          f"{counts['worklogs']:,} log entries in all; load average before the run {load}."
          "\n")
    print(table(["code", "managers", "scenario", "entries in range", "cold s", "warm s",
                 "cold peak MB", "warm peak MB", "message chars", "files"], rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "results": results},
                                              ensure_ascii=False, indent=2))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    elif before:
        shutil.rmtree(before[0], ignore_errors=True)


if __name__ == "__main__":
    main()
