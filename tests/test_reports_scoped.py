"""Reports read only what they report (issue #12): the scoped queries give the same figures
as the team-wide reads they replaced, on generated data, and a person's report touches no
table by a full scan."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from bench.bench_report import NOW, TZ, build_db
from bot.clock import FakeClock
from bot.config import load_settings
from bot.features.reports.figures import _Q, PersonFigures, Scope, UnpatrolledArea, compute
from bot.features.reports.handlers import report_scope
from bot.features.reports.ranges import Period, parse_range
from bot.router import ReportSection, app_router
from bot.services import Services
from bot.storage.db import Database

TEAMS = (("城东供电所", 7), ("城南供电所", 4))
BIG = ("worklogs", "worklog_items", "worklog_photos", "complaints", "arrears", "outages",
       "repairs", "reminders")
ALIASES = {"w": "worklogs", "i": "worklog_items", "p": "worklog_photos", "o": "outages"}


@pytest.fixture(scope="module")
def report_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three weeks of generated work; one manager inactive, one 台区 shared, one unowned."""
    path = tmp_path_factory.mktemp("reports") / "r.db"
    build_db(path, 21, TEAMS)
    con = sqlite3.connect(path)
    users = [r[0] for r in con.execute("SELECT id FROM users WHERE role = 'manager' AND "
                                       "team_id = 1 ORDER BY id")]
    con.execute("UPDATE users SET active = 0 WHERE id = ?", (users[-1],))
    shared = con.execute("SELECT area_id FROM user_areas WHERE user_id = ?",
                         (users[0],)).fetchone()[0]
    con.execute("INSERT INTO user_areas VALUES (?, ?)", (users[1], shared))
    con.execute("INSERT INTO areas(team_id, name, created_at) VALUES (1, '无人台区', "
                "'2025-01-01T00:00:00+00:00')")
    con.execute("DELETE FROM user_areas WHERE user_id = ? AND area_id IN (SELECT area_id "
                "FROM user_areas WHERE user_id = ? LIMIT 1)", (users[2], users[2]))
    con.commit()
    con.close()
    return path


@pytest.fixture
async def services(report_db: Path) -> AsyncIterator[Services]:
    s = await Services.open(load_settings(db_path=report_db), FakeClock(NOW))
    yield s
    await s.close()


# --- the team-wide reads as they were before issue #12: the reference ---------------------
async def _people_before(db: Database, q: _Q) -> list[PersonFigures]:
    """Active members in scope (a team's leads only if they have records), with their 台区."""
    scope = q.scope
    where = "u.team_id = ? AND u.active = 1"
    params: list[Any] = [scope.team_id]
    if scope.user_id is not None:
        where, params = "u.team_id = ? AND u.id = ?", [scope.team_id, scope.user_id]
    rows = await db.fetchall(
        f"SELECT u.id, u.name, u.role FROM users u WHERE {where} ORDER BY u.id", params)
    people = [PersonFigures(r["id"], r["name"], r["role"]) for r in rows]
    by_id = {p.user_id: p for p in people}
    for r in await db.fetchall(
            "SELECT ua.user_id, a.name FROM user_areas ua JOIN areas a ON a.id = ua.area_id "
            "WHERE a.team_id = ? ORDER BY a.id", (scope.team_id,)):
        if r["user_id"] in by_id:
            by_id[r["user_id"]].areas.append(r["name"])
    return people


async def _patrols_before(db: Database, q: _Q,
                          by_id: dict[int, PersonFigures]) -> list[UnpatrolledArea]:
    span, sp = q.within("w.occurred_at")
    patrolled = {r[0] for r in await db.fetchall(
        f"SELECT DISTINCT w.area_id FROM worklogs w JOIN worklog_items i "
        f"ON i.worklog_id = w.id AND i.item = 'patrol' WHERE w.team_id = ? AND {span}",
        [q.scope.team_id, *sp])}
    owners: dict[int, list[str]] = defaultdict(list)
    owner_ids: dict[int, list[int]] = defaultdict(list)
    for r in await db.fetchall(
            "SELECT ua.area_id, u.id, u.name FROM user_areas ua JOIN users u ON u.id = ua.user_id "
            "WHERE u.team_id = ? AND u.active = 1 AND u.role = 'manager' ORDER BY u.id",
            (q.scope.team_id,)):
        owners[r["area_id"]].append(r["name"])
        owner_ids[r["area_id"]].append(r["id"])
    out: list[UnpatrolledArea] = []
    for a in await db.fetchall("SELECT id, name FROM areas WHERE team_id = ? ORDER BY id",
                               (q.scope.team_id,)):
        if a["id"] in patrolled:
            continue
        mine = q.scope.user_id is None or q.scope.user_id in owner_ids[a["id"]]
        if mine:
            out.append(UnpatrolledArea(a["name"], tuple(owners[a["id"]])))
        for uid in owner_ids[a["id"]]:
            if uid in by_id:
                by_id[uid].unpatrolled.append(a["name"])
    return out


async def _before(db: Database, scope: Scope, period: Period
                  ) -> tuple[dict[int, PersonFigures], list[UnpatrolledArea]]:
    """The people (their 台区 and those not patrolled) and the 台区 not patrolled, as the
    team-wide reads found them."""
    q = _Q(scope, period, NOW)
    by_id = {p.user_id: p for p in await _people_before(db, q)}
    return by_id, await _patrols_before(db, q, by_id)


def _periods() -> list[Period]:
    return [parse_range("上周", NOW), parse_range("本周", NOW),
            Period(date(2026, 11, 16), date(2026, 12, 6), TZ)]


async def _scopes(services: Services) -> list[Scope]:
    out = []
    for t in await services.db.fetchall("SELECT id, name FROM teams ORDER BY id"):
        out.append(Scope(t["id"], t["name"]))
        for u in await services.db.fetchall(
                "SELECT id, name FROM users WHERE team_id = ? ORDER BY id", (t["id"],)):
            out.append(Scope(t["id"], t["name"], u["id"], u["name"]))
    return out


async def test_scoped_figures_equal_the_team_wide_reads(services: Services) -> None:
    compared = unpatrolled = 0
    for scope in await _scopes(services):
        for period in _periods():
            for detail in (False, True):
                new = await compute(services.db, scope, period, NOW, detail=detail)
                people, areas = await _before(services.db, scope, period)
                assert new.unpatrolled == areas, (scope, period, detail)
                assert people and all(
                    (p.areas, p.unpatrolled) == (people[p.user_id].areas,
                                                 people[p.user_id].unpatrolled)
                    for p in new.people if p.user_id in people), (scope, period, detail)
                assert {p.user_id for p in new.people if p.role != "other"} >= {
                    i for i, p in people.items() if p.role == "manager" or not scope.team_wide}
                compared += 1
                unpatrolled += len(new.unpatrolled)
    assert compared > 50 and unpatrolled > 0  # the data exercised what is compared


class _Statements:
    """Every SQL statement the reader connection runs."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, sql: str) -> None:
        self.sql.append(sql)


@pytest.mark.parametrize("by_name", [False, True])
async def test_a_persons_report_reads_no_team_wide_rows(services: Services,
                                                       report_db: Path, by_name: bool) -> None:
    """One manager's report reaches every big table through that person's (or 台区's) index,
    so its cost does not grow with the team (before: the team's complaints, arrears, repairs,
    outages, and every entry of the team for 巡视); found by name (/report 张三) as by id."""
    reader = services.db._reader
    assert reader is not None
    seen = _Statements()
    await reader.set_trace_callback(seen)
    m = await services.db.fetchone("SELECT id, name, team_id FROM users WHERE role = "
                                   "'manager' ORDER BY id LIMIT 1")
    assert m is not None
    try:
        scope = Scope(m["team_id"], "t", user_name=m["name"], by_name=True) if by_name \
            else Scope(m["team_id"], "t", m["id"], m["name"])
        await compute(services.db, scope, parse_range("上周", NOW), NOW, detail=True)
    finally:
        await reader.set_trace_callback(None)
    assert len(seen.sql) > 10
    con = sqlite3.connect(report_db)
    team_wide = []  # plan steps reading a big table whole, or all of the team's rows
    for sql in seen.sql:
        for row in con.execute("EXPLAIN QUERY PLAN " + sql):
            step = row[3]
            words = step.split()
            table = ALIASES.get(words[1], words[1]) if len(words) > 1 else ""
            if table in BIG and (words[0] == "SCAN" or "(team_id=?" in step):
                team_wide.append((step, sql[:90]))
    con.close()
    assert not team_wide, team_wide


async def test_a_person_found_by_name_reads_as_by_id(services: Services) -> None:
    """/report 张三 reads the person's figures and every section by name (in SQL, with the
    team's members in the same round trip): the same rows as by id, for the active member
    of that name (the first, if two share it)."""
    db, compared = services.db, 0
    sections = [s for s in app_router().report_sections if isinstance(s, ReportSection)]
    for scope in await _scopes(services):
        first = await db.fetchone("SELECT min(id) AS id FROM users WHERE team_id = ? AND "
                                  "name = ? AND active = 1", (scope.team_id, scope.user_name))
        if scope.team_wide or first is None or first["id"] != scope.user_id:
            continue  # found by name: an active member, the first of the name
        named = Scope(scope.team_id, scope.team_name, user_name=scope.user_name, by_name=True)
        for period in [*_periods(), Period(date(2026, 11, 1), date(2026, 11, 30), TZ, "month")]:
            for detail in (False, True):
                by_id = await compute(db, scope, period, NOW, detail=detail)
                by_name = await compute(db, named, period, NOW, detail=detail)
                assert by_name.scope == named and by_name.people
                by_name.scope = scope
                assert by_name == by_id, (scope, period, detail)
            rs, rs_named = (report_scope(s, period, NOW, "zh_CN") for s in (scope, named))
            assert rs_named.named == scope.user_name and not rs_named.team_wide
            for section in sections:
                assert (await db.fetch_many(section.reads(rs_named))
                        == await db.fetch_many(section.reads(rs))), (section, scope, period)
            compared += 1
    assert compared > 20
