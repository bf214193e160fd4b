"""Readers for the numbers people type: 户号, phone numbers, day counts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.textutil import normalize_input

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"(0\d{2,3})-?(\d{7,8})")


def digits_only(text: str) -> str:
    """Full-width digits folded; spaces and dashes people put in long numbers dropped."""
    return re.sub(r"[\s\-－_]", "", normalize_input(text))


def coordinates(lat: float, lon: float) -> bool:
    """A point on Earth: finite, latitude within ±90 and longitude within ±180 degrees."""
    return (math.isfinite(lat) and math.isfinite(lon)
            and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0)


def account_no(text: str, min_digits: int, max_digits: int) -> str | None:
    value = digits_only(text)
    if value.isdigit() and min_digits <= len(value) <= max_digits:
        return value
    return None


def _national(text: str) -> str:
    """The number as typed, without spaces and the country code."""
    return re.sub(r"^(\+?86)-?", "", normalize_input(text).replace(" ", ""))


def mobile(text: str) -> str | None:
    """A mainland mobile number (13800001234, +86 138-0000-1234), its 11 digits."""
    compact = _national(text).replace("-", "")
    return compact if _MOBILE.fullmatch(compact) else None


def phone(text: str) -> str | None:
    """A mainland mobile (13800001234) or a landline with area code (0551-12345678)."""
    found = mobile(text)
    if found is not None:
        return found
    raw = _national(text)
    compact = raw.replace("-", "")
    m = _LANDLINE.fullmatch(raw) or _LANDLINE.fullmatch(compact)
    if m and (len(m.group(1)) + len(m.group(2))) in (10, 11, 12):
        return f"{m.group(1)}-{m.group(2)}"
    return None


_CN_NUM = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
           "九": 9, "十": 10, "半": 0.5}


def visit_days(text: str) -> int | None:
    """'30', '30天', '每30天', '每周', '每月', '两周', '半个月' -> days (1..366)."""
    s = normalize_input(text).replace(" ", "").removeprefix("每").removesuffix("一次")
    fixed = {"天": 1, "日": 1, "周": 7, "星期": 7, "月": 30, "个月": 30, "季度": 90, "年": 365}
    if s in fixed:
        return fixed[s]
    m = re.fullmatch(r"(\d+|[一二两三四五六七八九十半])(个)?(天|日|周|星期|月|季度|年)?", s)
    if not m:
        return None
    n = float(m.group(1)) if m.group(1).isdigit() else float(_CN_NUM[m.group(1)])
    unit = fixed.get(m.group(3) or "天", 1)
    days = round(n * unit)
    return days if 1 <= days <= 366 else None


# --- Chinese numerals: 一千二百五十, 三百五, 一万二, 壹仟 --------------------------------------
# By hand rather than a converter package (cn2an, chinese2digits): money needs exact
# decimals, the colloquial tails (三百五 = 350, 一万二 = 12000) and 块/毛/分 around the
# numerals, which those read differently or not at all; the grammar is this small table.
_CN_DIGIT_VALUE = {"零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "三": 3, "叁": 3,
                   "四": 4, "肆": 4, "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7,
                   "八": 8, "捌": 8, "九": 9, "玖": 9}
_CN_SMALL_UNIT = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}
_CN_BIG_UNIT = {"万": 10_000, "亿": 100_000_000}
_NUMBER_TOKEN = re.compile(r"\d+(?:\.\d+)?|.")


def cn_number(text: str) -> Decimal | None:
    """'一千二百五十' -> 1250, '三百五' -> 350, '一万二' -> 12000, '1.2万' -> 12000, '十五' -> 15;
    Arabic digits may stand for a digit ('3千5'). None when it is not a number."""
    total, section, num = Decimal(0), Decimal(0), None
    last_unit, zero_since_unit = 0, False
    for tok in _NUMBER_TOKEN.findall(text):
        if tok[0].isdigit() or tok in _CN_DIGIT_VALUE:
            if num is not None:
                return None  # '一二' is no number
            num = Decimal(tok) if tok[0].isdigit() else Decimal(_CN_DIGIT_VALUE[tok])
            if tok == "零" or tok == "〇":
                num, zero_since_unit = None, True
        elif tok in _CN_SMALL_UNIT:
            section += (Decimal(1) if num is None else num) * _CN_SMALL_UNIT[tok]
            num, last_unit, zero_since_unit = None, _CN_SMALL_UNIT[tok], False
        elif tok in _CN_BIG_UNIT:
            unit, below = _CN_BIG_UNIT[tok], section + (num or 0)
            # 万 scales only the places since 亿: 一亿二千万 = 1亿 + 2千万.
            total = total + below * unit if tok == "万" else (total + below) * unit
            section, num, last_unit, zero_since_unit = Decimal(0), None, unit, False
        else:
            return None
    if num is not None:
        # A digit right after a unit is the next place down: 三百五 = 350, 一万二 = 12000.
        tail = last_unit // 10 if last_unit >= 10 and not zero_since_unit and num < 10 else 1
        section += num * max(tail, 1)
    return total + section


def cn_money(text: str) -> Decimal | None:
    """Yuan from an amount said in words: '三百元', '三百五十块五' (350.5), '五块三毛二'."""
    m = re.fullmatch(r"(?P<yuan>[^元块圆]*)(?:[元块圆](?P<rest>.*))?", text)
    if m is None or not m["yuan"]:
        return None
    yuan = cn_number(m["yuan"])
    rest = m["rest"] or ""
    small = re.fullmatch(r"(?:(?P<jiao>.)[角毛])?(?P<zero>零)?(?:(?P<fen>.)(?P<unit>分)?)?", rest)
    if yuan is None or small is None:
        return None
    parts = [cn_number(small[k]) if small[k] else Decimal(0) for k in ("jiao", "fen")]
    if None in parts:
        return None
    jiao, fen = (p for p in parts if p is not None)
    if small["fen"] and not (small["jiao"] or small["zero"] or small["unit"]):
        jiao, fen = fen, Decimal(0)  # 块五: the digit after 块 counts 角
    return yuan + jiao / 10 + fen / 100


# --- the customer checks the chat form and the XLSX/CSV import share ----------------------
@dataclass(frozen=True)
class Rejected:
    """Why a typed value was refused: a locale key and its arguments, so the form and the
    importer say the same thing in the same words."""

    key: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def check_account_no(text: str, min_digits: int, max_digits: int) -> str | Rejected:
    value = account_no(text, min_digits, max_digits)
    if value is None:
        return Rejected("customer.account.invalid",
                        {"text": text, "min": min_digits, "max": max_digits})
    return value


def check_phone(text: str) -> str | Rejected:
    value = phone(text)
    return Rejected("customer.phone.invalid", {"text": text}) if value is None else value


def check_visit_days(text: str) -> int | Rejected:
    days = visit_days(text)
    return Rejected("customer.visit_days.invalid", {"text": text}) if days is None else days
