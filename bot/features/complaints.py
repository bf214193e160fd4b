"""投诉 / 95598 工单: register, first contact, reply; deadlines from the rule set; reminders
half-way, 2 working hours before, at due, then daily while overdue, escalated to the lead."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.deadlines import COMPLAINT_TYPES
from bot.events import Outcome, Reply
from bot.features.worklog.form import (
    area_choices,
    parse_text,
    show_area,
    take_area_into,
)
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.matching import Choice
from bot.records import callback as cb
from bot.records import runtime as rt
from bot.records.common import (
    fill_from_register,
    now_value,
    remaining,
    show_account,
    value_time,
    when,
)
from bot.router import Router, TodoItem, TodoRead
from bot.services import Ctx
from bot.statuses import complaint_status
from bot.storage.batch import Batch
from bot.storage.customers import Customer
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import Reminder, Reminders

router = Router("complaints")
SUBJECT = "complaint"
_INTENT = re.compile(r"^(登记投诉|投诉登记|登记工单|95598工单|新工单|登记95598)\s*(.*)$")
CONTACT_METHODS = ("phone", "visit", "sms", "wechat")


@dataclass(frozen=True)
class Complaint:
    id: int
    team_id: int
    user_id: int
    owner: str
    status: str
    kind: str
    order_no: str | None
    account_no: str | None
    customer_name: str | None
    accepted_at: datetime
    content: str
    contact_due: datetime | None
    reply_due: datetime | None
    contacted_at: datetime | None
    replied_at: datetime | None
    reply_result: str | None
    provisional: int
    area_name: str | None
    callback_due: datetime | None
    callback_at: datetime | None
    callback_result: str | None
    callback_note: str | None

    def due(self, step: str) -> datetime | None:
        return self.contact_due if step == "contact" else self.reply_due


STORE = rt.Store(Complaint, "complaints", "SELECT c.*, u.name AS owner, a.name AS area_name "
              "FROM complaints c JOIN users u ON u.id = c.user_id "
              "LEFT JOIN areas a ON a.id = c.area_id", "c")


# --- the registration form ------------------------------------------------------------
async def write_complaint(ctx: Ctx, values: dict[str, Any], token: str,
                          meta: dict[str, Any]) -> Writing:
    """The complaint and its ladders as writes, saved with the form's close in one round
    trip (a 户号 given is looked up in the register first: one read more)."""
    services = ctx.services
    planning = await rt.Planning.for_writes(ctx)
    rules = planning.rules
    kind = values["kind"]
    accepted = value_time(values["accepted_at"]).astimezone(ctx.tz)
    group = rules.complaint(kind)
    contact = planning.due(accepted, group.contact) if group.contact else None
    reply = planning.due(accepted, group.reply) if group.reply else None
    provisional = bool((contact and contact.provisional) or (reply and reply.provisional))
    customer = None
    if values.get("account_no"):
        customer = await services.customers.by_account(ctx.user.team_id, values["account_no"])
    area_id = await complaint_area(ctx, values.get("area"), customer)
    batch = Batch()
    ref = STORE.insert_into(batch, token, {
        "area_id": area_id,
        "team_id": ctx.user.team_id, "user_id": ctx.user.id,
        "order_no": values.get("order_no"), "kind": kind,
        "account_no": values.get("account_no"),
        "customer_id": customer.id if customer else None,
        "customer_name": values.get("customer_name") or (customer.name if customer else None),
        "customer_phone": values.get("customer_phone"), "accepted_at": iso(accepted),
        "content": values["content"], "ruleset": rules.name,
        "contact_due": iso(contact.due) if contact else None,
        "reply_due": iso(reply.due) if reply else None,
        "provisional": int(provisional), "created_at": iso(ctx.now)})
    rt.plan_ladders_into(batch, SUBJECT, ref, ctx.user.team_id, ctx.user.id, [
        planning.ladder(step, accepted, deadline.due)
        for step, deadline in (("contact", contact), ("reply", reply)) if deadline is not None],
        ctx.now)

    async def saved(cid: int | None) -> Saved:
        assert cid is not None
        lines = [ctx.t("complaint.saved", id=cid, kind=ctx.t(f"complaint.kind.{kind}"))]
        if contact:
            lines.append(ctx.t("complaint.contact_by", when=when(ctx, contact.due),
                               rule=contact.rule.label(ctx.locale)))
        if reply:
            lines.append(ctx.t("complaint.reply_by", when=when(ctx, reply.due),
                               rule=reply.rule.label(ctx.locale)))
        if provisional:
            lines.append(ctx.t("deadline.provisional"))
        if values.get("account_no") and customer is None:
            lines.append(ctx.t("complaint.not_in_register", account=values["account_no"]))
        return COMPLAINTS.saved(ctx, cid, "\n".join(lines))

    return Writing(batch, ref, saved)


COMPLAINT = router.form(FormSpec(
    name="complaint",
    title="form.complaint.title",
    fields=(
        Field("order_no", "field.order_no", "form.complaint.order_no", Kind.TEXT,
              required=False, parse=cb.parse_order_no),
        kinds.named("kind", "field.complaint_kind", "form.complaint.kind", COMPLAINT_TYPES,
                    "complaint.kind.{}"),
        kinds.account_no("account_no", "field.account_no", "form.complaint.account_no",
                         required=False, show=show_account, fills=fill_from_register),
        kinds.text("customer_name", "field.customer_name", "form.complaint.customer_name",
                   required=False),
        kinds.phone("customer_phone", "field.phone", "form.complaint.customer_phone",
                    required=False),
        rt.time_field("accepted_at", "field.accepted_at", "form.complaint.accepted_at",
                      hint="form.worklog.time.hint"),
        kinds.text("content", "field.complaint_content", "form.complaint.content"),
        # Offered on the summary, not asked: the sentence, the 户号's register entry or the
        # manager's only 台区 usually settle it.
        Field("area", "field.area", "form.complaint.area", Kind.CHOICE, required=False,
              choices=area_choices, show=show_area),
    ),
    save=None,
    write=write_complaint,
    quick={"now": now_value},
    extras=("area",),
))


async def complaint_area(ctx: Ctx, chosen: str | None,
                         customer: Customer | None) -> int | None:
    """The 台区 picked or named, else the customer's on file, else the manager's only one."""
    if chosen:
        return int(chosen)
    if customer is not None:
        return customer.area_id
    mine = await ctx.areas()
    return mine[0].id if len(mine) == 1 else None


async def prefill(ctx: Ctx, rest: str) -> tuple[dict[str, Any], dict[str, str]]:
    """'3号台区 工单号 2026112700123 电压低' -> 台区, 工单号 and the content."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    order_no, notice, s = await cb.take_order_no(ctx, rest)
    if order_no:
        values["order_no"] = order_no
    elif notice:
        notices["order_no"] = notice
    s = await take_area_into(ctx, s, values, notices)
    content = " ".join(s.split())
    if content:
        with contextlib.suppress(Invalid):  # refused: asked for at its own step
            values["content"] = await parse_text(content, ctx)
    return values, notices


# --- first contact and reply ----------------------------------------------------------
async def method_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(m, ctx.t(f"complaint.method.{m}")) for m in CONTACT_METHODS]


async def show_method(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t(f"complaint.method.{value}")


async def write_contact(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Writing:
    """The first contact with the form's close in one round trip, from the complaint as
    kept with the form."""
    rec = await COMPLAINTS.kept(ctx, meta)
    at = value_time(values["contacted_at"])
    if at < rec.accepted_at:
        raise Invalid("complaint.before_accepted")
    batch = Batch()
    # Contact recorded after the reply (closed) leaves the status alone.
    batch.execute(
        "UPDATE complaints SET contacted_at = ?, contact_method = ?, updated_at = ?, "
        "status = CASE WHEN status = 'open' THEN 'contacted' ELSE status END WHERE id = ?",
        (iso(at), values["method"], iso(ctx.now), rec.id))
    Reminders.cancel_into(batch, SUBJECT, rec.id, "contact.")

    async def saved(_: int | None) -> Saved:
        return COMPLAINTS.saved(ctx, rec.id, ctx.t("complaint.contacted", id=rec.id) + " "
                                + rt.on_time(ctx, at, rec.contact_due))

    return Writing(batch, rec.id, saved)


async def write_reply(ctx: Ctx, values: dict[str, Any], token: str,
                      meta: dict[str, Any]) -> Writing:
    """The reply closes the complaint once (the call-back then planned, once) with the
    form's close in one round trip, from the complaint as kept with the form."""
    rec = await COMPLAINTS.kept(ctx, meta)
    at = value_time(values["replied_at"])
    if at < rec.accepted_at:
        raise Invalid("complaint.before_accepted")
    callback_due = await cb.due_after_close(ctx, max(at, ctx.now))
    batch = Batch()
    replied = batch.update(
        "UPDATE complaints SET replied_at = ?, reply_result = ?, status = 'closed', "
        "contacted_at = coalesce(contacted_at, ?), updated_at = ?, callback_due = ? "
        "WHERE id = ? AND status != 'closed'",
        (iso(at), values["result"], iso(at), iso(ctx.now), iso(callback_due), rec.id), rec.id)
    Reminders.cancel_into(batch, SUBJECT, rec.id)
    cb.plan_into(batch, SUBJECT, rec, callback_due, ctx.user.id, ctx.now, replied)

    async def saved(_: int | None) -> Saved:
        text = ctx.t("complaint.closed", id=rec.id) + " " + rt.on_time(ctx, at, rec.reply_due)
        if not batch.changed(replied):
            return COMPLAINTS.saved(ctx, rec.id, text)
        # The call-back is one tap away, on the very message.
        return Saved(text + "\n" + cb.planned_line(ctx, callback_due),
                     [[COMPLAINTS.open_button(ctx, rec.id),
                       COMPLAINTS.action("cplb").button(ctx, rec.id)]], record_id=rec.id)

    return Writing(batch, rec.id, saved)


CONTACT = rt.action_form(
    "complaint_contact", None,
    rt.time_field("contacted_at", "field.contacted_at", "form.complaint_contact.at"),
    Field("method", "field.contact_method", "form.complaint_contact.method", Kind.CHOICE,
          choices=method_choices, show=show_method), write=write_contact)
REPLY = rt.action_form(
    "complaint_reply", None,
    rt.time_field("replied_at", "field.replied_at", "form.complaint_reply.at"),
    kinds.text("result", "field.reply_result", "form.complaint_reply.result"), write=write_reply)


# --- card -----------------------------------------------------------------------------
def title(ctx: Ctx, rec: Complaint) -> str:
    who = rec.customer_name or rec.account_no or ""
    return ctx.t("complaint.title", id=rec.id, kind=ctx.t(f"complaint.kind.{rec.kind}"),
                 who=f"（{who}）" if who and ctx.locale == "zh_CN" else f" ({who})" if who else "")


async def render_card(ctx: Ctx, rec: Complaint, heading: str | None = None) -> Outcome:
    lines = [title(ctx, rec), ctx.t(complaint_status(rec.status))]
    if rec.order_no:
        lines.append(rt.field_line(ctx, "field.order_no", rec.order_no))
    if rec.area_name:
        lines.append(rt.field_line(ctx, "field.area", rec.area_name))
    lines += [rt.field_line(ctx, "field.owner", rec.owner),
              rt.field_line(ctx, "field.accepted_at", when(ctx, rec.accepted_at)),
              rt.field_line(ctx, "field.complaint_content", rec.content)]
    for step, done in (("contact", rec.contacted_at), ("reply", rec.replied_at)):
        due = rec.due(step)
        if due:
            lines.append(rt.deadline_line(ctx, f"field.{step}_due", due, done,
                                          "complaint.done_at"))
    if rec.reply_result:
        lines.append(rt.field_line(ctx, "field.reply_result", rec.reply_result))
    lines += cb.card_lines(ctx, rec)
    if rec.provisional:
        lines.append(ctx.t("deadline.provisional"))
    buttons = await COMPLAINTS.allowed(ctx, rec)
    return Outcome().add("\n".join(lines), [buttons] if buttons else [])


# --- reminders ------------------------------------------------------------------------
def todo_reads(ctx: Ctx) -> list[Read]:
    return [STORE.open_read(ctx, "c.status != 'closed'"), cb.todo_read(ctx, COMPLAINTS, "c")]


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    items = []
    for rec in STORE.records(rows[0]):
        step = "contact" if rec.status == "open" and rec.contact_due else "reply"
        due = rec.due(step)
        if due is None:
            continue
        items.append(COMPLAINTS.todo_item(
            ctx, rec, due, ctx.t("todo.complaint", item=title(ctx, rec),
                                 what=ctx.t(f"complaint.step.{step}"), due=when(ctx, due),
                                 left=remaining(ctx, due)),
            f"#{rec.id} " + ctx.t(f"complaint.kind.{rec.kind}")))
    return items + cb.todo_items(ctx, COMPLAINTS, rows[1])


async def write_callback(ctx: Ctx, values: dict[str, Any], token: str,
                         meta: dict[str, Any]) -> Writing:
    return cb.write_result(ctx, COMPLAINTS, await COMPLAINTS.kept(ctx, meta), values)


async def other_reminders(ctx: Ctx, r: Reminder, rec: Complaint) -> Reply | None:
    return await cb.lead_alert(ctx, COMPLAINTS, r, rec)


CALLBACK = cb.result_form("complaint_callback", write_callback)


COMPLAINTS = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="cpl", not_found="complaint.not_found",
    meta_key="complaint_id", title=title, render_card=render_card,
    transitions=(
        rt.Transition("cplc", "btn.contacted", ("open",), CONTACT, "cc",
                      "complaint.contact_heading"),
        rt.Transition("cplr", "btn.replied", ("open", "contacted"), REPLY, "cr",
                      "complaint.reply_heading"),
        cb.transition("cplb", CALLBACK, "cb"),
    ),
    form=COMPLAINT, command="complaint", intent=_INTENT, prefill=prefill,
    ladders=(
        rt.Ladder("contact", "complaint.step.contact", lambda c: c.contact_due,
                  lambda c: c.status == "closed" or c.contacted_at is not None, ("cplc",),
                  drop_late_soon=False),
        rt.Ladder("reply", "complaint.step.reply", lambda c: c.reply_due,
                  lambda c: c.status == "closed", ("cplr",), drop_late_soon=False),
        cb.ladder("cplb"),
    ),
    other_reminders=other_reminders, todo_items=TodoRead(todo_reads, todo),
    after_sent=rt.daily_while_overdue(SUBJECT)).register(router)
# 回访 over complaints and repairs alike: one section, its figures per manager and 台区.
router.report_section(cb.REPORT)
