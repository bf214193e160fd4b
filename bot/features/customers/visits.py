"""Visits due by the 走访周期 in the weekly report and /report: due / done / overdue per
manager (the to-do items themselves are in handlers.visits_todo)."""

from __future__ import annotations

from bot import i18n
from bot.router import ReportPart, ReportScope, ReportSection
from bot.storage.customers import VisitCounts, visit_counts_of, visit_counts_read
from bot.storage.db import Read, Row


def _line(locale: str, c: VisitCounts) -> str:
    return i18n.t(locale, "visits.report.manager", name=c.name, due=c.due, done=c.done,
                  overdue=c.overdue)


def visits_reads(scope: ReportScope) -> list[Read]:
    return [visit_counts_read(scope.team_id, scope.person(), scope.start, scope.end, scope.now)]


def visits_part(scope: ReportScope, rows: list[list[Row]]) -> ReportPart:
    counts = [c for c in visit_counts_of(rows[0]) if c.any]
    if not counts:
        return ReportPart()  # no customer with a visit cycle, no visit: nothing to say
    loc = scope.locale
    total = VisitCounts("", sum(c.due for c in counts), sum(c.done for c in counts),
                        sum(c.overdue for c in counts))
    lines = [i18n.t(loc, "visits.report.total", due=total.due, done=total.done,
                    overdue=total.overdue)]
    if scope.team_wide:
        lines += [_line(loc, c) for c in counts]
    header = [i18n.t(loc, f"visits.report.col_{k}") for k in ("name", "due", "done", "overdue")]
    chart = [(i18n.t(loc, "visits.chart.due"), total.due),
             (i18n.t(loc, "visits.chart.done"), total.done),
             (i18n.t(loc, "visits.chart.overdue"), total.overdue)]
    # Visits due in the period that were made, for the team's target (visits.done_rate).
    measures = {"visits.done_rate": round(total.done * 100 / total.due, 1)} if total.due else {}
    return ReportPart(lines, i18n.t(loc, "visits.report.sheet"), header,
                      [[c.name, c.due, c.done, c.overdue] for c in counts], chart, measures)


VISITS_REPORT = ReportSection(visits_reads, visits_part)
