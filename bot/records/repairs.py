"""报修: a fault call in one 台区; the crew must arrive within the area kind's limit (city 45 min,
rural 90, remote 120), then restore supply (newer rule set: a target after arrival). Reminders
10 minutes before arrival is due and at the deadline are urgent (they go through quiet hours),
and an overdue arrival is escalated to the team's leads at once."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.conversations.engine import FormSpec, Saved
from bot.conversations.fields import Field, Invalid, Kind
from bot.conversations.worklog import (
    area_choices,
    check_not_future,
    parse_text,
    parse_when,
    resolve_area,
    show_area,
    show_location,
)
from bot.deadlines import AreaKind, Rule, due_after
from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback
from bot.records.common import (
    calendar,
    leads,
    now_value,
    remaining,
    ruleset,
    show_time,
    span,
    time_value,
    value_time,
    when,
)
from bot.registry import REGISTRY, ReminderKind, TodoItem
from bot.services import Ctx
from bot.storage.conversations import Draft
from bot.storage.db import Row, Tx, from_iso, iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input
from bot.timeparse import find_time

if TYPE_CHECKING:
    from bot.assistant import Assistant

SUBJECT = "repair"
AREA_KINDS: tuple[AreaKind, ...] = ("city", "rural", "remote")
# Only a message that *starts* with the word opens a repair: `记录报修 3号台区` stays a work log.
_INTENT = re.compile(r"^(故障报修|报修|抢修)(?!记录)\s*(.*)$")
_AREA_TOKEN = re.compile(r"\S*?台区")
_BARE_AREA_NUMBER = re.compile(r"^(\d+号)(?=\s|$)")


# --- storage --------------------------------------------------------------------------
_SELECT = ("SELECT r.*, u.name AS owner, a.name AS area_name, a.kind AS area_kind "
           "FROM repairs r JOIN users u ON u.id = r.user_id JOIN areas a ON a.id = r.area_id ")


async def get(ctx: Ctx, rid: int) -> Row | None:
    """The repair if the user may see it: their own, or the team's for a lead."""
    row = await ctx.services.db.fetchone(_SELECT + "WHERE r.id = ?", (rid,))
    if row is None or row["team_id"] != ctx.user.team_id:
        return None
    if not ctx.user.sees_whole_team and row["user_id"] != ctx.user.id:
        return None
    return row


def _kind(value: str | None) -> AreaKind:
    for k in AREA_KINDS:
        if value == k:
            return k
    return "rural"  # the schema's default: an area nobody classified counts as rural


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
async def save_repair(ctx: Ctx, values: dict[str, Any], token: str,
                      meta: dict[str, Any]) -> Saved:
    services = ctx.services
    area = next((a for a in await services.people.areas_for(ctx.user)
                 if str(a.id) == values.get("area")), None)
    if area is None:
        raise Invalid("form.worklog.area_gone")
    kind = _kind(area.kind)
    received = value_time(values["received_at"])
    rule = arrival_rule(ctx, kind)
    rules = ruleset(services)
    arrival = due_after(received, rule, await calendar(services), rules.working_hours)
    team_leads = [u.id for u in await leads(services, ctx.user.team_id) if u.id != ctx.user.id]
    async with services.db.tx() as tx:
        existing = await tx.fetchone("SELECT id FROM repairs WHERE form_token = ?", (token,))
        if existing:  # the same confirm processed twice (crash before the draft was closed)
            rid = int(existing["id"])
        else:
            rid = int(await tx.execute(
                "INSERT INTO repairs(team_id, user_id, area_id, received_at, description, "
                "ruleset, arrival_due, form_token, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ctx.user.team_id, ctx.user.id, area.id, iso(received), values["description"],
                 rules.name, iso(arrival.due), token, iso(ctx.now))) or 0)
            await plan_arrival(ctx, tx, rid, arrival.due, team_leads)
    lines = [ctx.t("repair.saved", id=rid, area=area.name, kind=ctx.t(f"repair.area_kind.{kind}")),
             ctx.t("repair.arrive_by", when=when(ctx, arrival.due), rule=rule.label(ctx.locale),
                   left=remaining(ctx, arrival.due))
             + (ctx.t("repair.average") if rule.average else "")]
    return Saved("\n".join(lines), card_buttons(ctx, rid, "open"), record_id=rid)


def card_buttons(ctx: Ctx, rid: int, status: str) -> list[list[Button]]:
    row = [Button(ctx.t("btn.open_item"), callback(GLOBAL_TOKEN, "rep", rid))]
    if status == "open":
        row.append(Button(ctx.t("btn.repair_arrived"), callback(GLOBAL_TOKEN, "repa", rid)))
    if status != "restored":
        row.append(Button(ctx.t("btn.repair_restored"), callback(GLOBAL_TOKEN, "repr", rid)))
    return [row]


async def plan_arrival(ctx: Ctx, tx: Tx, rid: int, due: datetime, lead_ids: list[int]) -> None:
    """Due soon and due to the manager, escalation to the leads: all urgent (a crew on the
    road at night must not wait for the morning digest)."""
    now = ctx.now
    before = timedelta(minutes=ruleset(ctx.services).reminders.repair_before_due_minutes)
    if due - before > now:
        await Reminders.plan(tx, team_id=ctx.user.team_id, user_id=ctx.user.id, subject=SUBJECT,
                             subject_id=rid, kind="arrival.soon", due_at=due - before, now=now,
                             urgent=True)
    await Reminders.plan(tx, team_id=ctx.user.team_id, user_id=ctx.user.id, subject=SUBJECT,
                         subject_id=rid, kind="arrival.due", due_at=max(due, now), now=now,
                         urgent=True)
    for lead_id in lead_ids:
        await Reminders.plan(tx, team_id=ctx.user.team_id, user_id=lead_id, subject=SUBJECT,
                             subject_id=rid, kind="arrival.escalate", due_at=max(due, now),
                             now=now, urgent=True)


REPAIR = REGISTRY.form(FormSpec(
    name="repair",
    title="form.repair.title",
    fields=(
        Field("area", "field.area", "form.repair.area", Kind.CHOICE, choices=area_choices,
              show=show_area),
        Field("received_at", "field.repair_received_at", "form.repair.received_at", Kind.TIME,
              parse=parse_when, show=show_time, hint="form.worklog.time.hint", quick=("now",)),
        Field("description", "field.repair_description", "form.repair.description", Kind.TEXT,
              parse=parse_text),
    ),
    save=save_repair,
    quick={"now": now_value},
))


# --- arrival and restoration ----------------------------------------------------------
async def save_arrival(ctx: Ctx, values: dict[str, Any], token: str,
                       meta: dict[str, Any]) -> Saved:
    rid = int(meta["repair_id"])
    row = await get(ctx, rid)
    if row is None:
        raise Invalid("repair.not_found")
    at = value_time(values["arrived_at"])
    if at < from_iso(row["received_at"]):
        raise Invalid("repair.before_received", received=when(ctx, row["received_at"]))
    loc = values.get("location") or [None, None]
    kind = _kind(row["area_kind"])
    rule = restore_rule(ctx, kind)
    restore_due = None
    if rule is not None:
        rules = ruleset(ctx.services)
        restore_due = due_after(at, rule, await calendar(ctx.services), rules.working_hours).due
    team_leads = [u.id for u in await leads(ctx.services, ctx.user.team_id)
                  if u.id not in (ctx.user.id, row["user_id"])]
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE repairs SET arrived_at = ?, arrived_lat = ?, arrived_lon = ?, restore_due = ?, "
            "status = 'arrived', updated_at = ? WHERE id = ? AND status = 'open'",
            (iso(at), loc[0], loc[1], iso(restore_due) if restore_due else None, iso(ctx.now),
             rid))
        changed = await tx.fetchone("SELECT changes()")
        await Reminders.cancel(tx, SUBJECT, rid, "arrival.")
        if changed and changed[0] and restore_due is not None:
            now = ctx.now
            await Reminders.plan(tx, team_id=row["team_id"], user_id=row["user_id"],
                                 subject=SUBJECT, subject_id=rid, kind="restore.due",
                                 due_at=max(restore_due, now), now=now, urgent=True)
            for lead_id in team_leads:  # an average target: the lead may read it in the morning
                await Reminders.plan(tx, team_id=row["team_id"], user_id=lead_id,
                                     subject=SUBJECT, subject_id=rid, kind="restore.escalate",
                                     due_at=max(restore_due, now), now=now)
    on_time = at <= from_iso(row["arrival_due"])
    lines = [ctx.t("repair.arrived", id=rid, when=when(ctx, at)) + " "
             + ctx.t("deadline.on_time" if on_time else "deadline.late")]
    if restore_due is not None and rule is not None:
        lines.append(ctx.t("repair.restore_by", when=when(ctx, restore_due),
                           rule=rule.label(ctx.locale))
                     + (ctx.t("repair.average") if rule.average else ""))
    else:
        lines.append(ctx.t("repair.no_restore_rule", ruleset=row["ruleset"]))
    return Saved("\n".join(lines), card_buttons(ctx, rid, "arrived"), record_id=rid)


async def save_restored(ctx: Ctx, values: dict[str, Any], token: str,
                        meta: dict[str, Any]) -> Saved:
    rid = int(meta["repair_id"])
    row = await get(ctx, rid)
    if row is None:
        raise Invalid("repair.not_found")
    at = value_time(values["restored_at"])
    floor = from_iso(row["arrived_at"] or row["received_at"])
    if at < floor:
        raise Invalid("repair.before_received", received=when(ctx, floor))
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE repairs SET restored_at = ?, status = 'restored', updated_at = ? "
            "WHERE id = ?", (iso(at), iso(ctx.now), rid))
        await Reminders.cancel(tx, SUBJECT, rid)
    took = ctx.t("repair.took", span=span(ctx, at - from_iso(row["received_at"])))
    on_time = row["restore_due"] is None or at <= from_iso(row["restore_due"])
    return Saved(ctx.t("repair.closed", id=rid, when=when(ctx, at)) + " " + took
                 + (" " + ctx.t("deadline.on_time" if on_time else "deadline.late")
                    if row["restore_due"] else ""),
                 card_buttons(ctx, rid, "restored"), record_id=rid)


ARRIVE = REGISTRY.form(FormSpec(
    name="repair_arrive", title="form.repair_arrive.title",
    fields=(
        Field("arrived_at", "field.repair_arrived_at", "form.repair_arrive.at", Kind.TIME,
              parse=parse_when, show=show_time, quick=("now",)),
        # Named "location": the engine files a shared location under that name.
        Field("location", "field.location", "form.repair_arrive.location", Kind.LOCATION,
              required=False, show=show_location),
    ),
    save=save_arrival, quick={"now": now_value}))

RESTORE = REGISTRY.form(FormSpec(
    name="repair_restore", title="form.repair_restore.title",
    fields=(
        Field("restored_at", "field.repair_restored_at", "form.repair_restore.at", Kind.TIME,
              parse=parse_when, show=show_time, quick=("now",)),
    ),
    save=save_restored, quick={"now": now_value}))


# --- card -----------------------------------------------------------------------------
def _title(ctx: Ctx, row: Row) -> str:
    return ctx.t("repair.title", id=row["id"], area=row["area_name"])


def _done(ctx: Ctx, due: str | None, done: str | None) -> str:
    if done is None:
        return remaining(ctx, due) if due else ""
    on_time = due is None or from_iso(done) <= from_iso(due)
    return ctx.t("repair.done_at", when=when(ctx, done)) + (
        ctx.t("deadline.on_time" if on_time else "deadline.late") if due else "")


async def card(ctx: Ctx, rid: int) -> Outcome:
    row = await get(ctx, rid)
    if row is None:
        return Outcome().add(ctx.t("repair.not_found"))
    sep = "：" if ctx.locale == "zh_CN" else ": "
    kind = _kind(row["area_kind"])
    lines = [_title(ctx, row) + f" · {ctx.t(f'repair.area_kind.{kind}')}",
             ctx.t(f"repair.status.{row['status']}"),
             ctx.t("field.repair_received_at") + sep + when(ctx, row["received_at"]),
             ctx.t("field.repair_description") + sep + row["description"],
             ctx.t("field.owner") + sep + row["owner"],
             ctx.t("field.repair_arrival_due") + sep + when(ctx, row["arrival_due"]) + " · "
             + _done(ctx, row["arrival_due"], row["arrived_at"])]
    if row["arrived_lat"] is not None and row["arrived_lon"] is not None:
        lines.append(ctx.t("field.location") + sep
                     + await show_location([row["arrived_lat"], row["arrived_lon"]], ctx))
    if row["restore_due"]:
        lines.append(ctx.t("field.repair_restore_due") + sep + when(ctx, row["restore_due"])
                     + " · " + _done(ctx, row["restore_due"], row["restored_at"]))
    elif row["restored_at"]:
        lines.append(ctx.t("field.repair_restored_at") + sep + when(ctx, row["restored_at"]))
    buttons = card_buttons(ctx, rid, row["status"])
    buttons[0] = buttons[0][1:]  # the card itself needs no "open" button
    return Outcome().add("\n".join(lines), [b for b in buttons if b])


# --- reminders ------------------------------------------------------------------------
async def render(ctx: Ctx, r: Reminder) -> Reply | None:
    row = await ctx.services.db.fetchone(_SELECT + "WHERE r.id = ?", (r.subject_id,))
    if row is None or row["status"] == "restored":
        return None
    step, label = r.kind.split(".", 1)
    if step == "arrival" and row["arrived_at"]:
        return None
    due = row[f"{step}_due"]
    if due is None:
        return None
    what = ctx.t(f"repair.step.{step}")
    title = _title(ctx, row)
    if label == "escalate":
        text = ctx.t("reminder.escalate", owner=row["owner"], item=title, what=what,
                     due=when(ctx, due), late=remaining(ctx, due))
    elif label == "due":
        text = ctx.t("reminder.overdue", item=title, what=what, due=when(ctx, due),
                     late=remaining(ctx, due))
    elif from_iso(due) <= ctx.now:
        return None  # a "due soon" sent late (bot down): the due one says it all
    else:
        text = ctx.t("reminder.soon", item=title, what=what, due=when(ctx, due),
                     left=remaining(ctx, due))
    return Reply(text, card_buttons(ctx, row["id"], row["status"]))


async def todo(ctx: Ctx) -> list[TodoItem]:
    scope = "r.team_id = ?" if ctx.user.sees_whole_team else "r.user_id = ?"
    rows = await ctx.services.db.fetchall(
        _SELECT + f"WHERE {scope} AND r.status != 'restored'",
        (ctx.user.team_id if ctx.user.sees_whole_team else ctx.user.id,))
    items = []
    for row in rows:
        if row["status"] == "open":
            due = from_iso(row["arrival_due"])
            text = ctx.t("todo.repair_arrival", item=_title(ctx, row), due=when(ctx, due),
                         left=remaining(ctx, due))
        elif row["restore_due"]:
            due = from_iso(row["restore_due"])
            text = ctx.t("todo.repair_restore", item=_title(ctx, row), due=when(ctx, due),
                         left=remaining(ctx, due))
        else:  # no restore target in this rule set: still open until restored
            due = from_iso(row["arrived_at"])
            text = ctx.t("todo.repair_restore_open", item=_title(ctx, row),
                         arrived=when(ctx, due))
        items.append(TodoItem(
            due=due.astimezone(ctx.tz), text=text, urgent=True,
            button=Button(ctx.t("repair.todo_button", id=row["id"], area=row["area_name"]),
                          callback(GLOBAL_TOKEN, "rep", row["id"])),
            overdue=due <= ctx.now and (row["status"] == "open" or bool(row["restore_due"]))))
    return items


REGISTRY.reminder_kind(SUBJECT, ReminderKind(render=render, todo=todo))


# --- wiring ---------------------------------------------------------------------------
async def prefill(ctx: Ctx, rest: str) -> tuple[dict[str, Any], dict[str, str]]:
    """'3号台区 昨晚11点50 变压器冒烟' -> area, received time and description."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    s = rest
    area_text = None
    for name in sorted((c.label for c in await area_choices(ctx)), key=len, reverse=True):
        if name and name in s:
            area_text = name
            s = s.replace(name, " ", 1)
            break
    else:
        m = _AREA_TOKEN.search(s) or _BARE_AREA_NUMBER.search(s.strip())
        if m:
            area_text = m.group(0)
            s = s.replace(area_text, " ", 1)
    if area_text:
        area, note = await resolve_area(ctx, area_text)
        if area:
            values["area"] = area
        elif note:
            notices["area"] = "⚠️ " + note
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


@REGISTRY.command("repair")
async def repair_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    if arg and draft is None:
        values, notices = await prefill(ctx, arg)
        return await app.engine.start(ctx, REPAIR.name, values or None, notices)
    return await app.open_form(ctx, draft, REPAIR.name)


@REGISTRY.intent
async def repair_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    m = _INTENT.match(normalize_input(text))
    if m is None:
        return None
    values, notices = await prefill(ctx, m.group(2))
    return await app.engine.start(ctx, REPAIR.name, values or None, notices)


@REGISTRY.button("rep")
async def open_card(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await card(ctx, int(arg)) if arg.isdigit() else Outcome(toast=ctx.t("button.stale"))


async def _open_action(app: Assistant, ctx: Ctx, rid: int, form: FormSpec, heading_key: str,
                       allowed: tuple[str, ...]) -> Outcome:
    row = await get(ctx, rid)
    if row is None:
        return Outcome().add(ctx.t("repair.not_found"))
    if row["status"] not in allowed:
        return await card(ctx, rid)
    return await app.engine.start(ctx, form.name, meta={"repair_id": rid},
                                  heading=ctx.t(heading_key, item=_title(ctx, row)))


@REGISTRY.opener("rpa")
async def open_arrival(app: Assistant, ctx: Ctx, rid: int) -> Outcome:
    return await _open_action(app, ctx, rid, ARRIVE, "repair.arrive_heading", ("open",))


@REGISTRY.opener("rpr")
async def open_restore(app: Assistant, ctx: Ctx, rid: int) -> Outcome:
    return await _open_action(app, ctx, rid, RESTORE, "repair.restore_heading",
                              ("open", "arrived"))


REGISTRY.opener_button("repa", "rpa")
REGISTRY.opener_button("repr", "rpr")
