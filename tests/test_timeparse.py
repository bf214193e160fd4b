"""Table-driven tests for bot.timeparse (Chinese time phrases, dateparser fallback)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.timeparse import ParsedTime, find_time, format_time, parse_time

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 27, 10, 30, tzinfo=TZ)  # a Friday
SUNDAY = datetime(2026, 11, 29, 16, 0, tzinfo=TZ)
YEAR_END = datetime(2026, 12, 31, 23, 50, tzinfo=TZ)  # a Thursday


def dt(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


# (input, expected value, has_time), all relative to NOW.
CASES: list[tuple[str, datetime, bool]] = [
    # relative days and "now"
    ("今天", dt(2026, 11, 27), False),
    ("昨天", dt(2026, 11, 26), False),
    ("前天", dt(2026, 11, 25), False),
    ("明天", dt(2026, 11, 28), False),
    ("后天", dt(2026, 11, 29), False),
    ("大前天", dt(2026, 11, 24), False),
    ("刚才", NOW, True),
    ("刚刚", NOW, True),
    ("现在", NOW, True),
    # clock times, with and without a day
    ("昨天下午3点", dt(2026, 11, 26, 15), True),
    ("今天上午9点半", dt(2026, 11, 27, 9, 30), True),
    ("下午3点", dt(2026, 11, 27, 15), True),
    ("明早8点", dt(2026, 11, 28, 8), True),
    ("今晚8点", dt(2026, 11, 27, 20), True),
    ("晚上8点", dt(2026, 11, 27, 20), True),
    ("傍晚6点", dt(2026, 11, 27, 18), True),
    ("中午12点", dt(2026, 11, 27, 12), True),
    ("中午1点", dt(2026, 11, 27, 13), True),
    ("凌晨2点", dt(2026, 11, 27, 2), True),
    ("早上7点15分", dt(2026, 11, 27, 7, 15), True),
    ("下午3:30", dt(2026, 11, 27, 15, 30), True),
    ("15:30", dt(2026, 11, 27, 15, 30), True),
    ("3点", dt(2026, 11, 27, 3), True),  # no marker: not guessed to be 15:00
    ("下午15点", dt(2026, 11, 27, 15), True),
    ("三点半", dt(2026, 11, 27, 3, 30), True),
    ("下午三点一刻", dt(2026, 11, 27, 15, 15), True),
    ("两点三刻", dt(2026, 11, 27, 2, 45), True),
    ("十一点二十三分", dt(2026, 11, 27, 11, 23), True),
    ("8点整", dt(2026, 11, 27, 8), True),
    ("下午3点15", dt(2026, 11, 27, 15, 15), True),
    ("15时30分", dt(2026, 11, 27, 15, 30), True),
    ("今晚12点", dt(2026, 11, 28, 0), True),  # the midnight that ends tonight
    ("昨天 下午3点", dt(2026, 11, 26, 15), True),
    ("昨天下午", dt(2026, 11, 26), False),  # period but no hour: date only
    ("明天 9:00", dt(2026, 11, 28, 9), True),
    # weeks (Monday-start; NOW is Friday 2026-11-27)
    ("下周一", dt(2026, 11, 30), False),
    ("本周五", dt(2026, 11, 27), False),
    ("这周五", dt(2026, 11, 27), False),
    ("周三", dt(2026, 11, 25), False),
    ("星期天", dt(2026, 11, 29), False),
    ("礼拜日", dt(2026, 11, 29), False),
    ("上周五", dt(2026, 11, 20), False),
    ("下下周一", dt(2026, 12, 7), False),
    ("下周一上午9点", dt(2026, 11, 30, 9), True),
    # offsets
    ("3天后", dt(2026, 11, 30), False),
    ("两天后", dt(2026, 11, 29), False),
    ("三天前", dt(2026, 11, 24), False),
    ("十天后", dt(2026, 12, 7), False),
    ("两周后", dt(2026, 12, 11), False),
    ("3天后下午3点", dt(2026, 11, 30, 15), True),
    ("2小时前", dt(2026, 11, 27, 8, 30), True),
    ("两个小时后", dt(2026, 11, 27, 12, 30), True),
    ("半小时前", dt(2026, 11, 27, 10), True),
    ("一个半小时前", dt(2026, 11, 27, 9), True),
    ("30分钟前", dt(2026, 11, 27, 10), True),
    ("两个月后", dt(2027, 1, 27), False),
    # month and day
    ("11月25日", dt(2026, 11, 25), False),
    ("11月25号", dt(2026, 11, 25), False),
    ("十一月二十五日", dt(2026, 11, 25), False),
    ("11月25日下午3点", dt(2026, 11, 25, 15), True),
    ("1月5日", dt(2026, 1, 5), False),  # no year: this year, never rolled
    ("月底", dt(2026, 11, 30), False),
    ("下月初", dt(2026, 12, 1), False),
    ("上个月底", dt(2026, 10, 31), False),
    ("下月5号", dt(2026, 12, 5), False),
    ("11月底", dt(2026, 11, 30), False),
    # full dates
    ("2026-11-25 14:30", dt(2026, 11, 25, 14, 30), True),
    ("2026-11-25T14:30", dt(2026, 11, 25, 14, 30), True),
    ("2026-11-25", dt(2026, 11, 25), False),
    ("2026/11/25", dt(2026, 11, 25), False),
    ("2026年11月25日", dt(2026, 11, 25), False),
    ("2026年11月25日 14:30", dt(2026, 11, 25, 14, 30), True),
    ("二〇二五年十一月二十五日", dt(2025, 11, 25), False),
    ("去年11月25日", dt(2025, 11, 25), False),
    ("11-25", dt(2026, 11, 25), False),
    ("11/25", dt(2026, 11, 25), False),
    # month.day, as written on forms
    ("11.28", dt(2026, 11, 28), False),
    ("11.5", dt(2026, 11, 5), False),
    ("1.05", dt(2026, 1, 5), False),
    ("11.28 15:00", dt(2026, 11, 28, 15), True),
    ("11.28下午3点", dt(2026, 11, 28, 15), True),
    ("11.28 下午3点半", dt(2026, 11, 28, 15, 30), True),
    ("１１.２８", dt(2026, 11, 28), False),
    ("11.28号", dt(2026, 11, 28), False),
    ("11.28日 8:30", dt(2026, 11, 28, 8, 30), True),
    # full-width digits, colon and spaces
    ("１１月２５日", dt(2026, 11, 25), False),
    ("下午３：３０", dt(2026, 11, 27, 15, 30), True),
    ("  昨天下午3点 ", dt(2026, 11, 26, 15), True),
    # English, via dateparser
    ("yesterday 3pm", dt(2026, 11, 26, 15), True),
    ("now", NOW, True),
    ("yesterday", dt(2026, 11, 26), False),
]


@pytest.mark.parametrize(("text", "expected", "has_time"), CASES)
def test_parse_time(text: str, expected: datetime, has_time: bool) -> None:
    got = parse_time(text, NOW)
    assert got is not None, text
    assert got.value == expected
    assert got.value.tzinfo is TZ  # same tzinfo object as `now`, not just an equal offset
    assert got.has_time is has_time
    assert got.phrase == text.strip()


# (now, input, expected value, has_time): week, month and year edges.
EDGE_CASES: list[tuple[datetime, str, datetime, bool]] = [
    (SUNDAY, "本周五", dt(2026, 11, 27), False),  # Sunday still belongs to the Monday-start week
    (SUNDAY, "周日", dt(2026, 11, 29), False),
    (SUNDAY, "下周一", dt(2026, 11, 30), False),
    (SUNDAY, "上周日", dt(2026, 11, 22), False),
    (SUNDAY, "今天", dt(2026, 11, 29), False),
    (YEAR_END, "明天", dt(2027, 1, 1), False),
    (YEAR_END, "下月初", dt(2027, 1, 1), False),
    (YEAR_END, "月底", dt(2026, 12, 31), False),
    (YEAR_END, "上月底", dt(2026, 11, 30), False),
    (YEAR_END, "3天后", dt(2027, 1, 3), False),
    (YEAR_END, "下周一", dt(2027, 1, 4), False),
    (YEAR_END, "30分钟后", dt(2027, 1, 1, 0, 20), True),
    (YEAR_END, "今晚12点", dt(2027, 1, 1, 0), True),
    (YEAR_END, "1月5日", dt(2026, 1, 5), False),  # not rolled into 2027
    (YEAR_END, "两个月后", dt(2027, 2, 28), False),  # day clamped to the shorter month
    (datetime(2028, 2, 10, 9, 0, tzinfo=TZ), "月底", dt(2028, 2, 29), False),  # leap year
]


@pytest.mark.parametrize(("now", "text", "expected", "has_time"), EDGE_CASES)
def test_parse_time_edges(now: datetime, text: str, expected: datetime, has_time: bool) -> None:
    got = parse_time(text, now)
    assert got is not None, text
    assert (got.value, got.has_time) == (expected, has_time)


def test_result_keeps_the_tz_of_now() -> None:
    now_utc = NOW.astimezone(UTC)  # 02:30 UTC
    got = parse_time("下午3点", now_utc)
    assert got is not None
    assert got.value == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    assert got.value.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "2月30日",
        "25点",
        "下午3点61分",
        "2026-13-01",
        "2026-02-29",  # 2026 is not a leap year
        "13/45",
        "13.45",  # not a month.day, and no reason to guess a clock time
        "11.32",
        "3.5米",
        "11.28元",
        "本周",
        "周八",
        "3",
        "hello",
        "3号台区",
        "2号杆拉线松动",
        "巡视 3号台区 昨天下午3点",  # parse_time wants the whole text to be a phrase
        "早一点",
        "半天前",
    ],
)
def test_parse_time_rejects(text: str) -> None:
    assert parse_time(text, NOW) is None


@pytest.mark.parametrize(
    ("text", "phrase", "expected", "has_time"),
    [
        ("巡视 3号台区 昨天下午3点 2号杆拉线松动", "昨天下午3点", dt(2026, 11, 26, 15), True),
        ("记录 走访 5号台区 昨天下午3点", "昨天下午3点", dt(2026, 11, 26, 15), True),
        ("3号台区11月25号巡视", "11月25号", dt(2026, 11, 25), False),
        ("１１月２５号 下午３点 巡视", "１１月２５号 下午３点", dt(2026, 11, 25, 15), True),
        ("台区 明天 9:00 停电", "明天 9:00", dt(2026, 11, 28, 9), True),
        ("3点2号杆", "3点", dt(2026, 11, 27, 3), True),
        ("1-2杆 11/25 检查", "11/25", dt(2026, 11, 25), False),  # 1-2 is a range of poles
        ("2月30日 巡视 昨天", "昨天", dt(2026, 11, 26), False),  # invalid date skipped whole
        ("刚才 巡视完", "刚才", NOW, True),
        ("巡视 3号台区 11.28下午3点 拉线松动", "11.28下午3点", dt(2026, 11, 28, 15), True),
        ("11.28 15:00 巡视", "11.28 15:00", dt(2026, 11, 28, 15), True),
    ],
)
def test_find_time(text: str, phrase: str, expected: datetime, has_time: bool) -> None:
    got = find_time(text, NOW)
    assert got == ParsedTime(expected, has_time, phrase)
    assert phrase in text  # the caller cuts the phrase out of the original text


@pytest.mark.parametrize(
    "text",
    [
        "巡视 3号台区 2号杆拉线松动",
        "巡视发现在2号杆有一点松动",  # 发现 + 在, and 一点 = "a bit"
        "提了两点建议",
        "每周一次巡视",
        "2月30日下午3点 巡视",
        "0.5小时前",  # never read as "5小时前"
        "线损率 3.25 偏高",  # a bare number pair in free text is a reading, not a date
        "电费11.28元",
        "拉线长3.5米",
        "巡视 3.5号杆",
        "yesterday 3pm",  # English only via parse_time
        "",
    ],
)
def test_find_time_none(text: str) -> None:
    assert find_time(text, NOW) is None


AFTERNOON = datetime(2026, 11, 27, 16, 20, tzinfo=TZ)


# (input, prefer, expected) at 16:20: an hour without 上午/下午 takes the latest 12-hour
# reading not in the future for a past field, the earliest not in the past for a future one.
@pytest.mark.parametrize(("text", "prefer", "expected"), [
    ("3点", "past", dt(2026, 11, 27, 15)),
    ("9点", "past", dt(2026, 11, 27, 9)),
    ("5点", "past", dt(2026, 11, 27, 5)),
    ("三点半", "past", dt(2026, 11, 27, 15, 30)),
    ("4点", "past", dt(2026, 11, 27, 16)),
    ("昨天3点", "past", dt(2026, 11, 26, 15)),  # a date keeps the day, the hour is resolved
    ("今天5点", "past", dt(2026, 11, 27, 5)),
    ("5点", "future", dt(2026, 11, 27, 17)),
    ("9点", "future", dt(2026, 11, 27, 21)),
    ("3点", "future", dt(2026, 11, 28, 3)),
    ("明天8点", "future", dt(2026, 11, 28, 8)),
    ("下午3点", "past", dt(2026, 11, 27, 15)),  # a marker is never overridden
    ("早上9点", "future", dt(2026, 11, 27, 9)),
    ("凌晨3点", "past", dt(2026, 11, 27, 3)),
    ("12点", "past", dt(2026, 11, 27, 12)),  # not ambiguous in the field
    ("15:00", "future", dt(2026, 11, 27, 15)),  # 24-hour digits are taken as written
    ("3点", None, dt(2026, 11, 27, 3)),  # no direction: as typed
])
def test_bare_hour_follows_the_field_direction(text: str, prefer: str | None,
                                               expected: datetime) -> None:
    got = parse_time(text, AFTERNOON, prefer=prefer)  # type: ignore[arg-type]
    assert got is not None and got.value == expected


def test_bare_hour_before_dawn_is_yesterday_afternoon_for_a_past_field() -> None:
    got = find_time("巡视 3号台区 3点 发现", datetime(2026, 11, 27, 1, 10, tzinfo=TZ),
                    prefer="past")
    assert got is not None and got.value == dt(2026, 11, 26, 15)


YESTERDAY_3PM = ParsedTime(dt(2026, 11, 26, 15), True, "昨天下午3点")


@pytest.mark.parametrize(
    ("value", "locale", "has_time", "expected"),
    [
        (YESTERDAY_3PM, "zh_CN", True, "2026-11-26 周四 15:00"),
        (YESTERDAY_3PM, "en", True, "2026-11-26 Thu 15:00"),
        (YESTERDAY_3PM, "zh_CN", False, "2026-11-26 周四"),  # has_time=False forces date only
        (ParsedTime(dt(2026, 11, 26), False, "昨天"), "zh_CN", True, "2026-11-26 周四"),
        (ParsedTime(dt(2026, 11, 29), False, "周日"), "en", True, "2026-11-29 Sun"),
        (dt(2026, 11, 26, 15), "zh_CN", True, "2026-11-26 周四 15:00"),
        (dt(2026, 11, 26, 15), "zh_CN", False, "2026-11-26 周四"),
        (dt(2026, 11, 30, 8, 5), "en", True, "2026-11-30 Mon 08:05"),
    ],
)
def test_format_time(
    value: ParsedTime | datetime, locale: str, has_time: bool, expected: str
) -> None:
    assert format_time(value, locale, has_time) == expected


def test_format_time_defaults_to_chinese() -> None:
    assert format_time(dt(2026, 11, 27, 10, 30)) == "2026-11-27 周五 10:30"
