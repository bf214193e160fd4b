"""The plans' part of the monthly report (/report 上月): per manager and whole month, the
items done / total and the lead's grade; plans.done_rate for the team's targets."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from bot import i18n
from bot.features.plans import store
from bot.features.plans.store import Month, items_of
from bot.features.plans.words import done_count, grade_label
from bot.router import ReportPart, ReportScope
from bot.storage.db import Database


def zone(scope: ReportScope) -> ZoneInfo:
    """The team's time zone, as the report period carries it."""
    tz = scope.start.tzinfo
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo("UTC")


def months_within(scope: ReportScope) -> list[Month]:
    """The whole months a report period covers (a week covers none)."""
    tz = zone(scope)
    first = scope.start.astimezone(tz).date()
    month = Month.of(first) if first.day == 1 else Month.of(first).next()
    out = []
    while month.end(tz) <= scope.end:
        out.append(month)
        month = month.next()
    return out


async def managers_in(db: Database, scope: ReportScope) -> list[tuple[int, str]]:
    one = "" if scope.team_wide else " AND id = ?"
    rows = await db.fetchall(
        "SELECT id, name FROM users WHERE team_id = ? AND role = 'manager' AND active = 1"
        f"{one} ORDER BY name, id",
        (scope.team_id, *(() if scope.team_wide else (scope.user_id,))))
    return [(int(r["id"]), str(r["name"])) for r in rows]


async def plans_report(db: Database, scope: ReportScope) -> ReportPart:
    """Per manager and whole month: plan items done / total and the lead's grade."""
    months = months_within(scope)
    if not months:
        return ReportPart()
    loc = scope.locale
    tz = zone(scope)
    people = await managers_in(db, scope)
    lines: list[str] = []
    rows: list[list[Any]] = []
    done_all = total_all = 0
    for month in months:
        plans = {p.user_id: p for p in await store.team_plans(db, scope.team_id, month,
                                                               scope.user_id)}
        if not plans:
            continue
        lines.append(i18n.t(loc, "plan.report.title", year=month.year, month=month.month))
        for uid, name in people:
            p = plans.get(uid)
            if p is None:
                lines.append(i18n.t(loc, "plan.report.none", name=name))
                rows.append([month.key, name, i18n.t(loc, "plan.report.no_plan"), 0, 0, "", ""])
                continue
            if p.closed:
                done, total = p.done_count or 0, p.total_count or 0
            else:
                items = await items_of(db, p, tz)
                done, total = done_count(items), len(items)
            done_all, total_all = done_all + done, total_all + total
            grade = grade_label(loc, p.grade) if p.grade else i18n.t(
                loc, f"plan.status.{p.status}")
            lines.append(i18n.t(loc, "plan.report.line", name=name, done=done, total=total,
                                grade=grade))
            rows.append([month.key, name, i18n.t(loc, f"plan.status.{p.status}"), done, total,
                         grade_label(loc, p.grade) if p.grade else "", p.evaluation or ""])
    if not rows:
        return ReportPart()
    header = [i18n.t(loc, f"plan.report.col_{k}")
              for k in ("month", "name", "status", "done", "total", "grade", "evaluation")]
    measures = {"plans.done_rate": round(done_all * 100 / total_all, 1)} if total_all else {}
    return ReportPart(lines, i18n.t(loc, "plan.report.sheet"), header, rows,
                      [(i18n.t(loc, "plan.chart.done"), done_all)], measures)
