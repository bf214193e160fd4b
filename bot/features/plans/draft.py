"""This month's plan of a manager, drafted when first asked for: last month's unfinished items
(结转), the special customers due for a visit within the month, each 台区's patrols spread over
it (data/plans.json); with the month-end reminder to submit the result."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from bot.features.plans import store
from bot.features.plans.store import (
    SUBJECT,
    Month,
    NewItem,
    Plan,
    View,
    last_working_day,
    mine,
    plan_rules,
    plans_reads,
    read_view,
    view_in,
    view_reads,
)
from bot.services import Ctx
from bot.storage.batch import Batch
from bot.storage.customers import visits_due_of, visits_due_reads
from bot.storage.db import Read, Row
from bot.storage.reminders import PlannedFor, PlannedRung, Reminders
from bot.workcal import WorkCalendar


def this_month(ctx: Ctx) -> Month:
    return Month.of(ctx.local_now.date())


def first_day(ctx: Ctx, month: Month) -> date:
    """The earliest day an item can be planned for: today, within the month."""
    return min(max(ctx.local_now.date(), month.first), month.last)


def carried_items(ctx: Ctx, month: Month, last: View) -> list[NewItem]:
    """Last month's unfinished items, planned again from today (marked 结转)."""
    if last.plan is None:
        return []
    day = first_day(ctx, month)
    return [NewItem(it.kind, day, it.area_id, it.customer_id, it.body, carried=True,
                    area_name=it.area_name, customer_name=it.customer_name)
            for it in last.items if it.done_at is None]


def visit_items(ctx: Ctx, month: Month, due: list[Row], skip: set[int]) -> list[NewItem]:
    """Special customers in my 台区 due for a visit by their 走访周期 within the month (`due`:
    drafting_reads' rows of them)."""
    out = []
    for c, _ in visits_due_of(due, []):
        if c.id is None or c.id in skip or c.visit_due is None:
            continue
        day = max(c.visit_due.astimezone(ctx.tz).date(), first_day(ctx, month))
        out.append(NewItem("visit", day, c.area_id, c.id, area_name=c.area_name,
                           customer_name=c.name))
    return out


async def patrol_items(ctx: Ctx, month: Month, cal: WorkCalendar) -> list[NewItem]:
    n = int(plan_rules()["patrols_per_area"])
    # A plan drafted mid-month plans no patrol for a day already gone: from today on.
    days = [max(d, first_day(ctx, month)) for d in store.spread(cal, month, n)]
    return [NewItem("patrol", d, a.id, area_name=a.name) for a in await ctx.areas()
            for d in days]


async def draft_items(ctx: Ctx, month: Month, last: View, due: list[Row],
                      cal: WorkCalendar) -> list[NewItem]:
    carried = carried_items(ctx, month, last)
    visits = visit_items(ctx, month, due, {c.customer_id for c in carried
                                           if c.customer_id is not None})
    patrols = await patrol_items(ctx, month, cal)
    return sorted([*carried, *visits, *patrols], key=lambda i: (not i.carried, i.due_on))


def result_reminder_at(ctx: Ctx, month: Month, cal: WorkCalendar) -> datetime:
    at = time.fromisoformat(str(plan_rules()["result_reminder_time"]))
    return datetime.combine(last_working_day(cal, month), at, tzinfo=ctx.tz)


def my_view_reads(ctx: Ctx, month: Month) -> list[Read]:
    """What my_view reads for my plan of `month` (view_reads): declared by what reads it
    with the step's own read, the same statements so the store serves them."""
    return view_reads(mine(ctx.user.id, month), ctx.user.team_id, ctx.tz)


async def my_view(ctx: Ctx, month: Month, *more: Read) -> tuple[View, list[list[Row]]]:
    """My plan of `month` as its card shows it (and the rows of `more`): one round trip."""
    return await read_view(ctx.services.db, mine(ctx.user.id, month), ctx.user.team_id, ctx.tz,
                           *more)


def drafting_reads(ctx: Ctx, month: Month) -> list[Read]:
    """What drafting my plan of `month` reads, read with its view (one round trip, issue
    #12) but only where there is no plan yet (each read guarded in SQL: once a month, not on
    every look): last month's plan with its items and ticks, and the customers due for a
    visit within the month."""
    last = mine(ctx.user.id, month.prev()).unless(mine(ctx.user.id, month))
    due, params = visits_due_reads(ctx.user, month.end(ctx.tz) - timedelta(seconds=1))[0]
    # The guard goes outside the read, its order with it (an ordered subquery's order is not
    # kept by the query around it). It is the outer side of a CROSS JOIN (SQLite keeps that
    # order): with a plan there, no customer is scanned (a WHERE NOT EXISTS scanned them all
    # and dropped each: 66 ms for 300,000, on the event loop where it is the step's read).
    body, order = due.rsplit(" ORDER BY ", 1)
    return [*plans_reads(last, ctx.tz), (
        "SELECT c.* FROM (SELECT 1 AS none_yet WHERE NOT EXISTS (SELECT 1 FROM plans WHERE "
        f"user_id = ? AND month = ?)) g CROSS JOIN ({body}) c ORDER BY {order}",
        (ctx.user.id, month.key, *params))]


async def draft_plan(ctx: Ctx, month: Month, view: View, rows: list[list[Row]]) -> View:
    """This month's plan of mine (`view`, as read), drafted now if I have none from what
    drafting_reads read with it (`rows`): the plan, its items and its month-end reminder in
    one write, with what ticks the items read in it; the new plan's view is then worded
    from what was written (its items' ids in order: Batch.insert_rows), not read back."""
    if view.plan is not None:
        return view
    last = view_in(rows, view.cal)
    items = await draft_items(ctx, month, last, rows[-1], view.cal)
    batch = Batch()
    pid, refs = store.create_plan_into(batch, ctx.user.team_id, ctx.user.id, month, items,
                                       ctx.now)
    due = max(result_reminder_at(ctx, month, view.cal), ctx.now)
    Reminders.plan_rows_into(batch, [PlannedFor(ctx.user.id, PlannedRung("result", due, False,
                                                                         False))],
                             team_id=ctx.user.team_id, subject=SUBJECT, subject_id=pid,
                             now=ctx.now)
    visits, patrols = (batch.read_rows(sql, params) for sql, params in store.drafted_tick_reads(
        ctx.user.team_id, ctx.user.id, month, items, ctx.tz))
    played = await ctx.services.db.write_batch(batch)
    ids = [played.id_of(ref) if played.changed(ref) else None for ref in refs]
    plan_id = played.id_of(pid)
    if not items or None in ids or plan_id is None:
        # Drafted by a second tap or another instance meanwhile (its items not these), or
        # with no items (nothing tells whether this write drafted it): read as it is.
        drafted, _ = await my_view(ctx, month)
        assert drafted.plan is not None
        return drafted
    plan = Plan(plan_id, ctx.user.team_id, ctx.user.id, ctx.user.name, month, "draft", 0,
                None, None, None, None, None, None, None)
    return replace(view, plan=plan, visits=visits.value, patrols=patrols.value).with_raw(
        store.drafted_items(plan_id, items, [rid for rid in ids if rid is not None]))


def this_view_reads(ctx: Ctx) -> list[Read]:
    """What this_view reads: my plan of this month's view, and what drafting it needs (read
    only while there is none): declared by the sentences that read it first (本月计划, 加
    without a day, 删 N), read with the step's own read."""
    month = this_month(ctx)
    return [*my_view_reads(ctx, month), *drafting_reads(ctx, month)]


async def this_view(ctx: Ctx) -> tuple[View, bool]:
    """This month's plan of mine, drafted if I have none (and whether it was): its view and
    what drafting needs in one read (this_view_reads), the draft's write and its view
    read after."""
    month = this_month(ctx)
    view, rows = await my_view(ctx, month, *drafting_reads(ctx, month))
    return await draft_plan(ctx, month, view, rows), view.plan is None


def result_due_by(ctx: Ctx, plan: Plan, cal: WorkCalendar) -> bool:
    """From the month's last working day on, the result may be (and should be) submitted."""
    return not plan.closed and ctx.local_now.date() >= last_working_day(cal, plan.month)
