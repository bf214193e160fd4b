"""Deadline arithmetic and the rule sets. Times are Beijing time unless a test says UTC."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import SettingsError, load_settings
from bot.deadlines import (
    COMPLAINT_TYPES,
    RULESETS_DIR,
    AreaKind,
    ComplaintType,
    Direction,
    Rule,
    RuleSet,
    RuleSetError,
    WorkingHours,
    available_rulesets,
    due_after,
    due_before,
    halfway,
    is_working_time,
    load_ruleset,
    load_ruleset_file,
    next_working_start,
    working_hours_before,
    working_hours_between,
)
from bot.storage.db import Database
from bot.workcal import WorkCalendar, add_override

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar({})  # chinese-calendar only
HOURS = WorkingHours(start=time(8, 30), end=time(17, 30))
OLD = load_ruleset("sgcc-2011")
NEW = load_ruleset("sgcc-newer")


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def wd(n: int, direction: Direction = "after") -> Rule:
    return Rule(amount=n, unit="working_days", direction=direction)


def need(rule: Rule | None) -> Rule:
    assert rule is not None
    return rule


# --- working days ------------------------------------------------------------------------
# 2026: 中秋 09-25..27, 国庆 10-01..07; 调休 working days Sun 09-20 and Sat 10-10.
@pytest.mark.parametrize(("accepted", "n", "due", "counted_from"), [
    # inside working hours: counts from the moment, same clock time N working days later
    (at(2026, 11, 30, 10), 1, at(2026, 12, 1, 10), at(2026, 11, 30, 10)),
    (at(2026, 11, 30, 10), 7, at(2026, 12, 9, 10), at(2026, 11, 30, 10)),
    (at(2026, 11, 27, 17, 29), 1, at(2026, 11, 30, 17, 29), at(2026, 11, 27, 17, 29)),
    # just before 国庆: the holiday is skipped, the make-up Saturday 10-10 counts
    (at(2026, 9, 30, 16), 1, at(2026, 10, 8, 16), at(2026, 9, 30, 16)),
    (at(2026, 9, 30, 16), 7, at(2026, 10, 15, 16), at(2026, 9, 30, 16)),
    # 调休 working Saturday / Sunday counted as working days
    (at(2026, 10, 9, 10), 1, at(2026, 10, 10, 10), at(2026, 10, 9, 10)),
    (at(2026, 9, 18, 10), 1, at(2026, 9, 20, 10), at(2026, 9, 18, 10)),
    (at(2026, 10, 10, 9), 1, at(2026, 10, 12, 9), at(2026, 10, 10, 9)),  # accepted on it
    # after hours / at closing: from the next working day's opening
    (at(2026, 11, 27, 19), 1, at(2026, 12, 1, 8, 30), at(2026, 11, 30, 8, 30)),
    (at(2026, 11, 27, 19), 7, at(2026, 12, 9, 8, 30), at(2026, 11, 30, 8, 30)),
    (at(2026, 11, 27, 17, 30), 1, at(2026, 12, 1, 8, 30), at(2026, 11, 30, 8, 30)),
    # before opening on a working day: from today's opening
    (at(2026, 12, 1, 7), 1, at(2026, 12, 2, 8, 30), at(2026, 12, 1, 8, 30)),
    # on a holiday (weekend and weekday ones)
    (at(2026, 10, 3, 11), 1, at(2026, 10, 9, 8, 30), at(2026, 10, 8, 8, 30)),
    (at(2026, 10, 1, 10), 7, at(2026, 10, 16, 8, 30), at(2026, 10, 8, 8, 30)),
    (at(2026, 9, 25, 10), 1, at(2026, 9, 29, 8, 30), at(2026, 9, 28, 8, 30)),
])
def test_working_days_after(accepted: datetime, n: int, due: datetime,
                            counted_from: datetime) -> None:
    d = due_after(accepted, wd(n), CAL, HOURS)
    assert (d.due, d.counted_from, d.provisional) == (due, counted_from, False)


def test_utc_input_same_instant_utc_output() -> None:
    accepted = datetime(2026, 9, 30, 8, 0, tzinfo=UTC)  # 16:00 in Beijing
    d = due_after(accepted, need(OLD.complaint("complaint").reply), CAL, OLD.working_hours)
    assert d.due == at(2026, 10, 15, 16) and d.due.tzinfo is UTC


def test_naive_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_after(datetime(2026, 11, 30, 10), wd(1), CAL, HOURS)


# --- a year the calendar does not know ---------------------------------------------------
@pytest.mark.parametrize(("accepted", "n", "due", "provisional"), [
    (at(2027, 9, 30, 16), 7, at(2027, 10, 11, 16), True),  # Mon–Fri fallback
    (at(2026, 12, 31, 16), 1, at(2027, 1, 1, 16), True),   # walks into 2027
    (at(2026, 12, 30, 16), 1, at(2026, 12, 31, 16), False),
])
def test_unknown_year_is_provisional(accepted: datetime, n: int, due: datetime,
                                     provisional: bool) -> None:
    d = due_after(accepted, wd(n), CAL, HOURS)
    assert (d.due, d.provisional) == (due, provisional)


def test_clock_rules_never_provisional() -> None:
    d = due_after(at(2027, 9, 30, 23, 50), Rule(amount=90, unit="minutes"), CAL, HOURS)
    assert (d.due, d.provisional) == (at(2027, 10, 1, 1, 20), False)


async def test_admin_enters_2027(tmp_path: Path) -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    async with Database(tmp_path / "cal.db") as db:
        # A hypothetical 2027 国庆: 10-01..07 off (Fri, Mon–Thu given), Sat 10-09 worked.
        for day in (1, 4, 5, 6, 7):
            await add_override(db, date(2027, 10, day), "holiday", "国庆节", now)
        await add_override(db, date(2027, 10, 9), "workday", "国庆调休", now)
        cal = await WorkCalendar.load(db)
    d = due_after(at(2027, 9, 30, 16), wd(7), cal, HOURS)
    # 10-08 Fri, 10-09 Sat (make-up), 10-11..15 Mon–Fri
    assert (d.due, d.provisional) == (at(2027, 10, 15, 16), False)
    one = due_after(at(2027, 9, 30, 16), wd(1), cal, HOURS)
    assert one.due == at(2027, 10, 8, 16)  # the added holiday 10-01 is skipped


# --- clock rules -------------------------------------------------------------------------
@pytest.mark.parametrize(("area", "received", "due"), [
    ("rural", at(2026, 11, 27, 23, 50), at(2026, 11, 28, 1, 20)),
    ("city", at(2026, 11, 27, 23, 50), at(2026, 11, 28, 0, 35)),
    ("remote", at(2026, 10, 1, 12), at(2026, 10, 1, 14)),  # holidays don't matter
])
def test_repair_arrival_is_plain_clock(area: AreaKind, received: datetime,
                                       due: datetime) -> None:
    d = due_after(received, need(OLD.repair.arrival.get(area)), CAL, OLD.working_hours)
    assert (d.due, d.provisional) == (due, False)


def test_24_hours_is_24_hours_across_a_holiday() -> None:
    paid = at(2026, 9, 30, 18)
    rule = OLD.arrears.restore_after_payment
    assert rule is not None
    assert due_after(paid, rule, CAL, HOURS).due == at(2026, 10, 1, 18)
    follow = OLD.arrears.followup_every
    assert follow is not None
    assert due_after(paid, follow, CAL, HOURS).due == at(2026, 10, 3, 18)


def test_outage_notices_before_start() -> None:
    planned = OLD.outage.planned_notice
    assert planned is not None and planned.direction == "before"
    d = due_before(at(2026, 10, 8, 9), planned, CAL, OLD.working_hours)
    assert (d.due, d.provisional) == (at(2026, 10, 1, 9), False)
    temporary = NEW.outage.temporary_notice
    assert temporary is not None and temporary.audience == "important_customers"
    assert due_before(at(2026, 12, 1, 10), temporary, CAL, HOURS).due == at(2026, 11, 30, 10)
    notice = OLD.arrears.notice_before_cutoff
    assert notice is not None
    assert due_before(at(2026, 12, 8, 9), notice, CAL, HOURS).due == at(2026, 12, 1, 9)


def test_direction_mismatch_rejected() -> None:
    planned = OLD.outage.planned_notice
    assert planned is not None
    with pytest.raises(ValueError, match="due_before"):
        due_after(at(2026, 10, 8, 9), planned, CAL, HOURS)
    with pytest.raises(ValueError, match="due_after"):
        due_before(at(2026, 10, 8, 9), wd(1), CAL, HOURS)


@pytest.mark.parametrize(("event", "n", "due"), [
    (at(2026, 11, 30, 10), 1, at(2026, 11, 27, 10)),       # Mon → Fri
    (at(2026, 11, 30, 8), 1, at(2026, 11, 26, 17, 30)),    # before opening → Fri 17:30 − 1
    (at(2026, 10, 8, 9), 1, at(2026, 9, 30, 9)),           # across 国庆
    (at(2026, 10, 12, 9), 1, at(2026, 10, 10, 9)),         # make-up Saturday counts
])
def test_working_days_before(event: datetime, n: int, due: datetime) -> None:
    assert due_before(event, wd(n, "before"), CAL, HOURS).due == due


# --- rule sets compared --------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "which", "old_due", "new_due"), [
    ("complaint", "contact", at(2026, 10, 8, 16), at(2026, 10, 1, 16)),  # 1 WD vs 24 h
    ("complaint", "reply", at(2026, 10, 15, 16), at(2026, 10, 12, 16)),  # 7 WD vs 4 WD
    ("report", "reply", at(2026, 10, 15, 16), at(2026, 10, 19, 16)),     # 7 WD vs 9 WD
    ("consultation", "reply", at(2026, 10, 15, 16), at(2026, 10, 12, 16)),
])
def test_complaint_figures_by_version(kind: ComplaintType, which: str, old_due: datetime,
                                      new_due: datetime) -> None:
    accepted = at(2026, 9, 30, 16)  # a working Wednesday, just before 国庆
    for rs, want in ((OLD, old_due), (NEW, new_due)):
        rule = need(getattr(rs.complaint(kind), which))
        assert due_after(accepted, rule, CAL, rs.working_hours).due == want, rs.name


@pytest.mark.parametrize(("path", "old", "new"), [
    ("complaints.complaint.contact", "1个工作日", "24小时"),
    ("complaints.complaint.reply", "7个工作日", "4个工作日"),
    ("complaints.report.reply", "7个工作日", "9个工作日"),
    ("arrears.notice_before_cutoff", "7天", "7天"),
    ("arrears.restore_after_payment", "24小时", "24小时"),
    ("arrears.followup_every", "3天", "3天"),
    ("arrears.renotify_before_cutoff", None, "30分钟"),
    ("outage.planned_notice", "7天", "7天"),
    ("outage.temporary_notice", None, "24小时"),
    ("repair.arrival.city", "45分钟", "45分钟"),
    ("repair.arrival.rural", "90分钟", "90分钟"),
    ("repair.arrival.remote", "120分钟", "120分钟"),
    ("repair.restore_after_arrival.city", None, "3小时"),
    ("repair.restore_after_arrival.rural", None, "4小时"),
    ("repair.restore_after_arrival.remote", None, None),
    ("meter.reading_anomaly_reply", "7个工作日", "5个工作日"),
])
def test_rule_figures(path: str, old: str | None, new: str | None) -> None:
    def get(rs: RuleSet) -> str | None:
        node: Any = rs
        for part in path.split("."):
            if node is None:
                return None
            node = node[part] if isinstance(node, dict) else getattr(node, part)
        return node.label() if node is not None else None

    assert (get(OLD), get(NEW)) == (old, new)


def test_rule_set_details() -> None:
    assert available_rulesets() == ["sgcc-2011", "sgcc-newer"]
    assert load_ruleset("sgcc-2011") is OLD  # cached
    for rs in (OLD, NEW):
        assert rs.working_hours.start == time(8, 30) and rs.working_hours.end == time(17, 30)
        assert rs.reminders.complaint_before_due_working_hours == 2
        assert rs.reminders.repair_before_due_minutes == 10
        for kind in COMPLAINT_TYPES:
            c = rs.complaint(kind)
            assert c.contact is not None and c.reply is not None
        for kind in ("opinion", "service_request", "consultation"):
            assert "complaint figures" in (rs.complaint(kind).note or "")
    assert "temporary_notice" in OLD.outage.notes
    assert NEW.repair.arrival.city is not None and NEW.repair.arrival.city.average
    assert NEW.repair.restore_after_arrival is not None
    assert "remote" in NEW.repair.restore_after_arrival.notes
    assert wd(7).label("en") == "7 working days"
    with pytest.raises(ValueError):
        _ = wd(1).delta


# --- reminders, halfway, working time --------------------------------------------------------
@pytest.mark.parametrize(("due", "hours", "at_"), [
    (at(2026, 12, 1, 15), 2, at(2026, 12, 1, 13)),          # same day
    (at(2026, 12, 1, 9, 30), 2, at(2026, 11, 30, 16, 30)),  # across a night
    (at(2026, 11, 30, 9), 2, at(2026, 11, 27, 16)),         # across a weekend
    (at(2026, 10, 8, 9, 30), 2, at(2026, 9, 30, 16, 30)),   # across 国庆
    (at(2026, 10, 12, 9), 2, at(2026, 10, 10, 16)),         # onto the make-up Saturday
    (at(2026, 12, 1, 19), 2, at(2026, 12, 1, 15, 30)),      # due after hours
    (at(2026, 12, 1, 8, 30), 2, at(2026, 11, 30, 15, 30)),  # due at opening
    (at(2026, 12, 1, 10, 30), 11, at(2026, 11, 30, 8, 30)),  # more than a working day
    (at(2026, 12, 1, 10, 30), 0.5, at(2026, 12, 1, 10)),
    (at(2026, 12, 1, 3), 0, at(2026, 12, 1, 3)),
])
def test_working_hours_before(due: datetime, hours: float, at_: datetime) -> None:
    assert working_hours_before(due, hours, CAL, HOURS) == at_


def test_working_hours_before_negative() -> None:
    with pytest.raises(ValueError):
        working_hours_before(at(2026, 12, 1, 10), -1, CAL, HOURS)


def test_complaint_reminder_end_to_end() -> None:
    accepted = at(2026, 11, 27, 19)  # Friday evening
    d = due_after(accepted, need(OLD.complaint("complaint").reply), CAL, OLD.working_hours)
    remind = working_hours_before(d.due, OLD.reminders.complaint_before_due_working_hours,
                                  CAL, OLD.working_hours)
    assert (d.due, remind) == (at(2026, 12, 9, 8, 30), at(2026, 12, 8, 15, 30))


def test_halfway() -> None:
    assert halfway(at(2026, 11, 27, 23, 50), at(2026, 11, 28, 1, 20)) == at(2026, 11, 28, 0, 35)
    start, due = at(2026, 11, 27, 19), at(2026, 12, 1, 8, 30)  # Fri evening → Tue opening
    assert halfway(start, due) == at(2026, 11, 29, 13, 45)  # plain clock: Sunday
    assert halfway(start, due, CAL, HOURS) == at(2026, 11, 30, 13)  # working time: Monday
    with pytest.raises(TypeError):
        halfway(start, due, CAL)


def test_working_hours_between() -> None:
    assert working_hours_between(at(2026, 11, 27, 16), at(2026, 11, 30, 10), CAL, HOURS) == 3
    assert working_hours_between(at(2026, 10, 1), at(2026, 10, 8), CAL, HOURS) == 0
    assert working_hours_between(at(2026, 10, 8), at(2026, 10, 1), CAL, HOURS) == 0


@pytest.mark.parametrize(("t", "working"), [
    (at(2026, 11, 30, 8, 30), True),
    (at(2026, 11, 30, 8, 29), False),
    (at(2026, 11, 30, 17, 29), True),
    (at(2026, 11, 30, 17, 30), False),
    (at(2026, 11, 29, 10), False),   # Sunday
    (at(2026, 10, 1, 10), False),    # 国庆
    (at(2026, 10, 10, 10), True),    # make-up Saturday
    (datetime(2026, 11, 30, 2, tzinfo=UTC), True),  # 10:00 in Beijing
])
def test_is_working_time(t: datetime, working: bool) -> None:
    assert is_working_time(t, CAL, HOURS) is working


@pytest.mark.parametrize(("t", "start"), [
    (at(2026, 11, 30, 10), at(2026, 11, 30, 10)),
    (at(2026, 11, 30, 7), at(2026, 11, 30, 8, 30)),
    (at(2026, 11, 27, 18), at(2026, 11, 30, 8, 30)),
    (at(2026, 9, 30, 18), at(2026, 10, 8, 8, 30)),
    (at(2026, 10, 9, 18), at(2026, 10, 10, 8, 30)),
])
def test_next_working_start(t: datetime, start: datetime) -> None:
    assert next_working_start(t, CAL, HOURS) == start


# --- rule set files: validation --------------------------------------------------------------
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for p in parents:
            node = node[p]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return mutate


_DELETE = object()


@pytest.mark.parametrize(("mutate", "message"), [
    (_set("complaints.complaint.reply.unit", "weeks"), "complaints.complaint.reply.unit"),
    (_set("complaints.complaint.reply.amount", 0), "greater than 0"),
    (_set("complaints.complaint.reply.amount", 1.5), "whole number"),
    (_set("outage.planned_notice.direction", "after"), "counted before"),
    (_set("outage.notes", {}), "temporary_notice is null"),
    (_set("arrears.restore_after_payment", None), "restore_after_payment is null"),
    (_set("arrears.restore_after_paymnet", None), "Extra inputs"),
    (_set("complaints.consultation", _DELETE), "missing complaint types"),
    (_set("working_hours.end", "08:00"), "start before"),
    (_set("reminders.repair_before_due_minutes", -10), "greater than 0"),
    (_set("name", "sgcc-2012"), "does not match"),
])
def test_bad_rule_set_files(tmp_path: Path, mutate: Callable[[dict[str, Any]], None],
                            message: str) -> None:
    raw = json.loads((RULESETS_DIR / "sgcc-2011.json").read_text(encoding="utf-8"))
    raw["name"] = "bad"
    mutate(raw)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RuleSetError, match=message):
        load_ruleset_file(path)


def test_direction_may_be_omitted(tmp_path: Path) -> None:
    raw = json.loads((RULESETS_DIR / "sgcc-2011.json").read_text(encoding="utf-8"))
    raw["name"] = "mine"
    del raw["outage"]["planned_notice"]["direction"]
    (tmp_path / "mine.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    rs = load_ruleset("mine", tmp_path)
    assert rs.outage.planned_notice is not None
    assert rs.outage.planned_notice.direction == "before"


def test_unreadable_or_unknown_rule_set(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"name": "broken",\n oops}', encoding="utf-8")
    with pytest.raises(RuleSetError, match="line 2"):
        load_ruleset_file(tmp_path / "broken.json")
    with pytest.raises(RuleSetError, match="available: sgcc-2011, sgcc-newer"):
        load_ruleset("../sgcc-2011")


def test_ruleset_setting() -> None:
    assert load_settings().ruleset == "sgcc-2011"
    assert load_settings(ruleset="sgcc-newer").ruleset == "sgcc-newer"
    with pytest.raises(SettingsError, match=r"TAIQU_RULESET.*sgcc-2011, sgcc-newer"):
        load_settings(ruleset="sgcc-1999")
