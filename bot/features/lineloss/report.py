"""The weekly report's line loss: per 台区 the period's rate, its abnormal days and the items
opened, closed and still open; the team's rate as the measure `lineloss.rate` for targets.

The period's rate is the energy's, (Σ供电量 − Σ售电量) / Σ供电量: the 用电信息采集 system's own
period figure, not the plain mean of the daily rates (a day with little energy would weigh as
much as a full one)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bot import i18n
from bot.features.lineloss.limits import limits
from bot.router import ReportPart, ReportScope, ReportSection
from bot.storage.db import Read, Row, iso

MEASURE = "lineloss.rate"


@dataclass(frozen=True)
class DayFigure:
    day: date
    supplied: float
    sold: float
    rate: float | None


def period_rate(days: Iterable[DayFigure]) -> float | None:
    days = list(days)
    supplied = sum(d.supplied for d in days)
    return (supplied - sum(d.sold for d in days)) / supplied * 100 if supplied > 0 else None


@dataclass
class AreaTally:
    name: str
    kind: str
    days: list[DayFigure]
    abnormal: int = 0
    opened: int = 0
    closed: int = 0
    still_open: int = 0

    @property
    def rate(self) -> float | None:
        return period_rate(self.days)


def _days_of(scope: ReportScope) -> tuple[str, str]:
    """The period as local dates, first and last included."""
    tz = scope.start.tzinfo
    first = scope.start.astimezone(tz).date()
    last = (scope.end - timedelta(microseconds=1)).astimezone(tz).date()
    return first.isoformat(), last.isoformat()


def _areas_in(scope: ReportScope, alias: str) -> tuple[str, tuple[Any, ...]]:
    """The team's areas, or (one person's report) the areas they look after."""
    if scope.team_wide:
        return f"{alias}.team_id = ?", (scope.team_id,)
    person = scope.person()
    assert person is not None  # not the team's
    return (f"{alias}.team_id = ? AND {alias}.id IN "
            f"(SELECT area_id FROM user_areas WHERE user_id = {person[0]})",
            (scope.team_id, *person[1]))


def _reads(scope: ReportScope) -> list[Read]:
    """The days of the areas in scope, and the items open at some time in the period: two
    independent reads (the days by a join with the areas, not a read per area)."""
    first, last = _days_of(scope)
    where, params = _areas_in(scope, "a")
    who, who_params = scope.records_of("i")
    return [("SELECT d.area_id, a.name, a.kind, d.day, d.supplied, d.sold, d.rate "
             "FROM areas a JOIN lineloss_days d ON d.area_id = a.id AND d.day >= ? "
             f"AND d.day <= ? WHERE {where} ORDER BY d.area_id, d.day", (first, last, *params)),
            ("SELECT i.area_id, a.name, a.kind, i.status, i.opened_at, i.closed_at "
             f"FROM lineloss_items i JOIN areas a ON a.id = i.area_id WHERE {who} "
             "AND i.opened_at < ? AND (i.status <> 'closed' OR i.closed_at >= ?)",
             (*who_params, iso(scope.end), iso(scope.start)))]


def _tallies(scope: ReportScope, days: list[Row], items: list[Row]) -> dict[int, AreaTally]:
    out: dict[int, AreaTally] = {}
    for r in days:
        tally = out.setdefault(int(r["area_id"]), AreaTally(r["name"], r["kind"], []))
        # float(): on PostgreSQL a read with others comes through JSON, 5.0 as 5.
        rate = None if r["rate"] is None else float(r["rate"])
        tally.days.append(DayFigure(date.fromisoformat(r["day"]), float(r["supplied"]),
                                    float(r["sold"]), rate))
        tally.abnormal += limits().threshold(r["kind"]).abnormal(rate)
    start, end = iso(scope.start), iso(scope.end)
    for r in items:
        tally = out.setdefault(int(r["area_id"]), AreaTally(r["name"], r["kind"], []))
        tally.opened += start <= r["opened_at"] < end
        tally.closed += r["closed_at"] is not None and start <= r["closed_at"] < end
        tally.still_open += r["status"] != "closed"
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _part(scope: ReportScope, rows: list[list[Row]]) -> ReportPart:
    tallies = _tallies(scope, *rows)
    if not tallies:
        return ReportPart()
    loc = scope.locale

    def tr(key: str, **kw: Any) -> str:
        return i18n.t(loc, key, **kw)

    areas = sorted(tallies.values(), key=lambda a: (-a.still_open, -a.abnormal,
                                                    -(a.rate or 0.0), a.name))
    team_rate = period_rate(d for a in areas for d in a.days)
    lines = [tr("lineloss.report.total", areas=sum(bool(a.days) for a in areas),
                rate=_pct(team_rate), abnormal=sum(a.abnormal for a in areas),
                abnormal_areas=sum(a.abnormal > 0 for a in areas),
                opened=sum(a.opened for a in areas), closed=sum(a.closed for a in areas),
                still_open=sum(a.still_open for a in areas))]
    named = [a for a in areas if a.abnormal or a.still_open or a.opened or a.closed]
    limit = limits().report_lines
    lines += [tr("lineloss.report.area", area=a.name, rate=_pct(a.rate), abnormal=a.abnormal,
                 opened=a.opened, closed=a.closed, still_open=a.still_open)
              for a in named[:limit]]
    if len(named) > limit:
        lines.append(tr("lineloss.report.more", n=len(named) - limit))
    header = [tr(f"lineloss.col.{k}") for k in ("area", "kind", "days", "supplied", "sold",
                                                "rate", "abnormal", "opened", "closed",
                                                "still_open")]
    rows = [[a.name, tr(f"lineloss.kind.{a.kind}"), len(a.days),
             round(sum(d.supplied for d in a.days), 2), round(sum(d.sold for d in a.days), 2),
             round(a.rate, 2) if a.rate is not None else None, a.abnormal, a.opened,
             a.closed, a.still_open] for a in areas]
    chart = [(tr("lineloss.chart.abnormal_areas"), sum(a.abnormal > 0 for a in areas)),
             (tr("lineloss.chart.open"), sum(a.still_open for a in areas))]
    measures = {MEASURE: round(team_rate, 2)} if team_rate is not None else {}
    return ReportPart(lines, tr("lineloss.sheet"), header, rows, chart, measures)


SECTION = ReportSection(_reads, _part)
