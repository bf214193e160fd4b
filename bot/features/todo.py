"""/todo (待办), /settings (quiet hours), and the snooze buttons under every reminder."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback
from bot.forms.engine import FormSpec, Saved
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.handlers.menu import pager
from bot.reminders import (
    in_quiet,
    next_at,
    open_items,
    overdue_urgent,
    quiet_window,
    snooze_buttons,
)
from bot.router import ReminderKind, Router, TodoItem, stale_reply
from bot.services import Ctx
from bot.storage.conversations import Draft
from bot.storage.db import Read, from_iso, iso
from bot.storage.people import UserPrefs
from bot.storage.reminders import Reminder, Reminders
from bot.textutil import normalize_input
from bot.timeparse import clock_time, format_time

if TYPE_CHECKING:
    from bot.assistant import Assistant

router = Router("todo")
TODO_PAGE = 12
_TODO_WORDS = re.compile(r"^(待办|我的待办|待办事项|todo)$", re.I)
# '21:00-07:30', '22点-7点', '晚上10点到早上7点': two times of day and what goes between.
_QUIET_SPLIT = re.compile(r"\s*(?:-|~|～|－|—+|到|至)\s*")


async def todo_items(ctx: Ctx, kinds: Iterable[ReminderKind]) -> list[TodoItem]:
    return sorted(await open_items(ctx, kinds), key=lambda i: (not i.overdue, i.due))


def _todo_line(ctx: Ctx, item: TodoItem) -> str:
    mark = "⚠️ " if item.overdue else "🔴 " if item.urgent else "• "
    if ctx.user.sees_whole_team and item.owner:  # a lead's list says whose item it is
        return mark + ctx.t("todo.owned", owner=item.owner, text=item.text)
    return mark + item.text


def _lead_order(ctx: Ctx, items: list[TodoItem]) -> tuple[list[TodoItem], list[TodoItem]]:
    """(waiting for this lead's decision, the rest); a manager has no such part."""
    if not ctx.user.sees_whole_team:
        return [], items
    waiting = [i for i in items if i.for_lead and i.owner_id != ctx.user.id]
    return waiting, [i for i in items if i not in waiting]


async def show_todo(app: Assistant, ctx: Ctx, offset: int = 0) -> Outcome:
    """Every open item, a page of TODO_PAGE at a time (◀️ ▶️), a lead's decisions first."""
    items = await todo_items(ctx, app.router.reminders.values())
    if not items:
        return Outcome().add(ctx.t("todo.none"))
    key = "todo.title_team" if ctx.user.sees_whole_team else "todo.title"
    waiting, rest = _lead_order(ctx, items)
    ordered = waiting + rest
    offset = min(offset, (len(ordered) - 1) // TODO_PAGE * TODO_PAGE)  # the list shrank
    lines = [ctx.t(key, count=len(items))]
    if len(ordered) > TODO_PAGE:
        lines.append(ctx.t("todo.page", first=offset + 1,
                           last=min(offset + TODO_PAGE, len(ordered))))
    for n in range(offset, min(offset + TODO_PAGE, len(ordered))):
        if waiting and n == offset and n < len(waiting):
            lines.append(ctx.t("todo.for_lead", count=len(waiting)))
        if waiting and n >= len(waiting) and n in (len(waiting), offset):
            lines.append(ctx.t("todo.others", count=len(rest)))
        lines.append(_todo_line(ctx, ordered[n]))
    shown = ordered[offset:offset + TODO_PAGE]
    rows = [[i.button] for i in shown[:8]]
    nav = pager(ctx.t, router.action("todop"), offset, TODO_PAGE, len(ordered))
    return Outcome().add("\n".join(lines), [*rows, nav] if nav else rows)


@router.command("todo")
async def todo_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await show_todo(app, ctx))


router.request_patterns.append(_TODO_WORDS)


@router.intent
async def todo_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    return await show_todo(app, ctx) if _TODO_WORDS.match(normalize_input(text)) else None


@router.button("todop")
async def todo_page(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    if not arg.isdigit():
        return stale_reply(ctx)
    return await show_todo(app, ctx, int(arg))


# --- snooze ---------------------------------------------------------------------------
SNOOZED_SUBJECT = "snoozed"  # the note to the lead that an overdue urgent item was put off


def _snooze_until(ctx: Ctx, how: str) -> datetime | None:
    """'h' in an hour, 'm' the coming 08:00 (after midnight "明天早上" is this morning),
    's30' in 30 minutes (only the offered short snoozes: a forged number is refused)."""
    if how == "h":
        return ctx.now + timedelta(hours=1)
    if how == "m":
        return next_at(ctx.local_now, time(8, 0))
    minutes = int(how[1:])
    if minutes not in ctx.services.settings.urgent_snooze_minutes:
        return None
    return ctx.now + timedelta(minutes=minutes)


def _snooze_reads(ctx: Ctx | None, ids: tuple[int, ...]) -> list[Read]:
    """What 1 小时后 / 明天 8:00 / 30 分钟后 (id:0, id:1, id:2:minutes) read first: the
    reminder and the person's quiet hours."""
    if ctx is None or len(ids) not in (2, 3):
        return []
    return [Reminders.get_read(ids[0]), UserPrefs.get_read(ctx.user.id)]


# The snooze asked for, as the data says it: id:0, id:1, id:2:minutes, or as sent before.
_SNOOZE = re.compile(r"(\d+)(?::(0|1|2:\d{1,4})|(h|m|s\d{1,4}))")
_SNOOZE_CODES = {"0": "h", "1": "m"}


@router.button("snz", reads=_snooze_reads)
async def snooze(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    """The reminder and the quiet hours come with the step's read, the snooze is one write
    that returns the row (issue #12: 7 round trips before)."""
    m = _SNOOZE.fullmatch(arg)
    how = (m.group(3) or _SNOOZE_CODES.get(m.group(2)) or "s" + m.group(2)[2:]) if m else ""
    until = _snooze_until(ctx, how) if m else None
    if m is None or until is None:
        return stale_reply(ctx)
    rows = Reminders(ctx.services.db)
    current = await rows.get(int(m.group(1)))
    if current is not None and overdue_urgent(current) and (
            until - ctx.now > timedelta(minutes=max(ctx.services.settings.urgent_snooze_minutes))):
        # An old message's 明天 8:00 on an overdue emergency: only the short snoozes.
        return Outcome(toast=ctx.t("reminder.snooze_urgent_toast")).add(
            ctx.t("reminder.snooze_urgent_only"), [snooze_buttons(ctx, current)])
    window = await quiet_window(ctx.services, ctx.user.id)  # before the write: prefetched
    r = await rows.snooze(ctx.user.id, int(m.group(1)), until)
    if r is None:
        return Outcome(toast=ctx.t("button.stale")).add(ctx.t("reminder.snooze_gone"))
    when = format_time(until.astimezone(ctx.tz), ctx.locale)
    text = ctx.t("reminder.snoozed", when=when)
    if overdue_urgent(r) and await _tell_leads_of_snooze(app, ctx, r, until):
        text += "\n" + ctx.t("reminder.snoozed_lead_told")
    if not r.urgent and window and in_quiet(until.astimezone(ctx.tz), *window):
        text += "\n" + ctx.t("reminder.snoozed_quiet")  # it will wait for the morning digest
    return Outcome(toast=ctx.t("reminder.snoozed_toast")).add(text)


async def _tell_leads_of_snooze(app: Assistant, ctx: Ctx, r: Reminder, until: datetime) -> bool:
    """An overdue urgent item put off: the team's leads (not the one snoozing) hear of it at
    once, through quiet hours, as the escalation they would otherwise get later."""
    services = ctx.services
    leads = await services.people.leads_of(r.team_id, ctx.user.id)
    if not leads:
        return False
    kind = app.router.reminders.get(r.subject)
    item = await kind.describe(ctx, r) if kind and kind.describe else r.subject
    async with services.db.tx() as tx:
        for lead in leads:
            await Reminders.plan(
                tx, team_id=r.team_id, user_id=lead.id, subject=SNOOZED_SUBJECT,
                subject_id=r.id, kind="told", due_at=ctx.now, now=ctx.now, urgent=True,
                key=f"{SNOOZED_SUBJECT}:{r.id}:{lead.id}:{iso(ctx.now)}",
                detail={"name": ctx.user.name, "item": item, "until": iso(until)})
    return True


async def _render_snoozed(ctx: Ctx, r: Reminder) -> Reply:
    until = from_iso(r.detail["until"]).astimezone(ctx.tz)
    return Reply(ctx.t("reminder.snoozed_lead", name=r.detail.get("name", ""),
                       item=r.detail.get("item", ""), when=format_time(until, ctx.locale)))


router.reminder_kind(SNOOZED_SUBJECT, ReminderKind(render=_render_snoozed, snoozable=False))


# --- settings: quiet hours ------------------------------------------------------------
async def show_settings(ctx: Ctx) -> Outcome:
    prefs = await UserPrefs(ctx.services.db).get(ctx.user.id)
    if prefs.quiet_off:
        quiet = ctx.t("settings.quiet_off")
    elif prefs.quiet_start and prefs.quiet_end:
        quiet = f"{prefs.quiet_start}–{prefs.quiet_end}"
    else:
        quiet = ctx.services.settings.quiet_hours.replace("-", "–") + ctx.t("settings.default")
    text = ctx.t("settings.title", quiet=quiet, digest=ctx.services.settings.digest_time)
    return Outcome().add(text, [
        [Button(ctx.t("btn.quiet_change"), callback(GLOBAL_TOKEN, "cmd", "quiet"))],
        [Button(ctx.t("btn.quiet_off"), router.callback("quiet", "off")),
         Button(ctx.t("btn.quiet_default"), router.callback("quiet", "default"))]])


@router.command("settings")
async def settings_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await show_settings(ctx))


@router.command("quiet")
async def quiet_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.open_form(ctx, draft, QUIET.name)


@router.button("quiet")
async def quiet_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    prefs = UserPrefs(ctx.services.db)
    if arg == "off":
        await prefs.set_quiet(ctx.user.id, None, None, off=True)
    else:
        await prefs.set_quiet(ctx.user.id, None, None, off=False)
    return await show_settings(ctx)


async def parse_quiet(text: str, ctx: Ctx, form: FormView = NO_FORM) -> list[str]:
    sides = _QUIET_SPLIT.split(normalize_input(text).replace(" ", ""))
    clocks = [clock_time(side) for side in sides] if len(sides) == 2 else []
    if len(clocks) != 2 or None in clocks:
        raise Invalid("settings.quiet_invalid", text=text)
    start, end = (f"{c:%H:%M}" for c in clocks if c is not None)
    if start == end:
        raise Invalid("settings.quiet_invalid", text=text)
    return [start, end]


async def show_quiet(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return f"{value[0]}–{value[1]}"


async def save_quiet(ctx: Ctx, values: dict[str, Any], token: str,
                     meta: dict[str, Any]) -> Saved:
    start, end = values["window"]
    await UserPrefs(ctx.services.db).set_quiet(ctx.user.id, start, end)
    return Saved(ctx.t("settings.quiet_saved", start=start, end=end), [])


QUIET = router.form(FormSpec(
    name="quiet", title="form.quiet.title",
    fields=(Field("window", "field.quiet", "form.quiet.window", Kind.TEXT, parse=parse_quiet,
                  show=show_quiet),),
    save=save_quiet, quick={}))
