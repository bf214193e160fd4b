"""计划/临时检修停电: register an outage over one or several 台区, with the notice deadline from
the rule set, a checklist (notice posted + every active special customer in the affected
areas, each ticked as told and how), reminders before and after, and the restore question."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from bot.deadlines import Rule, due_before
from bot.events import Button, Outcome, Reply
from bot.features.customers.reveal import reveal_number
from bot.features.worklog.form import area_choices
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved, Writing, did_you_mean
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.matching import match_choice
from bot.privacy import mask_phone
from bot.records import runtime as rt
from bot.records.common import (
    parse_future_ok,
    remaining,
    ruleset,
    show_time,
    step_calendar,
    value_time,
    when,
)
from bot.router import Router, TodoItem, TodoRead, feature_callback
from bot.services import Ctx
from bot.statuses import outage_status
from bot.storage.batch import Batch, Declined
from bot.storage.conversations import Draft
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import after_keyword, normalize_input
from bot.timeparse import parse_time
from bot.vocab import AREA_TOKEN

if TYPE_CHECKING:
    from bot.assistant import Assistant

router = Router("outages")
SUBJECT = "outage"
KINDS = ("planned", "temporary")
HOW = ("phone", "visit", "message")
_INTENT = re.compile(r"^(登记停电|停电登记|登记计划停电|登记临时停电|计划停电|临时停电|"
                     r"检修停电|登记检修停电)\s*(.*)$")
_AREA_SPLIT = re.compile(r"[,，、;；\s]+")
# A clock time with no date in it ("17点", "下午5点半"): read on the start's day, not today's.
_HAS_DATE = re.compile(r"[今明后昨前天日号月周/\-]|星期|礼拜|[0-9]{4}")
DAY_BEFORE_HOUR = 9  # the urgent "tell these customers" list: 09:00 the day before the start
CARD_CUSTOMER_BUTTONS = 20  # a phone screen, and Telegram's keyboard, stay usable


@dataclass(frozen=True)
class Outage:
    id: int
    team_id: int
    user_id: int
    owner: str
    status: str  # planned, done, cancelled
    kind: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    notice_due: datetime | None
    notice_posted_at: datetime | None
    registered_late: int
    restored_at: datetime | None
    areas: str  # the area names, in area order, joined with 、

    def open_at(self, now: datetime) -> bool:
        return self.status == "planned" and now < self.starts_at


@dataclass(frozen=True)
class Notice:
    """A special customer on the checklist (snapshotted at registration): told, and how."""

    customer_id: int
    name: str
    area_name: str
    cats: str | None
    told_at: datetime | None
    how: str | None
    phone: str | None  # shown masked; the full number only through a reveal (audited)
    situation: str | None
    proxy_pay: int
    active: int


STORE = rt.Store(Outage, "outages", "SELECT o.*, u.name AS owner, "
                 "(SELECT group_concat(name, '、') FROM (SELECT a.name FROM outage_areas oa "
                 " JOIN areas a ON a.id = oa.area_id WHERE oa.outage_id = o.id ORDER BY a.id)"
                 " AS picked) "
                 "AS areas FROM outages o JOIN users u ON u.id = o.user_id", "o")


def checklist_read(oid: int) -> Read:
    return ("SELECT n.customer_id, n.told_at, n.how, c.name, a.name AS area_name, c.phone, "
            "c.situation, c.proxy_pay, c.active, "
            "(SELECT group_concat(category, ',') FROM customer_categories cc "
            " WHERE cc.customer_id = c.id) AS cats "
            "FROM outage_notices n JOIN customers c ON c.id = n.customer_id "
            "JOIN areas a ON a.id = c.area_id WHERE n.outage_id = ? ORDER BY a.id, c.id", (oid,))


def notice_of(row: Row) -> Notice:
    return rt.from_row(Notice, row)


async def checklist(ctx: Ctx, oid: int) -> list[Notice]:
    return [notice_of(r) for r in await ctx.services.db.fetchall(*checklist_read(oid))]


# --- the registration form ------------------------------------------------------------
async def parse_areas(text: str, ctx: Ctx, form: FormView = NO_FORM) -> list[str]:
    """Typed areas ("3号台区 5号台区", "3号台区、5号台区"): only the user's own are accepted."""
    choices = await area_choices(ctx)
    whole = match_choice(text, choices)
    if whole.unambiguous:
        return [whole.unambiguous.value]
    picked: list[str] = []
    for token in (t for t in _AREA_SPLIT.split(normalize_input(text)) if t):
        found = match_choice(token, choices)
        if found.unambiguous:
            if found.unambiguous.value not in picked:
                picked.append(found.unambiguous.value)
        elif found.suggestions:
            raise did_you_mean(token, found.suggestions, form.token)
        else:
            raise Invalid("form.worklog.area.unknown", text=token,
                          options="、".join(c.label for c in choices))
    if not picked:
        raise Invalid("form.pick_at_least_one")
    return picked


async def show_areas(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    names = {c.value: c.label for c in await area_choices(ctx)}
    return "、".join(names.get(v, ctx.t("form.worklog.area_gone_short")) for v in value)


async def parse_end(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    p = parse_time(text, ctx.local_now, prefer="future")
    if p is None:
        raise Invalid("form.worklog.time.unparsed", text=text)
    end = p.value if p.has_time else p.value.replace(hour=23, minute=59)  # date: that whole day
    start = value_time(form.values["start"]) if form.values.get("start") else None
    if start is not None and end <= start and p.has_time and not _HAS_DATE.search(text):
        on_start_day = parse_time(text, start.astimezone(ctx.tz), prefer="future")
        if on_start_day is not None and on_start_day.value > start:
            end = on_start_day.value
    if start is not None and end <= start:
        raise Invalid("outage.end_before_start", end=when(ctx, end, p.has_time),
                      start=when(ctx, start))
    return {"at": iso(end), "has_time": p.has_time}


def _rule(ctx: Ctx, kind: str) -> Rule | None:
    rules = ruleset(ctx.services).outage
    return rules.planned_notice if kind == "planned" else rules.temporary_notice


def _day_before(ctx: Ctx, start: datetime) -> datetime:
    local = start.astimezone(ctx.tz) - timedelta(days=1)
    return local.replace(hour=DAY_BEFORE_HOUR, minute=0, second=0, microsecond=0)


async def write_outage(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Writing:
    """The outage, its 台区, the customers to tell and its reminders as writes, saved with
    the form's close in one round trip. Its 台区's customers are found by the write (told
    of the outage; the day-before check planned only if there are any) and read with it
    for the reply, which lists them."""
    services = ctx.services
    mine = {a.id: a for a in await ctx.areas()}
    area_ids = [int(a) for a in values.get("areas") or []]
    if not area_ids or any(a not in mine for a in area_ids):
        raise Invalid("outage.area_not_yours")  # a forged or since-removed area
    start, end = value_time(values["start"]), value_time(values["end"])
    if end <= start:
        raise Invalid("outage.end_before_start", end=when(ctx, end), start=when(ctx, start))
    kind = values["kind"]
    rules = ruleset(services)
    rule = _rule(ctx, kind)
    cal = await step_calendar(ctx)
    notice = due_before(start, rule, cal, rules.working_hours) if rule else None
    late = notice is not None and ctx.now > notice.due
    marks = ",".join("?" for _ in area_ids)
    # The active customers of its 台区 (SQL over customers c, and its parameters).
    of_areas = (f"c.team_id = ? AND c.active = 1 AND c.area_id IN ({marks})",
                (ctx.user.team_id, *area_ids))
    batch = Batch()
    ref = STORE.insert_into(batch, token, {
        "team_id": ctx.user.team_id, "user_id": ctx.user.id, "kind": kind,
        "starts_at": iso(start), "ends_at": iso(end), "reason": values["reason"],
        "ruleset": rules.name, "notice_due": iso(notice.due) if notice else None,
        "registered_late": int(late), "created_at": iso(ctx.now)})
    batch.executemany("INSERT INTO outage_areas(outage_id, area_id) VALUES (?, ?)",
                      [(ref, a) for a in area_ids], if_new=ref)
    batch.execute("INSERT INTO outage_notices(outage_id, customer_id) "
                  f"SELECT ?, c.id FROM customers c WHERE {of_areas[0]} "
                  "ORDER BY c.area_id, c.id", (ref, *of_areas[1]), if_new=ref)
    rt.plan_ladders_into(batch, SUBJECT, ref, ctx.user.team_id, ctx.user.id,
                         ladders(ctx, start, end, notice.due if notice else None, late),
                         ctx.now, condition=(f"EXISTS (SELECT 1 FROM customers c "
                                             f"WHERE {of_areas[0]})", of_areas[1]))
    has_lead = batch.read(rt.HAS_OTHER_LEAD, (ctx.user.team_id, ctx.user.id)) if late else None
    # the customers as the write found them: not written by the batch (PostgreSQL reads
    # them as before it, all the same)
    told = batch.read_rows(f"SELECT c.id, c.name FROM customers c WHERE {of_areas[0]} "
                           "ORDER BY c.area_id, c.id", of_areas[1])

    async def saved(oid: int | None) -> Saved:
        assert oid is not None
        names = "、".join(mine[a].name for a in area_ids)
        lines = [ctx.t("outage.saved", id=oid, kind=ctx.t(f"outage.kind.{kind}"), areas=names),
                 ctx.t("outage.span", start=when(ctx, start), end=when(ctx, end))]
        if notice is None:
            lines.append(ctx.t("outage.no_notice_rule", ruleset=rules.name,
                               kind=ctx.t(f"outage.kind.{kind}")))
        else:
            lines.append(ctx.t("outage.notice_by", when=when(ctx, notice.due),
                               rule=rule.label(ctx.locale) if rule else ""))
            if rule is not None and rule.audience:
                lines.append(ctx.t(f"outage.audience.{rule.audience}"))
            if notice.provisional:
                lines.append(ctx.t("deadline.provisional"))
        if late and notice is not None:
            lines.append(ctx.t("outage.too_late", due=when(ctx, notice.due),
                               late=remaining(ctx, notice.due)))
            if has_lead is not None and has_lead.value:
                lines.append(ctx.t("outage.lead_told"))
        customers = told.value or []
        if customers:
            lines.append(ctx.t("outage.customers_to_tell", count=len(customers),
                               names="、".join(c["name"] for c in customers[:10])
                               + ("…" if len(customers) > 10 else "")))
        else:
            lines.append(ctx.t("outage.no_customers"))
        return OUTAGES.saved(ctx, oid, "\n".join(lines))

    return Writing(batch, ref, saved)


def ladders(ctx: Ctx, start: datetime, end: datetime, notice_due: datetime | None,
            late: bool) -> list[tuple[str, list[rt.Rung]]]:
    """An outage's reminders, step by step (rt.plan_ladders_into; the day-before check
    only if its 台区 have customers to tell: the plan's condition)."""
    now = ctx.now
    out: list[tuple[str, list[rt.Rung]]] = []
    if notice_due is not None and not late:
        out.append(("notice", [
            rt.Rung("soon", notice_due - timedelta(days=1)),
            rt.Rung("due", notice_due, skip_if_past=False),
            rt.Rung("escalate", notice_due, to_leads=True, skip_if_past=False)]))
    if late:  # the manager is told in the saved message; the leads at once, whatever the hour
        out.append(("late", [rt.Rung("lead", now, to_leads=True, urgent=True,
                                     skip_if_past=False)]))
    # registered after the day before, the saved message carries the list
    out.append(("untold", [rt.Rung("daybefore", _day_before(ctx, start), urgent=True,
                                   only_if=True)]))
    out.append(("restore", [rt.Rung("ask", end, skip_if_past=False)]))
    return out


OUTAGE = router.form(FormSpec(
    name="outage",
    title="form.outage.title",
    fields=(
        Field("areas", "field.outage_areas", "form.outage.areas", Kind.MULTI,
              choices=area_choices, parse=parse_areas, show=show_areas, fill_sole=True),
        kinds.named("kind", "field.outage_kind", "form.outage.kind", KINDS, "outage.kind.{}"),
        Field("start", "field.outage_start", "form.outage.start", Kind.TIME,
              parse=parse_future_ok, show=show_time, hint="form.outage.time.hint"),
        Field("end", "field.outage_end", "form.outage.end", Kind.TIME, parse=parse_end,
              show=show_time, hint="form.outage.end.hint"),
        kinds.text("reason", "field.outage_reason", "form.outage.reason"),
    ),
    save=None,
    write=write_outage,
    quick={},
))


# --- card -----------------------------------------------------------------------------
def title(ctx: Ctx, rec: Outage) -> str:
    return ctx.t("outage.title", id=rec.id, kind=ctx.t(f"outage.kind.{rec.kind}"),
                 areas=rec.areas or "")


def _status(ctx: Ctx, rec: Outage) -> str:
    return ctx.t(outage_status(rec.status, rec.starts_at, rec.ends_at, ctx.now))


def _customer_line(ctx: Ctx, c: Notice, revealed: dict[int, str]) -> str:
    """The customer, ticked or not, with the phone (masked until revealed) and the register's
    notes on a second line: the manager calls from the checklist."""
    cats = "、".join(ctx.t(f"category.{k}") for k in sorted((c.cats or "").split(",")) if k)
    who = f"{c.name}（{c.area_name}" + (f" · {cats}" if cats else "") + "）"
    if ctx.locale != "zh_CN":
        who = f"{c.name} ({c.area_name}" + (f" · {cats}" if cats else "") + ")"
    if c.told_at:
        line = "☑ " + ctx.t("outage.told_line", who=who, how=ctx.t(f"outage.how.{c.how}"),
                            when=when(ctx, c.told_at))
    else:
        line = "☐ " + who
    if c.phone:
        line += " " + ctx.t("outage.phone",
                            phone=revealed.get(c.customer_id) or mask_phone(c.phone))
    notes = [n for n in (c.situation, ctx.t("measure.proxy_pay") if c.proxy_pay else None) if n]
    if notes:
        line += "\n" + ctx.t("outage.customer_notes", notes=" · ".join(notes))
    return line


async def render_card(ctx: Ctx, rec: Outage, heading: str | None = None,
                      revealed: dict[int, str] | None = None, *,
                      read: Sequence[list[Row]]) -> Outcome:
    """The outage card; `revealed` holds numbers this user has just revealed (shown once);
    `read`: its checklist, read with the record (OUTAGES.card_reads)."""
    items = [notice_of(r) for r in read[0]]
    revealed = revealed or {}
    lines = [title(ctx, rec), _status(ctx, rec),
             ctx.t("outage.span", start=when(ctx, rec.starts_at), end=when(ctx, rec.ends_at)),
             rt.field_line(ctx, "field.outage_reason", rec.reason),
             rt.field_line(ctx, "field.owner", rec.owner)]
    due = rec.notice_due
    left = "" if rec.notice_posted_at or due is None else " · " + remaining(ctx, due)
    lines.append(rt.field_line(ctx, "field.outage_notice_due", when(ctx, due) + left if due
                               else ctx.t("outage.no_deadline")))
    if rec.registered_late:
        lines.append(ctx.t("outage.registered_late"))
    told = sum(1 for c in items if c.told_at)
    lines.append(ctx.t("outage.checklist", told=told, total=len(items)))
    if rec.notice_posted_at:
        lines.append("☑ " + ctx.t("outage.notice_posted_at", when=when(ctx, rec.notice_posted_at)))
    else:
        lines.append("☐ " + ctx.t("outage.notice_item"))
    lines += [_customer_line(ctx, c, revealed) for c in items]
    if rec.restored_at:
        lines.append(ctx.t("outage.restored_at", when=when(ctx, rec.restored_at)))
    return Outcome().add("\n".join(lines), _card_rows(ctx, rec, items, revealed))


def _card_rows(ctx: Ctx, rec: Outage, items: list[Notice],
               revealed: dict[int, str]) -> list[list[Button]]:
    """Notice posted, a row per customer (tick as told, reveal the phone), then restored or
    (not started yet: weather, a moved date) called off: only what the state allows."""
    notice, restored, cancel = (t for t in OUTAGES.transitions)
    rows = [[notice.button(ctx, rec.id)]] if notice.allows(ctx, rec) else []
    rows += _customer_rows(ctx, rec, items, revealed)
    rows += [[t.button(ctx, rec.id)] for t in (restored, cancel) if t.allows(ctx, rec)]
    return rows


def _customer_rows(ctx: Ctx, rec: Outage, items: list[Notice],
                   revealed: dict[int, str]) -> list[list[Button]]:
    """Per customer: ☐ to tick as told (until told), 📞 to reveal the number (until shown,
    while the outage is still on: a closed one needs no calls)."""
    rows = []
    calls = rec.status == "planned"
    for c in items[:CARD_CUSTOMER_BUTTONS]:
        arg = f"{rec.id}:{c.customer_id}"
        row = [] if c.told_at else [Button("☐ " + c.name, router.callback("outc", arg))]
        if calls and c.phone and c.active and c.customer_id not in revealed:
            label = ctx.t("outage.phone", phone=mask_phone(c.phone))
            row.append(Button(label if row else f"{c.name} {label}",
                              router.callback("outp", arg)))
        if row:
            rows.append(row)
    return rows


# --- ticking the checklist ------------------------------------------------------------
async def _refreshed(ctx: Ctx, oid: int, toast: str) -> Outcome:
    out = await OUTAGES.card(ctx, oid)
    return Outcome(edit=out.replies[0], toast=toast)


async def _move(ctx: Ctx, rec: Outage, sets: dict[str, Any], guard: str,
                cancel: str = "") -> Outcome | None:
    """A one-tap step, once (`guard`), and the reminders it makes moot, with the card's
    checklist: one round trip. The card after it, the record as read and changed (`sets`);
    None when the guard no longer held (changed meanwhile: show it as it is now)."""
    batch = Batch()
    moved = STORE.update_into(batch, rec.id, {**sets, "updated_at": iso(ctx.now)}, guard)
    Reminders.cancel_into(batch, SUBJECT, rec.id, cancel)
    shown = OUTAGES.card_reads_into(batch, ctx, rec.id)
    if not (await ctx.services.db.write_batch(batch)).changed(moved):
        return None
    after = rt.from_row(Outage, {**rt.kept_row(rec), **sets})  # type: ignore[arg-type]
    return await OUTAGES.card_of(ctx, after, shown=shown)


async def _in_place(ctx: Ctx, rec: Outage, out: Outcome | None, toast: str) -> Outcome:
    """The card after a one-tap step (_move) in place of the one tapped, as _refreshed."""
    return (Outcome(edit=out.replies[0], toast=toast) if out is not None
            else await _refreshed(ctx, rec.id, toast))


async def post_notice(ctx: Ctx, rec: Outage) -> Outcome:
    return await _in_place(ctx, rec, await _move(
        ctx, rec, {"notice_posted_at": iso(ctx.now)}, "notice_posted_at IS NULL", "notice."),
        ctx.t("outage.notice_posted_toast"))


async def ask_how(ctx: Ctx, oid: int, cid: int) -> Outcome:
    rec, (items,) = await OUTAGES.visible_with(ctx, oid)  # with its checklist
    if rec is None:
        return Outcome().add(ctx.t("outage.not_found"))
    item = next((c for c in map(notice_of, items) if c.customer_id == cid), None)
    if item is None:
        return Outcome(toast=ctx.t("button.stale")).add(ctx.t("outage.not_on_list"))
    if item.told_at:
        return await _refreshed(ctx, oid, ctx.t("outage.already_told"))
    # How as its number in HOW: the data is ids alone, so the button's reads are declared
    # (_checklist_reads); a word (buttons sent before) is still understood.
    how = [Button(ctx.t(f"outage.how_btn.{h}"), router.callback("outh", f"{oid}:{cid}:{n}"))
           for n, h in enumerate(HOW)]
    return Outcome().add(ctx.t("outage.ask_how", name=item.name), [
        how, [Button(ctx.t("btn.customer_card"), feature_callback("customers", "cust", cid)),
              OUTAGES.open_button(ctx, oid)]])


async def reveal_phone(ctx: Ctx, oid: int, cid: int) -> Outcome:
    """📞 on the checklist: the number in place on the card, once, through the same audited
    and limited reveal as the customer card."""
    customers = ctx.services.customers
    rec, (items, customer) = await OUTAGES.visible_with(  # and the customer, read together
        ctx, oid, customers.get_read(ctx.user, cid))
    if rec is None:
        return Outcome().add(ctx.t("outage.not_found"))
    if cid not in {notice_of(c).customer_id for c in items}:
        return Outcome(toast=ctx.t("button.stale")).add(ctx.t("outage.not_on_list"))
    got = await reveal_number(ctx, cid, "phone", known=customers.found(customer))
    if got.refusal:
        return Outcome(toast=got.toast).add(got.refusal)
    if not got.phone:  # deactivated since, or no number on file
        return await _refreshed(ctx, oid, got.toast or ctx.t("button.stale"))
    out = await render_card(ctx, rec, revealed={cid: got.phone}, read=[items])
    return Outcome(edit=out.replies[0], toast=got.toast)


async def mark_told(ctx: Ctx, oid: int, cid: int, how: str) -> Outcome:
    """The customer told, and the day-before list's reminders stopped once no one is left
    untold, in one write; the outage and its checklist are the step's read (the button
    declares them) and the card after it is that checklist with this customer told (issue
    #12: 8 round trips before, the card read back)."""
    rec, (items,) = await OUTAGES.visible_with(ctx, oid)
    if rec is None:
        return Outcome().add(ctx.t("outage.not_found"))
    if not any(r["customer_id"] == cid and not r["told_at"] for r in items):
        return await _card_edit(ctx, rec, items, ctx.t("outage.already_told"))  # or unlisted
    batch = Batch()
    batch.execute("UPDATE outage_notices SET told_at = ?, how = ?, told_by = ? "
                  "WHERE outage_id = ? AND customer_id = ? AND told_at IS NULL",
                  (iso(ctx.now), how, ctx.user.id, oid, cid), declined="outage.already_told")
    # Everyone told: the urgent list has no reason. The others, as this customer is told
    # now (PostgreSQL's one statement sees the checklist as before the batch).
    Reminders.cancel_into(batch, SUBJECT, oid, "untold.", unless=(
        "SELECT 1 FROM outage_notices WHERE outage_id = ? AND customer_id <> ? "
        "AND told_at IS NULL", (oid, cid)))
    try:
        await ctx.services.db.write_batch(batch)
    except Declined:  # told meanwhile (a second tap on another device)
        return await _refreshed(ctx, oid, ctx.t("outage.already_told"))
    told = [{**{k: r[k] for k in r.keys()}, "told_at": iso(ctx.now), "how": how}  # noqa: SIM118
            if r["customer_id"] == cid else r for r in items]
    return await _card_edit(ctx, rec, told, ctx.t("outage.told_toast"))


async def _card_edit(ctx: Ctx, rec: Outage, checklist: list[Any], toast: str) -> Outcome:
    """The card of `rec` with `checklist` (its rows, in hand) in place of the one tapped."""
    out = await render_card(ctx, rec, read=[checklist])
    return Outcome(edit=out.replies[0], toast=toast)


async def mark_restored(ctx: Ctx, rec: Outage) -> Outcome:
    if rec.status != "planned":
        return await _refreshed(ctx, rec.id, ctx.t("outage.already_closed"))
    if ctx.now < rec.starts_at:
        return Outcome(toast=ctx.t("outage.not_started_toast")).add(
            ctx.t("outage.not_started", start=when(ctx, rec.starts_at)))
    out = await _move(ctx, rec, {"restored_at": iso(ctx.now), "status": "done"},
                      "status = 'planned'") or await OUTAGES.card(ctx, rec.id)
    out.replies.insert(0, Reply(ctx.t("outage.closed", id=rec.id, when=when(ctx, ctx.now))))
    return Outcome(replies=out.replies, toast=ctx.t("outage.restored_toast"))


async def cancel_outage(ctx: Ctx, rec: Outage, confirmed: bool) -> Outcome:
    """Call off an outage that has not started: asks first, then stops its reminders."""
    if not rec.open_at(ctx.now):
        return await _refreshed(ctx, rec.id, ctx.t("outage.cannot_cancel"))
    if not confirmed:
        return Outcome().add(ctx.t("outage.cancel_confirm", item=title(ctx, rec)), [[
            Button(ctx.t("btn.outage_cancel_yes"), router.callback("outxy", rec.id)),
            OUTAGES.open_button(ctx, rec.id)]])
    return await _in_place(ctx, rec, await _move(ctx, rec, {"status": "cancelled"},
                                                 "status = 'planned'"),
                           ctx.t("outage.cancelled", id=rec.id))


# --- reminders ------------------------------------------------------------------------
async def other_reminders(ctx: Ctx, r: Reminder, rec: Outage) -> Reply | None:
    """The lead told of a late registration, the day-before list, the restore question."""
    if rec.status != "planned":
        return None
    item = title(ctx, rec)
    open_btn = OUTAGES.open_button(ctx, rec.id)
    due = rec.notice_due
    if r.kind == "late.lead":
        return Reply(ctx.t("outage.late_lead", owner=rec.owner, item=item,
                           start=when(ctx, rec.starts_at),
                           due=when(ctx, due) if due else ctx.t("form.empty")), [[open_btn]])
    if r.kind == "untold.daybefore":
        untold = [c for c in await checklist(ctx, rec.id) if not c.told_at]
        if not untold:
            return None
        lines = [ctx.t("outage.daybefore", item=item, start=when(ctx, rec.starts_at),
                       count=len(untold))]
        lines += [_customer_line(ctx, c, {}) for c in untold]
        return Reply("\n".join(lines), [*_customer_rows(ctx, rec, untold, {}), [open_btn]])
    if r.kind == "restore.ask":
        return Reply(ctx.t("outage.restore_ask", item=item, end=when(ctx, rec.ends_at)),
                     [[OUTAGES.action("outr").button(ctx, rec.id), open_btn]])
    return None


def todo_reads(ctx: Ctx) -> list[Read]:
    """The planned outages, and how many of each one's customers are still to be told (as
    `checklist` counts them: one read for all, not one per outage)."""
    planned, params = STORE.open_read(ctx, "o.status = 'planned'", order="ORDER BY o.starts_at")
    return [(planned, params), (
        "SELECT n.outage_id, count(*) AS untold FROM outage_notices n "
        "JOIN customers c ON c.id = n.customer_id JOIN areas a ON a.id = c.area_id "
        "WHERE (n.told_at IS NULL OR n.told_at = '') "
        f"AND n.outage_id IN (SELECT q.id FROM ({planned}) q) GROUP BY n.outage_id", params)]


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    items = []
    untold_of = {int(r["outage_id"]): int(r["untold"]) for r in rows[1]}
    for rec in STORE.records(rows[0]):
        item = title(ctx, rec)
        start, end = rec.starts_at, rec.ends_at
        untold = untold_of.get(rec.id, 0)
        urgent, escalates = False, True
        if ctx.now < start and not rec.notice_posted_at:
            due = rec.notice_due or start
            text = ctx.t("todo.outage_notice", item=item, due=when(ctx, due),
                         left=remaining(ctx, due))
        elif ctx.now < start and untold:
            due, urgent = start, True
            text = ctx.t("todo.outage_customers", item=item, count=untold,
                         start=when(ctx, start), left=remaining(ctx, start))
        elif ctx.now < start:
            due = start
            text = ctx.t("todo.outage_upcoming", item=item, start=when(ctx, start),
                         left=remaining(ctx, start))
        else:
            due, escalates = end, False  # a late restore confirmation is not escalated
            text = ctx.t("todo.outage_restore", item=item, end=when(ctx, end))
        items.append(OUTAGES.todo_item(ctx, rec, due, text,
                                       ctx.t("outage.todo_button", id=rec.id), urgent=urgent,
                                       escalates=escalates))
    return items


# --- wiring ---------------------------------------------------------------------------
router.request_patterns.append(_INTENT)


@router.intent
async def outage_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    m = _INTENT.match(normalize_input(text))
    if m is None:
        return None
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    lead, rest = m.group(1), after_keyword(m.group(2))
    if "临时" in lead + rest:
        values["kind"] = "temporary"
    elif "计划" in lead + rest:
        values["kind"] = "planned"
    choices = sorted(await area_choices(ctx), key=lambda c: len(c.label), reverse=True)
    picked: list[str] = []
    for c in choices:  # the user's own area names, longest first ("城东3号台区" before "3号台区")
        if c.label and c.label in rest:
            picked.append(c.value)
            rest = rest.replace(c.label, " ")
    others = AREA_TOKEN.findall(rest)
    if others:  # another team's area, or a typo: say so at the area step
        notices["areas"] = "⚠️ " + ctx.t("form.worklog.area.unknown", text="、".join(others),
                                         options="、".join(c.label for c in choices[::-1]))
    if picked:
        values["areas"] = sorted(picked, key=int)
    return await app.engine.start(ctx, OUTAGE.name, values or None, notices)


def _ids(arg: str, parts: int) -> list[int] | None:
    bits = arg.split(":")
    if len(bits) != parts or not all(b.isdigit() for b in bits):
        return None
    return [int(b) for b in bits]


def _checklist_reads(ctx: Ctx | None, ids: tuple[int, ...]) -> list[Read]:
    """What 怎么告知 (outage:customer) and its answers (outage:customer:how) read first: the
    outage and its checklist (a customer's card reads its own)."""
    return OUTAGES.card_read(ctx, ids[0]) if len(ids) in (2, 3) else []


@router.button("outc", reads=_checklist_reads)
async def customer_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    ids = _ids(arg, 2)
    return await ask_how(ctx, ids[0], ids[1]) if ids else rt.stale(ctx)


def _phone_reads(ctx: Ctx, ids: tuple[int, ...]) -> list[Read]:
    """What 📞 (outage:customer) reads first: the outage, its checklist and the customer."""
    if len(ids) != 2:
        return []
    return [*OUTAGES.card_read(ctx, ids[0]), ctx.services.customers.get_read(ctx.user, ids[1])]


@router.button("outp", reads=_phone_reads)
async def phone_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    ids = _ids(arg, 2)
    return await reveal_phone(ctx, ids[0], ids[1]) if ids else rt.stale(ctx)


@router.button("outh", reads=_checklist_reads)
async def how_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    oid, _, rest = arg.partition(":")
    cid, _, how = rest.partition(":")
    if how.isdigit() and int(how) < len(HOW):
        how = HOW[int(how)]
    if not (oid.isdigit() and cid.isdigit() and how in HOW):
        return rt.stale(ctx)
    return await mark_told(ctx, int(oid), int(cid), how)


OUTAGES = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="out", not_found="outage.not_found",
    meta_key="outage_id", title=title, render_card=render_card, open_label="btn.outage_checklist",
    card_reads=lambda ctx, rid: [checklist_read(rid)],
    transitions=(
        rt.Transition("outn", "btn.outage_notice_posted", run=post_notice,
                   allowed=lambda ctx, o: o.status == "planned" and not o.notice_posted_at),
        rt.Transition("outr", "btn.outage_restored", run=mark_restored,
                   allowed=lambda ctx, o: o.status == "planned" and ctx.now >= o.starts_at),
        rt.Transition("outx", "btn.outage_cancel", run=partial(cancel_outage, confirmed=False),
                   allowed=lambda ctx, o: o.open_at(ctx.now)),
    ),
    form=OUTAGE, command="outage",
    ladders=(rt.Ladder("notice", "outage.step.notice", lambda o: o.notice_due,
                       lambda o: o.status != "planned" or o.notice_posted_at is not None,
                       ("outn",)),),
    other_reminders=other_reminders, todo_items=TodoRead(todo_reads, todo)).register(router)
OUTAGES.on_tap("outxy", partial(cancel_outage, confirmed=True))
