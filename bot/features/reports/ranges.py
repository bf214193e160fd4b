"""What `/report 上周`, `/report 11月`, `/report 2026-11-01 2026-11-15` mean: a run of whole
local days [first, last] in the team's time zone. Weeks run Monday to Sunday.

A text that is no range raises RangeError with a locale key and its arguments, so the handler
can answer in the user's language with what was wrong (a date that does not exist, an end
before the start, a range that has not begun, one longer than a year)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.textutil import normalize_input

MAX_DAYS = 366  # one report covers at most a year: bounded work, bounded files

_CN_MONTH = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
             "十": 10, "十一": 11, "十二": 12}
_KEYWORDS: dict[str, str] = {
    "上周": "last_week", "上星期": "last_week", "上个星期": "last_week", "上礼拜": "last_week",
    "last week": "last_week", "lastweek": "last_week", "周报": "last_week",
    "本周": "this_week", "这周": "this_week", "本星期": "this_week", "这个星期": "this_week",
    "this week": "this_week", "thisweek": "this_week",
    "本月": "this_month", "这个月": "this_month", "this month": "this_month",
    "上月": "last_month", "上个月": "last_month", "last month": "last_month",
    "今天": "today", "today": "today", "昨天": "yesterday", "yesterday": "yesterday",
    "今年": "this_year", "本年": "this_year", "this year": "this_year",
}
_MONTH = re.compile(
    r"^(?:(?P<y>\d{4})\s*年\s*)?(?P<m>\d{1,2}|十[一二]?|[一二三四五六七八九])\s*月份?$")
_YEAR_MONTH = re.compile(r"^(?P<y>\d{4})\s*[-/.]\s*(?P<m>\d{1,2})$")
_DATE = (r"(?:(?P<{p}y>\d{{4}})\s*[-/.年]\s*(?P<{p}m>\d{{1,2}})\s*[-/.月]\s*(?P<{p}d>\d{{1,2}})"
         r"\s*[日号]?|(?P<{p}m2>\d{{1,2}})\s*月\s*(?P<{p}d2>\d{{1,2}})\s*[日号]?)")
_ONE_DATE = re.compile("^" + _DATE.format(p="a") + "$")
_TWO_DATES = re.compile("^" + _DATE.format(p="a") + r"\s*(?:至|到|~|～|—|–|-|\s|to)\s*"
                        + _DATE.format(p="b") + "$")


_PUNCT = str.maketrans({"－": "-", "／": "/", "．": ".", "～": "~"})


class RangeError(Exception):
    """Not a usable range: `key` names the locale string, `args` fill it."""

    def __init__(self, key: str, **args: Any) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


@dataclass(frozen=True)
class Period:
    first: date  # first local day
    last: date  # last local day, inclusive
    tz: ZoneInfo
    kind: str = "custom"  # "week", "month", "day", "year" or "custom": only for wording

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        """Exclusive: the next day's local midnight (Monday 00:00 after a week)."""
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.tz)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def key(self) -> str:
        return f"{self.first.isoformat()}_{self.last.isoformat()}"


def week_of(day: date, tz: ZoneInfo) -> Period:
    monday = day - timedelta(days=day.weekday())
    return Period(monday, monday + timedelta(days=6), tz, "week")


def last_week(local_now: datetime) -> Period:
    return week_of(local_now.date() - timedelta(days=7), _zone(local_now))


def month_of(year: int, month: int, tz: ZoneInfo) -> Period:
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return Period(first, nxt - timedelta(days=1), tz, "month")


def _zone(local_now: datetime) -> ZoneInfo:
    tz = local_now.tzinfo
    if not isinstance(tz, ZoneInfo):
        raise ValueError("local_now must carry a ZoneInfo")
    return tz


def parse_range(text: str, local_now: datetime) -> Period:
    """The period `text` names, seen from `local_now` (aware, in the team's zone).
    An empty text is last week, the weekly report's default."""
    tz = _zone(local_now)
    today = local_now.date()
    s = normalize_input(text).translate(_PUNCT).lower().strip(" ，,。.")
    if not s:
        return last_week(local_now)
    word = _KEYWORDS.get(s) or _KEYWORDS.get(s.replace(" ", ""))
    if word is not None:
        return _keyword(word, today, tz)
    m = _MONTH.match(s) or _YEAR_MONTH.match(s)
    if m:
        return _month(m, today, tz)
    m = _TWO_DATES.match(s)
    if m:
        first = _date(m, "a", today, s)
        last = _date(m, "b", today, s)
        return _checked(Period(first, last, tz), today)
    m = _ONE_DATE.match(s)
    if m:
        day = _date(m, "a", today, s)
        return _checked(Period(day, day, tz, "day"), today)
    raise RangeError("report.range.unknown", text=text.strip())


def _keyword(word: str, today: date, tz: ZoneInfo) -> Period:
    if word == "last_week":
        return week_of(today - timedelta(days=7), tz)
    if word == "this_week":
        return week_of(today, tz)
    if word == "this_month":
        return month_of(today.year, today.month, tz)
    if word == "last_month":
        return month_of(today.year - (today.month == 1), (today.month - 2) % 12 + 1, tz)
    if word == "this_year":
        return Period(date(today.year, 1, 1), date(today.year, 12, 31), tz, "year")
    day = today if word == "today" else today - timedelta(days=1)
    return Period(day, day, tz, "day")


def _month(m: re.Match[str], today: date, tz: ZoneInfo) -> Period:
    raw = m.group("m")
    month = int(raw) if raw.isdigit() else _CN_MONTH[raw]
    if not 1 <= month <= 12:
        raise RangeError("report.range.bad_month", month=raw)
    if m.group("y"):
        year = int(m.group("y"))
        if date(year, month, 1) > today:
            raise RangeError("report.range.future", first=f"{year}-{month:02d}-01")
    else:  # 12月 in November means the December that has happened: last year's
        year = today.year if date(today.year, month, 1) <= today else today.year - 1
    return month_of(year, month, tz)


def _date(m: re.Match[str], p: str, today: date, text: str) -> date:
    if m.group(f"{p}y"):
        y, mo, d = int(m.group(f"{p}y")), int(m.group(f"{p}m")), int(m.group(f"{p}d"))
        shown = f"{y}-{mo:02d}-{d:02d}"
    else:
        y, mo, d = today.year, int(m.group(f"{p}m2")), int(m.group(f"{p}d2"))
        shown = f"{mo}月{d}日"
    try:
        day = date(y, mo, d)
    except ValueError:
        raise RangeError("report.range.bad_date", date=shown) from None
    if not m.group(f"{p}y") and day > today:  # a month-day ahead of today: last year's
        try:
            day = date(y - 1, mo, d)
        except ValueError:  # 2月29日 seen from a year after a leap year
            raise RangeError("report.range.bad_date", date=shown) from None
    return day


def _checked(period: Period, today: date) -> Period:
    if period.last < period.first:
        raise RangeError("report.range.reversed", first=period.first.isoformat(),
                         last=period.last.isoformat())
    if period.first > today:
        raise RangeError("report.range.future", first=period.first.isoformat())
    if period.days > MAX_DAYS:
        raise RangeError("report.range.too_long", days=period.days, max=MAX_DAYS)
    return period


def weekly_report_due(weekly_report_time: str, now: datetime, tz: ZoneInfo) -> Period | None:
    """The week (Monday-Sunday) whose report is due at `now`: the one just ended, from Monday
    at `weekly_report_time` (HH:MM local) on; None before that moment on a Monday."""
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    h, m = weekly_report_time.split(":")
    if local < datetime.combine(monday, time(int(h), int(m)), tzinfo=tz):
        return None
    return week_of(monday - timedelta(days=7), tz)

