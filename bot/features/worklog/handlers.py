"""The work log feature: /log and sentences open the 工作日志 form; /logs and 我的日志 list
recent entries, paged; one entry shown whole, and edited with the same form; 撤销 / 删除 an entry.

Deleting a log: its author may withdraw it (撤销) within TAIQU_LOG_UNDO_MINUTES of saving it
(a log saved by mistake); after that only the team's lead (or an admin) may delete it, so a
day's record cannot quietly vanish. Either way after a confirmation, audited, with its photos.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import validators
from bot.events import GLOBAL_TOKEN, Button, Outcome, callback
from bot.features.worklog import comments
from bot.features.worklog.form import CARD, WORKLOG, customer_shown
from bot.features.worklog.form import offer as worklog_offer
from bot.features.worklog.form import prefill as worklog_prefill
from bot.features.worklog.form import values_of as worklog_values_of
from bot.features.worklog.intents import is_log_request, simple_intent, worklog_intent
from bot.handlers.menu import menu_buttons, pager
from bot.models import WorkLog
from bot.router import (
    ReminderKind,
    Router,
    by_id,
    card_button_reads,
    extra_card_buttons,
    one_id,
    opens,
)
from bot.services import Ctx
from bot.storage.conversations import Draft
from bot.storage.customers import Customer
from bot.storage.db import Read
from bot.storage.loose_media import LooseMedia
from bot.timeparse import format_time

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.storage.conversations import Draft

router = Router("worklog")
PAGE = 8


def _items(ctx: Ctx, w: WorkLog) -> str:
    return "、".join(ctx.t(f"item.{k}") for k in w.items)


def _line(ctx: Ctx, w: WorkLog) -> str:
    when = format_time(w.occurred_at.astimezone(ctx.tz), ctx.locale, has_time=w.has_time)
    who = f" · {w.user_name}" if ctx.user.sees_whole_team else ""
    return f"#{w.id} {when} {w.areas_text} {_items(ctx, w)}{who}"


async def list_logs(ctx: Ctx, offset: int = 0) -> Outcome:
    logs, db = ctx.services.worklogs, ctx.services.db
    offset = max(0, offset)
    total, entries = logs.page_of(await db.fetch_many(logs.page_reads(ctx.user, PAGE, offset)))
    title_key = "logs.title_team" if ctx.user.sees_whole_team else "logs.title_mine"
    if total == 0:
        return Outcome().add(ctx.t("logs.none"), [[Button(
            ctx.t("btn.menu_log"), callback(GLOBAL_TOKEN, "cmd", "log"))]])
    if offset > total - 1:  # a stale ▶️ after entries were deleted: from the last one
        offset = total - 1
        total, entries = logs.page_of(await db.fetch_many(logs.page_reads(ctx.user, PAGE,
                                                                          offset)))
    lines = [ctx.t(title_key, total=total, first=offset + 1, last=offset + len(entries))]
    lines += [_line(ctx, w) for w in entries]
    lines.append(ctx.t("logs.open_hint"))
    rows = [[Button(f"#{w.id} {w.areas_text} {_items(ctx, w)}"[:40],
                    router.callback("log", w.id))] for w in entries]
    nav = pager(ctx.t, router.action("logs"), offset, PAGE, total)
    if nav:
        rows.append(nav)
    return Outcome().add("\n".join(lines), rows)


def card_reads(ctx: Ctx, worklog_id: int) -> list[Read]:
    """The entry, its customer and what the buttons other features add under it need."""
    return [ctx.services.worklogs.get_read(worklog_id),
            ctx.services.customers.of_log_read(ctx.user, worklog_id),
            *card_button_reads(ctx, CARD, worklog_id)]


def entry_read(ctx: Ctx, worklog_id: int) -> list[Read]:
    """What a button about one entry reads first (get_for): the entry."""
    return [ctx.services.worklogs.get_read(worklog_id)]


async def show_log(ctx: Ctx, worklog_id: int) -> Outcome:
    logs = ctx.services.worklogs
    customers = ctx.services.customers
    # in one round trip (with the step's own read when the card's button was tapped)
    found, customer, *added = await ctx.services.db.fetch_many_point(card_reads(ctx, worklog_id))
    w = logs.seen_by(ctx.user, found[0] if found else None)
    if w is None:
        return Outcome().add(ctx.t("logs.not_found"))
    sep = "：" if ctx.locale == "zh_CN" else ": "
    when = format_time(w.occurred_at.astimezone(ctx.tz), ctx.locale, has_time=w.has_time)
    lines = [ctx.t("logs.card_title", id=w.id),
             ctx.t("field.author") + sep + w.user_name,
             ctx.t("field.items") + sep + _items(ctx, w),
             ctx.t("field.area") + sep + w.areas_text,
             ctx.t("field.time") + sep + when,
             ctx.t("field.content") + sep + w.content,
             ctx.t("field.problems") + sep + (w.problems or ctx.t("form.empty"))]
    lines += [ctx.t(label) + sep + value
              for label, value in _fuller(ctx, w, customers.found(customer))]
    lines.append(ctx.t("field.photos") + sep + ctx.t("form.photos_count", count=len(w.photos))
                 + "".join(f"\n  · {note}" for note in w.photo_notes.values()))
    if w.latitude is not None and w.longitude is not None:
        lines.append(ctx.t("field.location") + sep + f"{w.latitude:.5f}, {w.longitude:.5f}")
    lines.append(ctx.t("field.created_at") + sep +
                 format_time(w.created_at.astimezone(ctx.tz), ctx.locale))
    if w.updated_at:
        lines.append(ctx.t("field.updated_at") + sep +
                     format_time(w.updated_at.astimezone(ctx.tz), ctx.locale) +
                     (f" · {w.updated_by}" if w.updated_by else ""))
    lines += comments.comment_lines(ctx, w)
    rows = [[Button(ctx.t("btn.edit"), router.callback("logedit", w.id)),
             Button(ctx.t("btn.menu_logs"), callback(GLOBAL_TOKEN, "cmd", "logs"))]]
    comment = comments.comment_button(ctx, w)
    if comment is not None:
        rows.insert(0, [comment])
    delete = delete_button(ctx, w)
    if delete is not None:
        rows.append([delete])
    extra = await extra_card_buttons(ctx, CARD, w.id, read=added)
    if extra:
        rows.insert(0, extra)
    out = Outcome().add("\n".join(lines), rows)
    out.replies[0].photos = list(w.photos)
    return out


def _fuller(ctx: Ctx, w: WorkLog, customer: Customer | None) -> list[tuple[str, str]]:
    """The fuller entry's fields that were filled: (label key, value)."""
    shown = [("field.log_result", w.result), ("field.log_ticket", w.ticket_no)]
    if w.customer_id is not None:
        shown.insert(1, ("field.log_customer", customer_shown(ctx, customer)))
    return [(label, value) for label, value in shown if value]


# --- undo / delete ----------------------------------------------------------------------
def undo_until(ctx: Ctx, w: WorkLog) -> datetime:
    return w.created_at + timedelta(minutes=ctx.services.settings.log_undo_minutes)


def undo_open(ctx: Ctx, w: WorkLog) -> bool:
    """The author's window to withdraw a log saved by mistake is still open."""
    return w.user_id == ctx.user.id and ctx.now < undo_until(ctx, w)


def lead_deletes(ctx: Ctx, w: WorkLog) -> bool:
    return ctx.user.sees_whole_team and w.team_id == ctx.user.team_id


def undo_button(ctx: Ctx, worklog_id: int) -> Button:
    return Button(ctx.t("btn.log_undo"), router.callback("logdel", worklog_id))


def delete_button(ctx: Ctx, w: WorkLog) -> Button | None:
    """撤销 for the author while the window is open, 删除 for the lead; else none."""
    if undo_open(ctx, w):
        return undo_button(ctx, w.id)
    if lead_deletes(ctx, w):
        return Button(ctx.t("btn.log_delete"), router.callback("logdel", w.id))
    return None


async def _refusal(ctx: Ctx, w: WorkLog) -> Outcome | None:
    """None when the user may delete `w` now; else why not, and who can."""
    if undo_open(ctx, w) or lead_deletes(ctx, w):
        return None
    leads = "、".join(u.name for u in await ctx.services.people.leads_of(w.team_id))
    key = "logs.undo_expired" if w.user_id == ctx.user.id else "logs.delete_not_yours"
    return Outcome(toast=ctx.t("logs.undo_expired_toast")).add(
        ctx.t(key, id=w.id, minutes=ctx.services.settings.log_undo_minutes,
              leads=leads or ctx.t("customer.switch_lead")),
        [[Button(ctx.t("btn.edit"), router.callback("logedit", w.id)),
          Button(ctx.t("btn.view"), router.callback("log", w.id))]])


@router.button("logdel", reads=one_id(entry_read))
async def ask_delete(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    w = await ctx.services.worklogs.get_for(ctx.user, int(arg)) if arg.isdigit() else None
    if w is None:
        return Outcome().add(ctx.t("logs.not_found"))
    refusal = await _refusal(ctx, w)
    if refusal is not None:
        return refusal
    when = format_time(w.occurred_at.astimezone(ctx.tz), ctx.locale, has_time=w.has_time)
    text = ctx.t("logs.delete_confirm", id=w.id, area=w.area_name, items=_items(ctx, w),
                 when=when, photos=len(w.photos))
    if undo_open(ctx, w):
        text += "\n" + ctx.t("logs.undo_until", until=format_time(
            undo_until(ctx, w).astimezone(ctx.tz), ctx.locale))
    return Outcome().add(text, [[
        Button(ctx.t("btn.log_delete_yes"), router.callback("logdelok", w.id)),
        Button(ctx.t("btn.log_keep"), router.callback("log", w.id))]])


@router.button("logdelok", reads=one_id(entry_read))
async def confirm_delete(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    w = await ctx.services.worklogs.get_for(ctx.user, int(arg)) if arg.isdigit() else None
    if w is None:  # deleted already (a second tap) or never visible
        return Outcome(toast=ctx.t("button.stale")).add(ctx.t("logs.not_found"))
    refusal = await _refusal(ctx, w)  # the window may have closed while they read it
    if refusal is not None:
        return refusal
    how = "undo" if undo_open(ctx, w) else "lead"
    if not await ctx.services.worklogs.delete(ctx.user, w, ctx.now, how):
        return Outcome(toast=ctx.t("button.stale")).add(ctx.t("logs.not_found"))
    return Outcome(toast=ctx.t("logs.deleted_toast")).add(
        ctx.t("logs.deleted", id=w.id), [[
            Button(ctx.t("btn.log_another"), callback(GLOBAL_TOKEN, "cmd", "log")),
            Button(ctx.t("btn.menu_logs"), callback(GLOBAL_TOKEN, "cmd", "logs"))]])


# --- the feature's wiring ----------------------------------------------------------------
router.form(WORKLOG)
router.default_form = WORKLOG.name
router.button("logs")(by_id(list_logs))
router.button("log", reads=one_id(card_reads))(by_id(show_log))
router.button("logedit", reads=one_id(entry_read))(opens("e"))
router.form(comments.COMMENT)
router.button("logcmt", reads=one_id(entry_read))(opens(comments.OPENER))
router.reminder_kind(comments.SUBJECT, ReminderKind(render=comments.render_told,
                                                    snoozable=False))


@router.opener(comments.OPENER)
async def open_comment(app: Assistant, ctx: Ctx, record_id: int) -> Outcome:
    """批注 on entry `record_id`: only a lead of the author's team."""
    entry = await ctx.services.worklogs.get_for(ctx.user, record_id)
    if entry is None:
        return Outcome().add(ctx.t("logs.not_found"))
    if not comments.may_comment(ctx, entry):
        return comments.refusal(ctx, entry)
    return await app.engine.start(ctx, comments.COMMENT.name, meta={"worklog_id": entry.id},
                                  heading=comments.heading(ctx, entry))


@router.command("log")
async def log_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.open_form(ctx, draft, WORKLOG.name)


@router.command("logs")
async def logs_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await app.with_form_reminder(ctx, draft, await list_logs(ctx))


@router.intent
async def logs_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    """我的日志 / 查日志: the list, not a new entry."""
    return await list_logs(ctx) if simple_intent(text) == "logs" else None


@router.intent
async def worklog_entry_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    """记录巡视 3号台区 …: a new entry, prefilled from what the sentence says."""
    intent = worklog_intent(text, ctx.local_now, await ctx.team_area_names())
    if intent is None:
        return None
    values, notices = await worklog_prefill(ctx, intent)
    return await app.engine.start(ctx, WORKLOG.name, values, notices,
                                  offer=worklog_offer(intent))


@router.opener("e")
async def open_edit(app: Assistant, ctx: Ctx, record_id: int) -> Outcome:
    """Edit entry `record_id` with the same form, starting at its summary."""
    entry = await ctx.services.worklogs.get_for(ctx.user, record_id)
    if entry is None:
        return Outcome().add(ctx.t("logs.not_found"))
    return await app.engine.start(
        ctx, WORKLOG.name, worklog_values_of(entry), meta={"edit_id": entry.id},
        heading=ctx.t("form.worklog.editing", id=entry.id), at_summary=True)


@router.keeps_loose_media
async def keep_loose(ctx: Ctx, photo: str | None, caption: str | None,
                     point: tuple[float, float] | None) -> Outcome:
    """A photo or location with no form open: kept for the next work log a few minutes,
    not thrown away (the worklog form attaches it when it opens)."""
    minutes = ctx.services.settings.loose_media_minutes
    loose, window = LooseMedia(ctx.services.db), timedelta(minutes=minutes)
    if photo is not None:
        caption = caption.strip() if caption and caption.strip() else None
        count = await loose.keep_photo(ctx.user.id, photo, caption, ctx.now, window)
        return Outcome().add(ctx.t("media.loose_photo", count=count, minutes=minutes),
                             menu_buttons(ctx.locale))
    assert point is not None
    if not validators.coordinates(*point):
        return Outcome().add(ctx.t("form.location_invalid"), menu_buttons(ctx.locale))
    await loose.keep_location(ctx.user.id, point, ctx.now, window)
    return Outcome().add(ctx.t("media.loose_location", minutes=minutes),
                         menu_buttons(ctx.locale))


@router.request_reader
async def reads_as_log_request(ctx: Ctx, text: str) -> bool:
    """Inside a form: 我的日志, or a log sentence that is all request (记录巡视 5号台区)."""
    if simple_intent(text) == "logs":
        return True
    # Run on every answer typed in any form: no database read and no typo search here (a
    # request names its area as …台区, which reads without the team's list).
    return is_log_request(worklog_intent(text, ctx.local_now, [], fix_typos=False))
