"""本月计划 (/plan): a manager's plan of the month, drafted from the register's visit cycles,
a patrol count per 台区 (data/plans.json) and last month's unfinished items (结转); free items
typed (`加 12号 抄表核对`), changed (`改 3 15号`) and removed (one tap on its number), then
提交给班长. The lead approves it or returns it with a comment. The morning digest lists the
week's items; a patrol entry or a visit in the work log ticks its item, a free item its ✅.
From the month's last working day the manager submits the result (一句说明 per unfinished
item optional) and the lead grades it (考核). Every notice is a reminder row: never lost,
never doubled.

Items are ticked by reading the work log and the register (core tables) when a plan is
shown, digested or reported, not by a hook in the work log: no feature learns of plans, a
log edited or deleted later is reflected at once, and nothing is kept twice."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from bot.events import Button, Outcome, Reply
from bot.features.plans import store
from bot.features.plans.draft import draft_plan, result_due, result_due_by, this_month
from bot.features.plans.report import plans_report
from bot.features.plans.store import (
    SUBJECT,
    Item,
    Month,
    NewItem,
    Plan,
    grades,
    items_of,
    last_working_day,
)
from bot.features.plans.words import (
    day_label,
    done_count,
    grade_label,
    item_lines,
    labels,
    month_label,
    status_label,
)
from bot.forms.engine import FormSpec, Saved
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.kinds import parse_text
from bot.forms.matching import Choice
from bot.records.common import calendar
from bot.router import ReminderKind, Router, TodoItem, TodoRead
from bot.services import Ctx
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input
from bot.timeparse import find_time
from bot.workcal import WorkCalendar

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.storage.conversations import Draft

router = Router("plans")
BUTTONS_PER_ROW = 5
_SHOW = re.compile(r"^(本月计划|这个月计划|月计划|月度计划|工作计划|我的计划|计划|plan)$", re.I)
_SHOW_LAST = re.compile(r"^(上月计划|上个月计划|last month plan)$", re.I)
_ADD = re.compile(r"^(?:加|添加|增加)(?:计划|一项)?\s+(.+)$|^(?:加计划|添加计划)\s*(.+)$", re.S)
_EDIT = re.compile(r"^(?:改|修改)\s*(\d{1,3})\s*(.*)$", re.S)
_REMOVE = re.compile(r"^(?:删|删除)\s*(\d{1,3})$")
_NOTE = re.compile(r"^说明\s*(\d{1,3})\s*(.+)$", re.S)
# '12号' / '12日' at the start is a day of the plan's month (not '12号台区', '2号杆').
_DAY = re.compile(r"^(\d{1,2})\s*[号日](?![台杆表楼线箱户])\s*")
router.request_patterns += [_SHOW, _SHOW_LAST]


# --- who may see and act --------------------------------------------------------------------
async def visible_plan(ctx: Ctx, plan_id: int) -> Plan | None:
    """A plan its manager, and the leads of its team, may see; nobody in another team."""
    plan = await store.load_plan(ctx.services.db, plan_id)
    if plan is None or plan.team_id != ctx.user.team_id:
        return None
    return plan if ctx.user.sees_whole_team or plan.user_id == ctx.user.id else None


def is_owner(ctx: Ctx, plan: Plan) -> bool:
    return plan.user_id == ctx.user.id


def is_lead_of(ctx: Ctx, plan: Plan) -> bool:
    return ctx.user.sees_whole_team and plan.team_id == ctx.user.team_id and not is_owner(
        ctx, plan)


def not_found(ctx: Ctx) -> Outcome:
    return Outcome(toast=ctx.t("plan.not_found")).add(ctx.t("plan.not_found"))


# --- the card -------------------------------------------------------------------------------
def number_buttons(prefix: str, pairs: list[tuple[int, int]], action: str) -> list[list[Button]]:
    """One small button per numbered item (✖3, ✅5), a few to a row."""
    buttons = [Button(f"{prefix}{n}", router.callback(action, item_id)) for n, item_id in pairs]
    return [buttons[i:i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]


async def card(ctx: Ctx, plan: Plan, heading: str = "") -> Reply:
    items = await items_of(ctx.services.db, plan, ctx.tz)
    lines = [heading] if heading else []
    lines.append(ctx.t("plan.card_title", name=plan.owner, month=month_label(ctx, plan.month),
                       status=status_label(ctx, plan)))
    if plan.status == "returned" and plan.comment:
        lines.append(ctx.t("plan.return_comment", who=plan.decided_by or "", comment=plan.comment))
    lines += item_lines(ctx, items) or [ctx.t("plan.empty")]
    if items:
        lines.append(ctx.t("plan.done_so_far", done=done_count(items), total=len(items)))
    if plan.status == "evaluated":
        lines.append(ctx.t("plan.evaluation", grade=grade_label(ctx.locale, plan.grade),
                           text=plan.evaluation or "", who=plan.evaluator or ""))
    buttons: list[list[Button]] = []
    if is_owner(ctx, plan):
        buttons = await owner_buttons(ctx, plan, items)
        if plan.editable:
            lines.append(ctx.t("plan.edit_hint"))
    elif is_lead_of(ctx, plan):
        buttons = lead_buttons(ctx, plan)
    return Reply("\n".join(lines), buttons)


async def owner_buttons(ctx: Ctx, plan: Plan, items: list[Item]) -> list[list[Button]]:
    rows: list[list[Button]] = []
    numbered = list(enumerate(items, 1))
    if plan.editable:
        rows += number_buttons("✖", [(n, it.id) for n, it in numbered], "rm")
        if items:
            rows.append([Button(ctx.t("btn.plan_submit"), router.callback("sub", plan.id))])
    elif not plan.closed:
        rows += number_buttons("✅", [(n, it.id) for n, it in numbered
                                      if it.kind == "free" and not it.done_at], "tick")
    if await result_due(ctx, plan):
        rows.append([Button(ctx.t("btn.plan_result"), router.callback("res", plan.id))])
    return rows


def lead_buttons(ctx: Ctx, plan: Plan) -> list[list[Button]]:
    if plan.status == "submitted":
        return [[Button(ctx.t("btn.plan_approve"), router.callback("ok", plan.id)),
                 Button(ctx.t("btn.plan_return"), router.callback("ret", plan.id))]]
    if plan.status == "reported":
        return [[Button(ctx.t("btn.plan_evaluate"), router.callback("eval", plan.id))]]
    return []


def open_button(ctx: Ctx, plan: Plan, label_key: str = "btn.plan_open") -> Button:
    return Button(ctx.t(label_key, name=plan.owner), router.callback("open", plan.id))


# --- showing --------------------------------------------------------------------------------
async def show_mine(ctx: Ctx, month: Month) -> Outcome:
    if ctx.user.sees_whole_team:
        return await team_overview(ctx, month)
    if month == this_month(ctx):
        existed = await store.plan_of(ctx.services.db, ctx.user.id, month) is not None
        plan = await draft_plan(ctx, month)
        heading = "" if existed else ctx.t("plan.drafted")
        return Outcome(replies=[await card(ctx, plan, heading)])
    plan = await store.plan_of(ctx.services.db, ctx.user.id, month)
    if plan is None:
        return Outcome().add(ctx.t("plan.none_for", month=month_label(ctx, month)))
    return Outcome(replies=[await card(ctx, plan)])


async def team_overview(ctx: Ctx, month: Month) -> Outcome:
    """A lead's view: each manager's plan of the month and its state, and any plan of an
    earlier month still waiting for the lead."""
    db = ctx.services.db
    plans = await store.team_plans(db, ctx.user.team_id, month)
    managers = await db.fetchall(
        "SELECT id, name FROM users WHERE team_id = ? AND role = 'manager' AND active = 1 "
        "ORDER BY name, id", (ctx.user.team_id,))
    by_user = {p.user_id: p for p in plans}
    lines = [ctx.t("plan.team_title", month=month_label(ctx, month))]
    for m in managers:
        p = by_user.get(m["id"])
        if p is None:
            lines.append(ctx.t("plan.team_none", name=m["name"]))
            continue
        items = await items_of(db, p, ctx.tz)
        lines.append(ctx.t("plan.team_line", name=p.owner, status=status_label(ctx, p),
                           done=done_count(items), total=len(items)))
    waiting = [p for p in await store.plans_waiting(db, ctx.user.team_id,
                                                     ("submitted", "reported"))
               if p.month != month]
    for p in waiting:
        lines.append(ctx.t("plan.team_waiting", month=month_label(ctx, p.month), name=p.owner,
                           status=status_label(ctx, p)))
    shown = [*plans, *waiting]
    buttons = [[open_button(ctx, p)] for p in shown[:8]]
    return Outcome().add("\n".join(lines), buttons)


async def show_plan(ctx: Ctx, plan_id: int) -> Outcome:
    plan = await visible_plan(ctx, plan_id)
    if plan is None:
        return not_found(ctx)
    return Outcome(replies=[await card(ctx, plan)])


@router.command("plan")
async def plan_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    month = this_month(ctx)
    if normalize_input(arg) in ("上月", "上个月", "last", "last month"):
        month = month.prev()
    return await app.with_form_reminder(ctx, draft, await show_mine(ctx, month))


@router.intent
async def plan_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    s = normalize_input(text)
    if _SHOW.match(s):
        return await show_mine(ctx, this_month(ctx))
    if _SHOW_LAST.match(s):
        return await show_mine(ctx, this_month(ctx).prev())
    if ctx.user.sees_whole_team:
        return None
    for pattern, act in ((_ADD, add_typed), (_EDIT, edit_typed), (_REMOVE, remove_typed),
                         (_NOTE, note_typed)):
        m = pattern.match(s)
        if m:
            return await act(ctx, m)
    return None


@router.button("see")
@router.button("open")
async def open_plan(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await show_plan(ctx, int(arg)) if arg.isdigit() else not_found(ctx)


# --- editing: add, change, remove -----------------------------------------------------------
def read_day(ctx: Ctx, text: str, month: Month) -> tuple[date | None, str]:
    """(the planned day a text starts or ends with, the rest): '12号 抄表核对', '下周三 …',
    '12月20日 …'. Raises Invalid for a day not in the plan's month."""
    m = _DAY.match(text)
    if m:
        try:
            day = date(month.year, month.month, int(m.group(1)))
        except ValueError:
            raise Invalid("plan.day_invalid", day=m.group(1),
                          month=month_label(ctx, month)) from None
        return day, text[m.end():].strip()
    found = find_time(text, ctx.local_now, prefer="future")
    if found is None:
        return None, text.strip()
    day = found.value.date()
    if Month.of(day) != month:
        raise Invalid("plan.day_other_month", day=day_label(ctx, day),
                      month=month_label(ctx, month))
    return day, text.replace(found.phrase, " ", 1).strip()


async def editable_plan(ctx: Ctx) -> Plan | Outcome:
    """This month's plan of mine to change (drafted if there is none), or why not."""
    plan = await draft_plan(ctx, this_month(ctx))
    if not plan.editable:
        return Outcome().add(ctx.t("plan.not_editable", status=status_label(ctx, plan)),
                             [[open_button(ctx, plan, "btn.plan_view")]])
    return plan


async def refused(ctx: Ctx, exc: Invalid, plan: Plan) -> Outcome:
    """What was wrong, above the plan as it stands (with its buttons): nothing is lost."""
    return Outcome(replies=[await card(ctx, plan, "⚠️ " + ctx.t(exc.key, **exc.kwargs))])


async def add_typed(ctx: Ctx, m: re.Match[str]) -> Outcome:
    plan = await editable_plan(ctx)
    if isinstance(plan, Outcome):
        return plan
    try:
        day, body = read_day(ctx, (m.group(1) or m.group(2) or "").strip(), plan.month)
        body = await parse_text(body, ctx) if body else ""
        if not body:
            raise Invalid("plan.add_what")
    except Invalid as exc:
        return await refused(ctx, exc, plan)
    cal = await calendar(ctx.services)
    due = day or last_working_day(cal, plan.month)
    async with ctx.services.db.tx() as tx:
        await store.add_item(tx, plan.id, NewItem("free", due, body=body), ctx.now)
    return Outcome(replies=[await card(ctx, plan, ctx.t(
        "plan.added", item=body, day=day_label(ctx, due)))])


async def numbered(ctx: Ctx, plan: Plan, n: int) -> Item | None:
    items = await store.raw_items(ctx.services.db, plan.id)
    return items[n - 1] if 1 <= n <= len(items) else None


async def no_such_number(ctx: Ctx, plan: Plan, n: int) -> Outcome:
    count = len(await store.raw_items(ctx.services.db, plan.id))
    return await refused(ctx, Invalid("plan.no_number", n=n, count=count), plan)


async def edit_typed(ctx: Ctx, m: re.Match[str]) -> Outcome:
    plan = await editable_plan(ctx)
    if isinstance(plan, Outcome):
        return plan
    it = await numbered(ctx, plan, int(m.group(1)))
    if it is None:
        return await no_such_number(ctx, plan, int(m.group(1)))
    try:
        day, body = read_day(ctx, m.group(2).strip(), plan.month)
        if body and it.kind != "free":
            raise Invalid("plan.edit_day_only")
        body = await parse_text(body, ctx) if body else ""
        if day is None and not body:
            raise Invalid("plan.edit_what", n=m.group(1))
    except Invalid as exc:
        return await refused(ctx, exc, plan)
    await store.set_item(ctx.services.db, it.id, due_on=(day or it.due_on).isoformat(),
                         body=body or it.body)
    return Outcome(replies=[await card(ctx, plan, ctx.t("plan.changed", n=m.group(1)))])


async def remove_item(ctx: Ctx, item_id: int) -> Outcome:
    found = await store.item_plan(ctx.services.db, item_id)
    if found is None or found[1].user_id != ctx.user.id:
        return not_found(ctx)
    it, plan = found
    if not plan.editable:
        return Outcome(toast=ctx.t("plan.not_editable", status=status_label(ctx, plan)))
    if it.removed:  # a second tap
        return Outcome(toast=ctx.t("plan.removed_toast"), replies=[await card(ctx, plan)])
    words = labels(ctx, await store.raw_items(ctx.services.db, plan.id)).get(it.id, it.body)
    await store.set_item(ctx.services.db, it.id, removed=1)
    reply = await card(ctx, plan, ctx.t("plan.removed", item=words))
    reply.buttons.insert(0, [Button(ctx.t("btn.plan_undo"), router.callback("undo", it.id))])
    return Outcome(toast=ctx.t("plan.removed_toast"), replies=[reply])


async def remove_typed(ctx: Ctx, m: re.Match[str]) -> Outcome:
    plan = await editable_plan(ctx)
    if isinstance(plan, Outcome):
        return plan
    it = await numbered(ctx, plan, int(m.group(1)))
    if it is None:
        return await no_such_number(ctx, plan, int(m.group(1)))
    return await remove_item(ctx, it.id)


@router.button("rm")
async def remove_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await remove_item(ctx, int(arg)) if arg.isdigit() else not_found(ctx)


@router.button("undo")
async def undo_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    found = await store.item_plan(ctx.services.db, int(arg)) if arg.isdigit() else None
    if found is None or found[1].user_id != ctx.user.id:
        return not_found(ctx)
    it, plan = found
    if not plan.editable:
        return Outcome(toast=ctx.t("plan.not_editable", status=status_label(ctx, plan)))
    await store.set_item(ctx.services.db, it.id, removed=0)
    return Outcome(toast=ctx.t("plan.restored"), replies=[await card(ctx, plan)])


@router.button("tick")
async def tick_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    """✅ on a free item: done now (a visit or patrol is ticked by the work log)."""
    found = await store.item_plan(ctx.services.db, int(arg)) if arg.isdigit() else None
    if found is None or found[1].user_id != ctx.user.id:
        return not_found(ctx)
    it, plan = found
    if it.kind != "free" or it.removed or plan.closed:
        return not_found(ctx)
    if it.ticked_at is None:
        await ctx.services.db.execute(
            "UPDATE plan_items SET ticked_at = ? WHERE id = ? AND ticked_at IS NULL",
            (iso(ctx.now), it.id))
    return Outcome(toast=ctx.t("plan.ticked_toast"), replies=[await card(
        ctx, plan, ctx.t("plan.ticked", item=it.body))])


# --- submitting and the lead's decision -----------------------------------------------------
async def leads_for(ctx: Ctx, plan: Plan) -> list[int]:
    return [u.id for u in await ctx.services.people.leads_of(plan.team_id, plan.user_id)]


async def notify(ctx: Ctx, plan: Plan, kind: str, to: list[int], round_: int = 0) -> None:
    """A notice about the plan as a reminder row per person: sent by the next scan, retried
    until delivered, planned once per plan, kind, round and person."""
    async with ctx.services.db.tx() as tx:
        for uid in to:
            await Reminders.plan(tx, team_id=plan.team_id, user_id=uid, subject=SUBJECT,
                                 subject_id=plan.id, kind=kind, due_at=ctx.now, now=ctx.now,
                                 key=f"{SUBJECT}:{plan.id}:{kind}:{round_}:{uid}",
                                 detail={"round": round_})


@router.button("sub")
async def submit_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    plan = await visible_plan(ctx, int(arg)) if arg.isdigit() else None
    if plan is None or not is_owner(ctx, plan):
        return not_found(ctx)
    if not plan.editable:
        return Outcome(toast=ctx.t("plan.already_sent")).add(
            ctx.t("plan.not_editable", status=status_label(ctx, plan)))
    if not await store.raw_items(ctx.services.db, plan.id):
        return Outcome().add(ctx.t("plan.submit_empty"))
    leads = await ctx.services.people.leads_of(plan.team_id, plan.user_id)
    if not leads:
        return Outcome().add(ctx.t("plan.no_lead"))
    round_ = await store.submit_plan(ctx.services.db, plan.id, ctx.now)
    if round_ is None:
        return Outcome(toast=ctx.t("plan.already_sent"))
    await notify(ctx, plan, "submitted", [u.id for u in leads], round_)
    plan = await store.load_plan(ctx.services.db, plan.id) or plan
    return Outcome(replies=[await card(ctx, plan, ctx.t(
        "plan.sent", leads="、".join(u.name for u in leads)))])


@router.button("ok")
async def approve_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    plan = await visible_plan(ctx, int(arg)) if arg.isdigit() else None
    if plan is None or not is_lead_of(ctx, plan):
        return not_found(ctx)
    if not await store.move_status(ctx.services.db, plan.id, ("submitted",), "approved",
                                   decided_by=ctx.user.id, decided_at=iso(ctx.now),
                                   comment=None):
        return Outcome(toast=ctx.t("plan.decided_already")).add(
            ctx.t("plan.decided_already_long", status=status_label(ctx, plan)))
    await notify(ctx, plan, "approved", [plan.user_id], plan.rounds)
    return Outcome(toast=ctx.t("plan.approved_toast")).add(
        ctx.t("plan.approved", name=plan.owner, month=month_label(ctx, plan.month)))


async def save_return(ctx: Ctx, values: dict[str, Any], token: str,
                      meta: dict[str, Any]) -> Saved:
    plan = await visible_plan(ctx, int(meta["plan_id"]))
    if plan is None or not is_lead_of(ctx, plan):
        raise Invalid("plan.not_found")
    if not await store.move_status(ctx.services.db, plan.id, ("submitted",), "returned",
                                   decided_by=ctx.user.id, decided_at=iso(ctx.now),
                                   comment=values["comment"]):
        raise Invalid("plan.decided_already_long", status=status_label(ctx, plan))
    await notify(ctx, plan, "returned", [plan.user_id], plan.rounds)
    return Saved(ctx.t("plan.returned", name=plan.owner, month=month_label(ctx, plan.month)),
                 [])


RETURN = router.form(FormSpec(
    name="plan_return", title="form.plan_return.title",
    fields=(Field("comment", "field.plan_comment", "form.plan_return.comment", Kind.TEXT,
                  parse=parse_text),),
    save=save_return, quick={}))


@router.opener("plret")
async def open_return(app: Assistant, ctx: Ctx, plan_id: int) -> Outcome:
    plan = await visible_plan(ctx, plan_id)
    if plan is None or not is_lead_of(ctx, plan) or plan.status != "submitted":
        return not_found(ctx)
    return await app.engine.start(ctx, RETURN.name, meta={"plan_id": plan_id}, heading=ctx.t(
        "plan.return_heading", name=plan.owner, month=month_label(ctx, plan.month)))


router.opener_button("ret", "plret")


# --- the month's result and its evaluation --------------------------------------------------
async def result_plan(ctx: Ctx) -> Plan | None:
    """The plan of mine whose result is due now: this month's, or last month's not sent."""
    month = this_month(ctx)
    for m in (month, month.prev()):
        plan = await store.plan_of(ctx.services.db, ctx.user.id, m)
        if plan is not None and await result_due(ctx, plan):
            return plan
    return None


async def result_view(ctx: Ctx, plan: Plan, heading: str = "") -> Reply:
    items = await items_of(ctx.services.db, plan, ctx.tz)
    lines = [heading] if heading else []
    lines.append(ctx.t("plan.result_title", month=month_label(ctx, plan.month),
                       done=done_count(items), total=len(items)))
    undone = [line for it, line in zip(items, item_lines(ctx, items), strict=True)
              if it.done_at is None]
    if undone:
        lines += [ctx.t("plan.result_undone"), *undone, ctx.t("plan.result_hint")]
    return Reply("\n".join(lines), [[Button(ctx.t("btn.plan_result_send"),
                                            router.callback("rsub", plan.id))]])


@router.button("res")
async def result_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    plan = await visible_plan(ctx, int(arg)) if arg.isdigit() else None
    if plan is None or not is_owner(ctx, plan):
        return not_found(ctx)
    if plan.closed:
        return Outcome(toast=ctx.t("plan.result_sent_already"), replies=[await card(ctx, plan)])
    if not await result_due(ctx, plan):
        return Outcome().add(ctx.t("plan.result_not_yet"))
    return Outcome(replies=[await result_view(ctx, plan)])


async def note_typed(ctx: Ctx, m: re.Match[str]) -> Outcome:
    plan = await result_plan(ctx)
    if plan is None:
        return Outcome().add(ctx.t("plan.note_when"))
    items = await items_of(ctx.services.db, plan, ctx.tz)
    n = int(m.group(1))
    try:
        if not 1 <= n <= len(items):
            raise Invalid("plan.no_number", n=n, count=len(items))
        if items[n - 1].done_at is not None:
            raise Invalid("plan.note_done", n=n)
        note = await parse_text(m.group(2).strip(), ctx)
    except Invalid as exc:  # said above the result as it stands, its button still there
        return Outcome(replies=[await result_view(ctx, plan, "⚠️ " + ctx.t(exc.key,
                                                                            **exc.kwargs))])
    await store.set_item(ctx.services.db, items[n - 1].id, note=note)
    return Outcome(replies=[await result_view(ctx, plan, ctx.t("plan.noted", n=n))])


@router.button("rsub")
async def result_submit(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    plan = await visible_plan(ctx, int(arg)) if arg.isdigit() else None
    if plan is None or not is_owner(ctx, plan):
        return not_found(ctx)
    if not await result_due(ctx, plan):
        return Outcome(toast=ctx.t("plan.result_sent_already"), replies=[await card(ctx, plan)])
    items = await items_of(ctx.services.db, plan, ctx.tz)
    done = done_count(items)
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE plans SET status = 'reported', result_at = ?, done_count = ?, "
            "total_count = ? WHERE id = ? AND status NOT IN ('reported', 'evaluated')",
            (iso(ctx.now), done, len(items), plan.id))
        if tx.rowcount == 0:
            return Outcome(toast=ctx.t("plan.result_sent_already"))
        await store.keep_result(tx, items)
        await Reminders.cancel(tx, SUBJECT, plan.id, "result")
    leads = await ctx.services.people.leads_of(plan.team_id, plan.user_id)
    await notify(ctx, plan, "reported", [u.id for u in leads])
    names = "、".join(u.name for u in leads) or ctx.t("plan.nobody")
    return Outcome().add(ctx.t("plan.result_sent", done=done, total=len(items), leads=names))


async def grade_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(g, grade_label(ctx.locale, g)) for g in grades()]


async def show_grade(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return grade_label(ctx.locale, value)


async def save_evaluation(ctx: Ctx, values: dict[str, Any], token: str,
                          meta: dict[str, Any]) -> Saved:
    plan = await visible_plan(ctx, int(meta["plan_id"]))
    if plan is None or not is_lead_of(ctx, plan):
        raise Invalid("plan.not_found")
    if not await store.move_status(ctx.services.db, plan.id, ("reported",), "evaluated",
                                   grade=values["grade"], evaluation=values["comment"],
                                   evaluated_by=ctx.user.id, evaluated_at=iso(ctx.now)):
        raise Invalid("plan.evaluated_already")
    await notify(ctx, plan, "evaluated", [plan.user_id])
    return Saved(ctx.t("plan.evaluated", name=plan.owner, month=month_label(ctx, plan.month),
                       grade=grade_label(ctx.locale, values["grade"])), [])


EVALUATE = router.form(FormSpec(
    name="plan_eval", title="form.plan_eval.title",
    fields=(Field("grade", "field.plan_grade", "form.plan_eval.grade", Kind.CHOICE,
                  choices=grade_choices, show=show_grade),
            Field("comment", "field.plan_evaluation", "form.plan_eval.comment", Kind.TEXT,
                  parse=parse_text)),
    save=save_evaluation, quick={}))


@router.opener("pleval")
async def open_evaluation(app: Assistant, ctx: Ctx, plan_id: int) -> Outcome:
    plan = await visible_plan(ctx, plan_id)
    if plan is None or not is_lead_of(ctx, plan) or plan.status != "reported":
        return not_found(ctx)
    items = await items_of(ctx.services.db, plan, ctx.tz)
    heading = "\n".join([ctx.t("plan.eval_heading", name=plan.owner,
                                month=month_label(ctx, plan.month), done=done_count(items),
                                total=len(items)), *item_lines(ctx, items)])
    return await app.engine.start(ctx, EVALUATE.name, meta={"plan_id": plan_id},
                                  heading=heading)


router.opener_button("eval", "pleval")


# --- notices, /todo and the morning digest --------------------------------------------------
async def render_notice(ctx: Ctx, r: Reminder) -> Reply | None:
    """A notice as the plan is now; None (dropped) once it no longer applies."""
    plan = await visible_plan(ctx, r.subject_id)
    if plan is None:
        return None
    month = month_label(ctx, plan.month)
    same_round = r.detail.get("round", 0) == plan.rounds
    if r.kind == "submitted" and plan.status == "submitted" and same_round:
        items = await items_of(ctx.services.db, plan, ctx.tz)
        return await card(ctx, plan, ctx.t("plan.push.submitted", name=plan.owner, month=month,
                                           count=len(items)))
    if r.kind == "returned" and plan.status == "returned" and same_round:
        return await card(ctx, plan, ctx.t("plan.push.returned", who=plan.decided_by or "",
                                           month=month))
    if r.kind == "approved" and plan.status not in ("draft", "submitted", "returned"):
        # Its own button data: the morning digest's 本周计划 line (whose button opens the
        # plan) must not pass for this notice and settle it unsent.
        return Reply(ctx.t("plan.push.approved", who=plan.decided_by or "", month=month),
                     [[Button(ctx.t("btn.plan_view"), router.callback("see", plan.id))]])
    if r.kind == "result" and await result_due(ctx, plan):
        items = await items_of(ctx.services.db, plan, ctx.tz)
        return Reply(ctx.t("plan.push.result", month=month, done=done_count(items),
                           total=len(items)),
                     [[Button(ctx.t("btn.plan_result"), router.callback("res", plan.id))]])
    if r.kind == "reported" and plan.status == "reported":
        return Reply(ctx.t("plan.push.reported", name=plan.owner, month=month,
                           done=plan.done_count or 0, total=plan.total_count or 0),
                     [[Button(ctx.t("btn.plan_evaluate"), router.callback("eval", plan.id)),
                       open_button(ctx, plan, "btn.plan_view")]])
    if r.kind == "evaluated" and plan.status == "evaluated":
        return Reply(ctx.t("plan.push.evaluated", who=plan.evaluator or "", month=month,
                           grade=grade_label(ctx.locale, plan.grade), text=plan.evaluation or ""),
                     [[open_button(ctx, plan, "btn.plan_view")]])
    return None


async def describe_notice(ctx: Ctx, r: Reminder) -> str:
    plan = await visible_plan(ctx, r.subject_id)
    if plan is None:
        return ctx.t("plan.not_found")
    return ctx.t("plan.short", name=plan.owner, month=month_label(ctx, plan.month))


def start_of(ctx: Ctx, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ctx.tz)


def manager_reads(ctx: Ctx) -> list[Read]:
    """This month's plan and last month's (for the result), the calendar, and this month's
    plan's items with what ticks them (store.month_items_reads)."""
    month = this_month(ctx)
    return [store.plan_of_read(ctx.user.id, month), store.plan_of_read(ctx.user.id, month.prev()),
            (WorkCalendar.SQL, ()), *store.month_items_reads(ctx.user.id, month, ctx.tz)]


async def manager_todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    """My plan's unfinished items planned up to this week's end (listed each morning: the
    digest names them under today), and the result once it is due."""
    out: list[TodoItem] = []
    today = ctx.local_now.date()
    week_end = today + timedelta(days=6 - today.weekday())
    this, last = store.plan_in(rows[0]), store.plan_in(rows[1])
    cal = WorkCalendar.from_rows(rows[2])
    plan = next((p for p in (this, last) if p is not None and result_due_by(ctx, p, cal)), None)
    if plan is not None:
        out.append(TodoItem(due=start_of(ctx, today), urgent=True, text=ctx.t(
            "plan.todo_result", month=month_label(ctx, plan.month)),
            button=Button(ctx.t("btn.plan_result"), router.callback("res", plan.id))))
    plan = this
    if plan is None or plan.closed:
        return out
    if plan.status == "returned":
        out.append(TodoItem(due=start_of(ctx, today), urgent=True,
                            text=ctx.t("plan.todo_returned", comment=plan.comment or ""),
                            button=open_button(ctx, plan, "btn.plan_view")))
    items = store.ticked(store.items_in(rows[3]), rows[4], rows[5])
    words = labels(ctx, items)
    week = [ctx.t("plan.todo_part", item=words[it.id], day=day_label(ctx, it.due_on))
            for it in items if it.done_at is None and it.due_on <= week_end]
    if week:  # one line for the week's items, each morning until they are done
        text = ctx.t("plan.todo_week", count=len(week), items=ctx.t("plan.todo_sep").join(week))
        out.append(TodoItem(due=start_of(ctx, today), text=text,
                            button=open_button(ctx, plan, "btn.plan_view")))
    return out


async def lead_todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    """Plans waiting for my approval, results waiting for my 考核."""
    out = []
    for plan in store.plans_in(rows[0]):
        key = "plan.todo_approve" if plan.status == "submitted" else "plan.todo_evaluate"
        out.append(TodoItem(due=start_of(ctx, ctx.local_now.date()), for_lead=True,
                            owner=plan.owner, owner_id=plan.user_id,
                            text=ctx.t(key, name=plan.owner, month=month_label(ctx, plan.month)),
                            button=open_button(ctx, plan)))
    return out


def plan_reads(ctx: Ctx) -> list[Read]:
    if ctx.user.sees_whole_team:
        return [store.plans_waiting_read(ctx.user.team_id, ("submitted", "reported"))]
    return manager_reads(ctx)


async def plan_todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    return await (lead_todo if ctx.user.sees_whole_team else manager_todo)(ctx, rows)


router.reminder_kind(SUBJECT, ReminderKind(render=render_notice,
                                           todo=TodoRead(plan_reads, plan_todo),
                                           describe=describe_notice, snoozable=False))


router.report_section(plans_report)
router.help_lines.append("plan.help")
