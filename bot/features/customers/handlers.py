"""查客户 / /customers: search the team's special customers; cards; reveal; audit history."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from bot.deadlines import is_overdue
from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback
from bot.features.customers.form import CUSTOMER, DEACTIVATE, switch_refusal
from bot.features.customers.form import open_edit as open_customer_edit
from bot.features.customers.form import prefill as customer_prefill
from bot.features.customers.reveal import reveal_number
from bot.features.customers.visits import VISITS_REPORT
from bot.handlers.menu import pager
from bot.i18n import catalog
from bot.models import Role
from bot.privacy import mask_phone
from bot.router import ReminderKind, Router, TodoItem, TodoRead, by_id, one_id, opens
from bot.rules import categories, category_query
from bot.services import Ctx
from bot.storage import audit
from bot.storage.batch import Batch
from bot.storage.customers import (
    ENTITY,
    REVEAL_LIMIT_SUBJECT,
    VISIT_SUBJECT,
    Customer,
    Customers,
    Query,
    visits_due_of,
    visits_due_reads,
)
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import Reminder
from bot.textutil import after_keyword, normalize_input
from bot.timeparse import format_time
from bot.validators import digits_only

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.storage.conversations import Draft

router = Router("customers")
VISIT_FORM = "worklog"  # the worklog feature's form a 记录走访 opens
PAGE = 8
_SEARCH = re.compile(r"^(查客户|查找客户|搜索客户|查询客户|找客户|查特殊客户|特殊客户)\s*(.*)$")
_REGISTER = re.compile(r"^(登记特殊客户|新增特殊客户|特殊客户登记|登记客户)\s*(.*)$")
REQUEST_PATTERNS = (_REGISTER, _SEARCH)  # read as requests inside a form too
router.request_patterns += REQUEST_PATTERNS
_DUE_WORDS = ("待走访", "需走访", "该走访", "due")
_INACTIVE_WORDS = ("已停用", "停用", "停用的", "inactive", "deactivated")
INACTIVE_SHOWN = 3  # deactivated matches listed under a search's first page


def search_text(text: str) -> str | None:
    """'查客户 李四' -> '李四'; not a search -> None."""
    m = _SEARCH.match(normalize_input(text))
    return after_keyword(m.group(2)).strip() if m else None


def register_text(text: str) -> str | None:
    """'登记特殊客户 3号台区 李四' -> '3号台区 李四'; not a registration -> None."""
    m = _REGISTER.match(normalize_input(text))
    return after_keyword(m.group(2)).strip() if m else None


def parse_query(text: str, area_names: list[str]) -> Query:
    s = normalize_input(text)
    if not s:
        return Query("all")
    if s.lower() in _DUE_WORDS:
        return Query("due")
    if s.lower() in _INACTIVE_WORDS:
        return Query("inactive")
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


def _line(ctx: Ctx, c: Customer, due: bool) -> str:
    line = f"• {c.name} · {c.area_name} · {c.account_no} · {_cats(ctx, c)}"
    if due:
        last = (format_time(c.last_visit_at.astimezone(ctx.tz), ctx.locale, has_time=False)
                if c.last_visit_at else ctx.t("customers.never_visited"))
        line += " · " + ctx.t("customers.last_visit_short", when=last)
    if not c.active:
        line += " · " + ctx.t("customers.inactive_mark")
    return line


def _open_button(c: Customer) -> list[Button]:
    return [Button(f"{c.name} {c.account_no}"[:40], router.callback("cust", c.id))]


def _search_reads(ctx: Ctx, q: Query, offset: int) -> list[Read]:
    """A page of the matches, and under the first page the deactivated records matching it
    (marked 已停用), so a record stopped by mistake is found, not mistaken for one never
    registered: read together (issue #12)."""
    customers = ctx.services.customers
    reads = customers.search_reads(ctx.user, q, ctx.now, PAGE, offset)
    if not (q.kind in ("due", "inactive") or offset):
        reads += customers.search_reads(ctx.user, q, ctx.now, INACTIVE_SHOWN, 0, active=False)
    return reads


async def _searched(ctx: Ctx, q: Query, offset: int, saving: Read | None = None
                    ) -> tuple[int, list[Customer], int, list[Customer]]:
    """(total, page, deactivated total, the deactivated shown) of `_search_reads`; `saving`:
    the search saved in the same round trip (off the event loop, the write lock let go
    before the reads scan: Backend.fetch_many_after)."""
    db, reads = ctx.services.db, _search_reads(ctx, q, offset)
    rows = await (db.fetch_many_after(saving, reads) if saving else db.fetch_many(reads))
    customers = ctx.services.customers
    return (*customers.search_of(rows[:2]),
            *(customers.search_of(rows[2:]) if rows[2:] else (0, [])))


def _title_key(q: Query) -> str:
    return {"due": "customers.title_due", "inactive": "customers.title_inactive"}.get(
        q.kind, "customers.title")


async def search(ctx: Ctx, text: str, offset: int = 0, paging: bool = False) -> Outcome:
    """`paging`: a ▶️ of the search saved last (`page`), saved already."""
    q = parse_query(text, [a.name for a in await ctx.team_areas()])
    # What ◀️ ▶️ page through, even of a search that finds nothing: saved with its reads.
    saving = None if paging else Customers.search_saved(ctx.user, text, ctx.now)
    total, found, stopped_total, stopped = await _searched(ctx, q, offset, saving)
    if total and not found:  # a stale ▶️ after the list shrank: show its last page
        offset = (total - 1) // PAGE * PAGE
        total, found, stopped_total, stopped = await _searched(ctx, q, offset)
    if total == 0 and not stopped:
        key = ("customers.none_due" if q.kind == "due" else
               "customers.none_inactive" if q.kind == "inactive" else
               "customers.none" if text.strip() else "customers.empty")
        return Outcome().add(ctx.t(key, text=text), [[
            Button(ctx.t("btn.customer_new"), callback(GLOBAL_TOKEN, "cmd", "customer"))]])
    # One hit: its card at once, not a list of one to tap (the 已停用 listing stays a list).
    if total == 1 and not stopped and q.kind != "inactive":
        return card_of(ctx, found[0])
    lines = []
    if total:
        lines.append(ctx.t(_title_key(q), text=text or ctx.t("customers.all"), total=total,
                           first=offset + 1, last=offset + len(found)))
    lines += [_line(ctx, c, q.kind == "due") for c in found]
    if stopped:
        lines.append(ctx.t("customers.inactive_also" if total else "customers.inactive_only",
                           count=stopped_total, text=text))
        lines += [_line(ctx, c, False) for c in stopped]
        if stopped_total > len(stopped):
            lines.append(ctx.t("customers.inactive_more"))
    rows = [_open_button(c) for c in (*found, *stopped)]
    nav = pager(ctx.t, router.action("custp"), offset, PAGE, total)
    if nav:
        rows.append(nav)
    return Outcome().add("\n".join(lines), rows)


async def page(ctx: Ctx, offset: int) -> Outcome:
    last = ctx.last_search  # the step's read brought it (None: not read)
    if last is None:
        last = await ctx.services.customers.last_search(ctx.user)
    return await search(ctx, last or "", offset, paging=True)


async def card(ctx: Ctx, customer_id: int, revealed: dict[str, str] | None = None) -> Outcome:
    c = await ctx.services.customers.get(ctx.user, customer_id)
    if c is None:
        return Outcome().add(ctx.t("customer.not_found"))
    return card_of(ctx, c, revealed)


def card_of(ctx: Ctx, c: Customer, revealed: dict[str, str] | None = None) -> Outcome:
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
    due = c.visit_due
    if due is not None and c.last_visit_at:
        key = "customer.visit_overdue" if is_overdue(due, ctx.now) else "customer.visit_next"
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
                                 router.callback("reveal", c.id)))
    if c.active and c.emergency_phone and "emergency" not in revealed:
        reveal_row.append(Button(ctx.t("btn.reveal_emergency"),
                                 router.callback("revealE", c.id)))
    if reveal_row:
        rows.append(reveal_row)
    if c.active:
        rows.append([Button(ctx.t("btn.edit"), router.callback("custedit", c.id)),
                     Button(ctx.t("btn.record_visit"), router.callback("custvisit", c.id))])
        last_row = [Button(ctx.t("btn.deactivate"), router.callback("custoff", c.id))]
    else:
        last_row = [Button(ctx.t("btn.reactivate"), router.callback("custon", c.id))]
    if ctx.user.role in (Role.LEAD, Role.ADMIN):
        last_row.append(Button(ctx.t("btn.audit"), router.callback("custlog", c.id)))
    rows.append(last_row)
    return Outcome().add("\n".join(lines), rows)


async def reveal(ctx: Ctx, customer_id: int, which: str) -> Outcome:
    """Show the full number to this user once (the card itself stays masked)."""
    c = await ctx.services.customers.get(ctx.user, customer_id)
    if c is None:
        return Outcome().add(ctx.t("customer.not_found"))
    if not c.active:  # a forged or old button: the record is read-only until reactivated
        out = await card(ctx, customer_id)
        out.toast = ctx.t("button.stale")
        out.replies.insert(0, Reply(ctx.t("customer.readonly")))
        return out
    got = await reveal_number(ctx, customer_id, which, known=c)
    if got.phone is None and got.refusal is None:
        return Outcome().add(ctx.t("customer.not_found"))
    out = card_of(ctx, c, {which: got.phone} if got.phone else None)
    out.toast = got.toast
    if got.refusal:
        out.replies.insert(0, Reply(got.refusal))
    return out


async def _render_reveal_limit(ctx: Ctx, r: Reminder) -> Reply:
    """To a lead: a teammate hit the reveal limit (once per window; see reveal_phone)."""
    return Reply(ctx.t("customer.reveal_limit_lead", name=r.detail.get("name", ""),
                       count=r.detail.get("count", 0), minutes=r.detail.get("minutes", 0)))


router.reminder_kind(REVEAL_LIMIT_SUBJECT, ReminderKind(render=_render_reveal_limit))


def _end_of_day(ctx: Ctx) -> datetime:
    return ctx.local_now.replace(hour=23, minute=59, second=59)


def visits_reads(ctx: Ctx) -> list[Read]:
    return visits_due_reads(ctx.user, _end_of_day(ctx))


async def visits_todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    """Special customers due for a visit by the end of today (their 走访周期): a manager's
    own areas, the whole team on a lead's list. Recording the visit moves the due date on."""
    items = []
    for c, owners in visits_due_of(*rows):
        due = c.visit_due
        assert due is not None  # visits_due only returns customers with a cycle
        last = (ctx.t("customer.todo_last", when=format_time(
                    c.last_visit_at.astimezone(ctx.tz), ctx.locale, has_time=False))
                if c.last_visit_at else ctx.t("customers.never_visited"))
        items.append(TodoItem(
            due=due.astimezone(ctx.tz), overdue=is_overdue(due, ctx.now), owner=owners,
            text=ctx.t("customer.todo_visit", name=c.name, area=c.area_name,
                       days=c.visit_every_days, last=last),
            button=Button(ctx.t("customer.todo_button", name=c.name)[:40],
                          router.callback("cust", c.id)),
            digest_key=visit_digest_key(c.id, due)))
    return items


def visit_digest_key(customer_id: int, due: datetime) -> str:
    """One cycle of one customer's visits: the morning digest names it once (the due date
    moves on when the visit is recorded, and a new cycle is named again)."""
    return f"{VISIT_SUBJECT}:{customer_id}:{iso(due)}"


async def _no_visit_reminder(ctx: Ctx, r: Reminder) -> Reply | None:
    return None  # visits due are listed in /todo and the digest, never pushed one by one


router.reminder_kind(VISIT_SUBJECT, ReminderKind(render=_no_visit_reminder,
                                                 todo=TodoRead(visits_reads, visits_todo)))
router.report_section(VISITS_REPORT)


async def reactivate(ctx: Ctx, customer_id: int) -> Outcome:
    c = await ctx.services.customers.get(ctx.user, customer_id)
    if c is None:
        return Outcome().add(ctx.t("customer.not_found"))
    if c.active:  # an old 恢复 button, pressed twice: nothing to do
        return await card(ctx, customer_id)
    refusal = await switch_refusal(ctx, c)
    if refusal is not None:
        return refusal
    batch = Batch()  # the record as read: one write, with its audit row
    Customers.set_active_into(batch, ctx.user, c, True, ctx.now)
    await ctx.services.db.write_batch(batch)
    # the card, active again, says it: the record as read and changed, not read back
    out = card_of(ctx, dataclasses.replace(c, active=True, deactivated_reason=None))
    out.toast = ctx.t("customer.reactivated_toast")
    return out


async def history(ctx: Ctx, customer_id: int) -> Outcome:
    if ctx.user.role not in (Role.LEAD, Role.ADMIN):
        return Outcome().add(ctx.t("customer.audit_leads_only"))
    customers = ctx.services.customers
    found, logged = await ctx.services.db.fetch_many_point([  # one read (issue #12)
        customers.get_read(ctx.user, customer_id), audit.history_read(ENTITY, customer_id)])
    c = customers.found(found)
    if c is None:
        return Outcome().add(ctx.t("customer.not_found"))
    entries = audit.entries(logged)
    # The record is the user's team's (get's scope): its 台区 came with the step's read.
    area_names = {a.id: a.name for a in await ctx.team_areas()}
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
                                                    router.callback("cust", c.id))]])


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


# --- the feature's wiring ----------------------------------------------------------------
router.form(CUSTOMER)
router.form(DEACTIVATE)
# What a button about customer ID reads first, read with the step's read (issue #12).
READS_CUSTOMER = one_id(lambda ctx, cid: [ctx.services.customers.get_read(ctx.user, cid)])
router.button("cust", reads=READS_CUSTOMER)(by_id(card))
router.button("custp")(by_id(page))
router.button("reveal", reads=READS_CUSTOMER)(by_id(partial(reveal, which="phone")))
router.button("revealE", reads=READS_CUSTOMER)(by_id(partial(reveal, which="emergency")))
router.button("custlog")(by_id(history))
router.button("custon", reads=READS_CUSTOMER)(by_id(reactivate))
OPENERS = {"custedit": "ce", "custvisit": "cv", "custoff": "co"}  # button action -> opener


for _action, _prefix in OPENERS.items():
    router.button(_action, reads=READS_CUSTOMER)(opens(_prefix))


@router.command("customer")
async def customer_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.open_form(ctx, draft, CUSTOMER.name)


@router.command("customers")
async def customers_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await search(ctx, arg))


@router.intent
async def customers_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    rest = register_text(text)  # before search: 特殊客户登记 is not a search
    if rest is not None:
        team_areas = [a.name for a in await ctx.team_areas()]  # the step's read
        values, notices = await customer_prefill(ctx, rest, team_areas)
        return await app.engine.start(ctx, CUSTOMER.name, values, notices)
    query = search_text(text)
    return None if query is None else await search(ctx, query)


async def _open_customer(ctx: Ctx, record_id: int, kind: str) -> Customer | Outcome:
    """The customer an opener is about, or the reply when it cannot be opened."""
    customer = await ctx.services.customers.get(ctx.user, record_id)
    if customer is None or (kind != "ce" and not customer.active):
        return Outcome().add(ctx.t("customer.not_found"))
    if not customer.active:  # a forged or old 修改 button: read-only until reactivated
        return Outcome(toast=ctx.t("button.stale")).add(
            ctx.t("customer.readonly"), [[Button(ctx.t("btn.customer_card"),
                                                 router.callback("cust", customer.id))]])
    return customer


@router.opener("ce")
async def open_edit(app: Assistant, ctx: Ctx, record_id: int) -> Outcome:
    customer = await _open_customer(ctx, record_id, "ce")
    if isinstance(customer, Outcome):
        return customer
    return await open_customer_edit(app.engine, ctx, customer)


@router.opener("co")
async def open_deactivate(app: Assistant, ctx: Ctx, record_id: int) -> Outcome:
    customer = await _open_customer(ctx, record_id, "co")
    if isinstance(customer, Outcome):
        return customer
    refusal = await switch_refusal(ctx, customer)  # only the area's manager or the lead
    if refusal is not None:
        return refusal
    return await app.engine.start(
        ctx, DEACTIVATE.name, meta={"customer_id": customer.id},
        heading=ctx.t("customer.deactivating", name=customer.name,
                      account=customer.account_no))


@router.opener("cv")
async def open_visit(app: Assistant, ctx: Ctx, record_id: int) -> Outcome:
    """A visit is a work-log entry about this customer: the worklog feature's form, by its
    declared name (no import of that feature)."""
    customer = await _open_customer(ctx, record_id, "cv")
    if isinstance(customer, Outcome):
        return customer
    values: dict[str, Any] = {"items": ["visit"]}
    if str(customer.area_id) in {str(a.id) for a in
                                 await ctx.areas()}:
        values["area"] = str(customer.area_id)
    return await app.engine.start(
        ctx, VISIT_FORM, values, meta={"customer_id": customer.id},
        heading=ctx.t("customer.visiting", name=customer.name, account=customer.account_no))
