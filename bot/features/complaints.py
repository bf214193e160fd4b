"""投诉 / 95598 工单: register, first contact, reply; deadlines from the rule set; reminders
half-way, 2 working hours before, at due, then daily while overdue, escalated to the lead."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from bot.deadlines import COMPLAINT_TYPES, due_after, halfway, next_working_start
from bot.deadlines import working_hours_before as before
from bot.events import Outcome
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.matching import Choice
from bot.records import runtime as rt
from bot.records.common import (
    calendar,
    fill_from_register,
    now_value,
    remaining,
    ruleset,
    show_account,
    value_time,
    when,
)
from bot.router import Router, TodoItem
from bot.services import Ctx, Services
from bot.statuses import complaint_status
from bot.storage.db import iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input

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

    def due(self, step: str) -> datetime | None:
        return self.contact_due if step == "contact" else self.reply_due


STORE = rt.Store(Complaint, "complaints", "SELECT c.*, u.name AS owner FROM complaints c "
              "JOIN users u ON u.id = c.user_id", "c")


# --- the registration form ------------------------------------------------------------
async def kind_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(k, ctx.t(f"complaint.kind.{k}")) for k in COMPLAINT_TYPES]


async def show_kind(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t(f"complaint.kind.{value}")


async def parse_order_no(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    value = normalize_input(text).replace(" ", "")
    if not re.fullmatch(r"[0-9A-Za-z\-_]{4,40}", value):
        raise Invalid("complaint.order_no.invalid", text=text)
    return value


async def save_complaint(ctx: Ctx, values: dict[str, Any], token: str,
                         meta: dict[str, Any]) -> Saved:
    services = ctx.services
    rules = ruleset(services)
    cal = await calendar(services)
    kind = values["kind"]
    accepted = value_time(values["accepted_at"]).astimezone(ctx.tz)
    group = rules.complaint(kind)
    hours = rules.working_hours
    contact = due_after(accepted, group.contact, cal, hours) if group.contact else None
    reply = due_after(accepted, group.reply, cal, hours) if group.reply else None
    provisional = bool((contact and contact.provisional) or (reply and reply.provisional))
    customer = None
    if values.get("account_no"):
        customer = await services.customers.by_account(ctx.user.team_id, values["account_no"])
    team_leads = await rt.other_leads(services, ctx.user.team_id, ctx.user.id)
    async with services.db.tx() as tx:
        cid, new = await STORE.insert_once(tx, token, {
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
        lead_time = rules.reminders.complaint_before_due_working_hours
        for step, deadline in (("contact", contact), ("reply", reply)):
            if new and deadline is not None:  # half-way, N working hours before, at due
                due = deadline.due
                await rt.plan_ladder(tx, SUBJECT, cid, ctx.user.team_id, ctx.user.id, step, [
                    rt.Rung("half", halfway(accepted, due, cal, hours)),
                    rt.Rung("soon", before(due, lead_time, cal, hours)),
                    rt.Rung("due", due, skip_if_past=False),
                    rt.Rung("escalate", due, to_leads=True, skip_if_past=False)],
                    team_leads, ctx.now)
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


COMPLAINT = router.form(FormSpec(
    name="complaint",
    title="form.complaint.title",
    fields=(
        Field("order_no", "field.order_no", "form.complaint.order_no", Kind.TEXT,
              required=False, parse=parse_order_no),
        Field("kind", "field.complaint_kind", "form.complaint.kind", Kind.CHOICE,
              choices=kind_choices, show=show_kind),
        kinds.account_no("account_no", "field.account_no", "form.complaint.account_no",
                         required=False, show=show_account, fills=fill_from_register),
        kinds.text("customer_name", "field.customer_name", "form.complaint.customer_name",
                   required=False),
        kinds.phone("customer_phone", "field.phone", "form.complaint.customer_phone",
                    required=False),
        rt.time_field("accepted_at", "field.accepted_at", "form.complaint.accepted_at",
                      hint="form.worklog.time.hint"),
        kinds.text("content", "field.complaint_content", "form.complaint.content"),
    ),
    save=save_complaint,
    quick={"now": now_value},
))


# --- first contact and reply ----------------------------------------------------------
async def method_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(m, ctx.t(f"complaint.method.{m}")) for m in CONTACT_METHODS]


async def show_method(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t(f"complaint.method.{value}")


async def save_contact(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Saved:
    rec = await COMPLAINTS.record(ctx, meta)
    at = value_time(values["contacted_at"])
    if at < rec.accepted_at:
        raise Invalid("complaint.before_accepted")
    async with ctx.services.db.tx() as tx:
        await STORE.update(tx, rec.id, {
            "contacted_at": iso(at), "contact_method": values["method"],
            "updated_at": iso(ctx.now)})
        # Contact recorded after the reply (closed) leaves the status alone.
        await STORE.update(tx, rec.id, {"status": "contacted"}, "status = 'open'")
        await Reminders.cancel(tx, SUBJECT, rec.id, "contact.")
    return COMPLAINTS.saved(ctx, rec.id, ctx.t("complaint.contacted", id=rec.id) + " "
                            + rt.on_time(ctx, at, rec.contact_due))


async def save_reply(ctx: Ctx, values: dict[str, Any], token: str,
                     meta: dict[str, Any]) -> Saved:
    rec = await COMPLAINTS.record(ctx, meta)
    at = value_time(values["replied_at"])
    if at < rec.accepted_at:
        raise Invalid("complaint.before_accepted")
    async with ctx.services.db.tx() as tx:
        await STORE.update(tx, rec.id, {
            "replied_at": iso(at), "reply_result": values["result"], "status": "closed",
            "contacted_at": iso(rec.contacted_at or at), "updated_at": iso(ctx.now)})
        await Reminders.cancel(tx, SUBJECT, rec.id)
    return COMPLAINTS.saved(ctx, rec.id, ctx.t("complaint.closed", id=rec.id) + " "
                            + rt.on_time(ctx, at, rec.reply_due))


CONTACT = rt.action_form(
    "complaint_contact", save_contact,
    rt.time_field("contacted_at", "field.contacted_at", "form.complaint_contact.at"),
    Field("method", "field.contact_method", "form.complaint_contact.method", Kind.CHOICE,
          choices=method_choices, show=show_method))
REPLY = rt.action_form(
    "complaint_reply", save_reply,
    rt.time_field("replied_at", "field.replied_at", "form.complaint_reply.at"),
    kinds.text("result", "field.reply_result", "form.complaint_reply.result"))


# --- card -----------------------------------------------------------------------------
def title(ctx: Ctx, rec: Complaint) -> str:
    who = rec.customer_name or rec.account_no or ""
    return ctx.t("complaint.title", id=rec.id, kind=ctx.t(f"complaint.kind.{rec.kind}"),
                 who=f"（{who}）" if who and ctx.locale == "zh_CN" else f" ({who})" if who else "")


async def render_card(ctx: Ctx, rec: Complaint, heading: str | None = None) -> Outcome:
    lines = [title(ctx, rec), ctx.t(complaint_status(rec.status))]
    if rec.order_no:
        lines.append(rt.field_line(ctx, "field.order_no", rec.order_no))
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
    if rec.provisional:
        lines.append(ctx.t("deadline.provisional"))
    buttons = await COMPLAINTS.allowed(ctx, rec)
    return Outcome().add("\n".join(lines), [buttons] if buttons else [])


# --- reminders ------------------------------------------------------------------------
async def after_sent(services: Services, r: Reminder, now: datetime) -> None:
    """While overdue, remind again once a working day (09:00) until done."""
    step, label = r.kind.split(".", 1)
    if label not in ("due", "overdue", "escalate", "overdue_lead"):
        return
    rules = ruleset(services)
    cal = await calendar(services)
    tz = rules.working_hours.zone
    nxt = next_working_start(now.astimezone(tz) + timedelta(hours=12), cal, rules.working_hours)
    nxt = nxt.replace(hour=max(nxt.hour, 9), minute=0) if nxt.time() < time(9) else nxt
    repeat = "overdue" if label in ("due", "overdue") else "overdue_lead"
    async with services.db.tx() as tx:
        await Reminders.plan(tx, team_id=r.team_id, user_id=r.user_id, subject=SUBJECT,
                             subject_id=r.subject_id, kind=f"{step}.{repeat}", due_at=nxt,
                             now=now, key=f"{SUBJECT}:{r.subject_id}:{step}.{repeat}:"
                             f"{r.user_id}:{nxt.date().isoformat()}")


async def todo(ctx: Ctx) -> list[TodoItem]:
    items = []
    for rec in await STORE.open_for(ctx, "c.status != 'closed'"):
        step = "contact" if rec.status == "open" and rec.contact_due else "reply"
        due = rec.due(step)
        if due is None:
            continue
        items.append(COMPLAINTS.todo_item(
            ctx, rec, due, ctx.t("todo.complaint", item=title(ctx, rec),
                                 what=ctx.t(f"complaint.step.{step}"), due=when(ctx, due),
                                 left=remaining(ctx, due)),
            f"#{rec.id} " + ctx.t(f"complaint.kind.{rec.kind}")))
    return items


COMPLAINTS = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="cpl", not_found="complaint.not_found",
    meta_key="complaint_id", title=title, render_card=render_card,
    transitions=(
        rt.Transition("cplc", "btn.contacted", ("open",), CONTACT, "cc",
                      "complaint.contact_heading"),
        rt.Transition("cplr", "btn.replied", ("open", "contacted"), REPLY, "cr",
                      "complaint.reply_heading"),
    ),
    form=COMPLAINT, command="complaint", intent=_INTENT,
    ladders=(
        rt.Ladder("contact", "complaint.step.contact", lambda c: c.contact_due,
                  lambda c: c.status == "closed" or c.contacted_at is not None, ("cplc",),
                  drop_late_soon=False),
        rt.Ladder("reply", "complaint.step.reply", lambda c: c.reply_due,
                  lambda c: c.status == "closed", ("cplr",), drop_late_soon=False),
    ),
    todo_items=todo, after_sent=after_sent).register(router)
