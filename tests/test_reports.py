"""The weekly report through the core: ranges, every figure against numbers worked out by hand
from seeded rows (range boundaries at Sunday 23:59 / Monday 00:00 local, a week across a
month end, two teams), the message, the XLSX and the chart agreeing, scope and privacy."""

from __future__ import annotations

import io
import json
import random
import struct
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.assistant import Assistant
from bot.clock import FakeClock
from bot.events import Attachment, Outcome
from bot.features.reports import chart, text
from bot.features.reports.figures import Scope, compute
from bot.features.reports.ranges import Period, RangeError, parse_range
from bot.models import Role
from bot.rules import work_item_keys
from bot.services import Services
from bot.storage.db import iso
from tests.conftest import SHANGHAI, Chat, make_user
from tests.tg_harness import L as locale_text

CREATED = datetime(2026, 11, 1, 10, 0, tzinfo=SHANGHAI)
NOW = datetime(2026, 12, 7, 8, 31, tzinfo=SHANGHAI)  # Monday: last week is 11-30 .. 12-06
TEAM_A, TEAM_B = "城东供电所", "城西供电所"


def L(*args: int) -> datetime:
    """A local (Shanghai) moment."""
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


# --- seeding ------------------------------------------------------------------------------
@dataclass
class World:
    users: dict[str, int]
    teams: dict[str, int]
    areas: dict[str, int]


async def make_people(services: Services, clock: FakeClock, channel: str = "test") -> None:
    """Two teams through the invite path, registered before the reported weeks."""
    clock.set(CREATED)
    await make_user(services, "张三", team=TEAM_A, areas=("1号台区", "2号台区"), channel=channel)
    await make_user(services, "李四", team=TEAM_A, areas=("3号台区",), channel=channel)
    await make_user(services, "王五", team=TEAM_A, areas=("4号台区",), channel=channel)
    await make_user(services, "王班长", Role.LEAD, team=TEAM_A, areas=(), channel=channel)
    await make_user(services, "赵六", team=TEAM_B, areas=("西1号台区",), channel=channel)
    await make_user(services, "钱班长", Role.LEAD, team=TEAM_B, areas=(), channel=channel)


async def world(services: Services) -> World:
    db = services.db
    return World({r["name"]: r["id"] for r in await db.fetchall("SELECT id, name FROM users")},
                 {r["name"]: r["id"] for r in await db.fetchall("SELECT id, name FROM teams")},
                 {r["name"]: r["id"] for r in await db.fetchall("SELECT id, name FROM areas")})


async def add_log(services: Services, w: World, who: str, at: datetime, items: tuple[str, ...],
                  area: str, content: str = "巡视线路", customer: int | None = None,
                  problems: str | None = None) -> int:
    team = await services.db.fetchone("SELECT team_id FROM users WHERE id = ?", (w.users[who],))
    assert team is not None
    async with services.db.tx() as tx:
        wid = int(await tx.execute(
            "INSERT INTO worklogs(team_id, area_id, user_id, occurred_at, content, problems, "
            "created_at, customer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (team[0], w.areas[area], w.users[who], iso(at), content, problems, iso(at),
             customer)) or 0)
        await tx.executemany("INSERT INTO worklog_items VALUES (?, ?)", [(wid, i) for i in items])
    return wid


async def insert(services: Services, table: str, **values: Any) -> int:
    cols = ", ".join(values)
    marks = ", ".join("?" * len(values))
    params = [iso(v) if isinstance(v, datetime) else v for v in values.values()]
    return int(await services.db.execute(f"INSERT INTO {table}({cols}) VALUES ({marks})",
                                         params) or 0)


async def seed(services: Services, clock: FakeClock) -> World:
    """The hand-checked week 2026-11-30 (Mon) .. 2026-12-06 (Sun), across the month end."""
    w = await world(services)
    a, b = w.teams[TEAM_A], w.teams[TEAM_B]
    zs, ls_, zl = w.users["张三"], w.users["李四"], w.users["赵六"]
    customers = []
    for i, (acct, name) in enumerate((("5500010001", "刘德福"), ("5500010002", "陈桂兰"),
                                      ("5500010003", "周建国"))):
        cid = await insert(services, "customers", team_id=a, area_id=w.areas["1号台区"],
                           account_no=acct, name=name, address="东门村3组", phone="13800001234",
                           created_at=CREATED)
        await insert(services, "customer_categories", customer_id=cid,
                     category=("elderly", "medical", "disabled")[i])
        customers.append(cid)
    c1, c2, c3 = customers
    # Log entries: 1 and 5 lie just outside the week, 2 and 4 just inside.
    await add_log(services, w, "张三", L(2026, 11, 29, 23, 59), ("patrol",), "1号台区")
    await add_log(services, w, "张三", L(2026, 11, 30, 0, 0), ("patrol", "visit"), "1号台区",
                  "夜间巡视 1号台区", problems="2号杆拉线松动")
    await add_log(services, w, "张三", L(2026, 12, 2, 10, 0), ("visit",), "2号台区",
                  "走访独居老人，检查室内线路", customer=c1)
    await add_log(services, w, "李四", L(2026, 12, 6, 23, 59), ("collect", "service"), "3号台区")
    await add_log(services, w, "李四", L(2026, 12, 7, 0, 0), ("repair",), "3号台区")
    await add_log(services, w, "李四", L(2026, 12, 1, 9, 0), ("publicity",), "3号台区")
    await add_log(services, w, "赵六", L(2026, 12, 2, 9, 0), ("patrol", "visit"), "西1号台区")
    # Complaints.
    common = {"ruleset": "sgcc-2011", "created_at": CREATED}
    await insert(services, "complaints", team_id=a, user_id=zs, kind="complaint",
                 customer_name="刘德福", accepted_at=L(2026, 12, 1, 10, 0), content="电压低",
                 contact_due=L(2026, 12, 2, 10, 0), contacted_at=L(2026, 12, 2, 9, 0),
                 reply_due=L(2026, 12, 10, 10, 0), status="contacted", **common)
    await insert(services, "complaints", team_id=a, user_id=zs, kind="complaint",
                 accepted_at=L(2026, 11, 25, 10, 0), content="频繁停电",
                 contact_due=L(2026, 11, 26, 10, 0), contacted_at=L(2026, 11, 26, 9, 0),
                 reply_due=L(2026, 12, 4, 10, 0), replied_at=L(2026, 12, 5, 10, 0),
                 status="closed", **common)
    c3_id = await insert(services, "complaints", team_id=a, user_id=ls_, kind="opinion",
                         accepted_at=L(2026, 11, 20, 10, 0), content="表计",
                         contact_due=L(2026, 11, 21, 10, 0), contacted_at=L(2026, 11, 21, 9, 0),
                         reply_due=L(2026, 12, 3, 10, 0), status="contacted", **common)
    await insert(services, "complaints", team_id=a, user_id=ls_, kind="complaint",
                 accepted_at=L(2026, 12, 6, 20, 0), content="路灯", status="open",
                 contact_due=L(2026, 12, 7, 20, 0), reply_due=L(2026, 12, 15, 20, 0), **common)
    await insert(services, "complaints", team_id=b, user_id=zl, kind="complaint",
                 accepted_at=L(2026, 12, 2, 10, 0), content="西边投诉", status="open",
                 contact_due=L(2026, 12, 3, 10, 0), reply_due=L(2026, 12, 11, 10, 0), **common)
    # Arrears (amounts in cents).
    arr = {"ruleset": "sgcc-2011", "since": "2026-10-01"}
    await insert(services, "arrears", team_id=a, user_id=zs, account_no="5500020001",
                 customer_name="孙小明", amount_cents=50000, created_at=L(2026, 12, 1, 9, 0),
                 notice_served_at=L(2026, 12, 2, 9, 0), cut_off_at=L(2026, 12, 3, 9, 0),
                 paid_at=L(2026, 12, 4, 10, 0), restore_due=L(2026, 12, 5, 10, 0),
                 restored_at=L(2026, 12, 4, 20, 0), status="restored", **arr)
    await insert(services, "arrears", team_id=a, user_id=ls_, account_no="5500020002",
                 customer_name="钱多多", amount_cents=123456, created_at=L(2026, 11, 10, 9, 0),
                 status="collecting", **arr)
    await insert(services, "arrears", team_id=a, user_id=ls_, account_no="5500020003",
                 customer_name="吴小丽", amount_cents=20000, created_at=L(2026, 11, 15, 9, 0),
                 paid_at=L(2026, 12, 6, 12, 0), restore_due=L(2026, 12, 7, 12, 0),
                 cut_off_at=L(2026, 12, 1, 9, 0), status="paid", **arr)
    await insert(services, "arrears", team_id=a, user_id=zs, account_no="5500020004",
                 customer_name="郑大成", amount_cents=30000, created_at=L(2026, 12, 3, 9, 0),
                 status="collecting", **arr)
    a5 = await insert(services, "arrears", team_id=a, user_id=ls_, account_no="5500020005",
                      customer_name="冯小军", amount_cents=8800, created_at=L(2026, 11, 1, 11, 0),
                      cut_off_at=L(2026, 11, 20, 9, 0), paid_at=L(2026, 11, 28, 12, 0),
                      restore_due=L(2026, 11, 29, 12, 0), status="paid", **arr)
    await insert(services, "arrears", team_id=b, user_id=zl, account_no="5500029999",
                 customer_name="西边客户", amount_cents=99900, created_at=L(2026, 12, 2, 9, 0),
                 status="collecting", **arr)
    # Outages.
    out = {"ruleset": "sgcc-2011", "reason": "检修", "created_at": CREATED}
    o1 = await insert(services, "outages", team_id=a, user_id=zs, kind="planned",
                      starts_at=L(2026, 12, 3, 9, 0), ends_at=L(2026, 12, 3, 17, 0),
                      notice_due=L(2026, 11, 26, 9, 0), notice_posted_at=L(2026, 11, 25, 9, 0),
                      status="done", **out)
    await insert(services, "outage_areas", outage_id=o1, area_id=w.areas["1号台区"])
    await insert(services, "outage_notices", outage_id=o1, customer_id=c1,
                 told_at=L(2026, 12, 1, 9, 0))
    await insert(services, "outage_notices", outage_id=o1, customer_id=c2,
                 told_at=L(2026, 12, 3, 10, 0))  # after the power went off: not "told"
    await insert(services, "outage_notices", outage_id=o1, customer_id=c3)
    await insert(services, "outages", team_id=a, user_id=ls_, kind="temporary",
                 starts_at=L(2026, 12, 5, 9, 0), ends_at=L(2026, 12, 5, 12, 0),
                 notice_due=L(2026, 12, 4, 9, 0), notice_posted_at=L(2026, 12, 4, 12, 0),
                 status="done", **out)
    await insert(services, "outages", team_id=a, user_id=ls_, kind="planned",
                 starts_at=L(2026, 12, 2, 9, 0), ends_at=L(2026, 12, 2, 12, 0),
                 notice_due=L(2026, 11, 25, 9, 0), status="cancelled", **out)
    o4 = await insert(services, "outages", team_id=a, user_id=ls_, kind="planned",
                      starts_at=L(2026, 12, 10, 9, 0), ends_at=L(2026, 12, 10, 12, 0),
                      notice_due=L(2026, 12, 3, 9, 0), status="planned", **out)
    # Repairs.
    rep = {"ruleset": "sgcc-2011", "description": "低压故障", "created_at": CREATED}
    await insert(services, "repairs", team_id=a, user_id=ls_, area_id=w.areas["3号台区"],
                 received_at=L(2026, 12, 2, 10, 0), arrival_due=L(2026, 12, 2, 11, 30),
                 arrived_at=L(2026, 12, 2, 11, 0), status="arrived", **rep)
    r2 = await insert(services, "repairs", team_id=a, user_id=zs, area_id=w.areas["2号台区"],
                      received_at=L(2026, 12, 6, 8, 30), arrival_due=L(2026, 12, 6, 10, 0),
                      status="open", **rep)
    # Reminders: one overdue item each (张三's sent twice counts once).
    rem = {"team_id": a, "created_at": CREATED}
    for uid, subj, sid, kind, sent, state in (
            (zs, "complaint", 2, "reply.due", L(2026, 12, 4, 10, 0), "sent"),
            (zs, "complaint", 2, "reply.overdue", L(2026, 12, 5, 9, 0), "sent"),
            (ls_, "complaint", c3_id, "reply.due", L(2026, 12, 3, 10, 0), "sent"),
            (ls_, "complaint", c3_id, "contact.half", L(2026, 12, 2, 10, 0), "sent"),
            (ls_, "arrears", a5, "restore.due", L(2026, 11, 29, 12, 0), "sent"),
            (w.users["王班长"], "complaint", c3_id, "reply.escalate", L(2026, 12, 3, 10, 0),
             "sent"),
            (ls_, "outage", o4, "notice.due", L(2026, 12, 3, 9, 0), "pending")):
        await insert(services, "reminders", user_id=uid, subject=subj, subject_id=sid,
                     kind=kind, due_at=sent, sent_at=sent if state == "sent" else None,
                     state=state, dedupe_key=f"{subj}:{sid}:{kind}:{uid}", **rem)
    del r2
    clock.set(NOW)
    return w


# --- what the hand-checked week must give -------------------------------------------------
EXPECTED_PEOPLE = {
    # name: entries, items, visits, c_new, c_closed, c_late, (on, judged) overall,
    #       a_new, a_new_cents, a_coll, a_coll_cents, a_out, a_out_cents, notices,
    #       outages, reminders
    "张三": dict(entries=2, items={"patrol": 1, "visit": 2}, visits=1, c_new=1, c_closed=1,
                 c_late=1, c_tally=(1, 2), on_time=(3, 5), a_new=2, a_new_cents=80000,
                 a_coll=1, a_coll_cents=50000, a_out=1, a_out_cents=30000, notices=1,
                 restore=(1, 1), outages=1, notice=(1, 1), told=(1, 3), repair=(0, 1),
                 reminders=1, unpatrolled=["2号台区"]),
    "李四": dict(entries=2, items={"collect": 1, "service": 1, "publicity": 1}, visits=0,
                 c_new=1, c_closed=0, c_late=1, c_tally=(0, 1), on_time=(1, 3), a_new=0,
                 a_new_cents=0, a_coll=1, a_coll_cents=20000, a_out=1, a_out_cents=123456,
                 notices=0, restore=(0, 0), outages=1, notice=(0, 1), told=(0, 0),
                 repair=(1, 1), reminders=1, unpatrolled=["3号台区"]),
    "王五": dict(entries=0, items={}, visits=0, c_new=0, c_closed=0, c_late=0, c_tally=(0, 0),
                 on_time=(0, 0), a_new=0, a_new_cents=0, a_coll=0, a_coll_cents=0, a_out=0,
                 a_out_cents=0, notices=0, restore=(0, 0), outages=0, notice=(0, 0),
                 told=(0, 0), repair=(0, 0), reminders=0, unpatrolled=["4号台区"]),
}
EXPECTED_OVERDUE = [("arrears", "restore", "李四"), ("outage", "notice", "李四"),
                    ("complaint", "reply", "李四"), ("repair", "arrival", "张三")]


def week() -> Period:
    return Period(date(2026, 11, 30), date(2026, 12, 6), SHANGHAI, "week")


@pytest.fixture
async def seeded(services: Services, clock: FakeClock) -> World:
    await make_people(services, clock)
    return await seed(services, clock)


# --- ranges -------------------------------------------------------------------------------
@pytest.mark.parametrize(("said", "first", "last"), [
    ("", "2026-11-30", "2026-12-06"), ("上周", "2026-11-30", "2026-12-06"),
    ("last week", "2026-11-30", "2026-12-06"), ("本周", "2026-12-07", "2026-12-13"),
    ("11月", "2026-11-01", "2026-11-30"), ("十一月", "2026-11-01", "2026-11-30"),
    ("2025年12月", "2025-12-01", "2025-12-31"), ("12月", "2026-12-01", "2026-12-31"),
    ("1月", "2026-01-01", "2026-01-31"), ("2026-11", "2026-11-01", "2026-11-30"),
    ("上月", "2026-11-01", "2026-11-30"), ("本月", "2026-12-01", "2026-12-31"),
    ("2026-11-01 2026-11-15", "2026-11-01", "2026-11-15"),
    ("2026-11-01至2026-11-15", "2026-11-01", "2026-11-15"),
    ("2026/11/01-2026/11/15", "2026-11-01", "2026-11-15"),
    ("２０２６－１１－０１ ２０２６－１１－１５", "2026-11-01", "2026-11-15"),
    ("11月1日到11月15日", "2026-11-01", "2026-11-15"), ("12月25日", "2025-12-25", "2025-12-25"),
    ("2026-12-05", "2026-12-05", "2026-12-05"), ("昨天", "2026-12-06", "2026-12-06"),
])
def test_ranges(said: str, first: str, last: str) -> None:
    p = parse_range(said, NOW)
    assert (p.first.isoformat(), p.last.isoformat()) == (first, last)


def test_a_week_runs_monday_to_sunday_local() -> None:
    p = parse_range("上周", NOW)
    assert p.start == L(2026, 11, 30) and p.end == L(2026, 12, 7)
    assert p.start.astimezone().utcoffset() is not None
    assert iso(p.start) == "2026-11-29T16:00:00+00:00"  # Monday 00:00 in Shanghai
    sunday = parse_range("上周", L(2026, 12, 6, 23, 59))  # seen from a Sunday night
    assert (sunday.first, sunday.last) == (date(2026, 11, 23), date(2026, 11, 29))


@pytest.mark.parametrize(("said", "key"), [
    ("上上上周", "report.range.unknown"), ("2026-02-30", "report.range.bad_date"),
    ("2026-02-30 2026-03-05", "report.range.bad_date"), ("13月", "report.range.bad_month"),
    ("2026-11-15 2026-11-01", "report.range.reversed"), ("2026-12-20", "report.range.future"),
    ("2027年1月", "report.range.future"), ("2024-01-01 2026-01-01", "report.range.too_long"),
    ("hello", "report.range.unknown"),
])
def test_bad_ranges_say_why(said: str, key: str) -> None:
    with pytest.raises(RangeError) as err:
        parse_range(said, NOW)
    assert err.value.key == key


async def test_typos_and_impossible_ranges_get_clear_answers(
        seeded: World, assistant: Assistant) -> None:
    lead = Chat(assistant, "test", "王班长")
    await lead.say("/report 2026-02-30")
    assert "日期 2026-02-30 不存在" in lead.text and "/report 本周" in lead.text
    await lead.say("/report 2026-11-15 2026-11-01")
    assert "结束日期 2026-11-01 早于开始日期 2026-11-15" in lead.text
    await lead.say("/report 2027年3月")
    assert "2027-03-01 还没到" in lead.text
    await lead.say("/report 张叁")  # a typo in a name
    assert "本班组没有叫「张叁」的人。是不是：张三？" in lead.text
    await lead.say("/report 赵六")  # someone of the other team: not found, nothing leaks
    assert "本班组没有叫「赵六」的人" in lead.text
    await lead.say("/report 上星期五")
    assert "没看懂「上星期五」是哪段时间" in lead.text


# --- the figures --------------------------------------------------------------------------
async def test_figures_match_the_hand_checked_week(seeded: World, services: Services) -> None:
    fig = await compute(services.db, Scope(seeded.teams[TEAM_A], TEAM_A), week(), NOW.astimezone(),
                        detail=True)
    assert [p.name for p in fig.people] == ["张三", "李四", "王五"]  # most entries first
    for name, exp in EXPECTED_PEOPLE.items():
        p = fig.person(seeded.users[name])
        assert p.entries == exp["entries"], name
        assert {k: v for k, v in p.items.items() if v} == exp["items"], name
        assert p.special_visits == exp["visits"]
        assert (p.complaints_new, p.complaints_closed, p.complaints_overdue) == (
            exp["c_new"], exp["c_closed"], exp["c_late"]), name
        assert (p.complaint_deadlines.on_time, p.complaint_deadlines.judged) == exp["c_tally"]
        assert (p.arrears_new, p.arrears_new_cents, p.arrears_collected,
                p.arrears_collected_cents, p.arrears_outstanding,
                p.arrears_outstanding_cents) == (exp["a_new"], exp["a_new_cents"], exp["a_coll"],
                                                 exp["a_coll_cents"], exp["a_out"],
                                                 exp["a_out_cents"]), name
        assert p.notices_served == exp["notices"]
        assert (p.restore.on_time, p.restore.judged) == exp["restore"], name
        assert p.outages == exp["outages"]
        assert (p.outage_notice.on_time, p.outage_notice.judged) == exp["notice"], name
        assert (p.special_told, p.special_to_tell) == exp["told"], name
        assert (p.repair_arrival.on_time, p.repair_arrival.judged) == exp["repair"], name
        assert p.reminders_overdue == exp["reminders"], name
        assert (p.on_time.on_time, p.on_time.judged) == exp["on_time"], name
        assert p.unpatrolled == exp["unpatrolled"], name
    assert [p.name for p in fig.silent] == ["王五"]
    assert [(u.name, u.owners) for u in fig.unpatrolled] == [
        ("2号台区", ("张三",)), ("3号台区", ("李四",)), ("4号台区", ("王五",))]
    assert [(o.kind, o.step, o.owner) for o in fig.overdue] == EXPECTED_OVERDUE
    t = fig.total
    assert (t.entries, t.complaints_new, t.arrears_outstanding_cents) == (4, 2, 153456)
    assert (t.on_time.on_time, t.on_time.judged) == (4, 8)
    # The other team's rows are nowhere.
    assert fig.detail is not None
    assert all(w.owner != "赵六" for w in fig.detail.logs)
    assert {r["owner"] for r in fig.detail.complaints} <= {"张三", "李四"}
    assert all(r["customer_name"] != "西边客户" for r in fig.detail.arrears)


async def test_the_month_and_a_single_person(seeded: World, services: Services) -> None:
    nov = parse_range("11月", NOW)
    fig = await compute(services.db, Scope(seeded.teams[TEAM_A], TEAM_A), nov, NOW)
    zhang = fig.person(seeded.users["张三"])
    assert zhang.entries == 2  # 11-29 23:59 and 11-30 00:00 are both in November
    assert zhang.items["patrol"] == 2 and zhang.items["visit"] == 1
    dec = await compute(services.db, Scope(seeded.teams[TEAM_A], TEAM_A),
                        parse_range("12月", NOW), NOW)
    assert dec.person(seeded.users["李四"]).entries == 3  # 12-07 00:00 counts in December
    assert dec.now < dec.period.end  # still running: judged up to now
    one = await compute(services.db, Scope(seeded.teams[TEAM_A], TEAM_A, seeded.users["李四"],
                                           "李四"), week(), NOW)
    assert [p.name for p in one.people] == ["李四"]
    assert [(o.kind, o.owner) for o in one.overdue] == [
        ("arrears", "李四"), ("outage", "李四"), ("complaint", "李四")]
    assert [u.name for u in one.unpatrolled] == ["3号台区"]


async def test_random_entries_around_the_boundaries(services: Services, clock: FakeClock) -> None:
    """Counts from SQL against a plain Python count over the same random entries."""
    await make_people(services, clock)
    w = await world(services)
    rnd = random.Random(5)
    keys = work_item_keys()
    edges = [L(2026, 11, 30), L(2026, 12, 7)]
    made: list[tuple[str, datetime, tuple[str, ...], str]] = []
    for _ in range(150):
        who = rnd.choice(["张三", "李四"])
        edge = rnd.choice(edges)
        at = edge + timedelta(minutes=rnd.choice([-1, 0, 1, rnd.randint(-3000, 3000)]))
        items = tuple(rnd.sample(keys, rnd.randint(1, 3)))
        area = rnd.choice(["1号台区", "2号台区"] if who == "张三" else ["3号台区"])
        await add_log(services, w, who, at, items, area)
        made.append((who, at, items, area))
    clock.set(NOW)
    fig = await compute(services.db, Scope(w.teams[TEAM_A], TEAM_A), week(), NOW)
    inside = [m for m in made if date(2026, 11, 30) <= m[1].astimezone(SHANGHAI).date()
              <= date(2026, 12, 6)]
    for who in ("张三", "李四"):
        mine = [m for m in inside if m[0] == who]
        p = fig.person(w.users[who])
        assert p.entries == len(mine)
        assert {k: v for k, v in p.items.items() if v} == dict(
            Counter(i for m in mine for i in m[2]))
    patrolled = {m[3] for m in inside if "patrol" in m[2]}
    assert {u.name for u in fig.unpatrolled} == {"1号台区", "2号台区", "3号台区",
                                                 "4号台区"} - patrolled


# --- message, XLSX and chart agree ---------------------------------------------------------
def xlsx_of(out: Outcome) -> Any:
    [doc] = [a for r in out.replies for a in r.attachments if a.filename.endswith(".xlsx")]
    return load_workbook(io.BytesIO(doc.data))


def png_of(out: Outcome) -> Attachment:
    [png] = [a for r in out.replies for a in r.attachments if a.kind == "photo"]
    return png


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_description(data: bytes) -> dict[str, Any]:
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return json.loads(img.info["Description"])


def rows_by_name(ws: Any) -> dict[str, dict[str, Any]]:
    header = [c.value for c in ws[1]]
    out = {}
    for row in ws.iter_rows(min_row=2, values_only=True):
        if row[0] is None or not isinstance(row[1], int):
            break
        out[row[0]] = dict(zip(header, row, strict=False))
    return out


async def test_lead_report_message_xlsx_and_chart_agree(seeded: World,
                                                        assistant: Assistant) -> None:
    lead = Chat(assistant, "test", "王班长")
    out = await lead.say("/report")
    msg = out.replies[0].text
    assert msg.startswith("📊 城东供电所 工作汇总\n2026-11-30 周一 — 2026-12-06 周日\n")
    assert "客户经理 3 人 · 工作日志 4 条 · 特殊客户走访 1 次" in msg
    assert "📝 工作项目：走访 2 · 宣传 1 · 巡视 1 · 催费 1 · 客户服务 1" in msg
    # Issue #15 §4.3: late deadlines of the period are 未按时, "超期" is only the overdue-now
    # list (the "⏰ 超期提醒" count is gone), and a person is one line in words.
    assert "📮 投诉：新增 2 · 办结 1 · 未按时 2 · 及时率 33%（1/3）" in msg
    assert ("💰 欠费：新增 2 户 ¥800.00 · 回收 2 户 ¥700.00 · 未缴 2 户 ¥1,534.56 · "
            "送达停电通知 1 · 24 小时内复电 1/1") in msg
    assert "🔌 停电：2 次 · 通知按时 50%（1/2） · 特殊客户停电前已告知 1/3" in msg
    assert "🔧 报修到达现场及时率 50%（1/2）" in msg
    assert "超期提醒" not in msg
    assert "✅ 综合及时率 50%（4/8）" in msg
    assert ("\n张三：日志2条（走访2 巡视1），特殊客户走访1次，投诉新增1 办结1，"
            "欠费新增2户 回收1户 未缴1户，及时率60%，现在超期1项\n") in msg
    assert ("\n李四：日志2条（宣传1 催费1 客户服务1），投诉新增1，欠费回收1户 未缴1户，"
            "及时率33%，现在超期3项\n") in msg
    assert "\n王五：本期没有记录\n" in msg
    assert "😶 本期没有记日志（1 人）：王五" in msg
    assert "⚠️ 现在超期（4 项）：\n• 欠费 #5 缴费后复电 · 李四 · 已超期 7 天 20 小时" in msg
    assert "• 投诉工单 #3 答复处理意见 · 李四 · 已超期 3 天 22 小时" in msg
    assert "🔍 本期没有巡视的台区（3 个）：2号台区（张三）、3号台区（李四）、4号台区（王五）" in msg
    assert "赵六" not in msg and "西" not in msg
    # The XLSX holds the same numbers, as numbers.
    wb = xlsx_of(out)
    # Issue #15 §4.3 added the 报修 sheet, issue #13 §3 the 走访周期 one (visits due),
    # issue #14 §1 the 电费回收率 one (the arrears feature's section, before the register's).
    assert wb.sheetnames == ["汇总", "工作日志", "投诉", "欠费", "停电", "报修", "特殊客户走访",
                             "电费回收率", "走访周期"]
    for ws in wb:
        assert ws.freeze_panes in ("A2", "B2", "C2"), ws.title
        assert ws.column_dimensions["A"].width >= 6
    summary = rows_by_name(wb["汇总"])
    assert set(summary) == {"张三", "李四", "王五", "合计"}
    for name, exp in EXPECTED_PEOPLE.items():
        r = summary[name]
        assert r["日志条数"] == exp["entries"]
        for k in work_item_keys():
            label = {"visit": "走访", "publicity": "宣传", "errand": "受托办理", "patrol": "巡视",
                     "repair": "报修", "collect": "催费", "lineloss": "线损",
                     "emergency": "应急处置", "service": "客户服务"}[k]
            assert r[label] == exp["items"].get(k, 0), (name, k)
        assert r["投诉未按时"] == exp["c_late"]  # issue #15 §4.3: 超期 only means overdue now
        assert r["未缴（元）"] == pytest.approx(exp["a_out_cents"] / 100)
        assert r["综合按时"] == exp["on_time"][0] and r["综合到期"] == exp["on_time"][1]
        expected_pct = exp["on_time"][0] / exp["on_time"][1] if exp["on_time"][1] else None
        assert r["综合及时率"] == (pytest.approx(expected_pct) if expected_pct else None)
    assert summary["合计"]["日志条数"] == 4 and summary["合计"]["欠费新增（元）"] == 800
    ws = wb["汇总"]
    header = [c.value for c in ws[1]]
    pct_cell = ws.cell(2, header.index("综合及时率") + 1)
    assert pct_cell.number_format == "0.0%" and isinstance(pct_cell.value, float)
    money_cell = ws.cell(2, header.index("欠费新增（元）") + 1)
    assert money_cell.number_format == "#,##0.00"
    logs = list(wb["工作日志"].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in logs] == [datetime(2026, 11, 30, 0, 0), datetime(2026, 12, 1, 9, 0),
                                    datetime(2026, 12, 2, 10, 0), datetime(2026, 12, 6, 23, 59)]
    assert logs[0][2:8] == ("张三", "1号台区", 1, None, None, 1)
    assert wb["工作日志"]["B2"].number_format == "yyyy-mm-dd hh:mm"
    visits = list(wb["特殊客户走访"].iter_rows(min_row=2, values_only=True))
    assert visits == [(datetime(2026, 12, 2, 10, 0), "张三", "2号台区", "5500010001", "刘**",
                       "独居/空巢/孤寡老人", "走访独居老人，检查室内线路")]
    complaints = {r[0]: r for r in wb["投诉"].iter_rows(min_row=2, values_only=True)}
    assert set(complaints) == {1, 2, 3, 4}  # team A's; #5 is the other team's
    assert complaints[2][10] == datetime(2026, 12, 5, 10, 0) and complaints[2][11] == "否"
    assert complaints[1][4] == "刘**"  # customer names masked
    arrears = {r[1]: r for r in wb["欠费"].iter_rows(min_row=2, values_only=True)}
    assert arrears["5500020002"][4] == pytest.approx(1234.56) and arrears["5500020002"][13] == "是"
    assert "5500029999" not in arrears
    outages = list(wb["停电"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[8], r[9], r[10]) for r in outages] == [(1, "是", 3, 1), (2, "否", 0, 0)]
    # The chart: a real PNG of the expected size, drawn from the same numbers.
    png = png_of(out)
    drawn = png_description(png.data)
    # Three people, and under them the features' figures (the special customers' visits).
    sections = len(drawn["sections"])
    assert ["走访 已走访", 1] in drawn["sections"]
    assert png_size(png.data) == (1200, 240 + 26 * (3 + sections + 2))
    assert drawn["period"] == ["2026-11-30", "2026-12-06"]
    by_name = {r["name"]: r for r in drawn["rows"]}
    for name, exp in EXPECTED_PEOPLE.items():
        assert {k: v for k, v in by_name[name]["items"].items() if v} == exp["items"]
        assert (by_name[name]["on_time"], by_name[name]["judged"]) == exp["on_time"]


async def test_the_message_reads_on_a_phone_with_one_overdue_figure(
        seeded: World, assistant: Assistant) -> None:
    """Issue #15 §4.3: a person is one short line in words (no code string, no zero parts),
    and every overdue figure is the one "现在超期" definition: the people's counts add up to
    the list's, and no other overdue count stands next to it."""
    lead = Chat(assistant, "test", "王班长")
    msg = (await lead.say("/report")).replies[0].text
    people = msg.split("👥 各人：\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split("：", 1)[0] for line in people] == ["张三", "李四", "王五"]
    assert all("｜" not in line and "/" not in line and len(line) <= 80 for line in people)
    assert not any(zero in line for line in people for zero in ("0条", "0次", "新增0", "0户"))
    listed = int(msg.split("⚠️ 现在超期（", 1)[1].split(" 项", 1)[0])
    per_person = sum(int(line.split("现在超期", 1)[1].rstrip("项"))
                     for line in people if "现在超期" in line)
    assert listed == per_person == 4
    assert msg.count("超期") == msg.count("现在超期") + msg.count("已超期")


def chat_words(key: str) -> str:
    """A status as the chat's card says it, without the coloured marker."""
    return locale_text(key).split(" ", 1)[1]


async def test_the_workbook_has_repairs_chat_status_words_and_date_cells(
        seeded: World, assistant: Assistant, services: Services) -> None:
    """Issue #15 §4.3: a 报修 sheet like the other record sheets; every status in the chat's
    words; the lead reads the team's staff in full while customers stay masked; a log
    entered with a day only is a date cell (no 00:00); the chart still comes along."""
    wid = await add_log(services, seeded, "张三", L(2026, 12, 3, 0, 0), ("patrol",), "1号台区",
                        "只记了日期的巡视")
    await services.db.execute("UPDATE worklogs SET time_precision = 'day' WHERE id = ?", (wid,))
    out = await Chat(assistant, "test", "王班长").say("/report")
    wb = xlsx_of(out)
    ws = wb["报修"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("编号", "台区", "负责人", "接报时间", "故障情况", "到达期限", "到达时间",
                       "到达按时", "恢复供电期限", "恢复供电时间", "恢复按时", "状态")
    assert [(r[0], r[1], r[2], r[3], r[6], r[7], r[11]) for r in rows[1:]] == [
        (1, "3号台区", "李四", datetime(2026, 12, 2, 10, 0), datetime(2026, 12, 2, 11, 0), "是",
         chat_words("repair.status.arrived")),
        (2, "2号台区", "张三", datetime(2026, 12, 6, 8, 30), None, "否",
         chat_words("repair.status.open"))]
    assert ws["D2"].number_format == "yyyy-mm-dd hh:mm"

    def column(sheet: str, name: str) -> list[Any]:
        table = list(wb[sheet].iter_rows(values_only=True))
        i = table[0].index(name)
        return [r[i] for r in table[1:] if r[0] is not None]

    assert set(column("投诉", "状态")) <= {chat_words(f"complaint.status.{s}")
                                         for s in ("open", "contacted", "closed")}
    assert chat_words("complaint.status.closed") in column("投诉", "状态")
    assert set(column("欠费", "状态")) <= {chat_words(f"arrears.status.{s}") for s in (
        "collecting", "notice_served", "cut_off", "paid", "paid_closed", "restored")}
    assert "李四" in column("投诉", "负责人") and "张三" in column("投诉", "负责人")
    assert "刘**" in column("投诉", "客户") and "刘德福" not in column("投诉", "客户")

    head = next(wb["汇总"].iter_rows(values_only=True))
    assert not [h for h in head if "超期" in str(h)]  # 超期 is only the overdue-now list

    logs = wb["工作日志"]
    table = list(logs.iter_rows())
    by_id = {r[0].value: r[1] for r in table[1:] if r[0].value is not None}
    assert by_id[wid].value == datetime(2026, 12, 3) and by_id[wid].number_format == "yyyy-mm-dd"
    timed = next(c for i, c in by_id.items() if i != wid)
    assert timed.number_format == "yyyy-mm-dd hh:mm"
    png = png_of(out)
    assert png.data.startswith(b"\x89PNG")


async def test_the_other_lead_sees_only_the_other_team(seeded: World,
                                                       assistant: Assistant) -> None:
    lead = Chat(assistant, "test", "钱班长")
    out = await lead.say("/report 上周")
    msg = out.replies[0].text
    assert msg.startswith("📊 城西供电所 工作汇总")
    assert "客户经理 1 人 · 工作日志 1 条" in msg
    assert "📮 投诉：新增 1 · 办结 0 · 未按时 1 · 及时率 0%（0/1）" in msg
    for name in ("张三", "李四", "王五", "1号台区"):
        assert name not in msg
    wb = xlsx_of(out)
    assert set(rows_by_name(wb["汇总"])) == {"赵六", "合计"}
    await lead.say("/report 张三")
    assert "本班组没有叫「张三」的人" in lead.text


async def test_a_manager_gets_only_their_own(seeded: World, assistant: Assistant) -> None:
    zhang = Chat(assistant, "test", "张三")
    out = await zhang.say("/report")
    msg = out.replies[0].text
    assert msg.startswith("📊 张三 的工作汇总（城东供电所）\n2026-11-30 周一 — 2026-12-06 周日")
    assert "📝 工作日志 2 条：走访 2 · 巡视 1" in msg
    assert "🏠 特殊客户走访 1 次" in msg
    assert "📮 投诉：新增 1 · 办结 1 · 未按时 1 · 及时率 50%（1/2）" in msg
    assert "✅ 综合及时率 60%（3/5）" in msg
    assert "• 报修 #2 到达现场 · 张三" in msg
    assert "🔍 本期没有巡视的台区（1 个）：2号台区" in msg
    for other in ("李四", "王五", "赵六", "3号台区"):
        assert other not in msg
    names = {a.filename for r in out.replies for a in r.attachments}
    assert names == {"工作汇总_张三_2026-11-30_2026-12-06.xlsx"}  # no chart for one person
    wb = xlsx_of(out)
    assert set(rows_by_name(wb["汇总"])) == {"张三", "合计"}
    assert {r[2] for r in wb["工作日志"].iter_rows(min_row=2, values_only=True)} == {"张三"}
    await zhang.say("/report 李四")
    assert zhang.text == "客户经理只能查看自己的汇总，发 /report 即可。"
    await zhang.say("/report 张三 本周")
    assert "📊 张三 的工作汇总" in zhang.text and "（截至 2026-12-07 周一 08:31）" in zhang.text


async def test_a_lead_asks_for_one_manager_and_free_text(seeded: World,
                                                         assistant: Assistant) -> None:
    lead = Chat(assistant, "test", "王班长")
    out = await lead.say("/report 李四 上周")
    assert out.replies[0].text.startswith("📊 李四 的工作汇总（城东供电所）")
    assert "张三" not in out.replies[0].text
    out = await lead.say("周报 11月")
    assert "2026-11-01 周日 — 2026-11-30 周一" in out.replies[0].text


async def test_english(seeded: World, assistant: Assistant) -> None:
    lead = Chat(assistant, "test", "王班长")
    await lead.say("/lang en")
    out = await lead.say("/report last week")
    msg = out.replies[0].text
    assert "📮 Complaints: new 2 · closed 1 · late 2 · on time 33% (1/3)" in msg
    assert xlsx_of(out).sheetnames[0] == "Summary"


async def test_message_fits_telegram_for_a_huge_team(services: Services, clock: FakeClock) -> None:
    """500 managers with long names, many overdue items and unpatrolled areas."""
    now = NOW
    async with services.db.tx() as tx:
        tid = await services.people.ensure_team(tx, "超大供电所", now)
        for i in range(500):
            aid = await services.people.ensure_area(tx, tid, f"第{i}号超长名字的农村台区", now)
            uid = await services.people.create_user(tx, f"客户经理欧阳{i:03d}号", Role.MANAGER,
                                                    tid, [aid], now)
            for k in range(i % 3):
                wid = await tx.execute(
                    "INSERT INTO worklogs(team_id, area_id, user_id, occurred_at, content, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (tid, aid, uid, iso(L(2026, 12, 1 + k, 9)), "x", iso(now)))
                await tx.executemany("INSERT INTO worklog_items VALUES (?, ?)",
                                     [(wid, key) for key in work_item_keys()])
            await tx.execute(
                "INSERT INTO complaints(team_id, user_id, kind, accepted_at, content, ruleset, "
                "contact_due, status, created_at) VALUES (?, ?, 'complaint', ?, 'x', 'r', ?, "
                "'open', ?)", (tid, uid, iso(L(2026, 11, 20)), iso(L(2026, 11, 21)), iso(now)))
    fig = await compute(services.db, Scope(tid, "超大供电所"), week(), now, detail=True)
    for locale in ("zh_CN", "en"):
        msg = text.render(fig, locale)
        assert len(msg) <= 4096
        assert ("……另有" in msg) if locale == "zh_CN" else ("more, see" in msg)
        assert ("现在超期（500 项）" in msg) if locale == "zh_CN" else ("Overdue now (500)" in msg)
    png = chart.render(fig, "zh_CN")
    assert png_size(png) == (1200, 240 + 26 * chart.MAX_ROWS)
    assert png_description(png)["people"] == 500


def test_the_cjk_font_ships_with_the_install() -> None:
    """Every character the chart can draw from the locale is in the shipped font."""
    from matplotlib.ft2font import FT2Font

    from bot.i18n import catalog

    path = chart.font_path()
    assert path is not None, "pylopdf-fonts-zh-cn is not installed (see pyproject.toml)"
    assert chart.cjk_family() == "Noto Sans SC"
    cmap = FT2Font(path).get_charmap()
    cat = catalog("zh_CN")
    drawn = "".join(cat[k] for k in cat if k.startswith(("report.chart.", "item.")))
    drawn += "张三李四王五欧阳修文城东供电所钱班长赵六"
    missing = {ch for ch in drawn if ord(ch) > 127 and ord(ch) not in cmap}
    assert not missing


async def test_empty_period_has_no_files(seeded: World, assistant: Assistant) -> None:
    wang = Chat(assistant, "test", "王五")
    out = await wang.say("/report 2026-10-01 2026-10-07")
    assert "📝 本期没有记工作日志" in out.replies[0].text
    assert out.replies[0].attachments == []


def test_every_key_in_both_locales() -> None:
    import string

    from bot.config import LOCALES_DIR

    zh = json.loads((LOCALES_DIR / "zh_CN" / "reports.json").read_text(encoding="utf-8"))
    en = json.loads((LOCALES_DIR / "en" / "reports.json").read_text(encoding="utf-8"))
    assert zh.keys() == en.keys()
    for key in zh:
        zf = {f for _, f, _, _ in string.Formatter().parse(zh[key]) if f}
        ef = {f for _, f, _, _ in string.Formatter().parse(en[key]) if f}
        assert zf == ef, key


@pytest.mark.parametrize(("said", "like"), [
    ("本周报表", "/report 本周"), ("上周报表", "/report 上周"), ("本月报表", "/report 本月"),
    ("上个月的汇总", "/report 上个月"), ("11月报表", "/report 11月"),
    ("本周周报", "/report 本周"),
    ("this week's report", "/report this week"), ("last month report", "/report last month"),
])
async def test_the_period_before_the_word_is_a_report(seeded: World, assistant: Assistant,
                                                      said: str, like: str) -> None:
    """「本周报表」 as 「报表 本周」 (the period before the word, as people say it)."""
    lead = Chat(assistant, "test", "王班长")
    if said.isascii():
        await lead.say("/lang en")
    asked = await lead.say(said)
    wanted = await lead.say(like)
    assert asked.replies and asked.replies[0].text == wanted.replies[0].text
    assert [a.filename for a in asked.replies[0].attachments] == \
        [a.filename for a in wanted.replies[0].attachments]


async def test_a_sentence_ending_in_the_word_is_not_a_report(seeded: World,
                                                             assistant: Assistant) -> None:
    """Only a period before the word makes a report: a reminder to hand one in stays one."""
    zhang = Chat(assistant, "test", "张三")
    await zhang.say("提醒我周五下午交报表")
    assert "工作汇总" not in zhang.text


@pytest.mark.parametrize(("said", "heading", "days"), [
    ("/report 王五月", "王五月", "2026-11-30 周一 — 2026-12-06 周日"),  # not 王 in May
    ("/report 王五 五月", "王五", "2026-05-01 周五 — 2026-05-31 周日"),
    ("/report 本周王五月", "王五月", "2026-12-07 周一 — 2026-12-13 周日"),
    ("/report 张三 2026-11-16 2026-11-22", "张三", "2026-11-16 周一 — 2026-11-22 周日"),
    ("/report 2026-11-16 张三 2026-11-22", "张三", "2026-11-16 周一 — 2026-11-22 周日"),
])
async def test_a_name_that_reads_like_a_range(seeded: World, services: Services,
                                              assistant: Assistant, clock: FakeClock,
                                              said: str, heading: str, days: str) -> None:
    """/report reads the person named before it knows the team's members (a guess: the text
    less the range at its end or start), and checks the guess against them: a name like
    王五月 (王 in 五月?) or a name between two dates is still found, a trip later."""
    clock.set(CREATED)
    await make_user(services, "王五月", team=TEAM_A, areas=())
    clock.set(NOW)
    w = await world(services)
    for at in (L(2026, 12, 2, 10, 0), L(2026, 12, 7, 8, 0)):  # last week, this week
        await add_log(services, w, "王五月", at, ("patrol",), "4号台区")
    lead = Chat(assistant, "test", "王班长")
    msg = (await lead.say(said)).replies[0].text
    assert msg.startswith(f"📊 {heading} 的工作汇总（城东供电所）\n{days}")
    if heading == "王五月":
        assert "📝 工作日志 1 条：巡视 1" in msg, msg
