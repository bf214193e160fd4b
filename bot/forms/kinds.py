"""Field kinds with their behaviour: how an answer is read, checked and shown, written once.

A form declares `kinds.phone("phone", "field.phone", "form.customer.phone")` instead of
writing a phone parser again: text with the length limit, a moment (现在 as a quick answer,
not in the future), a choice (paged by the engine when long), photos, a location, money, a
户号, a phone. Each constructor returns a plain `Field`; any `Field` argument (required, hint,
show, fills, when …) may be given to change or add to the kind's behaviour."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot import validators
from bot.forms.fields import NO_FORM, ChoicesFn, Field, FormView, Invalid, Kind
from bot.forms.matching import Choice
from bot.rules import default_hours
from bot.services import Ctx
from bot.storage.db import from_iso, iso
from bot.textutil import normalize_input
from bot.timeparse import ParsedTime, format_time, leading_time, parse_time

# A phone clock a few minutes fast must not make "now" look like the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
NOW = "now"  # the quick answer every time field offers


# --- free text --------------------------------------------------------------------------
async def parse_text(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    limit = ctx.services.settings.max_text_length
    if not text.strip():
        raise Invalid("form.empty_text")
    if len(text) > limit:
        raise Invalid("form.too_long", length=len(text), limit=limit)
    return text


def text(name: str, label: str, prompt: str, **extra: Any) -> Field:
    """Free text, stored as written, within the length limit (settings.max_text_length)."""
    return Field(name, label, prompt, Kind.TEXT, **{"parse": parse_text, **extra})


# --- 户号 and phone ------------------------------------------------------------------------
async def parse_account_no(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    """A well-formed 户号 (digit count from the settings), registered or not."""
    s = ctx.services.settings
    value = validators.check_account_no(text, s.account_no_min_digits, s.account_no_max_digits)
    if isinstance(value, validators.Rejected):
        raise Invalid(value.key, **value.kwargs)
    return value


def account_no(name: str, label: str, prompt: str, **extra: Any) -> Field:
    return Field(name, label, prompt, Kind.TEXT, **{"parse": parse_account_no, **extra})


async def parse_phone(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    value = validators.check_phone(text)
    if isinstance(value, validators.Rejected):
        raise Invalid(value.key, **value.kwargs)
    return value


def phone(name: str, label: str, prompt: str, **extra: Any) -> Field:
    return Field(name, label, prompt, Kind.TEXT, **{"parse": parse_phone, **extra})


# --- money ------------------------------------------------------------------------------
MAX_CENTS = 100_000_000 * 100  # 1 亿元: anything larger is a typo
CN_DIGITS = re.compile(r"[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟]")
_AMOUNT = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")


def parse_amount_text(text: str) -> int:
    """'500', '500.5', '￥500', '500元', '1,200.50', '1.2万', '三百五十块五', '一千二百五十元'
    -> integer cents; raises Invalid."""
    s = normalize_input(text).replace(" ", "").replace("，", ",").replace("．", ".")
    s = re.sub(r"^(人民币|RMB|rmb|CNY|cny|￥|¥|\$)", "", s)
    s = re.sub(r"(块钱|元整|圆整|元|圆|块)$", "", s)
    if s.startswith(("-", "－", "负", "−")):
        raise Invalid("arrears.amount.negative", text=text)
    scale = 1
    if s.endswith("万") and not CN_DIGITS.search(s[:-1]):
        s, scale = s[:-1], 10_000
    if CN_DIGITS.search(s) or re.search(r"\d[元块圆]\d", s):  # 三百五十块五, 3块5
        yuan = validators.cn_money(s)
        if yuan is None:
            raise Invalid("arrears.amount.words", text=text)
        s = f"{yuan:f}"
    m = _AMOUNT.fullmatch(s)
    if m is None:
        raise Invalid("arrears.amount.invalid", text=text)
    whole, frac = m.group(1).replace(",", ""), m.group(2) or ""
    # Exact arithmetic in integers: 1.2万 -> 1200000 cents, never a float.
    digits = int(whole + frac) * scale * 100
    cents, rest = divmod(digits, 10 ** len(frac))
    if rest:
        raise Invalid("arrears.amount.decimals", text=text)
    if cents == 0:
        raise Invalid("arrears.amount.zero", text=text)
    if cents > MAX_CENTS:
        raise Invalid("arrears.amount.too_big", text=text)
    return cents


def money_text(cents: int) -> str:
    return f"￥{cents // 100:,}.{cents % 100:02d}"


async def parse_money(text: str, ctx: Ctx, form: FormView = NO_FORM) -> int:
    return parse_amount_text(text)


async def show_money(value: int, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return money_text(int(value))


def money(name: str, label: str, prompt: str, **extra: Any) -> Field:
    """An amount in yuan, stored as integer cents (never a float)."""
    return Field(name, label, prompt, Kind.TEXT,
                 **{"parse": parse_money, "show": show_money, **extra})


# --- a moment ---------------------------------------------------------------------------
def time_value(p: ParsedTime) -> dict[str, Any]:
    value: dict[str, Any] = {"at": iso(p.value), "has_time": p.has_time}
    if p.has_time and p.period:  # the hour is the part of day's default: say so on the summary
        value["part"] = p.period
    return value


def now_value(ctx: Ctx) -> dict[str, Any]:
    """The 现在 quick answer: this minute."""
    return {"at": iso(ctx.now.replace(second=0, microsecond=0)), "has_time": True}


def with_default_hour(ctx: Ctx, p: ParsedTime) -> ParsedTime:
    """'昨天下午' names a part of the day but no hour: it takes that part's default hour
    (data/day_parts.json) rather than dropping to a bare date; the summary shows it."""
    if p.has_time or p.period is None or (hour := default_hours().get(p.period)) is None:
        return p
    at = p.value.replace(hour=hour.hour, minute=hour.minute)
    now = ctx.local_now.replace(second=0, microsecond=0)
    if at.date() == now.date() and at > now:
        at = now  # '上午巡视了…' said at 8:30 means this morning so far, not a future 9:00
    return replace(p, value=at, has_time=True)


def check_not_future(ctx: Ctx, p: ParsedTime) -> None:
    local_now = ctx.local_now
    if p.has_time:
        future = p.value > local_now + FUTURE_TOLERANCE
    else:
        future = p.value.date() > local_now.date()
    if future:
        raise Invalid("form.worklog.time.future", when=format_time(p, ctx.locale),
                      now=format_time(local_now, ctx.locale))


def _part_of_day_alone(ctx: Ctx, text: str) -> ParsedTime | None:
    """'下午' as the whole answer: that part of today."""
    p = leading_time(text, ctx.local_now, prefer="past")
    return p if p is not None and p.phrase == text.strip() else None


async def parse_past_time(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    """When something was done: not in the future; a part of the day takes its default hour."""
    p = parse_time(text, ctx.local_now, prefer="past") or _part_of_day_alone(ctx, text)
    if p is None:
        raise Invalid("form.worklog.time.unparsed", text=text)
    p = with_default_hour(ctx, p)
    check_not_future(ctx, p)
    return time_value(p)


async def show_time(value: dict[str, Any], ctx: Ctx, form: FormView = NO_FORM) -> str:
    shown = format_time(from_iso(value["at"]).astimezone(ctx.tz), ctx.locale,
                        has_time=value.get("has_time", True))
    if value.get("part"):
        shown += ctx.t("form.worklog.time.default_part", part=value["part"])
    return shown


def time(name: str, label: str, prompt: str, **extra: Any) -> Field:
    """A moment that has happened (现在 offered; the future refused). Give `parse` for other
    rules (a time that may lie ahead, a date only) and `quick=()` to offer no 现在."""
    return Field(name, label, prompt, Kind.TIME,
                 **{"parse": parse_past_time, "show": show_time, "quick": (NOW,), **extra})


# --- choices, photos, location ----------------------------------------------------------
def choice(name: str, label: str, prompt: str, choices: ChoicesFn, **extra: Any) -> Field:
    """One of several, as buttons (paged when there are many); typed text matches any."""
    return Field(name, label, prompt, Kind.CHOICE, choices=choices, **extra)


def named(name: str, label: str, prompt: str, keys: Sequence[str], words: str,
          **extra: Any) -> Field:
    """One of a fixed set of keys, each worded by the locale entry `words.format(key)`
    (e.g. "meter.kind.{}": a request's kind, an applicant's class): as buttons, and so on
    the summary."""
    async def choices(ctx: Ctx) -> list[Choice]:
        return [Choice(k, ctx.t(words.format(k))) for k in keys]

    async def show(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
        return ctx.t(words.format(value))

    return choice(name, label, prompt, choices, **{"show": show, **extra})


def ticks(name: str, label: str, prompt: str, choices: ChoicesFn, **extra: Any) -> Field:
    """Several of several, ticked like the paper form's □."""
    return Field(name, label, prompt, Kind.MULTI, choices=choices, **extra)


async def show_photos(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t("form.photos_count", count=len(value))


def photos(name: str, label: str, prompt: str, **extra: Any) -> Field:
    """Photos, taken at any step of the form (the engine files them here)."""
    return Field(name, label, prompt, Kind.PHOTOS, **{"show": show_photos, **extra})


async def show_location(value: list[float], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return f"{value[0]:.5f}, {value[1]:.5f}"


def location(name: str, label: str, prompt: str, **extra: Any) -> Field:
    """A shared location, taken at any step (checked to be on Earth)."""
    return Field(name, label, prompt, Kind.LOCATION, **{"show": show_location, **extra})
