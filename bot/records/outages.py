"""计划/临时检修停电: register an outage over one or several 台区, with the notice deadline from
the rule set, a checklist (notice posted + every active special customer in the affected
areas, each ticked as told and how), reminders before and after, and the restore question."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.conversations.engine import FormSpec, Saved
from bot.conversations.fields import Field, Invalid, Kind
from bot.conversations.matching import Choice, match_choice
from bot.conversations.worklog import area_choices, parse_text
from bot.deadlines import Rule, due_before
from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback
from bot.records.common import (
    calendar,
    leads,
    parse_future_ok,
    remaining,
    ruleset,
    show_time,
    value_time,
    when,
)
from bot.registry import REGISTRY, ReminderKind, TodoItem
from bot.services import Ctx
from bot.storage.conversations import Draft
from bot.storage.db import Row, Tx, from_iso, iso
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input
from bot.timeparse import parse_time

if TYPE_CHECKING:
    from bot.assistant import Assistant

SUBJECT = "outage"
KINDS = ("planned", "temporary")
HOW = ("phone", "visit", "message")
_INTENT = re.compile(r"^(登记停电|停电登记|登记计划停电|登记临时停电|计划停电|临时停电|"
                     r"检修停电|登记检修停电)\s*(.*)$")
_AREA_TOKEN = re.compile(r"\S*?台区")
_AREA_SPLIT = re.compile(r"[,，、;；\s]+")
# A clock time with no date in it ("17点", "下午5点半"): read on the start's day, not today's.
_HAS_DATE = re.compile(r"[今明后昨前天日号月周/\-]|星期|礼拜|[0-9]{4}")
DAY_BEFORE_HOUR = 9  # the urgent "tell these customers" list: 09:00 the day before the start
CARD_CUSTOMER_BUTTONS = 20  # a phone screen, and Telegram's keyboard, stay usable


# --- storage --------------------------------------------------------------------------
async def get(ctx: Ctx, oid: int) -> Row | None:
    """The outage if the user may see it: their own, or the team's for a lead."""
    row = await ctx.services.db.fetchone(
        "SELECT o.*, u.name AS owner FROM outages o JOIN users u ON u.id = o.user_id "
        "WHERE o.id = ?", (oid,))
    if row is None or row["team_id"] != ctx.user.team_id:
        return None
    if not ctx.user.sees_whole_team and row["user_id"] != ctx.user.id:
        return None
    return row


async def area_names(ctx: Ctx, oid: int) -> list[str]:
    rows = await ctx.services.db.fetchall(
        "SELECT a.name FROM outage_areas oa JOIN areas a ON a.id = oa.area_id "
        "WHERE oa.outage_id = ? ORDER BY a.id", (oid,))
    return [r["name"] for r in rows]


async def checklist(ctx: Ctx, oid: int) -> list[Row]:
    """The special customers snapshotted at registration, with whether and how each was told."""
    return await ctx.services.db.fetchall(
        "SELECT n.customer_id, n.told_at, n.how, c.name, a.name AS area_name, "
        "(SELECT group_concat(category, ',') FROM customer_categories cc "
        " WHERE cc.customer_id = c.id) AS cats "
        "FROM outage_notices n JOIN customers c ON c.id = n.customer_id "
        "JOIN areas a ON a.id = c.area_id WHERE n.outage_id = ? ORDER BY a.id, c.id", (oid,))


# --- the registration form ------------------------------------------------------------
async def parse_areas(text: str, ctx: Ctx) -> list[str]:
    """Typed areas ("3号台区 5号台区", "3号台区、5号台区"): only the user's own are accepted."""
    choices = await area_choices(ctx)
    whole = match_choice(text, choices)
    if whole.exact:
        return [whole.exact.value]
    picked: list[str] = []
    for token in (t for t in _AREA_SPLIT.split(normalize_input(text)) if t):
        found = match_choice(token, choices)
        if found.exact:
            if found.exact.value not in picked:
                picked.append(found.exact.value)
        elif found.suggestions:
            raise Invalid("form.did_you_mean", text=token,
                          options="、".join(c.label for c in found.suggestions))
        else:
            raise Invalid("form.worklog.area.unknown", text=token,
                          options="、".join(c.label for c in choices))
    if not picked:
        raise Invalid("form.pick_at_least_one")
    return picked


async def show_areas(value: list[str], ctx: Ctx) -> str:
    names = {c.value: c.label for c in await area_choices(ctx)}
    return "、".join(names.get(v, ctx.t("form.worklog.area_gone_short")) for v in value)


async def kind_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(k, ctx.t(f"outage.kind.{k}")) for k in KINDS]


async def show_kind(value: str, ctx: Ctx) -> str:
    return ctx.t(f"outage.kind.{value}")


async def _draft_start(ctx: Ctx) -> datetime | None:
    """The start already answered in the open form (the end is checked against it)."""
    draft = await ctx.services.conversations.get(ctx.user.id)
    value = draft.state.get("values", {}).get("start") if draft else None
    return value_time(value) if value else None


async def parse_end(text: str, ctx: Ctx) -> dict[str, Any]:
    p = parse_time(text, ctx.local_now, prefer="future")
    if p is None:
        raise Invalid("form.worklog.time.unparsed", text=text)
    end = p.value if p.has_time else p.value.replace(hour=23, minute=59)  # date: that whole day
    start = await _draft_start(ctx)
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


async def save_outage(ctx: Ctx, values: dict[str, Any], token: str,
                      meta: dict[str, Any]) -> Saved:
    services = ctx.services
    mine = {a.id: a for a in await services.people.areas_for(ctx.user)}
    area_ids = [int(a) for a in values.get("areas") or []]
    if not area_ids or any(a not in mine for a in area_ids):
        raise Invalid("outage.area_not_yours")  # a forged or since-removed area
    start, end = value_time(values["start"]), value_time(values["end"])
    if end <= start:
        raise Invalid("outage.end_before_start", end=when(ctx, end), start=when(ctx, start))
    kind = values["kind"]
    rules = ruleset(services)
    rule = _rule(ctx, kind)
    cal = await calendar(services)
    notice = due_before(start, rule, cal, rules.working_hours) if rule else None
    late = notice is not None and ctx.now > notice.due
    marks = ",".join("?" for _ in area_ids)
    customers = await services.db.fetchall(
        f"SELECT c.id, c.name FROM customers c WHERE c.team_id = ? AND c.active = 1 "
        f"AND c.area_id IN ({marks}) ORDER BY c.area_id, c.id", (ctx.user.team_id, *area_ids))
    team_leads = [u.id for u in await leads(services, ctx.user.team_id) if u.id != ctx.user.id]
    async with services.db.tx() as tx:
        existing = await tx.fetchone("SELECT id FROM outages WHERE form_token = ?", (token,))
        if existing:  # the same confirm processed twice (crash before the draft was closed)
            oid = int(existing["id"])
        else:
            oid = int(await tx.execute(
                "INSERT INTO outages(team_id, user_id, kind, starts_at, ends_at, reason, ruleset, "
                "notice_due, registered_late, form_token, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ctx.user.team_id, ctx.user.id, kind, iso(start), iso(end), values["reason"],
                 rules.name, iso(notice.due) if notice else None, int(late), token,
                 iso(ctx.now))) or 0)
            await tx.executemany("INSERT INTO outage_areas(outage_id, area_id) VALUES (?, ?)",
                                 [(oid, a) for a in area_ids])
            await tx.executemany(
                "INSERT INTO outage_notices(outage_id, customer_id) VALUES (?, ?)",
                [(oid, c["id"]) for c in customers])
            await plan_reminders(ctx, tx, oid, start, end, notice.due if notice else None, late,
                                 bool(customers), team_leads)
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
        if team_leads:
            lines.append(ctx.t("outage.lead_told"))
    if customers:
        lines.append(ctx.t("outage.customers_to_tell", count=len(customers),
                           names="、".join(c["name"] for c in customers[:10])
                           + ("…" if len(customers) > 10 else "")))
    else:
        lines.append(ctx.t("outage.no_customers"))
    return Saved("\n".join(lines), card_buttons(ctx, oid), record_id=oid)


def card_buttons(ctx: Ctx, oid: int) -> list[list[Button]]:
    return [[Button(ctx.t("btn.outage_checklist"), callback(GLOBAL_TOKEN, "out", oid))]]


async def plan_reminders(ctx: Ctx, tx: Tx, oid: int, start: datetime, end: datetime,
                         notice_due: datetime | None, late: bool, has_customers: bool,
                         lead_ids: list[int]) -> None:
    now = ctx.now
    team, me = ctx.user.team_id, ctx.user.id

    async def plan(user_id: int, kind: str, due: datetime, urgent: bool = False) -> None:
        await Reminders.plan(tx, team_id=team, user_id=user_id, subject=SUBJECT, subject_id=oid,
                             kind=kind, due_at=due, now=now, urgent=urgent)

    if notice_due is not None and not late:
        if notice_due - timedelta(days=1) > now:
            await plan(me, "notice.soon", notice_due - timedelta(days=1))
        await plan(me, "notice.due", notice_due)
        for lead_id in lead_ids:
            await plan(lead_id, "notice.escalate", notice_due)
    if late:  # the manager is told in the saved message; the leads at once, whatever the hour
        for lead_id in lead_ids:
            await plan(lead_id, "late.lead", now, urgent=True)
    day_before = _day_before(ctx, start)
    # Registered later than that, the saved message itself carries the list.
    if has_customers and day_before > now:
        await plan(me, "untold.daybefore", day_before, urgent=True)
    await plan(me, "restore.ask", max(end, now))


OUTAGE = REGISTRY.form(FormSpec(
    name="outage",
    title="form.outage.title",
    fields=(
        Field("areas", "field.outage_areas", "form.outage.areas", Kind.MULTI,
              choices=area_choices, parse=parse_areas, show=show_areas),
        Field("kind", "field.outage_kind", "form.outage.kind", Kind.CHOICE,
              choices=kind_choices, show=show_kind),
        Field("start", "field.outage_start", "form.outage.start", Kind.TIME,
              parse=parse_future_ok, show=show_time, hint="form.outage.time.hint"),
        Field("end", "field.outage_end", "form.outage.end", Kind.TIME, parse=parse_end,
              show=show_time, hint="form.outage.end.hint"),
        Field("reason", "field.outage_reason", "form.outage.reason", Kind.TEXT,
              parse=parse_text),
    ),
    save=save_outage,
    quick={},
))


# --- card -----------------------------------------------------------------------------
def _title(ctx: Ctx, row: Row, names: list[str]) -> str:
    return ctx.t("outage.title", id=row["id"], kind=ctx.t(f"outage.kind.{row['kind']}"),
                 areas="、".join(names))


def _status(ctx: Ctx, row: Row) -> str:
    if row["status"] != "planned":
        return ctx.t(f"outage.status.{row['status']}")
    if ctx.now < from_iso(row["starts_at"]):
        return ctx.t("outage.status.upcoming")
    if ctx.now < from_iso(row["ends_at"]):
        return ctx.t("outage.status.ongoing")
    return ctx.t("outage.status.overrun")


def _customer_line(ctx: Ctx, c: Row) -> str:
    cats = "、".join(ctx.t(f"category.{k}") for k in sorted((c["cats"] or "").split(",")) if k)
    who = f"{c['name']}（{c['area_name']}" + (f" · {cats}" if cats else "") + "）"
    if ctx.locale != "zh_CN":
        who = f"{c['name']} ({c['area_name']}" + (f" · {cats}" if cats else "") + ")"
    if c["told_at"]:
        return "☑ " + ctx.t("outage.told_line", who=who, how=ctx.t(f"outage.how.{c['how']}"),
                            when=when(ctx, c["told_at"]))
    return "☐ " + who


async def card(ctx: Ctx, oid: int) -> Outcome:
    row = await get(ctx, oid)
    if row is None:
        return Outcome().add(ctx.t("outage.not_found"))
    names = await area_names(ctx, oid)
    items = await checklist(ctx, oid)
    sep = "：" if ctx.locale == "zh_CN" else ": "
    lines = [_title(ctx, row, names), _status(ctx, row),
             ctx.t("outage.span", start=when(ctx, row["starts_at"]), end=when(ctx, row["ends_at"])),
             ctx.t("field.outage_reason") + sep + row["reason"],
             ctx.t("field.owner") + sep + row["owner"]]
    if row["notice_due"]:
        left = "" if row["notice_posted_at"] else " · " + remaining(ctx, row["notice_due"])
        lines.append(ctx.t("field.outage_notice_due") + sep + when(ctx, row["notice_due"]) + left)
    else:
        lines.append(ctx.t("field.outage_notice_due") + sep + ctx.t("outage.no_deadline"))
    if row["registered_late"]:
        lines.append(ctx.t("outage.registered_late"))
    told = sum(1 for c in items if c["told_at"])
    lines.append(ctx.t("outage.checklist", told=told, total=len(items)))
    if row["notice_posted_at"]:
        posted = when(ctx, row["notice_posted_at"])
        lines.append("☑ " + ctx.t("outage.notice_posted_at", when=posted))
    else:
        lines.append("☐ " + ctx.t("outage.notice_item"))
    lines += [_customer_line(ctx, c) for c in items]
    if row["restored_at"]:
        lines.append(ctx.t("outage.restored_at", when=when(ctx, row["restored_at"])))
    return Outcome().add("\n".join(lines), _card_rows(ctx, row, items))


def _card_rows(ctx: Ctx, row: Row, items: list[Row]) -> list[list[Button]]:
    oid = row["id"]
    rows: list[list[Button]] = []
    open_ = row["status"] == "planned"
    if open_ and not row["notice_posted_at"]:
        rows.append([Button(ctx.t("btn.outage_notice_posted"),
                            callback(GLOBAL_TOKEN, "outn", oid))])
    rows += _tell_rows(ctx, oid, items)
    if open_ and ctx.now >= from_iso(row["starts_at"]):
        rows.append([Button(ctx.t("btn.outage_restored"), callback(GLOBAL_TOKEN, "outr", oid))])
    elif open_:  # not started yet: it can still be called off (weather, a moved date)
        rows.append([Button(ctx.t("btn.outage_cancel"), callback(GLOBAL_TOKEN, "outx", oid))])
    return rows


def _tell_rows(ctx: Ctx, oid: int, items: list[Row]) -> list[list[Button]]:
    """A button per customer not yet told, two to a row."""
    untold = [c for c in items if not c["told_at"]][:CARD_CUSTOMER_BUTTONS]
    buttons = [Button("☐ " + c["name"], callback(GLOBAL_TOKEN, "outc", f"{oid}:{c['customer_id']}"))
               for c in untold]
    return [buttons[i:i + 2] for i in range(0, len(buttons), 2)]


# --- ticking the checklist ------------------------------------------------------------
async def _refreshed(ctx: Ctx, oid: int, toast: str) -> Outcome:
    out = await card(ctx, oid)
    return Outcome(edit=out.replies[0], toast=toast)


async def post_notice(ctx: Ctx, oid: int) -> Outcome:
    row = await get(ctx, oid)
    if row is None:
        return Outcome().add(ctx.t("outage.not_found"))
    async with ctx.services.db.tx() as tx:
        await tx.execute("UPDATE outages SET notice_posted_at = ?, updated_at = ? "
                         "WHERE id = ? AND notice_posted_at IS NULL",
                         (iso(ctx.now), iso(ctx.now), oid))
        await Reminders.cancel(tx, SUBJECT, oid, "notice.")
    return await _refreshed(ctx, oid, ctx.t("outage.notice_posted_toast"))


async def ask_how(ctx: Ctx, oid: int, cid: int) -> Outcome:
    row = await get(ctx, oid)
    if row is None:
        return Outcome().add(ctx.t("outage.not_found"))
    item = next((c for c in await checklist(ctx, oid) if c["customer_id"] == cid), None)
    if item is None:
        return Outcome(toast=ctx.t("button.stale")).add(ctx.t("outage.not_on_list"))
    if item["told_at"]:
        return await _refreshed(ctx, oid, ctx.t("outage.already_told"))
    how = [Button(ctx.t(f"outage.how_btn.{h}"), callback(GLOBAL_TOKEN, "outh", f"{oid}:{cid}:{h}"))
           for h in HOW]
    return Outcome().add(ctx.t("outage.ask_how", name=item["name"]), [
        how, [Button(ctx.t("btn.customer_card"), callback(GLOBAL_TOKEN, "cust", cid)),
              Button(ctx.t("btn.outage_checklist"), callback(GLOBAL_TOKEN, "out", oid))]])


async def mark_told(ctx: Ctx, oid: int, cid: int, how: str) -> Outcome:
    if await get(ctx, oid) is None:
        return Outcome().add(ctx.t("outage.not_found"))
    async with ctx.services.db.tx() as tx:
        await tx.execute(
            "UPDATE outage_notices SET told_at = ?, how = ?, told_by = ? "
            "WHERE outage_id = ? AND customer_id = ? AND told_at IS NULL",
            (iso(ctx.now), how, ctx.user.id, oid, cid))
        changed = await tx.fetchone("SELECT changes()")
        left = await tx.fetchone("SELECT count(*) FROM outage_notices "
                                 "WHERE outage_id = ? AND told_at IS NULL", (oid,))
        if left is not None and left[0] == 0:  # everyone told: the urgent list has no reason
            await Reminders.cancel(tx, SUBJECT, oid, "untold.")
    if not (changed and changed[0]):  # told already (a second tap), or not on this list
        return await _refreshed(ctx, oid, ctx.t("outage.already_told"))
    return await _refreshed(ctx, oid, ctx.t("outage.told_toast"))


async def mark_restored(ctx: Ctx, oid: int) -> Outcome:
    row = await get(ctx, oid)
    if row is None:
        return Outcome().add(ctx.t("outage.not_found"))
    if row["status"] != "planned":
        return await _refreshed(ctx, oid, ctx.t("outage.already_closed"))
    if ctx.now < from_iso(row["starts_at"]):
        return Outcome(toast=ctx.t("outage.not_started_toast")).add(
            ctx.t("outage.not_started", start=when(ctx, row["starts_at"])))
    async with ctx.services.db.tx() as tx:
        await tx.execute("UPDATE outages SET restored_at = ?, status = 'done', updated_at = ? "
                         "WHERE id = ? AND status = 'planned'", (iso(ctx.now), iso(ctx.now), oid))
        await Reminders.cancel(tx, SUBJECT, oid)
    out = await card(ctx, oid)
    out.replies.insert(0, Reply(ctx.t("outage.closed", id=oid, when=when(ctx, ctx.now))))
    return Outcome(replies=out.replies, toast=ctx.t("outage.restored_toast"))


async def cancel_outage(ctx: Ctx, oid: int, confirmed: bool) -> Outcome:
    """Call off an outage that has not started: asks first, then stops its reminders."""
    row = await get(ctx, oid)
    if row is None:
        return Outcome().add(ctx.t("outage.not_found"))
    if row["status"] != "planned" or ctx.now >= from_iso(row["starts_at"]):
        return await _refreshed(ctx, oid, ctx.t("outage.cannot_cancel"))
    if not confirmed:
        names = await area_names(ctx, oid)
        return Outcome().add(ctx.t("outage.cancel_confirm", item=_title(ctx, row, names)), [[
            Button(ctx.t("btn.outage_cancel_yes"), callback(GLOBAL_TOKEN, "outxy", oid)),
            Button(ctx.t("btn.outage_checklist"), callback(GLOBAL_TOKEN, "out", oid))]])
    async with ctx.services.db.tx() as tx:
        await tx.execute("UPDATE outages SET status = 'cancelled', updated_at = ? "
                         "WHERE id = ? AND status = 'planned'", (iso(ctx.now), oid))
        await Reminders.cancel(tx, SUBJECT, oid)
    return await _refreshed(ctx, oid, ctx.t("outage.cancelled", id=oid))


# --- reminders ------------------------------------------------------------------------
async def render(ctx: Ctx, r: Reminder) -> Reply | None:
    row = await ctx.services.db.fetchone(
        "SELECT o.*, u.name AS owner FROM outages o JOIN users u ON u.id = o.user_id "
        "WHERE o.id = ?", (r.subject_id,))
    if row is None or row["status"] != "planned":
        return None
    oid = row["id"]
    title = _title(ctx, row, await area_names(ctx, oid))
    open_btn = Button(ctx.t("btn.outage_checklist"), callback(GLOBAL_TOKEN, "out", oid))
    notice_btn = Button(ctx.t("btn.outage_notice_posted"), callback(GLOBAL_TOKEN, "outn", oid))
    what = ctx.t("outage.step.notice")
    due = row["notice_due"]
    if r.kind.startswith("notice."):
        if row["notice_posted_at"] or due is None:
            return None
        if r.kind == "notice.escalate":
            text = ctx.t("reminder.escalate", owner=row["owner"], item=title, what=what,
                         due=when(ctx, due), late=remaining(ctx, due))
        elif r.kind == "notice.due":
            text = ctx.t("reminder.overdue", item=title, what=what, due=when(ctx, due),
                         late=remaining(ctx, due))
        elif from_iso(due) <= ctx.now:
            return None  # a "due soon" sent late (bot down): the due one says it all
        else:
            text = ctx.t("reminder.soon", item=title, what=what, due=when(ctx, due),
                         left=remaining(ctx, due))
        return Reply(text, [[open_btn, notice_btn]])
    if r.kind == "late.lead":
        return Reply(ctx.t("outage.late_lead", owner=row["owner"], item=title,
                           start=when(ctx, row["starts_at"]),
                           due=when(ctx, due) if due else ctx.t("form.empty")), [[open_btn]])
    if r.kind == "untold.daybefore":
        untold = [c for c in await checklist(ctx, oid) if not c["told_at"]]
        if not untold:
            return None
        lines = [ctx.t("outage.daybefore", item=title, start=when(ctx, row["starts_at"]),
                       count=len(untold))]
        lines += [_customer_line(ctx, c) for c in untold]
        return Reply("\n".join(lines), [*_tell_rows(ctx, oid, untold), [open_btn]])
    if r.kind == "restore.ask":
        return Reply(ctx.t("outage.restore_ask", item=title, end=when(ctx, row["ends_at"])),
                     [[Button(ctx.t("btn.outage_restored"), callback(GLOBAL_TOKEN, "outr", oid)),
                       open_btn]])
    return None


async def todo(ctx: Ctx) -> list[TodoItem]:
    scope = "team_id = ?" if ctx.user.sees_whole_team else "user_id = ?"
    rows = await ctx.services.db.fetchall(
        f"SELECT * FROM outages WHERE {scope} AND status = 'planned' ORDER BY starts_at",
        (ctx.user.team_id if ctx.user.sees_whole_team else ctx.user.id,))
    items = []
    for row in rows:
        oid = row["id"]
        title = _title(ctx, row, await area_names(ctx, oid))
        start, end = from_iso(row["starts_at"]), from_iso(row["ends_at"])
        untold = sum(1 for c in await checklist(ctx, oid) if not c["told_at"])
        urgent = False
        if ctx.now < start and not row["notice_posted_at"]:
            due = from_iso(row["notice_due"]) if row["notice_due"] else start
            text = ctx.t("todo.outage_notice", item=title, due=when(ctx, due),
                         left=remaining(ctx, due))
        elif ctx.now < start and untold:
            due, urgent = start, True
            text = ctx.t("todo.outage_customers", item=title, count=untold,
                         start=when(ctx, start), left=remaining(ctx, start))
        elif ctx.now < start:
            due = start
            text = ctx.t("todo.outage_upcoming", item=title, start=when(ctx, start),
                         left=remaining(ctx, start))
        else:
            due = end
            text = ctx.t("todo.outage_restore", item=title, end=when(ctx, end))
        items.append(TodoItem(
            due=due.astimezone(ctx.tz), text=text, urgent=urgent,
            button=Button(ctx.t("outage.todo_button", id=oid), callback(GLOBAL_TOKEN, "out", oid)),
            overdue=due <= ctx.now))
    return items


REGISTRY.reminder_kind(SUBJECT, ReminderKind(render=render, todo=todo))


# --- wiring ---------------------------------------------------------------------------
@REGISTRY.command("outage")
async def outage_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.open_form(ctx, draft, OUTAGE.name)


@REGISTRY.intent
async def outage_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    m = _INTENT.match(normalize_input(text))
    if m is None:
        return None
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    lead, rest = m.group(1), m.group(2)
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
    others = _AREA_TOKEN.findall(rest)
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


@REGISTRY.button("out")
async def open_card(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await card(ctx, int(arg)) if arg.isdigit() else Outcome(toast=ctx.t("button.stale"))


@REGISTRY.button("outn")
async def notice_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    if not arg.isdigit():
        return Outcome(toast=ctx.t("button.stale"))
    return await post_notice(ctx, int(arg))


@REGISTRY.button("outc")
async def customer_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    ids = _ids(arg, 2)
    return await ask_how(ctx, ids[0], ids[1]) if ids else Outcome(toast=ctx.t("button.stale"))


@REGISTRY.button("outh")
async def how_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    oid, _, rest = arg.partition(":")
    cid, _, how = rest.partition(":")
    if not (oid.isdigit() and cid.isdigit() and how in HOW):
        return Outcome(toast=ctx.t("button.stale"))
    return await mark_told(ctx, int(oid), int(cid), how)


@REGISTRY.button("outx")
async def cancel_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    if not arg.isdigit():
        return Outcome(toast=ctx.t("button.stale"))
    return await cancel_outage(ctx, int(arg), confirmed=False)


@REGISTRY.button("outxy")
async def cancel_yes_button(app: Assistant, ctx: Ctx, draft: Draft | None,
                            arg: str) -> Outcome:
    if not arg.isdigit():
        return Outcome(toast=ctx.t("button.stale"))
    return await cancel_outage(ctx, int(arg), confirmed=True)


@REGISTRY.button("outr")
async def restored_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    if not arg.isdigit():
        return Outcome(toast=ctx.t("button.stale"))
    return await mark_restored(ctx, int(arg))

