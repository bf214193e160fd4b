"""Chinese time phrases ("昨天下午3点", "下周一", "11月25号") to aware datetimes.

Hand-written rather than left to dateparser because dateparser happily turns field notes such
as "3号台区" or "2号杆拉线松动" into dates, and gets 下午/半/一刻 wrong. dateparser is only a
fallback for English input given as a whole (parse_time), and is imported lazily because it is
slow to import and most messages never need it.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal

# Which way a field looks: a log time lies behind ("past"), a deadline or outage start ahead
# ("future"). Decides a bare "3点" that could be 03:00 or 15:00; None keeps the hour as typed.
Prefer = Literal["past", "future"] | None


@dataclass(frozen=True)
class ParsedTime:
    value: datetime  # timezone-aware, in the same tzinfo as `now`
    has_time: bool  # False for a date only (昨天, 11月25日, 月底); value is then that day 00:00
    phrase: str  # the exact substring of the input that was recognised
    # The part of the day named without an hour ('昨天下午', '昨晚', '上午' -> 下午 / 晚上 /
    # 上午): has_time stays False, and a field that wants an hour can give it a default.
    period: str | None = None


# --- normalisation ------------------------------------------------------------

# Full-width ASCII (！..～) and the ideographic space map 1:1 onto ASCII, so indices into the
# normalised text are indices into the original: find_time can cut the phrase out verbatim.
_FULLWIDTH = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}
)

_CN_DIGIT = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_NUM_CHARS = "".join(_CN_DIGIT) + "十"

# A number: ASCII digits ([0-9], not \d, so int() never meets exotic Unicode digits) or
# Chinese numerals up to 99 / four-digit years written digit by digit (二〇二六).
_NUM = r"(?:[0-9]{1,4}|[零〇一二两三四五六七八九十]{1,4})"


def _num(s: str) -> int | None:
    """'15' / '十五' / '二十三' / '两' / '零五' / '二〇二六' to int; None if malformed."""
    if s.isascii():
        return int(s) if s.isdigit() else None
    if "十" in s:
        tens, _, ones = s.partition("十")
        if len(tens) > 1 or len(ones) > 1 or "十" in ones:
            return None
        t = _CN_DIGIT.get(tens) if tens else 1
        o = _CN_DIGIT.get(ones) if ones else 0
        return None if t is None or o is None else t * 10 + o
    if not s or any(ch not in _CN_DIGIT for ch in s):
        return None
    return int("".join(str(_CN_DIGIT[ch]) for ch in s))


# --- patterns -----------------------------------------------------------------

_PERIODS = "凌晨|清晨|早晨|早上|上午|中午|午后|下午|傍晚|晚上|晚间|夜里|夜间|半夜|深夜|早|晚"
# A period word right after a date with no hour ("昨天下午"). The one-character 早/晚 are left
# out: "明天晚些时候" should not lose its 晚.
_PERIOD_ONLY_RE = re.compile(_PERIODS.removesuffix("|早|晚"))

# Time of day: "下午3:30", "3点", "三点半", "7点15分", "15时30分", "3点一刻", "8点整".
_TIME_RE = re.compile(
    rf"(?:(?P<period>{_PERIODS})\s*)?(?:"
    r"(?P<h1>[0-9]{1,2}):(?P<m1>[0-9]{2})(?::(?P<s1>[0-9]{2}))?(?![0-9])"
    rf"|(?P<h2>{_NUM})(?:点钟|点|时)"
    rf"(?:(?P<half>半)|(?P<qtr>一刻|三刻)|整"
    rf"|(?P<m2>{_NUM})分钟?(?:(?P<s2>{_NUM})秒)?"
    # "3点15" without 分, but not "3点2号杆" / "3点2个": those numbers count something else.
    rf"|(?P<m3>{_NUM})(?![0-9号个#{_CN_NUM_CHARS}]))?"
    r")"
)

# Not the 现在 of "发现在2号杆" / "出现在": those are 发现 + 在.
_INSTANT_RE = re.compile(r"刚才|刚刚|(?<![发出体表实])现在|此刻|此时")

# "3天后", "两个小时前", "半小时前", "一个半小时前", "三个月后", "两周后".
_REL_RE = re.compile(
    rf"(?P<n>{_NUM}|半)(?P<ge>个)?(?P<half>半)?个?"
    r"(?P<unit>小时|钟头|分钟|天|日|周|星期|礼拜|月)"
    r"(?P<dir>以后|之后|以前|之前|后|前)"
)

_ISO_RE = re.compile(
    r"(?P<y>[0-9]{4})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})(?![0-9])"
)
# "11-25", "11/25": the look-behind keeps "10-2-5" / "#1-2" / "1.5-3" from becoming dates.
_SHORT_RE = re.compile(r"(?<![0-9A-Za-z#/.\-])(?P<m>[0-9]{1,2})[-/](?P<d>[0-9]{1,2})(?![0-9])")

# "11.28" (month.day, as written on forms and in chats). Only valid before a clock time or at
# the end of a whole-field answer: in free text "3.25" is far more often a reading or an amount.
_DOT_RE = re.compile(
    r"(?<![0-9A-Za-z#/.\-])(?P<m>[0-9]{1,2})\.(?P<d>[0-9]{1,2})(?![0-9.])(?:日|号)?")

# "2026年11月25日", "去年11月25号", "11月25日", "下月初", "月底", "本月5号". A bare 月 must not
# follow a number (the year/month part of an invalid "2月30日" must not leave "月30日" behind).
_CN_DATE_RE = re.compile(
    rf"(?:(?P<y>[0-9]{{4}}|[零〇一二三四五六七八九]{{4}})年|(?P<yrel>今|去|明|前|后)年)?"
    rf"(?:(?P<mrel>上上个|上上|上个|上|下下个|下下|下个|下|本|这个|这|当)|(?P<m>{_NUM})"
    rf"|(?<![0-9{_CN_NUM_CHARS}个]))月"
    rf"(?:(?P<pos>初|底|末|中)|(?P<d>{_NUM})[日号])"
)

_DAYWORD_RE = re.compile(
    r"(?P<w>大前天|大后天|前天|昨天|昨日|今天|今日|明天|明日|后天)"
    r"|(?P<c>今|昨|明)(?P<cp>早|晨|晚|夜)"
)

# "下周一", "本周五", "星期天", "礼拜三". Not after 每 ("每周一次") or a number ("两周一次").
_WEEK_RE = re.compile(
    rf"(?<![每{_CN_NUM_CHARS}0-9])"
    r"(?P<rel>上上个|上上|上个|上|下下个|下下|下个|下|本|这个|这|今)?"
    r"(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"
)

_DAY_OFFSETS = {
    "大前天": -3, "前天": -2, "昨天": -1, "昨日": -1, "今天": 0, "今日": 0,
    "明天": 1, "明日": 1, "后天": 2, "大后天": 3, "今": 0, "昨": -1, "明": 1,
}  # fmt: skip
# 今早 / 明晚 ...: the period the one-character form implies for a following bare hour.
_COMPACT_PERIOD = {"早": "早上", "晨": "早上", "晚": "晚上", "夜": "晚上"}
_REL_OFFSETS = {
    None: 0, "本": 0, "这": 0, "这个": 0, "当": 0, "今": 0,
    "上": -1, "上个": -1, "上上": -2, "上上个": -2,
    "下": 1, "下个": 1, "下下": 2, "下下个": 2,
}  # fmt: skip
_YEAR_OFFSETS = {"今": 0, "去": -1, "明": 1, "前": -2, "后": 2}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}

# "两点建议", "三点意见": 点 counts items here, it is not a clock hour.
_COUNTED_NOUNS = (
    "意见", "建议", "要求", "问题", "原因", "措施", "内容", "看法",
    "体会", "不足", "注意", "说明", "经验", "做法", "理由", "共识",
)  # fmt: skip


@dataclass(frozen=True)
class _Hit:
    end: int
    value: datetime | None  # None: recognised shape but an invalid date/time
    has_time: bool
    period: str | None = None  # see ParsedTime.period


@dataclass(frozen=True)
class _Opts:
    free_text: bool
    prefer: Prefer


# --- building blocks ----------------------------------------------------------


def _add_months(year: int, month: int, delta: int) -> tuple[int, int]:
    idx = year * 12 + (month - 1) + delta
    return idx // 12, idx % 12 + 1


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _clock(m: re.Match[str], implied: str | None) -> tuple[int, int, int] | None:
    """(hour, minute, second) from a _TIME_RE match; hour may be 24 (= next day 00:00)."""
    if m.group("h1") is not None:
        h, mi = int(m.group("h1")), int(m.group("m1"))
        s = int(m.group("s1")) if m.group("s1") else 0
    else:
        hv = _num(m.group("h2"))
        if hv is None:
            return None
        h, s = hv, 0
        if m.group("half"):
            mi = 30
        elif m.group("qtr"):
            mi = 15 if m.group("qtr") == "一刻" else 45
        elif m.group("m2") or m.group("m3"):
            mv = _num(m.group("m2") or m.group("m3"))
            if mv is None:
                return None
            mi = mv
            if m.group("s2"):
                sv = _num(m.group("s2"))
                if sv is None:
                    return None
                s = sv
        else:
            mi = 0
    period = m.group("period") or implied
    h = _apply_period(h, period)
    if not 0 <= h <= 24 or not 0 <= mi <= 59 or not 0 <= s <= 59:
        return None
    if h == 24 and (mi or s):
        return None
    return h, mi, s


def _apply_period(h: int, period: str | None) -> int:
    """12-hour markers to 24h. Hours already > 12 ("下午15点") are left alone."""
    if period is None or h > 12:
        return h
    if period in ("下午", "午后", "傍晚"):
        return h + 12 if 1 <= h <= 11 else h
    if period in ("晚上", "晚间", "晚"):
        # 晚上12点 is the midnight ending that evening, not noon.
        return h + 12 if h != 0 else h
    if period in ("夜里", "夜间", "半夜", "深夜"):
        # Small hours stay small (半夜2点 = 02:00); 夜里9点 = 21:00; 半夜12点 = midnight.
        return h if h <= 5 else h + 12
    if period == "中午":
        return h + 12 if 1 <= h <= 3 else h  # 中午1点 = 13:00, 中午12点 stays 12
    if period == "凌晨":
        return 0 if h == 12 else h
    return h  # 早上 / 上午 / 早 / 清晨 / 早晨: already morning hours


def _ambiguous(m: re.Match[str], implied: str | None) -> bool:
    """'3点' with no 上午/下午 (nor 今晚/明早): 03:00 or 15:00. '15点', '3:30', '12点' are not."""
    if m["h2"] is None or m["period"] is not None or implied is not None:
        return False
    h = _num(m["h2"])
    return h is not None and 1 <= h <= 11


def _place(day: date | None, clock: tuple[int, int, int], now: datetime, prefer: Prefer,
           ambiguous: bool) -> datetime:
    """The moment for a clock time on `day` (None: no date given, so today or a day either
    side). An ambiguous hour goes to the latest 12-hour reading not after `now` for a past
    field, the earliest not before `now` for a future one; if none fits, as typed."""
    tz = now.tzinfo
    typed = _at(day or now.date(), clock, tz)
    if not ambiguous or prefer is None:
        return typed
    h, mi, sec = clock
    days = [day] if day else [now.date() + timedelta(days=k) for k in (-1, 0, 1)]
    candidates = sorted(_at(d, (hh, mi, sec), tz) for d in days for hh in (h, h + 12))
    if prefer == "past":
        behind = [c for c in candidates if c <= now]
        return behind[-1] if behind else typed
    ahead = [c for c in candidates if c >= now]
    return ahead[0] if ahead else typed


def _at(d: date, clock: tuple[int, int, int] | None, tz: tzinfo | None) -> datetime:
    if clock is None:
        return datetime(d.year, d.month, d.day, tzinfo=tz)
    h, mi, s = clock
    if h == 24:
        d, h = d + timedelta(days=1), 0
    return datetime(d.year, d.month, d.day, h, mi, s, tzinfo=tz)


def _shift(now: datetime, delta: timedelta) -> datetime:
    # Via UTC so that "2小时前" is two real hours even across a DST change.
    return (now.astimezone(UTC) + delta).astimezone(now.tzinfo)


# --- date parts ---------------------------------------------------------------


def _match_date(s: str, i: int, now: datetime,
                free_text: bool) -> tuple[int, date | None, str | None] | None:
    """A date at s[i:]: (end, date or None if invalid, period implied by 今晚/明早...)."""
    today = now.date()

    if m := _ISO_RE.match(s, i):
        return m.end(), _make_date(int(m["y"]), int(m["m"]), int(m["d"])), None

    if m := _CN_DATE_RE.match(s, i):
        return m.end(), _cn_date(m, today), None

    if (m := _SHORT_RE.match(s, i)) and _short_date_ends_ok(s, m.end()):
        return m.end(), _make_date(today.year, int(m["m"]), int(m["d"])), None

    if (m := _DOT_RE.match(s, i)) and _dot_date_ok(s, m.end(), free_text):
        day = _make_date(today.year, int(m["m"]), int(m["d"]))
        if day is not None:  # "13.45" is not a malformed date, just not a date
            return m.end(), day, None

    if m := _DAYWORD_RE.match(s, i):
        word = m["w"] or m["c"]
        implied = _COMPACT_PERIOD[m["cp"]] if m["cp"] else None
        return m.end(), today + timedelta(days=_DAY_OFFSETS[word]), implied

    if m := _WEEK_RE.match(s, i):
        wd = m["wd"]
        weekday = int(wd) - 1 if wd.isdigit() else _WEEKDAYS[wd]
        monday = today - timedelta(days=today.weekday())  # weeks start on Monday
        return m.end(), monday + timedelta(weeks=_REL_OFFSETS[m["rel"]], days=weekday), None

    return None


def _short_date_ends_ok(s: str, end: int) -> bool:
    """'11/25' must stand alone: in '1-2杆' or '3/4户' it is a range or a fraction."""
    if end == len(s) or _PERIOD_ONLY_RE.match(s, end) or s[end] in "早晚":
        return True
    return not s[end].isalnum() and s[end] not in "#-/."


def _dot_date_ok(s: str, end: int, free_text: bool) -> bool:
    """'11.28' is a date before a clock time or period ('11.28 15:00', '11.28下午3点'), or as a
    whole answer; never before a unit ('3.5米', '11.28元')."""
    rest = s[end:].lstrip()
    if _TIME_RE.match(rest) or _PERIOD_ONLY_RE.match(rest):
        return True
    return not free_text and not rest


def _cn_date(m: re.Match[str], today: date) -> date | None:
    has_year = m["y"] is not None or m["yrel"] is not None
    if m["m"] is not None:
        month = _num(m["m"])
        if m["y"] is not None:
            year = _num(m["y"])
        elif m["yrel"] is not None:
            year = today.year + _YEAR_OFFSETS[m["yrel"]]
        else:
            year = today.year  # no year: this year; the caller decides about future/past
        if month is None or year is None:
            return None
    else:
        if has_year:
            return None  # "今年下月初" and the like: not worth guessing
        year, month = _add_months(today.year, today.month, _REL_OFFSETS[m["mrel"]])
    pos = m["pos"]
    if pos is None:
        day = _num(m["d"])
        return None if day is None else _make_date(year, month, day)
    if not 1 <= month <= 12 or not 1 <= year <= 9999:
        return None
    if pos == "初":
        return date(year, month, 1)
    if pos == "中":
        return date(year, month, 15)
    return date(year, month, calendar.monthrange(year, month)[1])  # 底 / 末


# --- the matcher --------------------------------------------------------------


def _starts_ok(s: str, i: int) -> bool:
    """A phrase starting with a number must not continue one: '25点' must not yield '5点'."""
    ch = s[i]
    if i == 0 or not (ch in "0123456789" or ch in _CN_NUM_CHARS):
        return True
    prev = s[i - 1]
    if prev in _CN_NUM_CHARS:
        return False
    return not (prev.isascii() and (prev.isalnum() or prev in ".:-/#"))


def _match_at(s: str, i: int, now: datetime, opts: _Opts) -> _Hit | None:
    """The time phrase starting exactly at s[i]. In free text a few readings that are usually
    not clock times ("有一点松动", "两点建议") are rejected."""
    try:
        return _match_at_unchecked(s, i, now, opts)
    except (ValueError, OverflowError):  # e.g. "9999年12月31日" + 24点: past datetime.max
        return None


def _match_at_unchecked(s: str, i: int, now: datetime, opts: _Opts) -> _Hit | None:
    tz = now.tzinfo

    if m := _INSTANT_RE.match(s, i):
        return _Hit(m.end(), now, True)

    if m := _REL_RE.match(s, i):
        return _relative(s, m, now, opts.prefer)

    if d := _match_date(s, i, now, opts.free_text):
        end, day, implied = d
        j = end
        while j < len(s) and (s[j].isspace() or (s[j] == "T" and s[i].isdigit())):
            j += 1  # "2026-11-25 14:30", "2026-11-25T14:30", "昨天 下午3点"
        if tm := _TIME_RE.match(s, j):
            clock = _clock(tm, implied)
            if day is None or clock is None:
                return _Hit(tm.end(), None, True)
            return _Hit(tm.end(), _place(day, clock, now, opts.prefer, _ambiguous(tm, implied)),
                        True)
        period = implied  # 昨晚: the evening of yesterday
        if pm := _PERIOD_ONLY_RE.match(s, end):
            end, period = pm.end(), pm.group(0)  # "昨天下午": no hour, so date and period
        if day is None:
            return _Hit(end, None, False)
        return _Hit(end, _at(day, None, tz), False, period)

    if (tm := _TIME_RE.match(s, i)) and _plausible_bare_time(s, tm, opts.free_text):
        clock = _clock(tm, None)
        if clock is None:
            return _Hit(tm.end(), None, True)
        return _Hit(tm.end(), _place(None, clock, now, opts.prefer, _ambiguous(tm, None)), True)
    return None


def _plausible_bare_time(s: str, tm: re.Match[str], free_text: bool) -> bool:
    """A clock time with no date must not be an everyday use of 点."""
    if tm["h2"] is None or tm["half"] or tm["qtr"] or tm["m2"] or tm["m3"]:
        return True
    if tm["h2"] == "一" and (tm["period"] in ("早", "晚") or (free_text and not tm["period"])):
        return False  # "早一点到", "有一点松动"
    return tm["period"] is not None or not s.startswith(_COUNTED_NOUNS, tm.end())


def _relative(s: str, m: re.Match[str], now: datetime, prefer: Prefer) -> _Hit | None:
    unit, n_text = m["unit"], m["n"]
    sign = -1 if m["dir"] in ("前", "以前", "之前") else 1
    if unit == "月" and not m["ge"]:
        return None  # "3月后" is about March, not three months
    n = 0 if n_text == "半" else _num(n_text)
    halves = (n_text == "半") + bool(m["half"])  # 半小时 / 一个半小时
    if n is None or halves > 1 or (halves and unit not in ("小时", "钟头")):
        return _Hit(m.end(), None, False)  # 半天 / 半个月 / 半分钟: no sensible answer
    if unit in ("小时", "钟头", "分钟"):
        minutes = n if unit == "分钟" else n * 60 + 30 * halves
        return _Hit(m.end(), _shift(now, timedelta(minutes=sign * minutes)), True)

    today = now.date()
    if unit == "月":
        y, mo = _add_months(today.year, today.month, sign * n)
        day = date(y, mo, min(today.day, calendar.monthrange(y, mo)[1]))
    else:
        days = n * 7 if unit in ("周", "星期", "礼拜") else n
        day = today + timedelta(days=sign * days)
    # "3天后下午3点": a clock time may follow a day offset.
    if tm := _TIME_RE.match(s, m.end()):
        clock = _clock(tm, None)
        if clock is None:
            return _Hit(tm.end(), None, True)
        return _Hit(tm.end(), _place(day, clock, now, prefer, _ambiguous(tm, None)), True)
    return _Hit(m.end(), _at(day, None, now.tzinfo), False)


# --- public API ---------------------------------------------------------------


def parse_time(text: str, now: datetime, *, prefer: Prefer = None) -> ParsedTime | None:
    """Whole text (stripped) must be a time phrase; None if not recognised. `prefer` says
    which way the field looks, for a bare hour such as '3点' (see _place)."""
    phrase = text.strip()
    if not phrase:
        return None
    s = phrase.translate(_FULLWIDTH)
    hit = _match_at(s, 0, now, _Opts(free_text=False, prefer=prefer))
    if hit is not None:
        if hit.end == len(s):
            return None if hit.value is None else ParsedTime(hit.value, hit.has_time, phrase,
                                                             hit.period)
        if hit.value is None:
            return None
    return _dateparser_fallback(s, phrase, now)


def clock_time(text: str) -> time | None:
    """A time of day and nothing else: '22:00', '22点', '晚上10点', '早上7点半' -> time.
    No date and no guessing: a bare '7点' is 07:00. None when not one (or 24点)."""
    m = _TIME_RE.fullmatch(text.strip().translate(_FULLWIDTH))
    clock = _clock(m, None) if m else None
    if clock is None or clock[0] == 24:
        return None
    return time(*clock)


def find_time(text: str, now: datetime, *, prefer: Prefer = None) -> ParsedTime | None:
    """Find the first time phrase inside free text such as '巡视 3号台区 昨天下午3点 2号杆拉线松动'.

    `phrase` is the substring as it appears in `text`, so the caller can cut it out. A number
    followed by 号 is a date only after N月 ('11月25号'), never in '3号台区' or '2号杆'.
    """
    s = text.translate(_FULLWIDTH)
    opts = _Opts(free_text=True, prefer=prefer)
    i = 0
    while i < len(s):
        if _starts_ok(s, i) and (hit := _match_at(s, i, now, opts)) is not None:
            if hit.value is not None:
                return ParsedTime(hit.value, hit.has_time, text[i : hit.end], hit.period)
            i = hit.end  # skip all of an invalid phrase ("2月30日下午3点"), not just its head
            continue
        i += 1
    return None


def leading_time(text: str, now: datetime, *, prefer: Prefer = None) -> ParsedTime | None:
    """The time phrase the text starts with ('今天巡视了…', '昨天下午3点走访…', '刚才…').

    A period word alone ('上午去3号台区巡视了') means that part of today: a date, since it
    names no hour. Elsewhere in free text such a word is left alone ('晚上照明不足').
    """
    s = text.translate(_FULLWIDTH)
    i = len(s) - len(s.lstrip())
    if i == len(s):
        return None
    hit = _match_at(s, i, now, _Opts(free_text=True, prefer=prefer))
    if hit is not None:
        if hit.value is None:
            return None
        return ParsedTime(hit.value, hit.has_time, text[i:hit.end], hit.period)
    if m := _PERIOD_ONLY_RE.match(s, i):
        return ParsedTime(_at(now.date(), None, now.tzinfo), False, text[i:m.end()], m.group(0))
    return None


_WEEKDAY_NAMES = {
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def format_time(p: ParsedTime | datetime, locale: str = "zh_CN", has_time: bool = True) -> str:
    """'2026-11-26 周四 15:00' (zh_CN) / '2026-11-26 Thu 15:00' (en); date only: '2026-11-26 周四'.

    For a ParsedTime its own has_time applies (and has_time=False can still force date only).
    """
    if isinstance(p, ParsedTime):
        value, with_time = p.value, p.has_time and has_time
    else:
        value, with_time = p, has_time
    names = _WEEKDAY_NAMES["en" if locale.lower().startswith("en") else "zh"]
    out = f"{value:%Y-%m-%d} {names[value.weekday()]}"
    return f"{out} {value:%H:%M}" if with_time else out


# --- English fallback ---------------------------------------------------------

_HAN_RE = re.compile(r"[\u3400-\u9fff]")
_EN_WORD_RE = re.compile(
    r"\b(?:now|today|tonight|yesterday|tomorrow|ago|noon|midnight|morning|afternoon|evening"
    r"|night|next|last|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday|jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
    r"|january|february|march|april|june|july|august|september|october|november|december"
    r"|days?|weeks?|months?|years?|hours?|minutes?|mins?|am|pm)\b"
    r"|[0-9](?:am|pm|a\.m\.|p\.m\.)",
    re.IGNORECASE,
)
# "25.11.2026"; never a bare "3", nor "13.45": two numbers are month.day (_DOT_RE) or nothing.
_DIGIT_DATE_RE = re.compile(r"[0-9]+(?:[./\- ][0-9]+){2,}")
_EN_CLOCK_RE = re.compile(
    r"[0-9]\s*(?:am|pm|a\.m\.|p\.m\.)|[0-9]:[0-9]"
    r"|\b(?:now|noon|midnight|hours?|minutes?|mins?|seconds?|secs?|o'clock)\b",
    re.IGNORECASE,
)


def _dateparser_fallback(s: str, phrase: str, now: datetime) -> ParsedTime | None:
    # Chinese is fully handled above; letting dateparser at it would turn "3号台区" into a date.
    if _HAN_RE.search(s) or not (_EN_WORD_RE.search(s) or _DIGIT_DATE_RE.fullmatch(s)):
        return None
    import dateparser  # lazy: a slow import that most messages never need

    settings = {
        "RELATIVE_BASE": now.replace(tzinfo=None),
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    try:
        found = dateparser.parse(s, languages=["en"], settings=settings)
    except Exception:  # dateparser raises assorted errors on odd input; a miss is just None
        return None
    if found is None:
        return None
    has_time = bool(_EN_CLOCK_RE.search(s))
    if not has_time:
        found = datetime.combine(found.date(), time())  # "yesterday" is a day, not 10:30 of it
    return ParsedTime(found.replace(tzinfo=now.tzinfo), has_time, phrase)
