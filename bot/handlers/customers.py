"""查客户 / /customers: search the team's special customers; cards; reveal; audit history."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback
from bot.handlers.menu import pager
from bot.i18n import catalog
from bot.models import Role
from bot.privacy import mask_phone
from bot.registry import REGISTRY, ReminderKind
from bot.rules import categories, category_query
from bot.services import Ctx
from bot.storage import audit
from bot.storage.customers import ENTITY, REVEAL_LIMIT_SUBJECT, Customer, Query, RevealLimited
from bot.storage.reminders import Reminder
from bot.textutil import normalize_input
from bot.timeparse import format_time
from bot.validators import digits_only

PAGE = 8
_SEARCH = re.compile(r"^(查客户|查找客户|搜索客户|查询客户|找客户|查特殊客户|特殊客户)\s*(.*)$")
_REGISTER = re.compile(r"^(登记特殊客户|新增特殊客户|特殊客户登记|登记客户)\s*(.*)$")
REQUEST_PATTERNS = (_REGISTER, _SEARCH)  # read as requests inside a form too
_DUE_WORDS = ("待走访", "需走访", "该走访", "due")


def search_text(text: str) -> str | None:
    """'查客户 李四' -> '李四'; not a search -> None."""
    m = _SEARCH.match(normalize_input(text))
    return m.group(2).strip() if m else None


def register_text(text: str) -> str | None:
    """'登记特殊客户 3号台区 李四' -> '3号台区 李四'; not a registration -> None."""
    m = _REGISTER.match(normalize_input(text))
    return m.group(2).strip() if m else None


def parse_query(text: str, area_names: list[str]) -> Query:
    s = normalize_input(text)
    if not s:
        return Query("all")
    if s.lower() in _DUE_WORDS:
        return Query("due")
    digits = digits_only(s)
    if digits.isdigit() and len(digits) >= 4:
        return Query("account", digits)
    if s in area_names:
        return Query("area", s)
    labels = {catalog(loc).get(f"category.{c.key}", ""): c.key
              for c in categories() for loc in ("zh_CN", "en")}
    keys = category_query(s, labels)
    if keys:
        return Query("category", ",".join(keys))  # several: customers in any of them
    return Query("text", s)


def _cats(ctx: Ctx, c: Customer) -> str:
    return "、".join(ctx.t(f"category.{k}") for k in c.categories)


async def search(ctx: Ctx, text: str, offset: int = 0) -> Outcome:
    areas = [a.name for a in await ctx.services.people.team_areas(ctx.user.team_id)]
    q = parse_query(text, areas)
    await ctx.services.customers.save_search(ctx.user, text, ctx.now)
    total, found = await ctx.services.customers.search(ctx.user, q, ctx.now, PAGE, offset)
    if total and not found:  # a stale ▶️ after the list shrank: show its last page
        offset = (total - 1) // PAGE * PAGE
        total, found = await ctx.services.customers.search(ctx.user, q, ctx.now, PAGE, offset)
    if total == 0:
        key = ("customers.none_due" if q.kind == "due" else
               "customers.none" if text.strip() else "customers.empty")
        return Outcome().add(ctx.t(key, text=text), [[
            Button(ctx.t("btn.customer_new"), callback(GLOBAL_TOKEN, "cmd", "customer"))]])
    title = ctx.t("customers.title_due" if q.kind == "due" else "customers.title",
                  text=text or ctx.t("customers.all"), total=total, first=offset + 1,
                  last=offset + len(found))
    lines = [title]
    for c in found:
        line = f"• {c.name} · {c.area_name} · {c.account_no} · {_cats(ctx, c)}"
        if q.kind == "due":
            last = (format_time(c.last_visit_at.astimezone(ctx.tz), ctx.locale, has_time=False)
                    if c.last_visit_at else ctx.t("customers.never_visited"))
            line += " · " + ctx.t("customers.last_visit_short", when=last)
        lines.append(line)
    rows = [[Button(f"{c.name} {c.account_no}"[:40], callback(GLOBAL_TOKEN, "cust", c.id))]
            for c in found]
    nav = pager(ctx.t, "custp", offset, PAGE, total)
    if nav:
        rows.append(nav)
    return Outcome().add("\n".join(lines), rows)


async def page(ctx: Ctx, offset: int) -> Outcome:
    last = await ctx.services.customers.last_search(ctx.user)
    return await search(ctx, last or "", offset)


async def card(ctx: Ctx, customer_id: int, revealed: dict[str, str] | None = None) -> Outcome:
    c = await ctx.services.customers.get(ctx.user, customer_id)
    if c is None:
        return Outcome().add(ctx.t("customer.not_found"))
    revealed = revealed or {}
    sep = "：" if ctx.locale == "zh_CN" else ": "

    def line(label: str, value: str) -> str:
        return ctx.t(label) + sep + value

    measures = []
    if c.visit_every_days:
        measures.append(ctx.t("customer.every_days", days=c.visit_every_days))
    if c.notify_first:
        measures.append(ctx.t("measure.notify_first"))
    if c.proxy_pay:
        measures.append(ctx.t("measure.proxy_pay"))
    lines = [ctx.t("customer.card_title", name=c.name, account=c.account_no)]
    if not c.active:
        lines.append(ctx.t("customer.inactive", reason=c.deactivated_reason or ""))
    lines += [line("field.area", c.area_name), line("field.address", c.address),
              line("field.phone", revealed.get("phone") or mask_phone(c.phone)),
              line("field.categories", _cats(ctx, c)),
              line("field.situation", c.situation or ctx.t("form.empty"))]
    if c.emergency_name or c.emergency_phone:
        lines.append(line("field.emergency_name", " ".join(x for x in (
            c.emergency_name, revealed.get("emergency") or mask_phone(c.emergency_phone)) if x)))
    lines.append(line("field.measures", " · ".join(measures) or ctx.t("form.empty")))
    last = (format_time(c.last_visit_at.astimezone(ctx.tz), ctx.locale, has_time=False)
            if c.last_visit_at else ctx.t("customers.never_visited"))
    lines.append(line("field.last_visit", last))
    if c.visit_every_days and c.last_visit_at:
        due = c.last_visit_at + timedelta(days=c.visit_every_days)
        key = "customer.visit_overdue" if due <= ctx.now else "customer.visit_next"
        lines.append(ctx.t(key, when=format_time(due.astimezone(ctx.tz), ctx.locale,
                                                 has_time=False)))
    if c.created_at:
        lines.append(line("field.registered", f"{c.created_by or ''} " + format_time(
            c.created_at.astimezone(ctx.tz), ctx.locale, has_time=False)))
    rows: list[list[Button]] = []
    reveal_row = []
    # A deactivated record is read-only until reactivated: no reveal, no edit.
    if c.active and c.phone and "phone" not in revealed:
        reveal_row.append(Button(ctx.t("btn.reveal_phone"),
                                 callback(GLOBAL_TOKEN, "reveal", c.id)))
    if c.active and c.emergency_phone and "emergency" not in revealed:
        reveal_row.append(Button(ctx.t("btn.reveal_emergency"),
                                 callback(GLOBAL_TOKEN, "revealE", c.id)))
    if reveal_row:
        rows.append(reveal_row)
    if c.active:
        rows.append([Button(ctx.t("btn.edit"), callback(GLOBAL_TOKEN, "custedit", c.id)),
                     Button(ctx.t("btn.record_visit"), callback(GLOBAL_TOKEN, "custvisit", c.id))])
        last_row = [Button(ctx.t("btn.deactivate"), callback(GLOBAL_TOKEN, "custoff", c.id))]
    else:
        last_row = [Button(ctx.t("btn.reactivate"), callback(GLOBAL_TOKEN, "custon", c.id))]
    if ctx.user.role in (Role.LEAD, Role.ADMIN):
        last_row.append(Button(ctx.t("btn.audit"), callback(GLOBAL_TOKEN, "custlog", c.id)))
    rows.append(last_row)
    return Outcome().add("\n".join(lines), rows)


async def reveal(ctx: Ctx, customer_id: int, which: str) -> Outcome:
    """Show the full number to this user once (the card itself stays masked); audited, and
    limited per person (settings reveal_limit / reveal_window_minutes)."""
    c = await ctx.services.customers.get(ctx.user, customer_id)
    if c is None:
        return Outcome().add(ctx.t("customer.not_found"))
    if not c.active:  # a forged or old button: the record is read-only until reactivated
        out = await card(ctx, customer_id)
        out.toast = ctx.t("button.stale")
        out.replies.insert(0, Reply(ctx.t("customer.readonly")))
        return out
    s = ctx.services.settings
    try:
        phone = await ctx.services.customers.reveal_phone(
            ctx.user, customer_id, which, ctx.now, limit=s.reveal_limit,
            window=timedelta(minutes=s.reveal_window_minutes))
    except RevealLimited as exc:
        out = await card(ctx, customer_id)
        out.toast = ctx.t("customer.reveal_limited_toast")
        out.replies.insert(0, Reply(ctx.t("customer.reveal_limited", limit=exc.limit,
                                          minutes=s.reveal_window_minutes)))
        return out
    if phone is None:
        return Outcome().add(ctx.t("customer.not_found"))
    if not phone:
        out = await card(ctx, customer_id)
        out.toast = ctx.t("customer.no_number")
        return out
    out = await card(ctx, customer_id, {which: phone})
    out.toast = ctx.t("customer.revealed_toast")
    return out


async def _render_reveal_limit(ctx: Ctx, r: Reminder) -> Reply:
    """To a lead: a teammate hit the reveal limit (once per window; see reveal_phone)."""
    return Reply(ctx.t("customer.reveal_limit_lead", name=r.detail.get("name", ""),
                       count=r.detail.get("count", 0), minutes=r.detail.get("minutes", 0)))


REGISTRY.reminder_kind(REVEAL_LIMIT_SUBJECT, ReminderKind(render=_render_reveal_limit))


async def reactivate(ctx: Ctx, customer_id: int) -> Outcome:
    if not await ctx.services.customers.set_active(ctx.user, customer_id, True, ctx.now):
        return Outcome().add(ctx.t("customer.not_found"))
    return await card(ctx, customer_id)


async def history(ctx: Ctx, customer_id: int) -> Outcome:
    if ctx.user.role not in (Role.LEAD, Role.ADMIN):
        return Outcome().add(ctx.t("customer.audit_leads_only"))
    c = await ctx.services.customers.get(ctx.user, customer_id)
    if c is None:
        return Outcome().add(ctx.t("customer.not_found"))
    entries = await audit.history(ctx.services.db, ENTITY, customer_id)
    area_names = {a.id: a.name for a in await ctx.services.people.team_areas(c.team_id)}
    lines = [ctx.t("customer.audit_title", name=c.name, account=c.account_no)]
    for e in entries:
        when = format_time(e.at.astimezone(ctx.tz), ctx.locale)
        detail = ""
        if e.action == "edit":
            detail = "；".join(
                f"{ctx.t(_FIELD_LABEL.get(k, 'field.' + k))}: "
                f"{_show(ctx, old, k, area_names)} → {_show(ctx, new, k, area_names)}"
                for k, (old, new) in e.detail.items())
        elif e.action == "deactivate":
            detail = e.detail.get("reason", "")
        elif e.action == "reveal":
            detail = ctx.t("field." + ("emergency_phone" if e.detail.get("field") ==
                                       "emergency_phone" else "phone"))
        elif e.action == "import":
            detail = e.detail.get("file", "")
        lines.append(f"• {when} {e.actor} {ctx.t('audit.' + e.action)} {detail}".rstrip())
    return Outcome().add("\n".join(lines), [[Button(ctx.t("btn.customer_card"),
                                                    callback(GLOBAL_TOKEN, "cust", c.id))]])


_FIELD_LABEL = {"name": "field.customer_name", "area_id": "field.area",
                "notify_first": "measure.notify_first", "proxy_pay": "measure.proxy_pay"}


def _show(ctx: Ctx, value: object, key: str, area_names: dict[int, str]) -> str:
    """An audited value as people read it: names and labels, never ids or keys."""
    if key in ("phone", "emergency_phone") and isinstance(value, str):
        return mask_phone(value)  # even the audit view never shows a number unmasked
    if key == "area_id" and isinstance(value, int):
        return area_names.get(value, "—")
    if key == "categories" and isinstance(value, list):
        return "、".join(ctx.t(f"category.{v}") for v in value) or "—"
    if isinstance(value, bool):
        return ctx.t("common.yes" if value else "common.no")
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return "—" if value in (None, "") else str(value)
