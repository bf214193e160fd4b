"""/logs and 我的日志: recent entries, paged; one entry shown whole."""

from __future__ import annotations

from bot.events import GLOBAL_TOKEN, Button, Outcome, callback
from bot.handlers.menu import pager
from bot.models import WorkLog
from bot.services import Ctx
from bot.timeparse import format_time

PAGE = 8


def _items(ctx: Ctx, w: WorkLog) -> str:
    return "、".join(ctx.t(f"item.{k}") for k in w.items)


def _line(ctx: Ctx, w: WorkLog) -> str:
    when = format_time(w.occurred_at.astimezone(ctx.tz), ctx.locale, has_time=w.has_time)
    who = f" · {w.user_name}" if ctx.user.sees_whole_team else ""
    return f"#{w.id} {when} {w.area_name} {_items(ctx, w)}{who}"


async def list_logs(ctx: Ctx, offset: int = 0) -> Outcome:
    total = await ctx.services.worklogs.count_visible(ctx.user)
    title_key = "logs.title_team" if ctx.user.sees_whole_team else "logs.title_mine"
    if total == 0:
        return Outcome().add(ctx.t("logs.none"), [[Button(
            ctx.t("btn.menu_log"), callback(GLOBAL_TOKEN, "cmd", "log"))]])
    offset = max(0, min(offset, total - 1))
    entries = await ctx.services.worklogs.visible_to(ctx.user, PAGE, offset)
    lines = [ctx.t(title_key, total=total, first=offset + 1, last=offset + len(entries))]
    lines += [_line(ctx, w) for w in entries]
    lines.append(ctx.t("logs.open_hint"))
    rows = [[Button(f"#{w.id} {w.area_name} {_items(ctx, w)}"[:40],
                    callback(GLOBAL_TOKEN, "log", w.id))] for w in entries]
    nav = pager(ctx.t, "logs", offset, PAGE, total)
    if nav:
        rows.append(nav)
    return Outcome().add("\n".join(lines), rows)


async def show_log(ctx: Ctx, worklog_id: int) -> Outcome:
    w = await ctx.services.worklogs.get_for(ctx.user, worklog_id)
    if w is None:
        return Outcome().add(ctx.t("logs.not_found"))
    sep = "：" if ctx.locale == "zh_CN" else ": "
    when = format_time(w.occurred_at.astimezone(ctx.tz), ctx.locale, has_time=w.has_time)
    lines = [ctx.t("logs.card_title", id=w.id),
             ctx.t("field.author") + sep + w.user_name,
             ctx.t("field.items") + sep + _items(ctx, w),
             ctx.t("field.area") + sep + w.area_name,
             ctx.t("field.time") + sep + when,
             ctx.t("field.content") + sep + w.content,
             ctx.t("field.problems") + sep + (w.problems or ctx.t("form.empty")),
             ctx.t("field.photos") + sep + ctx.t("form.photos_count", count=len(w.photos))
             + "".join(f"\n  · {note}" for note in w.photo_notes.values())]
    if w.latitude is not None and w.longitude is not None:
        lines.append(ctx.t("field.location") + sep + f"{w.latitude:.5f}, {w.longitude:.5f}")
    lines.append(ctx.t("field.created_at") + sep +
                 format_time(w.created_at.astimezone(ctx.tz), ctx.locale))
    if w.updated_at:
        lines.append(ctx.t("field.updated_at") + sep +
                     format_time(w.updated_at.astimezone(ctx.tz), ctx.locale) +
                     (f" · {w.updated_by}" if w.updated_by else ""))
    out = Outcome().add("\n".join(lines), [[
        Button(ctx.t("btn.edit"), callback(GLOBAL_TOKEN, "logedit", w.id)),
        Button(ctx.t("btn.menu_logs"), callback(GLOBAL_TOKEN, "cmd", "logs"))]])
    out.replies[0].photos = list(w.photos)
    return out
