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
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from bot.events import Button, Outcome, Reply
from bot.features.plans import store
from bot.features.plans.draft import (
    my_view,
    my_view_reads,
    result_due_by,
    this_month,
    this_view,
    this_view_reads,
)
from bot.features.plans.report import REPORT
from bot.features.plans.store import (
    SUBJECT,
    Item,
    Month,
    NewItem,
    Plan,
    View,
    grades,
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
from bot.forms.engine import Again, FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.kinds import parse_text
from bot.forms.matching import Choice
from bot.router import ReminderKind, Router, TodoItem, TodoRead, any_one_id, one_id
from bot.services import Ctx
from bot.storage.batch import Batch, Ref
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import PlannedFor, PlannedRung, Reminder, Reminders
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
    return seen(ctx, await store.load_plan(ctx.services.db, plan_id))


def seen(ctx: Ctx, plan: Plan | None) -> Plan | None:
    """A plan its manager, and the leads of its team, may see; nobody in another team."""
    if plan is None or plan.team_id != ctx.user.team_id:
        return None
    return plan if ctx.user.sees_whole_team or plan.user_id == ctx.user.id else None


def by_id_now(ctx: Ctx, plan_id: int) -> store.Which:
    """The plan with this id if it is of my team, its items ticked if it is of this month or
    last (the usual taps)."""
    return store.by_id(plan_id, ctx.user.team_id, this_month(ctx), this_month(ctx).prev())


def plan_view_reads(ctx: Ctx, plan_id: int) -> list[Read]:
    """What plan_and_view reads first: declared by the buttons that change a plan by its id
    (or open a form on it), read with the step's own read (issue #12: such a tap is that
    read and one write)."""
    return store.view_reads(by_id_now(ctx, plan_id), ctx.user.team_id, ctx.tz)


PLAN_VIEW = one_id(plan_view_reads)
PLAN = any_one_id(lambda ctx, plan_id: [store.plan_read(plan_id)])  # visible_plan's read


async def plan_and_view(ctx: Ctx, plan_id: int) -> tuple[Plan, View] | None:
    """A plan the user may see, by id, and its view: one round trip when it is of this month
    or last (the usual taps) or closed (its items' done moments kept), two otherwise."""
    team = ctx.user.team_id
    which = by_id_now(ctx, plan_id)
    view, _ = await store.read_view(ctx.services.db, which, team, ctx.tz)
    plan = seen(ctx, view.plan)
    if plan is None:
        return None
    if not plan.closed and plan.month not in which.months:  # ticked by another month's log
        view, _ = await store.read_view(ctx.services.db, store.by_id(plan.id, team, plan.month),
                                        team, ctx.tz)
    return plan, replace(view, plan=plan)


async def my_item(ctx: Ctx, arg: str) -> tuple[Item, View] | None:
    """An item of a plan of mine (removed or not) and its plan's view: one round trip when
    it is in this month's plan (the usual tap), two otherwise."""
    if not arg.isdigit():
        return None
    view, (rows,) = await my_view(ctx, this_month(ctx), store.item_read(int(arg)))
    return await item_and_view(ctx, rows, view)


async def item_and_view(ctx: Ctx, rows: list[Row], view: View) -> tuple[Item, View] | None:
    """store.item_read's rows, if the item is of a plan of mine, with its plan's view
    (`view`, this month's plan's, read with it; another month's is read now)."""
    if not rows or int(rows[0]["plan_user"]) != ctx.user.id:
        return None
    it = store.items_in(rows)[0]
    if view.plan is None or view.plan.id != it.plan_id:
        view, _ = await my_view(ctx, Month.parse(str(rows[0]["plan_month"])))
    return (it, view) if view.plan is not None else None


async def my_item_changed(ctx: Ctx, item_id: int, values: dict[str, Any], guard: str = "",
                          editable: bool = True) -> tuple[Item, View, bool] | None:
    """my_item with a change written first, in the same round trip (issue #12): the item
    of my plan of this month changed if that plan is editable (or, `editable=False`, not
    closed) and `guard` holds; the item and the view read after it (on PostgreSQL as before
    it: word the card with the change applied), and whether it changed."""
    which = store.mine(ctx.user.id, this_month(ctx))
    batch = Batch()
    done = store.change_item_into(batch, item_id, which, values, guard, editable)
    item = batch.read_rows(*store.item_read(item_id))
    view = store.view_into(batch, which, ctx.user.team_id, ctx.tz)
    played = await ctx.services.db.write_batch(batch)
    found = await item_and_view(ctx, item.value, view())
    return (*found, played.changed(done)) if found else None


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


def card_of(ctx: Ctx, view: View, heading: str = "") -> Reply:
    """The plan's card from its view (read once, changes applied to it: nothing read back)."""
    plan = view.plan
    assert plan is not None
    items = view.items
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
        buttons = owner_buttons(ctx, plan, items, view.cal)
        if plan.editable:
            lines.append(ctx.t("plan.edit_hint"))
    elif is_lead_of(ctx, plan):
        buttons = lead_buttons(ctx, plan)
    return Reply("\n".join(lines), buttons)


def owner_buttons(ctx: Ctx, plan: Plan, items: list[Item],
                  cal: WorkCalendar) -> list[list[Button]]:
    rows: list[list[Button]] = []
    numbered = list(enumerate(items, 1))
    if plan.editable:
        rows += number_buttons("✖", [(n, it.id) for n, it in numbered], "rm")
        if items:
            rows.append([Button(ctx.t("btn.plan_submit"), router.callback("sub", plan.id))])
    elif not plan.closed:
        rows += number_buttons("✅", [(n, it.id) for n, it in numbered
                                      if it.kind == "free" and not it.done_at], "tick")
    if result_due_by(ctx, plan, cal):
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
        view, drafted = await this_view(ctx)
        return Outcome(replies=[card_of(ctx, view, ctx.t("plan.drafted") if drafted else "")])
    view, _ = await my_view(ctx, month)
    if view.plan is None:
        return Outcome().add(ctx.t("plan.none_for", month=month_label(ctx, month)))
    return Outcome(replies=[card_of(ctx, view)])


async def team_overview(ctx: Ctx, month: Month) -> Outcome:
    """A lead's view: each manager's plan of the month and its state, and any plan of an
    earlier month still waiting for the lead; one round trip whatever the team's size."""
    team = ctx.user.team_id
    rows = await ctx.services.db.fetch_many([
        *store.plans_reads(store.of_team(team, month), ctx.tz), store.managers_read(team),
        store.plans_waiting_read(team, ("submitted", "reported"))])
    read = store.PLANS_READS
    plans = store.plans_with_items(rows[:read])
    by_user = {p.user_id: (p, items) for p, items in plans}
    lines = [ctx.t("plan.team_title", month=month_label(ctx, month))]
    for m in rows[read]:
        found = by_user.get(int(m["id"]))
        if found is None:
            lines.append(ctx.t("plan.team_none", name=m["name"]))
            continue
        p, items = found
        lines.append(ctx.t("plan.team_line", name=p.owner, status=status_label(ctx, p),
                           done=done_count(items), total=len(items)))
    waiting = [p for p in store.plans_in(rows[read + 1]) if p.month != month]
    for p in waiting:
        lines.append(ctx.t("plan.team_waiting", month=month_label(ctx, p.month), name=p.owner,
                           status=status_label(ctx, p)))
    shown = [*(p for p, _ in plans), *waiting]
    buttons = [[open_button(ctx, p)] for p in shown[:8]]
    return Outcome().add("\n".join(lines), buttons)


async def show_plan(ctx: Ctx, plan_id: int) -> Outcome:
    found = await plan_and_view(ctx, plan_id)
    if found is None:
        return not_found(ctx)
    return Outcome(replies=[card_of(ctx, found[1])])


@router.command("plan")
async def plan_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    month = this_month(ctx)
    if normalize_input(arg) in ("上月", "上个月", "last", "last month"):
        month = month.prev()
    return await app.with_form_reminder(ctx, draft, await show_mine(ctx, month))


@router.intent_reads
def plan_text_reads(ctx: Ctx, text: str) -> list[Read]:
    """What plan_intent reads first for a manager's text, read with the step's own read
    (issue #12): this month's plan's view (with what drafting it needs) for 本月计划, 删 N
    and 加 without a leading day (加 12号 writes first, reading the view after); the views
    the result may be due for, for 说明."""
    if ctx.user.sees_whole_team:
        return []
    s = normalize_input(text)
    added = _ADD.match(s)
    if _SHOW.match(s) or _REMOVE.match(s) or (
            added and not _DAY.match((added.group(1) or added.group(2) or "").strip())):
        return this_view_reads(ctx)
    return result_view_reads(ctx) if _NOTE.match(s) else []


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


async def editable_view(ctx: Ctx, read: View | None = None) -> View | Outcome:
    """This month's plan of mine to change (drafted if there is none), or why not; `read`:
    its view as read already."""
    view = read if read is not None and read.plan is not None else (await this_view(ctx))[0]
    assert view.plan is not None
    if not view.plan.editable:
        return Outcome().add(ctx.t("plan.not_editable", status=status_label(ctx, view.plan)),
                             [[open_button(ctx, view.plan, "btn.plan_view")]])
    return view


def refused(ctx: Ctx, exc: Invalid, view: View) -> Outcome:
    """What was wrong, above the plan as it stands (with its buttons): nothing is lost."""
    return Outcome(replies=[card_of(ctx, view, "⚠️ " + ctx.t(exc.key, **exc.kwargs))])


async def read_change(ctx: Ctx, text: str) -> tuple[date | None, str] | None:
    """(the day, the words) a change to my plan of this month says; None if they are
    wrong (the plan's view is then read first, to say why above it)."""
    try:
        day, body = read_day(ctx, text, this_month(ctx))
        return day, await parse_text(body, ctx) if body else ""
    except Invalid:
        return None


async def add_typed(ctx: Ctx, m: re.Match[str]) -> Outcome:
    """加 12号 …: the item written if my plan of this month is editable and the plan's view
    read after it (one round trip); the card from it with the item applied. Without a day
    (the month's last working day: the calendar is read first), with no plan yet (drafted
    first) or refused: the view is read first, then the item written (add_to); without a
    leading day that read comes with the step's own (plan_text_reads)."""
    text = (m.group(1) or m.group(2) or "").strip()
    said = await read_change(ctx, text)
    if said is None or said[0] is None or not said[1]:
        return await add_to(ctx, text, await editable_view(ctx))
    day, body = said
    assert day is not None
    which = store.mine(ctx.user.id, this_month(ctx))
    batch = Batch()
    ref = store.add_item_into(batch, which, NewItem("free", day, body=body), ctx.now)
    read = store.view_into(batch, which, ctx.user.team_id, ctx.tz)
    played = await ctx.services.db.write_batch(batch)
    view = read()
    if not played.changed(ref):
        return await add_to(ctx, text, await editable_view(ctx, view))
    return added(ctx, view, played.id_of(ref) or 0, body, day)


async def add_to(ctx: Ctx, text: str, view: View | Outcome) -> Outcome:
    """加 … to the plan's view as read (its refusals above the card)."""
    if isinstance(view, Outcome):
        return view
    plan = view.plan
    assert plan is not None
    try:
        day, body = read_day(ctx, text, plan.month)
        body = await parse_text(body, ctx) if body else ""
        if not body:
            raise Invalid("plan.add_what")
    except Invalid as exc:
        return refused(ctx, exc, view)
    due = day or last_working_day(view.cal, plan.month)
    batch = Batch()
    ref = store.add_item_into(batch, store.by_id(plan.id, plan.team_id), NewItem(
        "free", due, body=body), ctx.now)
    rid = (await ctx.services.db.write_batch(batch)).id_of(ref)
    return added(ctx, view, rid or 0, body, due)


def added(ctx: Ctx, view: View, rid: int, body: str, due: date) -> Outcome:
    """The card with the item just added (`view` read before it was, or after)."""
    assert view.plan is not None
    last = max((it.position for it in view.raw if it.id != rid), default=0)
    item = Item(rid, view.plan.id, "free", None, None, None, None, body, due, False, None,
                None, None, position=last + 1)
    return Outcome(replies=[card_of(ctx, view.put(item), ctx.t(
        "plan.added", item=body, day=day_label(ctx, due)))])


def numbered(view: View, n: int) -> Item | None:
    return view.raw[n - 1] if 1 <= n <= len(view.raw) else None


def no_such_number(ctx: Ctx, view: View, n: int) -> Outcome:
    return refused(ctx, Invalid("plan.no_number", n=n, count=len(view.raw)), view)


def changed(view: View, item_id: int, **values: Any) -> View:
    """The view with one item changed as it was just written."""
    return view.with_raw([replace(it, **values) if it.id == item_id else it
                          for it in view.raw])


async def edit_typed(ctx: Ctx, m: re.Match[str]) -> Outcome:
    """改 6 15号: the n-th item changed if my plan of this month is editable (its words only
    if it is a free item) and the view read after it, in one round trip; the card from it
    with the change applied. Refused (or no plan yet): the view read first (edit_in)."""
    n = int(m.group(1))
    said = await read_change(ctx, m.group(2).strip())
    if said is None or n < 1 or said == (None, ""):
        return await edit_in(ctx, m, await editable_view(ctx))
    day, body = said
    which = store.mine(ctx.user.id, this_month(ctx))
    batch = Batch()
    values = {**({"due_on": day.isoformat()} if day else {}), **({"body": body} if body else {})}
    ref = store.change_nth_into(batch, which, n, values, " AND kind = 'free'" if body else "")
    read = store.view_into(batch, which, ctx.user.team_id, ctx.tz)
    played = await ctx.services.db.write_batch(batch)
    view = read()
    it = numbered(view, n)  # the same item before the change or after: its number is kept
    if not played.changed(ref) or it is None:
        return await edit_in(ctx, m, await editable_view(ctx, view))
    return edited(ctx, m, view, it, day or it.due_on, body or it.body)


async def edit_in(ctx: Ctx, m: re.Match[str], view: View | Outcome) -> Outcome:
    """改 … in the plan's view as read (its refusals above the card)."""
    if isinstance(view, Outcome):
        return view
    assert view.plan is not None
    it = numbered(view, int(m.group(1)))
    if it is None:
        return no_such_number(ctx, view, int(m.group(1)))
    try:
        day, body = read_day(ctx, m.group(2).strip(), view.plan.month)
        if body and it.kind != "free":
            raise Invalid("plan.edit_day_only")
        body = await parse_text(body, ctx) if body else ""
        if day is None and not body:
            raise Invalid("plan.edit_what", n=m.group(1))
    except Invalid as exc:
        return refused(ctx, exc, view)
    due_on, body = day or it.due_on, body or it.body
    await store.set_item(ctx.services.db, it.id, due_on=due_on.isoformat(), body=body)
    return edited(ctx, m, view, it, due_on, body)


def edited(ctx: Ctx, m: re.Match[str], view: View, it: Item, due_on: date,
           body: str) -> Outcome:
    return Outcome(replies=[card_of(ctx, changed(view, it.id, due_on=due_on, body=body),
                                    ctx.t("plan.changed", n=m.group(1)))])


async def remove_item(ctx: Ctx, it: Item, view: View) -> Outcome:
    plan = view.plan
    assert plan is not None
    if not plan.editable:
        return Outcome(toast=ctx.t("plan.not_editable", status=status_label(ctx, plan)))
    if it.removed:  # a second tap
        return Outcome(toast=ctx.t("plan.removed_toast"), replies=[card_of(ctx, view)])
    await store.set_item(ctx.services.db, it.id, removed=1)
    return removed(ctx, it, view)


def removed(ctx: Ctx, it: Item, view: View) -> Outcome:
    """The card without the item just removed (`view` as before), 撤销删除 above it."""
    words = labels(ctx, view.raw).get(it.id, it.body)
    reply = card_of(ctx, changed(view, it.id, removed=True), ctx.t("plan.removed", item=words))
    reply.buttons.insert(0, [Button(ctx.t("btn.plan_undo"), router.callback("undo", it.id))])
    return Outcome(toast=ctx.t("plan.removed_toast"), replies=[reply])


async def remove_typed(ctx: Ctx, m: re.Match[str]) -> Outcome:
    view = await editable_view(ctx)
    if isinstance(view, Outcome):
        return view
    it = numbered(view, int(m.group(1)))
    if it is None:
        return no_such_number(ctx, view, int(m.group(1)))
    return await remove_item(ctx, it, view)


@router.button("rm")
async def remove_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    """✖: removed and the view read after it, in one round trip (my_item_changed)."""
    found = await my_item_changed(ctx, int(arg), {"removed": 1}, " AND removed = 0") \
        if arg.isdigit() else None
    if found is None:
        return not_found(ctx)
    it, view, done = found
    if not done:  # not editable, removed already (a second tap), or another month's
        return await remove_item(ctx, it, view)
    return removed(ctx, it, view.put(replace(it, removed=False)))


@router.button("undo")
async def undo_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    found = await my_item_changed(ctx, int(arg), {"removed": 0}) if arg.isdigit() else None
    if found is None:
        return not_found(ctx)
    it, view, done = found
    assert view.plan is not None
    if not done:
        if not view.plan.editable:
            return Outcome(toast=ctx.t("plan.not_editable",
                                       status=status_label(ctx, view.plan)))
        await store.set_item(ctx.services.db, it.id, removed=0)  # another month's plan
    back = view.put(replace(it, removed=False))
    return Outcome(toast=ctx.t("plan.restored"), replies=[card_of(ctx, back)])


@router.button("tick")
async def tick_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    """✅ on a free item: done now (a visit or patrol is ticked by the work log); written
    and the view read after it in one round trip (my_item_changed)."""
    found = await my_item_changed(
        ctx, int(arg), {"ticked_at": iso(ctx.now)},
        " AND kind = 'free' AND removed = 0 AND ticked_at IS NULL", editable=False) \
        if arg.isdigit() else None
    if found is None:
        return not_found(ctx)
    it, view, done = found
    assert view.plan is not None
    if it.kind != "free" or it.removed or view.plan.closed:
        return not_found(ctx)
    if done:
        view = changed(view, it.id, ticked_at=ctx.now)
    elif it.ticked_at is None:  # of another month's plan
        await ctx.services.db.execute(
            "UPDATE plan_items SET ticked_at = ? WHERE id = ? AND ticked_at IS NULL",
            (iso(ctx.now), it.id))
        view = changed(view, it.id, ticked_at=ctx.now)
    return Outcome(toast=ctx.t("plan.ticked_toast"), replies=[card_of(
        ctx, view, ctx.t("plan.ticked", item=it.body))])


# --- submitting and the lead's decision -----------------------------------------------------
def notify_into(batch: Batch, ctx: Ctx, plan: Plan, kind: str, to: list[int], round_: int = 0,
                if_new: Ref | None = None) -> None:
    """A notice about the plan as a reminder row per person, written with the change it
    tells of: sent by the next scan, retried until delivered, planned once per plan, kind,
    round and person."""
    Reminders.plan_rows_into(batch, [PlannedFor(uid, PlannedRung(kind, ctx.now, False, False),
                                                f":{kind}:{round_}:{uid}", {"round": round_})
                                     for uid in to],
                             team_id=plan.team_id, subject=SUBJECT, subject_id=plan.id,
                             now=ctx.now, if_new=if_new)


@router.button("sub", reads=PLAN_VIEW)
async def submit_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    """提交给班长: the plan's view with its leads (one read), the submission and the notices
    (one write); the card from both."""
    found = await plan_and_view(ctx, int(arg)) if arg.isdigit() else None
    if found is None or not is_owner(ctx, found[0]):
        return not_found(ctx)
    plan, view = found
    if not plan.editable:
        return Outcome(toast=ctx.t("plan.already_sent")).add(
            ctx.t("plan.not_editable", status=status_label(ctx, plan)))
    if not view.raw:
        return Outcome().add(ctx.t("plan.submit_empty"))
    if not view.leads:
        return Outcome().add(ctx.t("plan.no_lead"))
    batch = Batch()
    sent = store.submit_into(batch, plan, ctx.now)
    round_ = plan.rounds + 1
    notify_into(batch, ctx, plan, "submitted", [uid for uid, _ in view.leads], round_, sent)
    if not (await ctx.services.db.write_batch(batch)).changed(sent):
        return Outcome(toast=ctx.t("plan.already_sent"))
    view = replace(view, plan=replace(plan, status="submitted", rounds=round_))
    return Outcome(replies=[card_of(ctx, view, ctx.t(
        "plan.sent", leads="、".join(name for _, name in view.leads)))])


@router.button("ok", reads=PLAN)
async def approve_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    plan = await visible_plan(ctx, int(arg)) if arg.isdigit() else None
    if plan is None or not is_lead_of(ctx, plan):
        return not_found(ctx)
    batch = Batch()
    ok = store.move_status_into(batch, plan.id, ("submitted",), "approved", {
        "decided_by": ctx.user.id, "decided_at": iso(ctx.now), "comment": None})
    notify_into(batch, ctx, plan, "approved", [plan.user_id], plan.rounds, ok)
    if not (await ctx.services.db.write_batch(batch)).changed(ok):
        return Outcome(toast=ctx.t("plan.decided_already")).add(
            ctx.t("plan.decided_already_long", status=status_label(ctx, plan)))
    return Outcome(toast=ctx.t("plan.approved_toast")).add(
        ctx.t("plan.approved", name=plan.owner, month=month_label(ctx, plan.month)))


async def write_return(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Writing:
    """退回 with its reason: the plan as the form's opener read it (kept: nothing read before
    the write), still submitted and of that round guarded in SQL; one round trip. Refused,
    the plan is read as it is now to say why (or, sent again since, returned as it is)."""
    plan = (seen(ctx, Plan.of_kept(meta["plan"])) if "plan" in meta  # kept since issue #12
            else await visible_plan(ctx, int(meta["plan_id"])))
    if plan is None or not is_lead_of(ctx, plan):
        raise Invalid("plan.not_found")
    return returning(ctx, plan, values["comment"])


def returning(ctx: Ctx, plan: Plan, comment: str) -> Writing:
    batch = Batch()
    ok = store.move_status_into(batch, plan.id, ("submitted",), "returned", {
        "decided_by": ctx.user.id, "decided_at": iso(ctx.now), "comment": comment},
        rounds=plan.rounds, needed=True)
    notify_into(batch, ctx, plan, "returned", [plan.user_id], plan.rounds, ok)

    async def saved(_: int | None) -> Saved:
        return Saved(ctx.t("plan.returned", name=plan.owner,
                           month=month_label(ctx, plan.month)), [])

    async def why() -> Invalid | Again:
        now = await visible_plan(ctx, plan.id)
        if now is None or not is_lead_of(ctx, now):
            return Invalid("plan.not_found")
        decided = Invalid("plan.decided_already_long", status=status_label(ctx, now))
        # Returned and sent again while this form was open: the round the lead now returns.
        return Again(returning(ctx, now, comment), decided) if now.status == "submitted" \
            else decided

    return Writing(batch, None, saved, refused=why)


RETURN = router.form(FormSpec(
    name="plan_return", title="form.plan_return.title",
    fields=(Field("comment", "field.plan_comment", "form.plan_return.comment", Kind.TEXT,
                  parse=parse_text),),
    save=None, write=write_return, quick={}))


@router.opener("plret")
async def open_return(app: Assistant, ctx: Ctx, plan_id: int) -> Outcome:
    plan = await visible_plan(ctx, plan_id)
    if plan is None or not is_lead_of(ctx, plan) or plan.status != "submitted":
        return not_found(ctx)
    return await app.engine.start(ctx, RETURN.name, meta={"plan_id": plan_id,
                                                          "plan": plan.kept()}, heading=ctx.t(
        "plan.return_heading", name=plan.owner, month=month_label(ctx, plan.month)))


router.opener_button("ret", "plret", reads=PLAN)


# --- the month's result and its evaluation --------------------------------------------------
def result_view_reads(ctx: Ctx) -> list[Read]:
    """What result_view reads: my plans of this month and last, their views."""
    month = this_month(ctx)
    return [*my_view_reads(ctx, month), *my_view_reads(ctx, month.prev())]


async def result_view(ctx: Ctx) -> View | None:
    """The view of my plan whose result is due now: this month's, or last month's not sent
    (both read in one round trip, result_view_reads)."""
    month = this_month(ctx)
    this, last = await my_view(ctx, month, *my_view_reads(ctx, month.prev()))
    return next((v for v in (this, store.view_in(last)) if v.plan is not None
                 and result_due_by(ctx, v.plan, v.cal)), None)


def result_of(ctx: Ctx, view: View, heading: str = "") -> Reply:
    plan = view.plan
    assert plan is not None
    items = view.items
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
    found = await plan_and_view(ctx, int(arg)) if arg.isdigit() else None
    if found is None or not is_owner(ctx, found[0]):
        return not_found(ctx)
    plan, view = found
    if plan.closed:
        return Outcome(toast=ctx.t("plan.result_sent_already"), replies=[card_of(ctx, view)])
    if not result_due_by(ctx, plan, view.cal):
        return Outcome().add(ctx.t("plan.result_not_yet"))
    return Outcome(replies=[result_of(ctx, view)])


async def note_typed(ctx: Ctx, m: re.Match[str]) -> Outcome:
    view = await result_view(ctx)
    if view is None:
        return Outcome().add(ctx.t("plan.note_when"))
    items = view.items
    n = int(m.group(1))
    try:
        if not 1 <= n <= len(items):
            raise Invalid("plan.no_number", n=n, count=len(items))
        if items[n - 1].done_at is not None:
            raise Invalid("plan.note_done", n=n)
        note = await parse_text(m.group(2).strip(), ctx)
    except Invalid as exc:  # said above the result as it stands, its button still there
        return Outcome(replies=[result_of(ctx, view, "⚠️ " + ctx.t(exc.key, **exc.kwargs))])
    await store.set_item(ctx.services.db, items[n - 1].id, note=note)
    return Outcome(replies=[result_of(ctx, changed(view, items[n - 1].id, note=note),
                                      ctx.t("plan.noted", n=n))])


@router.button("rsub", reads=PLAN_VIEW)
async def result_submit(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    """提交完成情况: the view with its leads (one read); the result, its items' done moments
    kept, the reminder dropped and the leads told (one write)."""
    found = await plan_and_view(ctx, int(arg)) if arg.isdigit() else None
    if found is None or not is_owner(ctx, found[0]):
        return not_found(ctx)
    plan, view = found
    if not result_due_by(ctx, plan, view.cal):
        return Outcome(toast=ctx.t("plan.result_sent_already"), replies=[card_of(ctx, view)])
    items = view.items
    done = done_count(items)
    batch = Batch()
    reported = batch.update(
        "UPDATE plans SET status = 'reported', result_at = ?, done_count = ?, "
        "total_count = ? WHERE id = ? AND status NOT IN ('reported', 'evaluated')",
        (iso(ctx.now), done, len(items), plan.id), plan.id)
    store.keep_result_into(batch, items, reported)
    Reminders.cancel_into(batch, SUBJECT, plan.id, "result", if_new=reported)
    notify_into(batch, ctx, plan, "reported", [uid for uid, _ in view.leads], if_new=reported)
    if not (await ctx.services.db.write_batch(batch)).changed(reported):
        return Outcome(toast=ctx.t("plan.result_sent_already"))
    names = "、".join(name for _, name in view.leads) or ctx.t("plan.nobody")
    return Outcome().add(ctx.t("plan.result_sent", done=done, total=len(items), leads=names))


async def grade_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(g, grade_label(ctx.locale, g)) for g in grades()]


async def show_grade(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return grade_label(ctx.locale, value)


async def write_evaluation(ctx: Ctx, values: dict[str, Any], token: str,
                           meta: dict[str, Any]) -> Writing:
    """The grade, the plan as the form's opener read it (kept: nothing read before the
    write), still 'reported' guarded in SQL; one round trip."""
    plan = (seen(ctx, Plan.of_kept(meta["plan"])) if "plan" in meta  # kept since issue #12
            else await visible_plan(ctx, int(meta["plan_id"])))
    if plan is None or not is_lead_of(ctx, plan):
        raise Invalid("plan.not_found")
    batch = Batch()
    ok = store.move_status_into(batch, plan.id, ("reported",), "evaluated", {
        "grade": values["grade"], "evaluation": values["comment"],
        "evaluated_by": ctx.user.id, "evaluated_at": iso(ctx.now)}, "plan.evaluated_already")
    notify_into(batch, ctx, plan, "evaluated", [plan.user_id], if_new=ok)

    async def saved(_: int | None) -> Saved:
        return Saved(ctx.t("plan.evaluated", name=plan.owner, month=month_label(ctx, plan.month),
                           grade=grade_label(ctx.locale, values["grade"])), [])

    return Writing(batch, None, saved)


EVALUATE = router.form(FormSpec(
    name="plan_eval", title="form.plan_eval.title",
    fields=(Field("grade", "field.plan_grade", "form.plan_eval.grade", Kind.CHOICE,
                  choices=grade_choices, show=show_grade),
            Field("comment", "field.plan_evaluation", "form.plan_eval.comment", Kind.TEXT,
                  parse=parse_text)),
    save=None, write=write_evaluation, quick={}))


@router.opener("pleval")
async def open_evaluation(app: Assistant, ctx: Ctx, plan_id: int) -> Outcome:
    found = await plan_and_view(ctx, plan_id)
    if found is None or not is_lead_of(ctx, found[0]) or found[0].status != "reported":
        return not_found(ctx)
    plan, items = found[0], found[1].items
    heading = "\n".join([ctx.t("plan.eval_heading", name=plan.owner,
                                month=month_label(ctx, plan.month), done=done_count(items),
                                total=len(items)), *item_lines(ctx, items)])
    return await app.engine.start(ctx, EVALUATE.name, meta={"plan_id": plan_id,
                                                            "plan": plan.kept()},
                                  heading=heading)


router.opener_button("eval", "pleval", reads=PLAN_VIEW)


# --- notices, /todo and the morning digest --------------------------------------------------
async def render_notice(ctx: Ctx, r: Reminder) -> Reply | None:
    """A notice as the plan is now; None (dropped) once it no longer applies. The plan's
    items and calendar are read with it (one round trip) only for the notices that show them."""
    plan: Plan | None
    view: View | None = None
    if r.kind in ("submitted", "returned", "result"):
        plan, view = await plan_and_view(ctx, r.subject_id) or (None, None)
    else:
        plan = await visible_plan(ctx, r.subject_id)
    if plan is None:
        return None
    month = month_label(ctx, plan.month)
    same_round = r.detail.get("round", 0) == plan.rounds
    if view is not None and r.kind == "submitted" and plan.status == "submitted" and same_round:
        return card_of(ctx, view, ctx.t("plan.push.submitted", name=plan.owner, month=month,
                                        count=len(view.items)))
    if view is not None and r.kind == "returned" and plan.status == "returned" and same_round:
        return card_of(ctx, view, ctx.t("plan.push.returned", who=plan.decided_by or "",
                                        month=month))
    if r.kind == "approved" and plan.status not in ("draft", "submitted", "returned"):
        # Its own button data: the morning digest's 本周计划 line (whose button opens the
        # plan) must not pass for this notice and settle it unsent.
        return Reply(ctx.t("plan.push.approved", who=plan.decided_by or "", month=month),
                     [[Button(ctx.t("btn.plan_view"), router.callback("see", plan.id))]])
    if view is not None and r.kind == "result" and result_due_by(ctx, plan, view.cal):
        items = view.items
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


router.report_section(REPORT)
router.help_lines.append("plan.help")
