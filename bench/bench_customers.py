"""特殊客户 search latency and import throughput at scale (issue #3).

    .venv/bin/python -m bench.bench_customers [--rows 100000] [--teams 50] [--quick]
                                              [--queries 250] [--admin-queries 60]
                                              [--explain] [--json out.json]

Search: `--rows` generated customers across `--teams` teams are bulk-inserted (outside the
measurement) into a fresh SQLite file made by the real migrations. One manager of the largest
team then types a shuffled mix of 查客户 queries; each chat text goes through the handler's own
`parse_query` and the timed call is exactly the bot's `Customers.search(user, query, now,
limit=8, offset=0)` (page of 8 plus the total count). `Customers.get` (opening a card, own team
and forged ids of other teams) and the whole 查客户 reply (`bot.features.customers.handlers.search`:
areas, the query saved with the search (one round trip), formatting) are timed the same way.

Import: a `--rows` CSV and XLSX (and 1/5 of that, to show memory stays flat) with the Chinese
header are imported by `import_customers` into one team of a fresh database, then imported
again (every row an update). Each import runs in a fresh subprocess; peak memory is that
process's VmHWM from /proc/self/status (peak RSS, native memory included; not
`getrusage().ru_maxrss`, which on Linux inherits the parent's peak across exec), and
"growth" is that peak minus VmRSS just before the import (modules and database already
open). XLSX is read by the product's streaming reader (bot/xlsx_rows.py). "read only" runs
just the file reader over every row.

Prints markdown tables (see BENCHMARKS.md); nothing is asserted except that every query and
import did what it should (kinds, counts), so a broken run cannot look fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import platform
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SEED = 20261127
NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai, as in the tests
IMPORT_TEAM = "城东供电所"

# --- generated data --------------------------------------------------------------------------
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
            "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙"
            "史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = ("秀英", "桂兰", "建国", "建华", "德福", "海燕", "丽", "芳", "志强", "伟", "军", "红梅",
         "玉珍", "淑敏", "俊杰", "文斌", "春花", "金凤", "家宝", "永胜", "晓东", "立新", "学军",
         "爱民", "国庆", "玉兰", "翠萍", "佳怡", "子涵", "浩然", "雨轩", "欣怡", "梓萱", "宇航",
         "桂芝", "秀兰", "凤英", "明", "强", "磊", "洋", "勇", "艳", "杰", "娟", "涛", "超",
         "福贵", "长林", "守田", "友才", "根生", "水生", "来福", "小龙", "世平", "玉梅", "素芬")
VILLAGES = ("东门村", "西湖村", "南湖小区", "北山村", "建设路", "人民路", "新河村", "柳树湾",
            "杨庄", "李家岗", "石桥镇", "桃园小区", "朝阳社区", "幸福里", "青石村", "河西村",
            "光明街", "长岗村", "枫林苑", "龙山村", "三里店", "马鞍山村", "团结村", "向阳小区")
ORGS = ("卫生服务中心", "敬老院", "小学", "水厂", "养殖场", "卫生院", "幼儿园", "社区医院")
SITUATIONS = ("独居，子女在外地打工，听力不好", "家中有制氧机，24小时使用", "下肢残疾，行动不便",
              "低保户，电费由村委代缴", "孙子8岁，父母在外务工", "视力残疾，停电需电话告知",
              "二级负荷，自备发电机", "曾因电压低投诉", "近两个月电费逾期", "五保户", None, None)
# (category key, weight): elderly households dominate real registers.
CATEGORY_WEIGHTS = (("elderly", 30), ("left_behind", 8), ("disabled", 10), ("low_income", 12),
                    ("medical", 6), ("important", 5), ("service_sensitive", 6),
                    ("arrears_risk", 8), ("other", 3))
CATEGORY_WORDS = ("医疗", "独居", "低保", "残疾", "留守", "重要客户", "欠费", "五保", "老人",
                  "投诉", "制氧机", "困难家庭")  # what a manager types after 查客户
NO_MATCH_CHARS = "鑫淼犇骉焱垚赟翀昇旻曌瑷璩"  # in no name or address above


@dataclass
class Gen:
    """One generated customer, as the table stores it and as an import row shows it."""

    account_no: str
    name: str
    area: str
    address: str
    phone: str
    categories: tuple[str, ...]
    situation: str | None
    emergency_name: str | None
    emergency_phone: str | None
    visit_every_days: int | None
    notify_first: bool
    proxy_pay: bool
    last_visit_at: str | None
    active: bool


def area_names(rng: random.Random) -> list[str]:
    """~20 台区 per team: '3号台区', '东门村2号台区' (unique inside the team)."""
    n = rng.randint(16, 24)
    names = [f"{k}号台区" for k in range(1, n // 2 + 1)]
    while len(names) < n:
        name = f"{rng.choice(VILLAGES)}{rng.randint(1, 6)}号台区"
        if name not in names:
            names.append(name)
    return names


def customers(rng: random.Random, team_no: int, count: int, areas: list[str],
              now: datetime) -> Iterator[Gen]:
    cat_keys = [k for k, _ in CATEGORY_WEIGHTS]
    cat_w = [w for _, w in CATEGORY_WEIGHTS]
    seen: set[str] = set()
    made = 0
    while made < count:
        length = rng.choices((10, 12, 13, 16), (60, 10, 20, 10))[0]
        account = f"32{team_no % 100:02d}" + "".join(rng.choices("0123456789", k=length - 4))
        if account in seen:
            continue
        seen.add(account)
        made += 1
        k = rng.choices((1, 2, 3), (60, 30, 10))[0]
        cats: list[str] = []
        while len(cats) < k:
            c = rng.choices(cat_keys, cat_w)[0]
            if c not in cats:
                cats.append(c)
        village = rng.choice(VILLAGES)
        if "important" in cats and rng.random() < 0.6:
            name = village.removesuffix("村").removesuffix("小区") + rng.choice(ORGS)
        else:
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        address = (f"{village}{rng.randint(1, 12)}组{rng.randint(1, 80)}号" if rng.random() < 0.6
                   else f"{village}{rng.randint(1, 30)}栋{rng.randint(1, 4)}单元"
                        f"{rng.randint(1, 18)}0{rng.randint(1, 4)}")
        phone = (f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"
                 if rng.random() < 0.85 else f"0551-6{rng.randint(0, 9_999_999):07d}")
        has_em = rng.random() < 0.5
        days = rng.choice((7, 15, 30, 30, 30, 60, 90)) if rng.random() < 0.6 else None
        last = None
        if rng.random() < (0.8 if days else 0.3):
            last = (now - timedelta(days=rng.uniform(0, 150))).isoformat(timespec="seconds")
        yield Gen(account, name, rng.choice(areas), address, phone, tuple(cats),
                  rng.choice(SITUATIONS),
                  rng.choice(SURNAMES) + rng.choice(GIVEN) if has_em else None,
                  f"139{rng.randint(0, 99_999_999):08d}" if has_em else None,
                  days, rng.random() < 0.3, rng.random() < 0.1, last, rng.random() >= 0.02)


def team_sizes(rng: random.Random, rows: int, teams: int) -> list[int]:
    """Uneven, like real 供电所 (0.5x to 1.5x the mean), summing to `rows`."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(teams)]
    sizes = [int(rows * w / sum(weights)) for w in weights]
    sizes[0] += rows - sum(sizes)
    return sizes


# --- measuring -------------------------------------------------------------------------------
def pct(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def ms(x: float) -> str:
    return f"{x * 1000:.2f}"


def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def machine() -> dict[str, str]:
    import aiosqlite

    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import openpyxl

    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": model,
            "cores": str(os.cpu_count()), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "aiosqlite": getattr(aiosqlite, "__version__", "?"),
            "openpyxl": openpyxl.__version__, "kernel": platform.release()}


def clean_env() -> None:
    for key in [k for k in os.environ if k.startswith("TAIQU_")]:
        del os.environ[key]


# --- search ----------------------------------------------------------------------------------
async def build_search_db(path: Path, rows: int, teams: int, layout: str = "interleaved",
                          search_index: bool = True) -> dict[str, Any]:
    """Fresh database through the real migrations; teams, areas, customers bulk-inserted."""
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.models import Role
    from bot.services import Services
    from bot.storage.db import iso

    rng = random.Random(SEED)
    services = await Services.open(load_settings(db_path=path), FakeClock(NOW))
    sizes = team_sizes(rng, rows, teams)
    big = max(range(teams), key=lambda i: sizes[i])
    t0 = time.perf_counter()
    created = iso(NOW - timedelta(days=200))
    try:
        team_areas = [area_names(rng) for _ in range(teams)]
        # The measured manager and an admin come through the real invite path.
        invite = await services.people.create_invite(
            role=Role.MANAGER, team=f"供电所{big + 1:02d}", areas=team_areas[big], name="经理甲",
            now=NOW, ttl=timedelta(days=7))
        manager = await services.people.redeem_invite(invite.code, channel="bench",
                                                      external_id="m", fallback_name="m",
                                                      now=NOW)
        invite = await services.people.create_invite(
            role=Role.ADMIN, team=f"供电所{big + 1:02d}", areas=[], name="管理员",
            now=NOW, ttl=timedelta(days=7))
        await services.people.redeem_invite(invite.code, channel="bench", external_id="admin",
                                            fallback_name="admin", now=NOW)
        everyone: list[tuple[int, dict[str, int], Gen]] = []
        async with services.db.tx() as tx:
            for i in range(teams):
                team_id = await services.people.ensure_team(tx, f"供电所{i + 1:02d}", NOW)
                area_ids = {a: await services.people.ensure_area(tx, team_id, a, NOW)
                            for a in team_areas[i]}
                everyone += [(team_id, area_ids, g)
                             for g in customers(rng, i + 1, sizes[i], team_areas[i], NOW)]
        if layout == "interleaved":
            # Records registered over months by 50 teams: a team's rows are spread over the
            # whole table, not packed together (the worst case for SQLite's page cache).
            rng.shuffle(everyone)
        async with services.db.tx() as tx:
            await tx.executemany(
                "INSERT INTO customers(id, team_id, area_id, account_no, name, address, "
                "phone, situation, emergency_name, emergency_phone, visit_every_days, "
                "notify_first, proxy_pay, last_visit_at, active, created_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(j + 1, team_id, area_ids[g.area], g.account_no, g.name, g.address,
                  g.phone, g.situation, g.emergency_name, g.emergency_phone,
                  g.visit_every_days, int(g.notify_first), int(g.proxy_pay),
                  g.last_visit_at, int(g.active),
                  manager.id if team_id == manager.team_id and j % 3 == 0 else None,
                  created) for j, (team_id, area_ids, g) in enumerate(everyone)])
            await tx.executemany(
                "INSERT INTO customer_categories(customer_id, category) VALUES (?, ?)",
                [(j + 1, c) for j, (_, _, g) in enumerate(everyone) for c in g.categories])
        if not search_index:  # A/B: the search as it was before migration 0008
            await services.db.execute("DROP INDEX customers_team_search")
        row = await services.db.fetchone(
            "SELECT count(*), (SELECT count(*) FROM customer_categories) FROM customers")
        assert row is not None and row[0] == rows, row
        info = {"setup_s": time.perf_counter() - t0, "sizes": sizes, "big": big,
                "team_rows": sizes[big], "categories": row[1]}
    finally:
        await services.close()
    return info | {"db_mb": path.stat().st_size / 2**20}  # WAL checkpointed on close


def query_mix(rng: random.Random, team: list[Any], areas: list[str], n: int
              ) -> list[tuple[str, str]]:
    """(kind, chat text after 查客户) x n per kind, shuffled."""
    active = [r for r in team if r["active"]]
    mix: list[tuple[str, str]] = []
    for _ in range(n):
        c = rng.choice(active)
        given = c["name"][1:]
        mix.append(("name", rng.choice((c["name"], given, c["name"][:2], given[:1] or c["name"]))))
        mix.append(("area", rng.choice(areas)))
        acc = c["account_no"]
        mix.append(("account", acc[:rng.randint(6, len(acc))] if rng.random() < 0.9
                    else acc[:rng.randint(4, 5)]))
        mix.append(("category", rng.choice(CATEGORY_WORDS)))
        mix.append(("due", rng.choice(("待走访", "需走访", "该走访"))))
        mix.append(("no match", "".join(rng.sample(NO_MATCH_CHARS, rng.randint(2, 3)))))
        mix.append(("all", ""))
    rng.shuffle(mix)
    return mix


EXPECTED_KIND = {"name": "text", "area": "area", "account": "account", "category": "category",
                 "due": "due", "no match": "text", "all": "all"}


async def timed_mix(services: Any, user: Any, mix: list[tuple[str, str]], areas: list[str]
                    ) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Run each chat text as the bot does; time only `Customers.search`."""
    from bot.features.customers.handlers import parse_query

    search = services.customers.search
    for _kind, text in mix[:50]:  # warm-up: SQLite page cache, statement cache
        await search(user, parse_query(text, areas), NOW, limit=8, offset=0)
    samples: dict[str, list[float]] = {}
    totals: dict[str, list[int]] = {}
    for kind, text in mix:
        q = parse_query(text, areas)
        assert q.kind == EXPECTED_KIND[kind], (kind, text, q)
        t0 = time.perf_counter()
        total, found = await search(user, q, NOW, limit=8, offset=0)
        dt = time.perf_counter() - t0
        samples.setdefault(kind, []).append(dt)
        totals.setdefault(kind, []).append(total)
        assert len(found) == min(8, total), (kind, text, total, len(found))
        assert (total == 0) == (kind == "no match"), (kind, text, total)
        assert all(c.team_id == user.team_id for c in found) or user.role.value == "admin"
    return samples, totals


async def measure_search(path: Path, per_kind: int, admin_per_kind: int,
                         explain: bool) -> dict[str, Any]:
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.features.customers.handlers import search as handle_search
    from bot.models import Role
    from bot.services import Ctx, Services
    from bot.storage.customers import Query

    rng = random.Random(SEED + 1)
    services = await Services.open(load_settings(db_path=path), FakeClock(NOW))
    try:
        user = await services.people.by_identity("bench", "m")
        assert user is not None and user.role is Role.MANAGER
        areas = [a.name for a in await services.people.team_areas(user.team_id)]
        team = await services.db.fetchall(
            "SELECT id, name, account_no, active FROM customers WHERE team_id = ?",
            (user.team_id,))
        others = await services.db.fetchall(
            "SELECT id FROM customers WHERE team_id != ? ORDER BY random() LIMIT ?",
            (user.team_id, per_kind))
        mix = query_mix(rng, list(team), areas, per_kind)
        samples, totals = await timed_mix(services, user, mix, areas)
        admin: dict[str, Any] = {}
        if admin_per_kind:  # informational: an admin's search covers every team
            boss = await services.people.by_identity("bench", "admin")
            assert boss is not None and boss.role is Role.ADMIN
            a_samples, a_totals = await timed_mix(
                services, boss, query_mix(rng, list(team), areas, admin_per_kind), areas)
            admin = {"samples": a_samples, "totals": a_totals}

        # Open a card: own team's records, and forged ids of other teams (must be None).
        get_samples: dict[str, list[float]] = {"own team": [], "other team (forged)": []}
        ids = [r["id"] for r in rng.sample(list(team), min(per_kind, len(team)))]
        for cid in ids:
            t0 = time.perf_counter()
            c = await services.customers.get(user, cid)
            get_samples["own team"].append(time.perf_counter() - t0)
            assert c is not None and c.team_id == user.team_id
        for r in others:
            t0 = time.perf_counter()
            c = await services.customers.get(user, r["id"])
            get_samples["other team (forged)"].append(time.perf_counter() - t0)
            assert c is None

        # The whole 查客户 reply as the handler builds it (the query saved with its reads).
        handler: list[float] = []
        for _kind, text in mix[: max(100, len(mix) // 4)]:
            ctx = Ctx(services, user, NOW)
            t0 = time.perf_counter()
            out = await handle_search(ctx, text)
            handler.append(time.perf_counter() - t0)
            assert out.replies

        plans: dict[str, list[str]] = {}
        if explain:
            from bot.storage import customers as store

            probes = {"text": Query("text", "秀英"), "area": Query("area", areas[0]),
                      "account": Query("account", team[0]["account_no"][:6]),
                      "category": Query("category", "medical"), "due": Query("due"),
                      "all": Query("all")}
            for kind, q in probes.items():
                plans[kind] = await explain_search(services, store, user, q)
            plans["get"] = [" | ".join(str(x) for x in r) for r in await services.db.fetchall(
                "EXPLAIN QUERY PLAN " + store._SELECT + " WHERE c.id = ? AND c.team_id = ?",
                (ids[0], user.team_id))]
        return {"samples": samples, "totals": totals, "get": get_samples, "handler": handler,
                "plans": plans, "team_id": user.team_id, "admin": admin}
    finally:
        await services.close()


async def explain_search(services: Any, store: Any, user: Any, q: Any) -> list[str]:
    """EXPLAIN QUERY PLAN of both statements search() runs, captured from the connection."""
    seen: list[tuple[str, tuple[Any, ...]]] = []
    db = services.db
    real_one, real_all = db.fetchone, db.fetchall

    async def one(sql: str, params: Any = ()) -> Any:
        seen.append((sql, tuple(params)))
        return await real_one(sql, params)

    async def many(sql: str, params: Any = ()) -> Any:
        seen.append((sql, tuple(params)))
        return await real_all(sql, params)

    db.fetchone, db.fetchall = one, many
    try:
        await store.Customers(db).search(user, q, NOW)
    finally:
        db.fetchone, db.fetchall = real_one, real_all
    lines = []
    for sql, params in seen:
        head = "count" if sql.lstrip().upper().startswith("SELECT COUNT") else "page"
        for r in await db.fetchall("EXPLAIN QUERY PLAN " + sql, params):
            lines.append(f"{head}: {r[3]}")
    return lines


# --- import ----------------------------------------------------------------------------------
HEADER = ["户号", "户名", "台区", "地址", "联系电话", "类别", "具体情况", "紧急联系人",
          "紧急联系人电话", "走访周期(天)", "停电优先告知", "代缴"]


def import_rows(n: int, areas: list[str]) -> Iterator[list[Any]]:
    from bot.i18n import t

    labels = {k: t("zh_CN", f"category.{k}") for k, _ in CATEGORY_WEIGHTS}
    rng = random.Random(SEED + 2)
    for g in customers(rng, 1, n, areas, NOW):
        yield [g.account_no, g.name, g.area, g.address, g.phone,
               "、".join(labels[c] for c in g.categories), g.situation or "",
               g.emergency_name or "", g.emergency_phone or "",
               g.visit_every_days if g.visit_every_days is not None else "",
               "是" if g.notify_first else "否", "是" if g.proxy_pay else "否"]


def write_csv(path: Path, n: int, areas: list[str]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(import_rows(n, areas))


def write_xlsx(path: Path, n: int, areas: list[str]) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("特殊客户")
    ws.append(HEADER)
    for row in import_rows(n, areas):
        ws.append([None if v == "" else v for v in row])  # empty cells, as Excel writes them
    wb.save(path)


async def build_import_template(path: Path, areas: list[str]) -> None:
    """A fresh database with the team and its 台区, made through the real invite path."""
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.models import Role
    from bot.services import Services

    services = await Services.open(load_settings(db_path=path), FakeClock(NOW))
    try:
        await services.people.create_invite(role=Role.LEAD, team=IMPORT_TEAM, areas=areas,
                                            name="王班长", now=NOW, ttl=timedelta(days=7))
    finally:
        await services.close()


def vm(field: str) -> int:
    """kB from /proc/self/status (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def import_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One import (or read-only pass) in this fresh process; prints its numbers as JSON."""
    import openpyxl  # noqa: F401  (loaded before the baseline: module code is not row data)

    from bot import customers_io
    from bot.clock import FakeClock
    from bot.config import load_settings
    from bot.services import Services

    customers_io._category_index()  # i18n catalogues and rules, loaded once per process
    services = await Services.open(load_settings(db_path=spec["db"]), FakeClock(NOW))
    try:
        base = vm("VmRSS")
        t0 = time.perf_counter()
        if spec["mode"] == "read":
            rows = customers_io._open_rows(Path(spec["file"]))
            out: dict[str, Any] = {"read_rows": sum(1 for _ in rows)}
        else:
            r = await customers_io.import_customers(services, spec["file"], IMPORT_TEAM)
            out = {"inserted": r.inserted, "updated": r.updated, "errors": r.error_rows}
        out["seconds"] = time.perf_counter() - t0
        out["base_kb"] = base
        # Not getrusage().ru_maxrss: Linux carries the parent's peak RSS across the
        # (v)fork + exec into it, so a big parent would show up as this process's peak.
        out["peak_kb"] = vm("VmHWM")
        out["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return out
    finally:
        await services.close()


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([PY, "-m", "bench.bench_customers", "--worker", json.dumps(spec)],
                          cwd=ROOT, capture_output=True, text=True, check=False, timeout=900,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("TAIQU_")})
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed: {spec}\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def measure_imports(base: Path, sizes: list[int], readers: list[str]) -> list[dict[str, Any]]:
    areas = area_names(random.Random(SEED + 3))
    template = base / "import-template.db"
    asyncio.run(build_import_template(template, areas))
    results = []
    for n in sizes:
        files = {}
        for fmt, writer in (("csv", write_csv), ("xlsx", write_xlsx)):
            f = base / f"customers-{n}.{fmt}"
            t0 = time.perf_counter()
            writer(f, n, areas)
            files[fmt] = f
            print(f"  generated {f.name} ({f.stat().st_size / 2**20:.1f} MB) in "
                  f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for fmt, f in files.items():
            for reader in (["csv"] if fmt == "csv" else readers):
                db = base / f"import-{n}-{reader}.db"
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        (db.parent / (db.name + suffix)).unlink()
                shutil.copy(template, db)
                first = run_worker({"db": str(db), "file": str(f), "reader": reader,
                                    "mode": "import"})
                assert (first["inserted"], first["updated"], first["errors"]) == (n, 0, 0), first
                again = run_worker({"db": str(db), "file": str(f), "reader": reader,
                                    "mode": "import"})
                assert (again["inserted"], again["updated"], again["errors"]) == (0, n, 0), again
                read = run_worker({"db": str(db), "file": str(f), "reader": reader,
                                   "mode": "read"})
                assert read["read_rows"] == n + 1, read  # the header row too
                for label, r in (("first import", first), ("re-import (updates)", again),
                                 ("read only", read)):
                    results.append({"rows": n, "format": fmt, "reader": reader, "run": label,
                                    "file_mb": f.stat().st_size / 2**20} | r)
                    print(f"  {n:>7} {fmt:4} {reader:8} {label:20} {r['seconds']:6.2f} s "
                          f"peak {r['peak_kb'] / 1024:6.1f} MB "
                          f"(+{(r['peak_kb'] - r['base_kb']) / 1024:.1f})", file=sys.stderr)
                db.unlink()
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        (db.parent / (db.name + suffix)).unlink()
    return results


# --- report ----------------------------------------------------------------------------------
def kind_table(s: dict[str, Any]) -> str:
    rows = []
    everything: list[float] = []
    for kind in ("name", "area", "account", "category", "due", "no match", "all"):
        xs = s["samples"][kind]
        everything += xs
        tot = s["totals"][kind]
        rows.append([kind, str(len(xs)), f"{min(tot)}-{max(tot)}", ms(pct(xs, 0.5)),
                     ms(pct(xs, 0.99)), ms(max(xs))])
    rows.append(["**overall**", str(len(everything)), "", ms(pct(everything, 0.5)),
                 f"**{ms(pct(everything, 0.99))}**", ms(max(everything))])
    return table(["kind", "queries", "matches (total)", "p50 ms", "p99 ms", "max ms"], rows)


def render(res: dict[str, Any]) -> str:
    out: list[str] = []
    m = res["machine"]
    out.append("### Machine\n")
    out.append(table(["date", "CPU", "cores", "Python", "SQLite", "aiosqlite", "openpyxl",
                      "kernel"],
                     [[m["date"], m["cpu"], m["cores"], m["python"], m["sqlite"], m["aiosqlite"],
                       m["openpyxl"], m["kernel"]]]))
    if "search" in res:
        s, db = res["search"], res["search_db"]
        without = "" if res["search_index"] else ", WITHOUT the 0008 index"
        out.append(f"\n### Search: `Customers.search(user, q, now, limit=8, offset=0)`\n\n"
                   f"{res['rows']:,} customers in {res['teams']} teams "
                   f"({min(db['sizes']):,}-{max(db['sizes']):,} per team, "
                   f"{db['categories']:,} category rows, database {db['db_mb']:.0f} MB, "
                   f"layout {res['layout']}{without}, "
                   f"bulk setup {db['setup_s']:.1f} s). A manager of the largest team "
                   f"({db['team_rows']:,} customers) searches; {res['per_kind']} queries per "
                   "kind, shuffled.\n")
        out.append(kind_table(s))
        out.append("\n### Open a card: `Customers.get(user, id)`; and the whole 查客户 reply\n")
        rows = [[f"get, {k}", str(len(v)), ms(pct(v, 0.5)), ms(pct(v, 0.99)), ms(max(v))]
                for k, v in s["get"].items()]
        h = s["handler"]
        rows.append(["handler `search(ctx, text)` (mix)", str(len(h)), ms(pct(h, 0.5)),
                     ms(pct(h, 0.99)), ms(max(h))])
        out.append(table(["call", "calls", "p50 ms", "p99 ms", "max ms"], rows))
        if s["admin"]:
            out.append("\n### Informational: an admin searching all teams (same call)\n")
            out.append(kind_table(s["admin"]))
        for kind, plan in s["plans"].items():
            out.append(f"\nEXPLAIN QUERY PLAN, {kind}:\n```\n" + "\n".join(plan) + "\n```")
    if "imports" in res:
        out.append("\n### Import: `import_customers(services, file, team)`, one team, fresh "
                   "subprocess per run\n")
        rows = []
        for r in res["imports"]:
            reader = {"csv": "csv", "auto": "stream"}[r["reader"]]
            rows.append([f"{r['rows']:,}", f"{r['format'].upper()} {r['file_mb']:.1f} MB", reader,
                         r["run"],
                         f"{r['seconds']:.2f}", f"{r['rows'] / r['seconds']:,.0f}",
                         f"{r['peak_kb'] / 1024:.0f}",
                         f"{(r['peak_kb'] - r['base_kb']) / 1024:.0f}"])
        out.append(table(["rows", "file", "reader", "run", "seconds", "rows/s", "peak RSS MB",
                          "growth MB"], rows))
        out.append("\nrows/s of a read-only run counts the rows read. Peak RSS = VmHWM of the "
                   "fresh process; growth = peak - VmRSS before the call.")
    out.append(f"\nTotal benchmark time {res['elapsed']:.0f} s; 1-minute load average "
               f"{res['load'][0]:.2f} at the start, {res['load'][1]:.2f} at the end "
               f"({m['cores']} cores; anything else running shows up here).")
    return "\n".join(out) + "\n"


def main_run(args: argparse.Namespace) -> dict[str, Any]:
    clean_env()
    started = time.perf_counter()
    res: dict[str, Any] = {"machine": machine(), "rows": args.rows, "teams": args.teams,
                           "per_kind": args.queries, "layout": args.layout,
                           "search_index": not args.no_search_index, "load": [os.getloadavg()[0]]}
    base = Path(tempfile.mkdtemp(prefix="taiqu-bench-customers-"))
    try:
        if not args.skip_search:
            db = base / "search.db"
            res["search_db"] = asyncio.run(build_search_db(
                db, args.rows, args.teams, args.layout, not args.no_search_index))
            print(f"  search database: {args.rows} rows in {res['search_db']['setup_s']:.1f} s",
                  file=sys.stderr)
            res["search"] = asyncio.run(measure_search(db, args.queries, args.admin_queries,
                                                       args.explain))
        if not args.skip_import:
            sizes = [args.rows] if args.quick else sorted({max(1, args.rows // 5), args.rows})
            readers = ["auto"]
            res["imports"] = measure_imports(base, sizes, readers)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    res["elapsed"] = time.perf_counter() - started
    res["load"] = [res["load"][0], os.getloadavg()[0]]
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_customers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000, help="customers (default %(default)s)")
    p.add_argument("--teams", type=int, default=50, help="teams (default %(default)s)")
    p.add_argument("--queries", type=int, default=None,
                   help="search queries per kind (default 250, --quick 60)")
    p.add_argument("--admin-queries", type=int, default=None,
                   help="admin (all teams) queries per kind, informational (default 60, "
                        "--quick 20; 0 = skip)")
    p.add_argument("--quick", action="store_true",
                   help="fewer queries; one import size; no openpyxl comparison")
    p.add_argument("--layout", choices=("interleaved", "grouped"), default="interleaved",
                   help="table order: teams' rows mixed as registered over time (default), "
                        "or each team's rows together as after one bulk import per team")
    p.add_argument("--no-search-index", action="store_true",
                   help="drop customers_team_search (migration 0008) first, for an A/B")
    p.add_argument("--explain", action="store_true", help="print EXPLAIN QUERY PLAN per kind")
    p.add_argument("--skip-search", action="store_true")
    p.add_argument("--skip-import", action="store_true")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(asyncio.run(import_worker(json.loads(args.worker)))))
        return 0
    if args.queries is None:
        args.queries = 60 if args.quick else 250
    if args.admin_queries is None:
        args.admin_queries = 20 if args.quick else 60
    res = main_run(args)
    print(render(res))
    if args.json:
        args.json.write_text(json.dumps(res, ensure_ascii=False, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
