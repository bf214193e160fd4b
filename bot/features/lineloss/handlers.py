"""台区线损 in chat: the line-loss item (opened by an import, detect.py) with its 已核查 form
and the lead's 接受原因, its reminders and /todo lines; `线损 3号台区` (the last days as a chart,
the figures and the open item); the weekly report's section (report.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.events import Attachment, Button, Outcome, Reply
from bot.features.lineloss import detect, report, upload
from bot.features.lineloss.limits import Threshold, limits
from bot.features.worklog.form import resolve_area
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, FormView, Invalid
from bot.forms.matching import Choice
from bot.models import Area
from bot.records import runtime as rt
from bot.records.common import remaining, when
from bot.router import Router, TodoItem, TodoRead, stale_reply
from bot.services import Ctx
from bot.storage.batch import Batch, Unchanged
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input
from bot.vocab import take_area

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.storage.conversations import Draft

router = Router("lineloss")
SUBJECT = detect.SUBJECT
OPEN, CHECKED, CLOSED = "open", "checked", "closed"
# `线损 3号台区`, `线损率 3号台区`, `查线损`: the 台区 alone after it (a sentence with more, such
# as `线损 3号台区 分析了原因`, stays a work-log entry).
_INTENT = re.compile(r"^(线损率|线损情况|线损查询|查线损|查看线损|线损|line ?loss)\s*(.*)$", re.I)


# --- the record -------------------------------------------------------------------------
@dataclass(frozen=True)
class LineLossItem:
    id: int
    team_id: int
    user_id: int
    owner: str
    status: str
    area_id: int
    area_name: str
    area_kind: str
    first_day: str
    last_day: str
    worst_rate: float | None
    opened_at: datetime
    due_at: datetime
    checked_at: datetime | None
    cause: str | None
    note: str | None
    photos: str
    closed_at: datetime | None
    closed_how: str | None
    closed_day: str | None

    @property
    def photo_refs(self) -> list[str]:
        return list(json.loads(self.photos or "[]"))

    @property
    def threshold(self) -> Threshold:
        return limits().threshold(self.area_kind)


STORE = rt.Store(LineLossItem, "lineloss_items",
                 "SELECT i.*, u.name AS owner, a.name AS area_name, a.kind AS area_kind "
                 "FROM lineloss_items i JOIN users u ON u.id = i.user_id "
                 "JOIN areas a ON a.id = i.area_id", "i")


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def band(ctx: Ctx, th: Threshold) -> str:
    return ctx.t("lineloss.band", below=f"{th.below:g}", above=f"{th.above:g}")


def run_days(rec: LineLossItem) -> int:
    return (date.fromisoformat(rec.last_day) - date.fromisoformat(rec.first_day)).days + 1


def title(ctx: Ctx, rec: LineLossItem) -> str:
    return ctx.t("lineloss.title", id=rec.id, area=rec.area_name)


def cause_text(ctx: Ctx, rec: LineLossItem) -> str:
    text = ctx.t(f"lineloss.cause.{rec.cause}") if rec.cause else ""
    return text + (f"（{rec.note}）" if rec.note and ctx.locale == "zh_CN" else
                   f" ({rec.note})" if rec.note else "")


def status_line(ctx: Ctx, rec: LineLossItem) -> str:
    if rec.status == CLOSED:
        return ctx.t(f"lineloss.status.closed_{rec.closed_how or 'normal'}",
                     day=rec.closed_day or "")
    return ctx.t(f"lineloss.status.{rec.status}")


async def render_card(ctx: Ctx, rec: LineLossItem, heading: str | None = None) -> Outcome:
    lines = [heading] if heading else []
    lines += [title(ctx, rec), status_line(ctx, rec),
              rt.field_line(ctx, "field.owner", rec.owner),
              rt.field_line(ctx, "field.lineloss_run", ctx.t(
                  "lineloss.run", first=rec.first_day, last=rec.last_day, days=run_days(rec),
                  worst=pct(rec.worst_rate), band=band(ctx, rec.threshold)))]
    if rec.status == OPEN:
        lines.append(rt.deadline_line(ctx, "field.lineloss_due", rec.due_at, None, ""))
    if rec.cause:
        lines.append(rt.field_line(ctx, "field.lineloss_cause", cause_text(ctx, rec)))
        lines.append(rt.field_line(ctx, "field.lineloss_checked_at", when(ctx, rec.checked_at)))
    if rec.photo_refs:
        lines.append(rt.field_line(ctx, "field.lineloss_photos",
                                   ctx.t("form.photos_count", count=len(rec.photo_refs))))
    buttons = [*await ITEMS.allowed(ctx, rec), area_button(ctx, rec.area_id)]
    out = Outcome().add("\n".join(lines), [buttons])
    out.replies[0].photos = rec.photo_refs
    return out


# --- 已核查 and 接受原因 ----------------------------------------------------------------------
async def cause_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(c, ctx.t(f"lineloss.cause.{c}")) for c in limits().causes]


async def show_cause(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t(f"lineloss.cause.{value}")


async def write_checked(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Writing:
    """已核查 as writes with the form's close, in one round trip: the item checked once (still
    open: else nothing is written and the user told), the owner's ladder stopped, the
    leads told; whether there is a lead to tell is read with the writes."""
    rec = await ITEMS.kept(ctx, meta)
    batch = Batch()
    checked = batch.update(
        "UPDATE lineloss_items SET status = ?, checked_at = ?, checked_by = ?, cause = ?, "
        "note = ?, photos = ?, updated_at = ? WHERE id = ? AND status = 'open'",
        (CHECKED, iso(ctx.now), ctx.user.id, values["cause"], values.get("note") or None,
         json.dumps(list(values.get("photos") or [])), iso(ctx.now), rec.id), rec.id,
        needed=True)
    Reminders.cancel_into(batch, SUBJECT, rec.id, "check.", "opened.")
    rt.plan_ladders_into(batch, SUBJECT, rec.id, rec.team_id, rec.user_id, [
        ("review", [rt.Rung("notice", ctx.now, to_leads=True, skip_if_past=False)])],
        ctx.now, round_=iso(ctx.now), leads_but=(ctx.user.id,), if_new=checked)
    has_lead = batch.read(rt.HAS_OTHER_LEAD, (rec.team_id, ctx.user.id))

    async def saved(_: int | None) -> Saved:
        key = "lineloss.checked" if has_lead.value else "lineloss.checked_no_lead"
        return ITEMS.saved(ctx, rec.id, ctx.t(key, id=rec.id, cause=ctx.t(
            f"lineloss.cause.{values['cause']}")))

    return Writing(batch, None, saved, Invalid("lineloss.not_open", id=rec.id))


CHECK = FormSpec(
    name="lineloss_check", title="form.lineloss_check.title", fields=(
        kinds.choice("cause", "field.lineloss_cause", "form.lineloss_check.cause",
                     cause_choices, show=show_cause),
        kinds.text("note", "field.lineloss_note", "form.lineloss_check.note", required=False),
        kinds.photos("photos", "field.lineloss_photos", "form.lineloss_check.photos",
                     required=False)),
    save=None, write=write_checked, quick={})


def may_accept(ctx: Ctx, rec: LineLossItem) -> bool:
    return rec.status == CHECKED and ctx.user.sees_whole_team


async def accept(ctx: Ctx, rec: LineLossItem) -> Outcome:
    """The lead accepts the cause: the item closes (the run it followed opens no other). The
    card after it is the record as read and changed: nothing read back."""
    if not may_accept(ctx, rec):
        return await render_card(ctx, rec)
    batch = Batch()
    detect.close_into(batch, rec.id, rec.team_id, rec.user_id, "accepted", ctx.now,
                      accepted_by=ctx.user.id, needed=True)
    try:
        await ctx.services.db.write_batch(batch)
    except Unchanged:  # closed meanwhile (a second tap): show it as it is now
        return await ITEMS.card(ctx, rec.id)
    closed = dataclasses.replace(rec, status=CLOSED, closed_how="accepted", closed_at=ctx.now,
                                 closed_day=None)
    return await render_card(ctx, closed, ctx.t("lineloss.accepted", id=rec.id))


# --- reminders and to-do ------------------------------------------------------------------
async def notices(ctx: Ctx, r: Reminder, rec: LineLossItem) -> Reply | None:
    """The owner's notice when an item opens or closes, the leads' when it is checked; None
    once the item has moved on."""
    step = r.kind.partition(".")[0]
    if step == "opened" and rec.status == OPEN:
        text = ctx.t("lineloss.opened_notice", area=rec.area_name, id=rec.id,
                     days=run_days(rec), first=rec.first_day, last=rec.last_day,
                     worst=pct(rec.worst_rate), band=band(ctx, rec.threshold),
                     due=when(ctx, rec.due_at), left=remaining(ctx, rec.due_at))
        return Reply(text, [[ITEMS.open_button(ctx, rec.id), check_button(ctx, rec.id),
                             area_button(ctx, rec.area_id)]])
    if step == "review" and rec.status == CHECKED:
        text = ctx.t("lineloss.review_notice", owner=rec.owner, item=title(ctx, rec),
                     cause=cause_text(ctx, rec), days=run_days(rec), first=rec.first_day,
                     last=rec.last_day, worst=pct(rec.worst_rate))
        reply = Reply(text, [[ITEMS.open_button(ctx, rec.id),
                              ITEMS.action("lla").button(ctx, rec.id),
                              area_button(ctx, rec.area_id)]])
        reply.photos = rec.photo_refs
        return reply
    if step == "closed" and rec.status == CLOSED:
        return Reply(ctx.t(f"lineloss.closed_notice_{rec.closed_how or 'normal'}",
                           item=title(ctx, rec), day=rec.closed_day or ""),
                     [[ITEMS.open_button(ctx, rec.id)]])
    return None


def todo_reads(ctx: Ctx) -> list[Read]:
    states = (OPEN, CHECKED) if ctx.user.sees_whole_team else (OPEN,)
    marks = ", ".join("?" for _ in states)
    return [STORE.open_read(ctx, f"i.status IN ({marks})", states, "ORDER BY i.due_at")]


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    items = []
    for rec in STORE.records(rows[0]):
        waiting = rec.status == CHECKED
        text = ctx.t("todo.lineloss_checked" if waiting else "todo.lineloss",
                     item=title(ctx, rec), worst=pct(rec.worst_rate), days=run_days(rec),
                     cause=cause_text(ctx, rec), due=when(ctx, rec.due_at),
                     left=remaining(ctx, rec.due_at))
        items.append(ITEMS.todo_item(ctx, rec, rec.due_at, text,
                                     ctx.t("lineloss.todo_button", id=rec.id,
                                           area=rec.area_name),
                                     overdue=False if waiting else None, decision=waiting))
    return items


def check_button(ctx: Ctx, rid: int) -> Button:
    return ITEMS.action("llc").button(ctx, rid)


ITEMS = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="ll", not_found="lineloss.not_found",
    meta_key="lineloss_id", title=title, render_card=render_card,
    transitions=(
        rt.Transition("llc", "btn.lineloss_check", (OPEN,), CHECK, "llc",
                      "lineloss.check_heading"),
        rt.Transition("lla", "btn.lineloss_accept", may_accept, run=accept),
    ),
    ladders=(rt.Ladder("check", "lineloss.step.check", lambda i: i.due_at,
                       lambda i: i.status != OPEN, ("llc",)),),
    other_reminders=notices, todo_items=TodoRead(todo_reads, todo),
    after_sent=rt.daily_while_overdue(SUBJECT)).register(router)


# --- `线损 3号台区` ----------------------------------------------------------------------------
def area_button(ctx: Ctx, area_id: int, label: str | None = None) -> Button:
    return Button(label or ctx.t("btn.lineloss_area"), router.callback("area", area_id))


def area_buttons(ctx: Ctx, areas: list[Area]) -> list[list[Button]]:
    buttons = [area_button(ctx, a.id, a.name) for a in areas]
    return [buttons[i:i + 3] for i in range(0, len(buttons), 3)]


async def show_area(ctx: Ctx, area: Area) -> Outcome:
    """The last `chart_days` days: a chart, the figures, and the open item with its buttons."""
    days_shown = limits().chart_days
    today = ctx.local_now.date()
    first = today - timedelta(days=days_shown - 1)
    rows, open_items = await ctx.services.db.fetch_many([  # one round trip (issue #12)
        ("SELECT day, supplied, sold, rate FROM lineloss_days WHERE area_id = ? AND day >= ? "
         "AND day <= ? ORDER BY day", (area.id, first.isoformat(), today.isoformat())),
        STORE.open_read(ctx, "i.area_id = ? AND i.status <> 'closed'", (area.id,))])
    th = limits().threshold(area.kind)
    if not rows:
        return Outcome().add(ctx.t("lineloss.no_data", area=area.name, days=days_shown))
    days = [report.DayFigure(date.fromisoformat(r["day"]), float(r["supplied"]),
                             float(r["sold"]), r["rate"]) for r in rows]
    reply = Reply(figures_text(ctx, area, days, th, days_shown))
    from bot.features.lineloss import chart  # matplotlib on first use, not at start-up

    png = await asyncio.to_thread(chart.render, area.name, days, th, first, today, ctx.locale)
    reply.attachments.append(Attachment(f"lineloss-{area.id}-{today.isoformat()}.png", png,
                                        "photo"))
    out = Outcome(replies=[reply])
    item = next(iter(STORE.records(open_items)), None)
    if item is not None:
        out.replies += (await render_card(ctx, item)).replies
    return out


def figures_text(ctx: Ctx, area: Area, days: list[report.DayFigure], th: Threshold,
                 shown: int) -> str:
    last = days[-1]
    abnormal = [d for d in days if th.abnormal(d.rate)]
    lines = [ctx.t("lineloss.area_head", area=area.name, days=shown, first=days[0].day,
                   last=last.day, n=len(days)),
             ctx.t("lineloss.latest", day=last.day, rate=pct(last.rate),
                   supplied=f"{last.supplied:g}", sold=f"{last.sold:g}",
                   flag=ctx.t("lineloss.flag_abnormal") if th.abnormal(last.rate) else ""),
             ctx.t("lineloss.period", rate=pct(report.period_rate(days)),
                   abnormal=len(abnormal), band=band(ctx, th))]
    if abnormal:
        shown_days = "、".join(f"{d.day:%m-%d} {pct(d.rate)}" for d in abnormal[-5:])
        lines.append(ctx.t("lineloss.abnormal_days", days=shown_days))
    return "\n".join(lines)


async def area_by_id(ctx: Ctx, area_id: int) -> Area | None:
    """One of the user's areas (a manager's own, the team's for a lead): others not shown."""
    return next((a for a in await ctx.areas() if a.id == area_id), None)


@router.button("area")
async def area_pressed(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    area = await area_by_id(ctx, int(arg)) if arg.isdigit() else None
    if area is None:
        return stale_reply(ctx)
    return await show_area(ctx, area)


async def lineloss(ctx: Ctx, rest: str) -> Outcome | None:
    """`线损` (the areas as buttons) or `线损 3号台区`; None for a sentence that says more."""
    areas = await ctx.areas()
    if not rest:
        if not areas:
            return Outcome().add(ctx.t("lineloss.no_areas"))
        return Outcome().add(ctx.t("lineloss.which_area"), area_buttons(ctx, areas))
    area_text, left = take_area(rest, (a.name for a in areas))
    if area_text is None or left.strip():
        return None
    area_id, notice = await resolve_area(ctx, area_text)
    area = await area_by_id(ctx, int(area_id)) if area_id else None
    if area is None:
        return Outcome().add((notice or "") + "\n" + ctx.t("lineloss.which_area"),
                             area_buttons(ctx, areas))
    return await show_area(ctx, area)


@router.intent
async def lineloss_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    m = _INTENT.match(normalize_input(text))
    return await lineloss(ctx, m.group(2).strip()) if m else None


@router.command("lineloss")
async def lineloss_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    out = await lineloss(ctx, normalize_input(arg).strip())
    return await app.with_form_reminder(ctx, draft, out or await lineloss(ctx, "") or Outcome())


# --- the export sent in chat ------------------------------------------------------------------
@router.file_reader(kinds=upload.KINDS, sniff=upload.sniff, describe="lineloss.upload.describe")
async def lineloss_file(ctx: Ctx, filename: str, data: bytes) -> Outcome:
    """A lead's import; the items it opened one tap away under the answer."""
    out, opened = await upload.handle(ctx, filename, data)
    buttons = [ITEMS.open_button(ctx, rec.id, ctx.t("lineloss.todo_button", id=rec.id,
                                                   area=rec.area_name))
               for rec in [await STORE.load(ctx.services.db, rid) for rid in opened] if rec]
    if buttons:
        out.replies[-1].buttons = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    return out


router.report_section(report.SECTION)
router.help_lines.append("lineloss.help")
