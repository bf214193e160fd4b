"""Readers for the numbers people type: 户号, phone numbers, day counts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
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


def phone(text: str) -> str | None:
    """A mainland mobile (13800001234) or a landline with area code (0551-12345678)."""
    raw = normalize_input(text).replace(" ", "")
    raw = re.sub(r"^(\+?86)-?", "", raw)
    compact = raw.replace("-", "")
    if _MOBILE.fullmatch(compact):
        return compact
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
