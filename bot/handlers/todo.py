"""/todo (待办), /settings (quiet hours), and the snooze buttons under every reminder."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import TYPE_CHECKING, Any

from bot.conversations.engine import FormSpec, Saved
from bot.conversations.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.events import GLOBAL_TOKEN, Button, Outcome, callback
from bot.registry import REGISTRY, TodoItem
from bot.reminders import in_quiet, next_at, quiet_window
from bot.services import Ctx
from bot.storage.conversations import Draft
from bot.storage.people import UserPrefs
from bot.storage.reminders import Reminders
from bot.textutil import normalize_input
from bot.timeparse import format_time

if TYPE_CHECKING:
    from bot.assistant import Assistant

TODO_PAGE = 12
_TODO_WORDS = re.compile(r"^(待办|我的待办|待办事项|todo)$", re.I)
_HHMM = r"([01]?\d|2[0-3])[:：点]([0-5]\d)?"
_QUIET = re.compile(rf"^{_HHMM}\s*[-~到至]\s*{_HHMM}$")


async def todo_items(ctx: Ctx) -> list[TodoItem]:
    items: list[TodoItem] = []
    for kind in REGISTRY.reminders.values():
        if kind.todo is not None:
            items += await kind.todo(ctx)
    return sorted(items, key=lambda i: (not i.overdue, i.due))


async def show_todo(ctx: Ctx) -> Outcome:
    items = await todo_items(ctx)
    if not items:
        return Outcome().add(ctx.t("todo.none"))
    key = "todo.title_team" if ctx.user.sees_whole_team else "todo.title"
    lines = [ctx.t(key, count=len(items))]
    for i in items[:TODO_PAGE]:
        lines.append(("⚠️ " if i.overdue else "🔴 " if i.urgent else "• ") + i.text)
    if len(items) > TODO_PAGE:
        lines.append(ctx.t("digest.more", count=len(items) - TODO_PAGE))
    return Outcome().add("\n".join(lines), [[i.button] for i in items[:8]])


@REGISTRY.command("todo")
async def todo_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await show_todo(ctx))


REGISTRY.request_patterns.append(_TODO_WORDS)


@REGISTRY.intent
async def todo_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    return await show_todo(ctx) if _TODO_WORDS.match(normalize_input(text)) else None


# --- snooze ---------------------------------------------------------------------------
@REGISTRY.button("snz")
async def snooze(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    m = re.fullmatch(r"(\d+)([hm])", arg)
    if m is None:
        return Outcome(toast=ctx.t("button.stale"))
    if m.group(2) == "h":
        until = ctx.now + timedelta(hours=1)
    else:  # the coming 08:00 (after midnight "明天早上" is this morning)
        until = next_at(ctx.local_now, time(8, 0))
    r = await Reminders(ctx.services.db).snooze(ctx.user.id, int(m.group(1)), until)
    if r is None:
        return Outcome(toast=ctx.t("button.stale")).add(ctx.t("reminder.snooze_gone"))
    when = format_time(until.astimezone(ctx.tz), ctx.locale)
    text = ctx.t("reminder.snoozed", when=when)
    window = await quiet_window(ctx.services, ctx.user.id)
    if not r.urgent and window and in_quiet(until.astimezone(ctx.tz), *window):
        text += "\n" + ctx.t("reminder.snoozed_quiet")  # it will wait for the morning digest
    return Outcome(toast=ctx.t("reminder.snoozed_toast")).add(text)


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
        [Button(ctx.t("btn.quiet_off"), callback(GLOBAL_TOKEN, "quiet", "off")),
         Button(ctx.t("btn.quiet_default"), callback(GLOBAL_TOKEN, "quiet", "default"))]])


@REGISTRY.command("settings")
async def settings_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await show_settings(ctx))


@REGISTRY.command("quiet")
async def quiet_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.open_form(ctx, draft, QUIET.name)


@REGISTRY.button("quiet")
async def quiet_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    prefs = UserPrefs(ctx.services.db)
    if arg == "off":
        await prefs.set_quiet(ctx.user.id, None, None, off=True)
    else:
        await prefs.set_quiet(ctx.user.id, None, None, off=False)
    return await show_settings(ctx)


async def parse_quiet(text: str, ctx: Ctx, form: FormView = NO_FORM) -> list[str]:
    m = _QUIET.match(normalize_input(text).replace(" ", ""))
    if m is None:
        raise Invalid("settings.quiet_invalid", text=text)
    start = f"{int(m.group(1)):02d}:{m.group(2) or '00'}"
    end = f"{int(m.group(3)):02d}:{m.group(4) or '00'}"
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


QUIET = REGISTRY.form(FormSpec(
    name="quiet", title="form.quiet.title",
    fields=(Field("window", "field.quiet", "form.quiet.window", Kind.TEXT, parse=parse_quiet,
                  show=show_quiet),),
    save=save_quiet, quick={}))
