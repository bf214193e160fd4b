"""投诉 / 95598 工单: register, first contact, reply; deadlines from the rule set; reminders
half-way, 2 working hours before, at due, then daily while overdue, escalated to the lead."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from bot.conversations.customer import parse_account_no, parse_phone
from bot.conversations.engine import FormSpec, Saved
from bot.conversations.fields import Field, Invalid, Kind
from bot.conversations.matching import Choice
from bot.conversations.worklog import parse_text, parse_when
from bot.deadlines import (
    COMPLAINT_TYPES,
    due_after,
    halfway,
    next_working_start,
    working_hours_before,
)
from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback
from bot.records.common import (
    calendar,
    leads,
    now_value,
    remaining,
    ruleset,
    show_time,
    value_time,
    when,
)
from bot.registry import REGISTRY, ReminderKind, TodoItem
from bot.services import Ctx, Services
from bot.storage.conversations import Draft
from bot.storage.db import Row, Tx, from_iso, iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input
from bot.workcal import WorkCalendar

if TYPE_CHECKING:
    from bot.assistant import Assistant

SUBJECT = "complaint"
_INTENT = re.compile(r"^(登记投诉|投诉登记|登记工单|95598工单|新工单|登记95598)\s*(.*)$")
CONTACT_METHODS = ("phone", "visit", "sms", "wechat")


# --- storage --------------------------------------------------------------------------
async def get(ctx: Ctx, complaint_id: int) -> Row | None:
    """The complaint if the user may see it: their own, or the team's for a lead."""
    row = await ctx.services.db.fetchone("SELECT c.*, u.name AS owner FROM complaints c "
                                         "JOIN users u ON u.id = c.user_id WHERE c.id = ?",
                                         (complaint_id,))
    if row is None or row["team_id"] != ctx.user.team_id:
        return None
    if not ctx.user.sees_whole_team and row["user_id"] != ctx.user.id:
        return None
    return row


# --- the registration form ------------------------------------------------------------
async def kind_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(k, ctx.t(f"complaint.kind.{k}")) for k in COMPLAINT_TYPES]


async def show_kind(value: str, ctx: Ctx) -> str:
    return ctx.t(f"complaint.kind.{value}")


async def parse_order_no(text: str, ctx: Ctx) -> str:
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
    team_leads = [u.id for u in await leads(services, ctx.user.team_id) if u.id != ctx.user.id]
    async with services.db.tx() as tx:
        existing = await tx.fetchone("SELECT id FROM complaints WHERE form_token = ?",
                                     (token,))
        if existing:  # the same confirm processed twice (crash before the draft was closed)
            cid = int(existing["id"])
        else:
            cid = int(await tx.execute(
                "INSERT INTO complaints(team_id, user_id, order_no, kind, account_no, "
                "customer_id, customer_name, customer_phone, accepted_at, content, ruleset, "
                "contact_due, reply_due, provisional, form_token, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ctx.user.team_id, ctx.user.id, values.get("order_no"), kind,
                 values.get("account_no"), customer.id if customer else None,
                 values.get("customer_name") or (customer.name if customer else None),
                 values.get("customer_phone"), iso(accepted), values["content"], rules.name,
                 iso(contact.due) if contact else None, iso(reply.due) if reply else None,
                 int(provisional), token, iso(ctx.now))) or 0)
            await plan_reminders(ctx, tx, cid, accepted, contact.due if contact else None,
                                 reply.due if reply else None, cal, team_leads)
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
    return Saved("\n".join(lines), card_buttons(ctx, cid), record_id=cid)


def card_buttons(ctx: Ctx, cid: int) -> list[list[Button]]:
    return [[Button(ctx.t("btn.open_item"), callback(GLOBAL_TOKEN, "cpl", cid))]]


async def plan_reminders(ctx: Ctx, tx: Tx, cid: int, accepted: datetime,
                         contact_due: datetime | None, reply_due: datetime | None,
                         cal: WorkCalendar, lead_ids: list[int]) -> None:
    """Half-way, N working hours before, at due (to the manager), and escalation to leads."""
    rules = ruleset(ctx.services)
    lead_time = rules.reminders.complaint_before_due_working_hours
    now = ctx.now
    for step, due in (("contact", contact_due), ("reply", reply_due)):
        if due is None:
            continue
        moments = {
            "half": halfway(accepted, due, cal, rules.working_hours),
            "soon": working_hours_before(due, lead_time, cal, rules.working_hours),
            "due": due,
        }
        for label, at in moments.items():
            if label != "due" and at <= now:
                continue  # already past when registered: the due one still comes
            await Reminders.plan(tx, team_id=ctx.user.team_id, user_id=ctx.user.id,
                                 subject=SUBJECT, subject_id=cid, kind=f"{step}.{label}",
                                 due_at=max(at, now), now=now)
        for lead_id in lead_ids:
            await Reminders.plan(tx, team_id=ctx.user.team_id, user_id=lead_id,
                                 subject=SUBJECT, subject_id=cid, kind=f"{step}.escalate",
                                 due_at=max(due, now), now=now)


COMPLAINT = REGISTRY.form(FormSpec(
    name="complaint",
    title="form.complaint.title",
    fields=(
        Field("order_no", "field.order_no", "form.complaint.order_no", Kind.TEXT,
              required=False, parse=parse_order_no),
        Field("kind", "field.complaint_kind", "form.complaint.kind", Kind.CHOICE,
              choices=kind_choices, show=show_kind),
        Field("account_no", "field.account_no", "form.complaint.account_no", Kind.TEXT,
              required=False, parse=parse_account_no),
        Field("customer_name", "field.customer_name", "form.complaint.customer_name",
              Kind.TEXT, required=False, parse=parse_text),
        Field("customer_phone", "field.phone", "form.complaint.customer_phone", Kind.TEXT,
              required=False, parse=parse_phone),
        Field("accepted_at", "field.accepted_at", "form.complaint.accepted_at", Kind.TIME,
              parse=parse_when, show=show_time, hint="form.worklog.time.hint",
              quick=("now",)),
        Field("content", "field.complaint_content", "form.complaint.content", Kind.TEXT,
              parse=parse_text),
    ),
    save=save_complaint,
    quick={"now": now_value},
))


# --- first contact and reply ----------------------------------------------------------
async def method_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(m, ctx.t(f"complaint.method.{m}")) for m in CONTACT_METHODS]


async def show_method(value: str, ctx: Ctx) -> str:
    return ctx.t(f"complaint.method.{value}")


async def save_contact(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Saved:
    cid = int(meta["complaint_id"])
    row = await get(ctx, cid)
    if row is None:
        raise Invalid("complaint.not_found")
    at = value_time(values["contacted_at"])
    if at < from_iso(row["accepted_at"]):
        raise Invalid("complaint.before_accepted")
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE complaints SET contacted_at = ?, contact_method = ?, updated_at = ?, "
            "status = CASE WHEN status = 'open' THEN 'contacted' ELSE status END WHERE id = ?",
            (iso(at), values["method"], iso(ctx.now), cid))
        await Reminders.cancel(tx, SUBJECT, cid, "contact.")
    on_time = row["contact_due"] is None or at <= from_iso(row["contact_due"])
    return Saved(ctx.t("complaint.contacted", id=cid) + " " +
                 ctx.t("deadline.on_time" if on_time else "deadline.late"), card_buttons(ctx, cid),
                 record_id=cid)


async def save_reply(ctx: Ctx, values: dict[str, Any], token: str,
                     meta: dict[str, Any]) -> Saved:
    cid = int(meta["complaint_id"])
    row = await get(ctx, cid)
    if row is None:
        raise Invalid("complaint.not_found")
    at = value_time(values["replied_at"])
    if at < from_iso(row["accepted_at"]):
        raise Invalid("complaint.before_accepted")
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE complaints SET replied_at = ?, reply_result = ?, status = 'closed', "
            "contacted_at = COALESCE(contacted_at, ?), updated_at = ? WHERE id = ?",
            (iso(at), values["result"], iso(at), iso(ctx.now), cid))
        await Reminders.cancel(tx, SUBJECT, cid)
    on_time = row["reply_due"] is None or at <= from_iso(row["reply_due"])
    return Saved(ctx.t("complaint.closed", id=cid) + " " +
                 ctx.t("deadline.on_time" if on_time else "deadline.late"), card_buttons(ctx, cid),
                 record_id=cid)


CONTACT = REGISTRY.form(FormSpec(
    name="complaint_contact", title="form.complaint_contact.title",
    fields=(
        Field("contacted_at", "field.contacted_at", "form.complaint_contact.at", Kind.TIME,
              parse=parse_when, show=show_time, quick=("now",)),
        Field("method", "field.contact_method", "form.complaint_contact.method", Kind.CHOICE,
              choices=method_choices, show=show_method),
    ),
    save=save_contact, quick={"now": now_value}))

REPLY = REGISTRY.form(FormSpec(
    name="complaint_reply", title="form.complaint_reply.title",
    fields=(
        Field("replied_at", "field.replied_at", "form.complaint_reply.at", Kind.TIME,
              parse=parse_when, show=show_time, quick=("now",)),
        Field("result", "field.reply_result", "form.complaint_reply.result", Kind.TEXT,
              parse=parse_text),
    ),
    save=save_reply, quick={"now": now_value}))


# --- card -----------------------------------------------------------------------------
def _title(ctx: Ctx, row: Row) -> str:
    who = row["customer_name"] or row["account_no"] or ""
    return ctx.t("complaint.title", id=row["id"], kind=ctx.t(f"complaint.kind.{row['kind']}"),
                 who=f"（{who}）" if who and ctx.locale == "zh_CN" else f" ({who})" if who else "")


async def card(ctx: Ctx, cid: int) -> Outcome:
    row = await get(ctx, cid)
    if row is None:
        return Outcome().add(ctx.t("complaint.not_found"))
    sep = "：" if ctx.locale == "zh_CN" else ": "
    lines = [_title(ctx, row), ctx.t(f"complaint.status.{row['status']}")]
    if row["order_no"]:
        lines.append(ctx.t("field.order_no") + sep + row["order_no"])
    lines.append(ctx.t("field.owner") + sep + row["owner"])
    lines.append(ctx.t("field.accepted_at") + sep + when(ctx, row["accepted_at"]))
    lines.append(ctx.t("field.complaint_content") + sep + row["content"])
    if row["contact_due"]:
        done = row["contacted_at"]
        lines.append(ctx.t("field.contact_due") + sep + when(ctx, row["contact_due"]) + " · " + (
            ctx.t("complaint.done_at", when=when(ctx, done)) if done
            else remaining(ctx, row["contact_due"])))
    if row["reply_due"]:
        done = row["replied_at"]
        lines.append(ctx.t("field.reply_due") + sep + when(ctx, row["reply_due"]) + " · " + (
            ctx.t("complaint.done_at", when=when(ctx, done)) if done
            else remaining(ctx, row["reply_due"])))
    if row["reply_result"]:
        lines.append(ctx.t("field.reply_result") + sep + row["reply_result"])
    if row["provisional"]:
        lines.append(ctx.t("deadline.provisional"))
    buttons: list[Button] = []
    if row["status"] == "open":
        buttons.append(Button(ctx.t("btn.contacted"), callback(GLOBAL_TOKEN, "cplc", cid)))
    if row["status"] != "closed":
        buttons.append(Button(ctx.t("btn.replied"), callback(GLOBAL_TOKEN, "cplr", cid)))
    return Outcome().add("\n".join(lines), [buttons] if buttons else [])


# --- reminders ------------------------------------------------------------------------
async def render(ctx: Ctx, r: Reminder) -> Reply | None:
    row = await ctx.services.db.fetchone(
        "SELECT c.*, u.name AS owner FROM complaints c JOIN users u ON u.id = c.user_id "
        "WHERE c.id = ?", (r.subject_id,))
    step, label = r.kind.split(".", 1)
    if row is None or row["status"] == "closed" or (step == "contact" and row["contacted_at"]):
        return None
    due = row[f"{step}_due"]
    what = ctx.t(f"complaint.step.{step}")
    title = _title(ctx, row)
    if label == "escalate" or label == "overdue_lead":
        text = ctx.t("reminder.escalate", owner=row["owner"], item=title, what=what,
                     due=when(ctx, due), late=remaining(ctx, due))
    elif label in ("due", "overdue"):
        text = ctx.t("reminder.overdue", item=title, what=what, due=when(ctx, due),
                     late=remaining(ctx, due))
    else:
        text = ctx.t("reminder.soon", item=title, what=what, due=when(ctx, due),
                     left=remaining(ctx, due))
    action = ("cplc", "btn.contacted") if step == "contact" else ("cplr", "btn.replied")
    return Reply(text, [[Button(ctx.t("btn.open_item"), callback(GLOBAL_TOKEN, "cpl", row["id"])),
                         Button(ctx.t(action[1]), callback(GLOBAL_TOKEN, action[0], row["id"]))]])


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
    scope = "team_id = ?" if ctx.user.sees_whole_team else "user_id = ?"
    rows = await ctx.services.db.fetchall(
        f"SELECT * FROM complaints WHERE {scope} AND status != 'closed'",
        (ctx.user.team_id if ctx.user.sees_whole_team else ctx.user.id,))
    items = []
    for row in rows:
        step = "contact" if row["status"] == "open" and row["contact_due"] else "reply"
        due = row[f"{step}_due"]
        if due is None:
            continue
        due_at = from_iso(due)
        items.append(TodoItem(
            due=due_at.astimezone(ctx.tz),
            text=ctx.t("todo.complaint", item=_title(ctx, row),
                       what=ctx.t(f"complaint.step.{step}"), due=when(ctx, due),
                       left=remaining(ctx, due)),
            button=Button(f"#{row['id']} " + ctx.t(f"complaint.kind.{row['kind']}"),
                          callback(GLOBAL_TOKEN, "cpl", row["id"])),
            overdue=due_at <= ctx.now))
    return items


REGISTRY.reminder_kind(SUBJECT, ReminderKind(render=render, after_sent=after_sent, todo=todo))


# --- wiring ---------------------------------------------------------------------------
@REGISTRY.command("complaint")
async def complaint_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.open_form(ctx, draft, COMPLAINT.name)


@REGISTRY.intent
async def complaint_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    if _INTENT.match(normalize_input(text)) is None:
        return None
    return await app.open_form(ctx, None, COMPLAINT.name)


@REGISTRY.button("cpl")
async def open_card(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await card(ctx, int(arg)) if arg.isdigit() else Outcome(toast=ctx.t("button.stale"))


async def _open_action(app: Assistant, ctx: Ctx, cid: int, form: FormSpec,
                       heading_key: str, allowed: tuple[str, ...]) -> Outcome:
    row = await get(ctx, cid)
    if row is None:
        return Outcome().add(ctx.t("complaint.not_found"))
    if row["status"] not in allowed:
        return await card(ctx, cid)
    return await app.engine.start(ctx, form.name, meta={"complaint_id": cid},
                                  heading=ctx.t(heading_key, item=_title(ctx, row)))


@REGISTRY.opener("cc")
async def open_contact(app: Assistant, ctx: Ctx, cid: int) -> Outcome:
    return await _open_action(app, ctx, cid, CONTACT, "complaint.contact_heading", ("open",))


@REGISTRY.opener("cr")
async def open_reply(app: Assistant, ctx: Ctx, cid: int) -> Outcome:
    return await _open_action(app, ctx, cid, REPLY, "complaint.reply_heading",
                              ("open", "contacted"))


REGISTRY.opener_button("cplc", "cc")
REGISTRY.opener_button("cplr", "cr")
