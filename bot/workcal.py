"""China's working-day calendar: admin overrides, then chinese-calendar, then Mon–Fri.

Which days count as working days decides whether a complaint reply is on time, so every
answer says where it came from (`DayInfo.source`) and whether it is only a guess
(`DayInfo.provisional`):

1. `calendar_overrides` rows (an admin's holidays and 调休 make-up working days) win;
2. otherwise chinese-calendar, which knows the State Council schedule for 2004–2026;
3. otherwise Mon–Fri. A year with neither built-in data nor any override is provisional:
   deadlines in it must still be computed, but flagged, until an admin enters the year's
   holidays (`taiqu-bot calendar add-holiday/add-workday`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Literal

import chinese_calendar

from bot.storage.db import Backend, Database, held_by, iso

Source = Literal["override", "chinese_calendar", "weekday_fallback"]
KINDS = ("holiday", "workday")
WEEKDAY_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


@dataclass(frozen=True)
class DayInfo:
    day: date
    workday: bool
    provisional: bool
    source: Source
    note: str | None = None  # the admin's note, or chinese-calendar's holiday name


class YearDays(list[DayInfo]):
    """`list_year`'s answer: the non-ordinary days, plus whether the year is a guess.

    An unknown year without overrides has no non-ordinary days at all, so the flag
    cannot be read off the (empty) list itself.
    """

    def __init__(self, year: int, provisional: bool, days: list[DayInfo]) -> None:
        super().__init__(days)
        self.year = year
        self.provisional = provisional


@cache
def builtin_knows(year: int) -> bool:
    """Whether the installed chinese-calendar has the State Council schedule for `year`."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"calendar override kind must be 'holiday' or 'workday', not {kind!r}")


class WorkCalendar:
    """Answers "is this a working day?"; pure, built from the overrides table."""

    def __init__(self, overrides: dict[date, str],
                 notes: dict[date, str | None] | None = None) -> None:
        for kind in overrides.values():
            _check_kind(kind)
        self._overrides = dict(overrides)
        self._notes = dict(notes or {})
        self._override_years = frozenset(d.year for d in overrides)

    SQL = "SELECT day, kind, note FROM calendar_overrides"  # read with others: from_rows

    @classmethod
    async def load(cls, db: Backend) -> WorkCalendar:
        return cls.from_rows(await db.fetchall(cls.SQL))

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> WorkCalendar:
        """From the overrides' (day, kind, note) rows (by position: a Row or a JsonRow)."""
        days = {date.fromisoformat(r[0]): r for r in rows}
        return cls({d: r[1] for d, r in days.items()}, {d: r[2] for d, r in days.items()})

    @property
    def overrides(self) -> dict[date, str]:
        return dict(self._overrides)

    def year_known(self, year: int) -> bool:
        # One admin entry is taken as "the admin has done this year": entering a year is
        # expected to be done in one sitting, from the State Council notice.
        return builtin_knows(year) or year in self._override_years

    def info(self, d: date) -> DayInfo:
        kind = self._overrides.get(d)
        if kind is not None:
            return DayInfo(d, kind == "workday", False, "override", self._notes.get(d))
        if builtin_knows(d.year):
            _, name = chinese_calendar.get_holiday_detail(d)
            return DayInfo(d, bool(chinese_calendar.is_workday(d)), False, "chinese_calendar",
                           name)
        return DayInfo(d, d.weekday() < 5, not self.year_known(d.year), "weekday_fallback")

    def is_workday(self, d: date) -> bool:
        return self.info(d).workday

    def year_days(self, year: int) -> YearDays:
        """Overrides of `year`, and days where the built-in schedule departs from Mon–Fri."""
        found: list[DayInfo] = []
        d = date(year, 1, 1)
        while d.year == year:
            info = self.info(d)
            if info.source == "override" or info.workday != (d.weekday() < 5):
                found.append(info)
            d += timedelta(days=1)
        return YearDays(year, not self.year_known(year), found)


class CalendarCache:
    """The calendar of the last step read that brought it, under the overrides' version that
    read saw (bot.storage.steps: CALENDAR_VERSION); one per database handle (`of`). A step's
    deadlines then need no read of their own (issue #12: a 保存 is the step's read and one
    write), and cannot use a stale calendar on any instance: the version comes from the same
    read as the step's form, and a step whose version differs from the one held here gets
    the overrides in that read."""

    def __init__(self) -> None:
        self.version: str | None = None
        self._calendar: WorkCalendar | None = None

    @staticmethod
    def of(db: Backend) -> CalendarCache:
        return held_by(db, CalendarCache)

    def offer(self, version: str | None, rows_json: str | None) -> None:
        """What a step read returned: the overrides (JSON rows) when its version was new."""
        if version is not None and rows_json is not None:
            self._calendar = WorkCalendar.from_rows(json.loads(rows_json))
            self.version = version

    async def at(self, db: Backend, version: str | None) -> WorkCalendar:
        """The calendar as of `version` (the step's read); read now if unknown (None: a step
        read brought none, e.g. a reminder scan)."""
        if version is not None and version == self.version and self._calendar is not None:
            return self._calendar
        return await WorkCalendar.load(db)


async def add_override(db: Database, day: date, kind: str, note: str | None,
                       now: datetime) -> None:
    """Mark `day` as a holiday or a working day; a second call for the same day replaces it."""
    _check_kind(kind)
    note = (note.strip() or None) if note else None
    await db.execute(
        "INSERT INTO calendar_overrides (day, kind, note, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(day) DO UPDATE SET kind = excluded.kind, note = excluded.note, "
        "created_at = excluded.created_at",
        (day.isoformat(), kind, note, iso(now)))


async def remove_override(db: Database, day: date) -> bool:
    """Forget the admin's entry for `day`; False when there was none."""
    async with db.tx() as tx:
        row = await tx.fetchone("SELECT 1 FROM calendar_overrides WHERE day = ?",
                                (day.isoformat(),))
        if row is None:
            return False
        await tx.execute("DELETE FROM calendar_overrides WHERE day = ?", (day.isoformat(),))
    return True


async def list_year(db: Database, year: int) -> YearDays:
    """The year's non-ordinary days (weekday holidays, working weekends, every override),
    in date order, with `.provisional` telling whether the year is only Mon–Fri guessed."""
    return (await WorkCalendar.load(db)).year_days(year)
