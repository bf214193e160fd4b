"""What every record with deadlines shares: the rule set, the calendar, time wording,
the team's leads, and time fields that may or may not lie in the future."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.deadlines import RuleSet, load_ruleset
from bot.forms import kinds
from bot.forms.fields import NO_FORM, Filled, FormView, Invalid
from bot.services import Ctx, Services
from bot.storage.customers import Customer
from bot.storage.db import from_iso, iso
from bot.timeparse import ParsedTime, format_time, parse_time
from bot.workcal import CalendarCache, WorkCalendar


def ruleset(services: Services) -> RuleSet:
    return load_ruleset(getattr(services.settings, "ruleset", "sgcc-2011"))


async def calendar(services: Services) -> WorkCalendar:
    return await WorkCalendar.load(services.db)


async def step_calendar(ctx: Ctx) -> WorkCalendar:
    """The calendar as of the step's read, without a read of its own where that read
    brought it (a save's deadlines: issue #12, the step's read and one write)."""
    db = ctx.services.db
    return await CalendarCache.of(db).at(db, ctx.calendar_version)


def when(ctx: Ctx, dt: datetime | str | None, has_time: bool = True) -> str:
    if dt is None:
        return ctx.t("form.empty")
    moment = from_iso(dt) if isinstance(dt, str) else dt
    return format_time(moment.astimezone(ctx.tz), ctx.locale, has_time=has_time)


def span(ctx: Ctx, delta: timedelta) -> str:
    """'3 小时 20 分' / '2 天 4 小时': how long, roughly, for a phone screen."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return ctx.t("time.days_hours", days=days, hours=hours)
    if hours:
        return ctx.t("time.hours_minutes", hours=hours, minutes=mins)
    return ctx.t("time.minutes", minutes=max(mins, 1))


def remaining(ctx: Ctx, due: datetime | str) -> str:
    """'还剩 3 小时' or '已超期 2 天 1 小时'."""
    moment = from_iso(due) if isinstance(due, str) else due
    left = moment - ctx.now
    if left.total_seconds() >= 0:
        return ctx.t("time.left", span=span(ctx, left))
    return ctx.t("time.overdue", span=span(ctx, left))


def time_value(p: ParsedTime | datetime) -> dict[str, Any]:
    if isinstance(p, datetime):
        return {"at": iso(p), "has_time": True}
    return {"at": iso(p.value), "has_time": p.has_time}


def value_time(value: dict[str, Any]) -> datetime:
    return from_iso(value["at"])


async def parse_future_ok(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    """A time that may lie ahead (an outage start); date-only means the start of that day."""
    p = parse_time(text, ctx.local_now, prefer="future")
    if p is None:
        raise Invalid("form.worklog.time.unparsed", text=text)
    return time_value(p)


async def show_time(value: dict[str, Any], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return when(ctx, value["at"], has_time=value.get("has_time", True))


now_value = kinds.now_value  # the time kind's 现在


# --- the special-customer register behind a 户号 ----------------------------------------
MEDICAL = "medical"  # the register's category key for 医疗设备/生命支持用电


async def on_file(ctx: Ctx, account: str | None) -> Customer | None:
    if not account:
        return None
    return await ctx.services.customers.by_account(ctx.user.team_id, account)


def register_flags(ctx: Ctx, c: Customer) -> list[str]:
    """The register's notes that change how a 户号 is handled: 代缴, a medical household."""
    flags = [ctx.t("measure.proxy_pay")] if c.proxy_pay else []
    if MEDICAL in c.categories:
        flags.append(ctx.t("category.medical"))
    return flags


def register_notes(ctx: Ctx, c: Customer) -> list[str]:
    """The same notes as full lines, for the moment the 户号 is given."""
    lines = [ctx.t("register.proxy_pay")] if c.proxy_pay else []
    if MEDICAL in c.categories:
        lines.append(ctx.t("register.medical", situation=c.situation or ctx.t("form.empty")))
    return lines


async def fill_from_register(value: str | None, ctx: Ctx, form: FormView = NO_FORM) -> Filled:
    """A 户号 on file gives its 户名 (not asked) and the notes that matter; one not on file
    takes back a 户名 an earlier 户号 gave."""
    c = await on_file(ctx, value)
    if c is None:
        return Filled({"customer_name": None})
    note = [ctx.t("register.on_file", name=c.name, area=c.area_name), *register_notes(ctx, c)]
    return Filled({"customer_name": c.name}, "\n".join(note))


async def show_account(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    """The 户号 with what the register says, so the summary shows it too."""
    c = await on_file(ctx, value)
    if c is None:
        return ctx.t("register.account_not_on_file", account=value)
    flags = "".join(" · " + f for f in register_flags(ctx, c))
    return ctx.t("register.account_on_file", account=value, name=c.name, flags=flags)
