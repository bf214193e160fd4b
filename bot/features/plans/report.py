"""The plans' part of the monthly report (/report 上月): per manager and whole month, the
items done / total and the lead's grade; plans.done_rate for the team's targets. Declared
(ReportSection: read with the other sections in one round trip, issue #12), and reading only
what it reports: a manager's report his own plan, a closed plan's kept counts, not its
items."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from bot import i18n
from bot.features.plans import store
from bot.features.plans.store import Month
from bot.features.plans.words import done_count, grade_label
from bot.router import ReportPart, ReportScope, ReportSection
from bot.storage.db import Read, Row


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


def report_reads(scope: ReportScope) -> list[Read]:
    """The managers, then each month's plans (with the items of those not closed yet and
    what ticks them): store.plans_reads."""
    months = months_within(scope)
    if not months:
        return []
    return [store.managers_read(scope.team_id, scope.person()), *(
        read for month in months for read in store.plans_reads(
            store.of_team(scope.team_id, month, scope.person()), zone(scope),
            closed_items=False))]


def plans_report(scope: ReportScope, rows: list[list[Row]]) -> ReportPart:
    """Per manager and whole month: plan items done / total and the lead's grade."""
    months = months_within(scope)
    if not months:
        return ReportPart()
    loc = scope.locale
    people = [(int(r["id"]), str(r["name"])) for r in rows[0]]
    lines: list[str] = []
    out: list[list[Any]] = []
    done_all = total_all = 0
    for n, month in enumerate(months):
        first = 1 + n * store.PLANS_READS
        plans = {p.user_id: (p, items) for p, items
                 in store.plans_with_items(rows[first:first + store.PLANS_READS])}
        if not plans:
            continue
        lines.append(i18n.t(loc, "plan.report.title", year=month.year, month=month.month))
        for uid, name in people:
            found = plans.get(uid)
            if found is None:
                lines.append(i18n.t(loc, "plan.report.none", name=name))
                out.append([month.key, name, i18n.t(loc, "plan.report.no_plan"), 0, 0, "", ""])
                continue
            p, items = found
            if p.closed:
                done, total = p.done_count or 0, p.total_count or 0
            else:
                done, total = done_count(items), len(items)
            done_all, total_all = done_all + done, total_all + total
            grade = grade_label(loc, p.grade) if p.grade else i18n.t(
                loc, f"plan.status.{p.status}")
            lines.append(i18n.t(loc, "plan.report.line", name=name, done=done, total=total,
                                grade=grade))
            out.append([month.key, name, i18n.t(loc, f"plan.status.{p.status}"), done, total,
                        grade_label(loc, p.grade) if p.grade else "", p.evaluation or ""])
    if not out:
        return ReportPart()
    header = [i18n.t(loc, f"plan.report.col_{k}")
              for k in ("month", "name", "status", "done", "total", "grade", "evaluation")]
    measures = {"plans.done_rate": round(done_all * 100 / total_all, 1)} if total_all else {}
    return ReportPart(lines, i18n.t(loc, "plan.report.sheet"), header, out,
                      [(i18n.t(loc, "plan.chart.done"), done_all)], measures)


REPORT = ReportSection(report_reads, plans_report)
