"""报修: a fault call in one 台区; the crew must arrive within the area kind's limit (city 45 min,
rural 90, remote 120), then restore supply (newer rule set: a target after arrival). Reminders
10 minutes before arrival is due and at the deadline are urgent (they go through quiet hours),
and an overdue arrival is escalated to the team's leads at once."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.deadlines import AreaKind, Rule, due_after
from bot.events import Button, Outcome, Reply
from bot.features.worklog.form import area_choices, show_area, take_area_into
from bot.forms import kinds
from bot.forms.engine import FormSpec, Saved, Writing
from bot.forms.fields import Field, Invalid, Kind
from bot.forms.kinds import check_not_future, parse_text, show_location
from bot.records import callback as cb
from bot.records import runtime as rt
from bot.records.common import (
    now_value,
    remaining,
    ruleset,
    span,
    step_calendar,
    time_value,
    value_time,
    when,
)
from bot.router import Router, TodoItem, TodoRead
from bot.services import Ctx
from bot.statuses import repair_status
from bot.storage.batch import Batch
from bot.storage.db import Read, Row, iso
from bot.storage.reminders import Reminder, Reminders
from bot.timeparse import find_time

router = Router("repairs")
SUBJECT = "repair"
AREA_KINDS: tuple[AreaKind, ...] = ("city", "rural", "remote")
# Only a message that *starts* with the word opens a repair: `记录报修 3号台区` stays a work log
# (and `抢修记录 …` is read by the work log's starter, listed before repairs in the root).
_INTENT = re.compile(r"^(故障报修|报修|抢修)\s*(.*)$")


@dataclass(frozen=True)
class Repair:
    id: int
    team_id: int
    user_id: int
    owner: str
    status: str
    area_name: str
    area_kind: str | None
    ruleset: str
    description: str
    received_at: datetime
    arrival_due: datetime
    arrived_at: datetime | None
    arrived_lat: float | None
    arrived_lon: float | None
    restore_due: datetime | None
    restored_at: datetime | None
    order_no: str | None
    callback_due: datetime | None
    callback_at: datetime | None
    callback_result: str | None
    callback_note: str | None

    @property
    def kind(self) -> AreaKind:
        for k in AREA_KINDS:
            if self.area_kind == k:
                return k
        return "rural"  # the schema's default: an area nobody classified counts as rural


STORE = rt.Store(Repair, "repairs", "SELECT r.*, u.name AS owner, a.name AS area_name, "
              "a.kind AS area_kind FROM repairs r JOIN users u ON u.id = r.user_id "
              "JOIN areas a ON a.id = r.area_id", "r")


def arrival_rule(ctx: Ctx, kind: AreaKind) -> Rule:
    rule = ruleset(ctx.services).repair.arrival.get(kind)
    # Both shipped sets define every kind; a hand-edited set lacking one falls back to rural.
    fallback = ruleset(ctx.services).repair.arrival.get("rural")
    if rule is None and fallback is None:
        raise RuntimeError("the rule set has no repair arrival limit for rural areas")
    return rule or fallback  # type: ignore[return-value]


def restore_rule(ctx: Ctx, kind: AreaKind) -> Rule | None:
    group = ruleset(ctx.services).repair.restore_after_arrival
    return group.get(kind) if group is not None else None


# --- the registration form ------------------------------------------------------------
async def write_repair(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Writing:
    """The repair and its arrival ladder as writes, saved with the form's close in one round
    trip; the reply worded from the answers."""
    services = ctx.services
    area = next((a for a in await ctx.areas() if str(a.id) == values.get("area")), None)
    if area is None:
        raise Invalid("form.worklog.area_gone")
    kind = next((k for k in AREA_KINDS if k == area.kind), "rural")
    received = value_time(values["received_at"])
    rule = arrival_rule(ctx, kind)
    rules = ruleset(services)
    due = due_after(received, rule, await step_calendar(ctx), rules.working_hours).due
    before = timedelta(minutes=rules.reminders.repair_before_due_minutes)
    batch = Batch()
    ref = STORE.insert_into(batch, token, {
        "team_id": ctx.user.team_id, "user_id": ctx.user.id, "area_id": area.id,
        "received_at": iso(received), "description": values["description"],
        "order_no": values.get("order_no"),
        "ruleset": rules.name, "arrival_due": iso(due), "created_at": iso(ctx.now)})
    # all urgent: a crew on the road at night must not wait for the digest
    rt.plan_ladder_into(batch, SUBJECT, ref, ctx.user.team_id, ctx.user.id, "arrival", [
        rt.Rung("soon", due - before, urgent=True),
        rt.Rung("due", due, urgent=True, skip_if_past=False),
        rt.Rung("escalate", due, to_leads=True, urgent=True, skip_if_past=False)], ctx.now)

    async def saved(rid: int | None) -> Saved:
        assert rid is not None
        lines = [ctx.t("repair.saved", id=rid, area=area.name,
                       kind=ctx.t(f"repair.area_kind.{kind}")),
                 ctx.t("repair.arrive_by", when=when(ctx, due), rule=rule.label(ctx.locale),
                       left=remaining(ctx, due))
                 + (ctx.t("repair.average") if rule.average else "")]
        return Saved("\n".join(lines), action_rows(ctx, rid, "open"), record_id=rid)

    return Writing(batch, ref, saved)


def action_rows(ctx: Ctx, rid: int, status: str) -> list[list[Button]]:
    """The open button and the transitions allowed in `status` (after a save)."""
    return [[REPAIRS.open_button(ctx, rid),
             *(t.button(ctx, rid) for t in REPAIRS.transitions
               if isinstance(t.allowed, tuple) and status in t.allowed)]]


REPAIR = router.form(FormSpec(
    name="repair",
    title="form.repair.title",
    fields=(
        Field("area", "field.area", "form.repair.area", Kind.CHOICE, choices=area_choices,
              show=show_area, fill_sole=True),
        rt.time_field("received_at", "field.repair_received_at", "form.repair.received_at",
                      hint="form.worklog.time.hint"),
        kinds.text("description", "field.repair_description", "form.repair.description"),
        # Offered on the summary, not asked: a fault call often has no 95598 order.
        Field("order_no", "field.order_no", "form.repair.order_no", Kind.TEXT,
              required=False, parse=cb.parse_order_no),
    ),
    save=None,
    write=write_repair,
    quick={"now": now_value},
    extras=("order_no",),
))


# --- arrival and restoration ----------------------------------------------------------
async def write_arrival(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Writing:
    """The arrival (once: the restore ladder planned only then) with the form's close in
    one round trip, from the repair as kept with the form."""
    rec = await REPAIRS.kept(ctx, meta)
    at = value_time(values["arrived_at"])
    if at < rec.received_at:
        raise Invalid("repair.before_received", received=when(ctx, rec.received_at))
    loc = values.get("location") or [None, None]
    rule = restore_rule(ctx, rec.kind)
    restore_due = None
    if rule is not None:
        rules = ruleset(ctx.services)
        restore_due = due_after(at, rule, await step_calendar(ctx), rules.working_hours).due
    batch = Batch()
    arrived = STORE.update_into(batch, rec.id, {
        "arrived_at": iso(at), "arrived_lat": loc[0], "arrived_lon": loc[1],
        "restore_due": iso(restore_due) if restore_due else None, "status": "arrived",
        "updated_at": iso(ctx.now)}, "status = 'open'")
    Reminders.cancel_into(batch, SUBJECT, rec.id, "arrival.")
    if restore_due is not None:  # an average target: leads read it later
        rt.plan_ladders_into(batch, SUBJECT, rec.id, rec.team_id, rec.user_id, [("restore", [
            rt.Rung("due", restore_due, urgent=True, skip_if_past=False),
            rt.Rung("escalate", restore_due, to_leads=True, skip_if_past=False)])], ctx.now,
            leads_but=(ctx.user.id, rec.user_id), if_new=arrived)
    lines = [ctx.t("repair.arrived", id=rec.id, when=when(ctx, at)) + " "
             + rt.on_time(ctx, at, rec.arrival_due)]
    if restore_due is not None and rule is not None:
        lines.append(ctx.t("repair.restore_by", when=when(ctx, restore_due),
                           rule=rule.label(ctx.locale))
                     + (ctx.t("repair.average") if rule.average else ""))
    else:
        lines.append(ctx.t("repair.no_restore_rule", ruleset=rec.ruleset))

    async def saved(_: int | None) -> Saved:
        return Saved("\n".join(lines), action_rows(ctx, rec.id, "arrived"), record_id=rec.id)

    return Writing(batch, rec.id, saved)


async def write_restored(ctx: Ctx, values: dict[str, Any], token: str,
                         meta: dict[str, Any]) -> Writing:
    """The restoration closes the repair once (the call-back then planned, once) with the
    form's close in one round trip, from the repair as kept with the form."""
    rec = await REPAIRS.kept(ctx, meta)
    at = value_time(values["restored_at"])
    floor = rec.arrived_at or rec.received_at
    if at < floor:
        raise Invalid("repair.before_received", received=when(ctx, floor))
    callback_due = await cb.due_after_close(ctx, max(at, ctx.now))
    batch = Batch()
    restored = STORE.update_into(batch, rec.id, {
        "restored_at": iso(at), "status": "restored", "updated_at": iso(ctx.now),
        "callback_due": iso(callback_due)}, "status != 'restored'")
    Reminders.cancel_into(batch, SUBJECT, rec.id)
    # Supply back: the call-back is planned once, from the restoration.
    cb.plan_into(batch, SUBJECT, rec, callback_due, ctx.user.id, ctx.now, restored)

    async def saved(_: int | None) -> Saved:
        took = ctx.t("repair.took", span=span(ctx, at - rec.received_at))
        text = (ctx.t("repair.closed", id=rec.id, when=when(ctx, at)) + " " + took
                + (" " + rt.on_time(ctx, at, rec.restore_due) if rec.restore_due else ""))
        rows = action_rows(ctx, rec.id, "restored")
        if batch.changed(restored):
            text += "\n" + cb.planned_line(ctx, callback_due)
            rows[0].append(REPAIRS.action("repb").button(ctx, rec.id))
        return Saved(text, rows, record_id=rec.id)

    return Writing(batch, rec.id, saved)


ARRIVE = rt.action_form(
    "repair_arrive", None,
    rt.time_field("arrived_at", "field.repair_arrived_at", "form.repair_arrive.at"),
    kinds.location("location", "field.location", "form.repair_arrive.location",
                   required=False), write=write_arrival)
RESTORE = rt.action_form(
    "repair_restore", None,
    rt.time_field("restored_at", "field.repair_restored_at", "form.repair_restore.at"),
    write=write_restored)


# --- card -----------------------------------------------------------------------------
def title(ctx: Ctx, rec: Repair) -> str:
    return ctx.t("repair.title", id=rec.id, area=rec.area_name)


async def render_card(ctx: Ctx, rec: Repair, heading: str | None = None) -> Outcome:
    lines = [title(ctx, rec) + f" · {ctx.t(f'repair.area_kind.{rec.kind}')}",
             ctx.t(repair_status(rec.status)),
             rt.field_line(ctx, "field.repair_received_at", when(ctx, rec.received_at)),
             rt.field_line(ctx, "field.repair_description", rec.description),
             *([rt.field_line(ctx, "field.order_no", rec.order_no)] if rec.order_no else []),
             rt.field_line(ctx, "field.owner", rec.owner),
             rt.deadline_line(ctx, "field.repair_arrival_due", rec.arrival_due, rec.arrived_at,
                              "repair.done_at", judge=True)]
    if rec.arrived_lat is not None and rec.arrived_lon is not None:
        lines.append(rt.field_line(ctx, "field.location",
                                await show_location([rec.arrived_lat, rec.arrived_lon], ctx)))
    if rec.restore_due:
        lines.append(rt.deadline_line(ctx, "field.repair_restore_due", rec.restore_due,
                                      rec.restored_at, "repair.done_at", judge=True))
    elif rec.restored_at:
        lines.append(rt.field_line(ctx, "field.repair_restored_at", when(ctx, rec.restored_at)))
    lines += cb.card_lines(ctx, rec)
    buttons = await REPAIRS.allowed(ctx, rec)
    return Outcome().add("\n".join(lines), [buttons] if buttons else [])


# --- reminders and to-do ------------------------------------------------------------
def todo_reads(ctx: Ctx) -> list[Read]:
    return [STORE.open_read(ctx, "r.status != 'restored'"), cb.todo_read(ctx, REPAIRS, "r")]


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    items = []
    for rec in STORE.records(rows[0]):
        item = title(ctx, rec)
        if rec.status == "open":
            due = rec.arrival_due
            text = ctx.t("todo.repair_arrival", item=item, due=when(ctx, due),
                         left=remaining(ctx, due))
        elif rec.restore_due:
            due = rec.restore_due
            text = ctx.t("todo.repair_restore", item=item, due=when(ctx, due),
                         left=remaining(ctx, due))
        else:  # no restore target in this rule set: still open until restored, never late
            due = rec.arrived_at or rec.received_at
            text = ctx.t("todo.repair_restore_open", item=item, arrived=when(ctx, due))
        items.append(REPAIRS.todo_item(
            ctx, rec, due, text, ctx.t("repair.todo_button", id=rec.id, area=rec.area_name),
            urgent=True, overdue=None if rec.status == "open" or rec.restore_due else False))
    return items + cb.todo_items(ctx, REPAIRS, rows[1])


async def write_callback(ctx: Ctx, values: dict[str, Any], token: str,
                         meta: dict[str, Any]) -> Writing:
    return cb.write_result(ctx, REPAIRS, await REPAIRS.kept(ctx, meta), values)


async def other_reminders(ctx: Ctx, r: Reminder, rec: Repair) -> Reply | None:
    return await cb.lead_alert(ctx, REPAIRS, r, rec)


CALLBACK = cb.result_form("repair_callback", write_callback)


# --- wiring ---------------------------------------------------------------------------
async def prefill(ctx: Ctx, rest: str) -> tuple[dict[str, Any], dict[str, str]]:
    """'3号台区 昨晚11点50 变压器冒烟' -> area, received time and description."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    order_no, notice, rest = await cb.take_order_no(ctx, rest)
    if order_no:
        values["order_no"] = order_no
    elif notice:
        notices["order_no"] = notice
    s = await take_area_into(ctx, rest, values, notices)
    found = find_time(s, ctx.local_now, prefer="past")
    if found is not None:
        try:
            check_not_future(ctx, found)
            values["received_at"] = time_value(found)
            s = s.replace(found.phrase, " ", 1)
        except Invalid as exc:
            notices["received_at"] = "⚠️ " + ctx.t(exc.key, **exc.kwargs)
    description = " ".join(s.split())
    if description:
        with contextlib.suppress(Invalid):  # refused: asked for at its own step
            values["description"] = await parse_text(description, ctx)
    return values, notices


REPAIRS = rt.RecordType(
    subject=SUBJECT, store=STORE, open_action="rep", not_found="repair.not_found",
    meta_key="repair_id", title=title, render_card=render_card,
    transitions=(
        rt.Transition("repa", "btn.repair_arrived", ("open",), ARRIVE, "rpa",
                      "repair.arrive_heading"),
        rt.Transition("repr", "btn.repair_restored", ("open", "arrived"), RESTORE, "rpr",
                      "repair.restore_heading"),
        cb.transition("repb", CALLBACK, "rb"),
    ),
    form=REPAIR, command="repair", intent=_INTENT, prefill=prefill,
    ladders=(
        rt.Ladder("arrival", "repair.step.arrival", lambda r: r.arrival_due,
                  lambda r: r.status == "restored" or r.arrived_at is not None,
                  ("repa", "repr")),
        rt.Ladder("restore", "repair.step.restore", lambda r: r.restore_due,
                  lambda r: r.status == "restored", ("repr",)),
        cb.ladder("repb"),
    ),
    other_reminders=other_reminders, todo_items=TodoRead(todo_reads, todo)).register(router)
