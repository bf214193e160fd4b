"""自由提醒 (issue #13 §3): '明天8点提醒我抄表' -> shown back as a date and time to confirm
(确认 / 改时间 / 取消) -> pushed at that minute (a reminders row: never lost or doubled; held
in quiet hours for the morning digest unless urgent) with the snoozes and 完成.
'我的提醒' lists the open ones with 取消."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from bot.events import Button, Outcome, Reply, callback
from bot.features.notes import store
from bot.features.notes.sentence import Request, is_list_request, read_request
from bot.features.worklog.form import parse_text
from bot.forms.engine import FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.matching import Choice
from bot.reminders import in_quiet_sql
from bot.router import ReminderKind, Router, TodoItem, TodoRead, stale_reply
from bot.rules import default_hours
from bot.services import Ctx
from bot.storage.batch import Batch
from bot.storage.db import Read, Row, from_iso, iso
from bot.storage.reminders import Reminder
from bot.timeparse import ParsedTime, format_time, leading_time, parse_time

if TYPE_CHECKING:
    from bot.assistant import Assistant
    from bot.storage.conversations import Draft

router = Router("notes")
FORM = "free_reminder"
LISTED = 10  # open reminders shown one by one in 我的提醒 (each with its 取消 button)
DAY_DEFAULT = "day"  # the hour came from TAIQU_FREE_REMINDER_DEFAULT_TIME, not a part of day


# --- when -----------------------------------------------------------------------------
def _clock(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def _with_default_hour(ctx: Ctx, p: ParsedTime) -> tuple[datetime, str | None]:
    """The moment meant: '下周一上午' takes 上午's hour (data/day_parts.json), a day alone
    ('3天后') the setting's; which default was used, for the confirmation to say."""
    if p.has_time:
        return p.value, None
    hour = default_hours().get(p.period) if p.period else None
    default = p.period if hour is not None else DAY_DEFAULT
    hour = hour or _clock(ctx.services.settings.free_reminder_default_time)
    return p.value.replace(hour=hour.hour, minute=hour.minute, second=0, microsecond=0), default


def when_value(ctx: Ctx, p: ParsedTime) -> dict[str, Any]:
    at, default = _with_default_hour(ctx, p)
    _check_ahead(ctx, at)
    value: dict[str, Any] = {"at": iso(at), "has_time": True}
    if default:
        value["default"] = default
    return value


def _check_ahead(ctx: Ctx, at: datetime) -> None:
    if at <= ctx.now:
        raise Invalid("notes.when.past", when=format_time(at.astimezone(ctx.tz), ctx.locale),
                      now=format_time(ctx.local_now, ctx.locale))


async def parse_when(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    p = parse_time(text, ctx.local_now, prefer="future") or _part_of_day_alone(ctx, text)
    if p is None:
        raise Invalid("notes.when.unparsed", text=text)
    return when_value(ctx, p)


def _part_of_day_alone(ctx: Ctx, text: str) -> ParsedTime | None:
    """'下午' as the whole answer: this afternoon."""
    p = leading_time(text, ctx.local_now, prefer="future")
    return p if p is not None and p.phrase == text.strip() else None


async def show_when(value: dict[str, Any], ctx: Ctx, form: FormView = NO_FORM) -> str:
    shown = format_time(from_iso(value["at"]).astimezone(ctx.tz), ctx.locale)
    default = value.get("default")
    if default == DAY_DEFAULT:
        shown += ctx.t("notes.when.default_day",
                       time=ctx.services.settings.free_reminder_default_time)
    elif default:
        shown += ctx.t("notes.when.default_part", part=default)
    return shown


def in_an_hour(ctx: Ctx) -> dict[str, Any]:
    return {"at": iso(ctx.now.replace(second=0, microsecond=0) + timedelta(hours=1)),
            "has_time": True}


def tomorrow_morning(ctx: Ctx) -> dict[str, Any]:
    tomorrow = ctx.local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    p = ParsedTime(tomorrow + timedelta(days=1), False, "", "上午")
    return when_value(ctx, p)


# --- urgent ---------------------------------------------------------------------------
async def urgency_choices(ctx: Ctx) -> list[Choice]:
    return [Choice("no", ctx.t("notes.urgent.no")), Choice("yes", ctx.t("notes.urgent.yes"))]


async def show_urgency(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t(f"notes.urgent.{value}")


# --- the form -------------------------------------------------------------------------
def summary_buttons(ctx: Ctx, token: str) -> list[list[Button]]:
    return [[Button(ctx.t("btn.notes_confirm"), callback(token, "save")),
             Button(ctx.t("btn.notes_change_time"), callback(token, "editf", "when"))],
            [Button(ctx.t("btn.edit"), callback(token, "edit")),
             Button(ctx.t("btn.cancel"), callback(token, "cancel"))]]


async def write(ctx: Ctx, values: dict[str, Any], token: str, meta: dict[str, Any]) -> Writing:
    """The reminder and its push, saved with the form's close in one round trip; whether it
    falls in quiet hours (for the reply) read with them."""
    at = from_iso(values["when"]["at"])
    _check_ahead(ctx, at)  # confirmed only after that moment had passed: ask again
    urgent = values.get("urgent") == "yes"
    batch = Batch()
    rid = store.add_into(batch, ctx.user, values["what"], at, urgent, ctx.now, token)
    in_quiet, params = in_quiet_sql(ctx.services.settings, "?", at.astimezone(ctx.tz),
                                    (ctx.user.id,))
    quiet = None if urgent else batch.read(f"SELECT {in_quiet}", params)

    async def saved(rid: int | None) -> Saved:
        lines = [ctx.t("notes.saved", when=format_time(at.astimezone(ctx.tz), ctx.locale),
                       what=values["what"])]
        if urgent:
            lines.append(ctx.t("notes.saved_urgent"))
        elif quiet is not None and quiet.value:
            lines.append(ctx.t("notes.saved_quiet"))
        return Saved("\n".join(lines),
                     [[Button(ctx.t("btn.notes_list"), router.callback("list"))]],
                     record_id=rid)

    return Writing(batch, rid, saved)


async def not_urgent_unless_said(ctx: Ctx, draft: Draft) -> Reply | None:
    """Not asked: a reminder is ordinary unless the sentence said 紧急 (修改 changes it)."""
    draft.state.values.setdefault("urgent", "no")
    return None


FREE_REMINDER = router.form(FormSpec(
    name=FORM, title="form.notes.title",
    fields=(
        Field("what", "field.notes_what", "form.notes.what", Kind.TEXT, parse=parse_text),
        Field("when", "field.notes_when", "form.notes.when", Kind.TIME, parse=parse_when,
              show=show_when, hint="form.notes.when.hint",
              quick=("notes_hour", "notes_tomorrow")),
        Field("urgent", "field.notes_urgent", "form.notes.urgent", Kind.CHOICE,
              choices=urgency_choices, show=show_urgency),
    ),
    save=None, write=write,
    quick={"notes_hour": in_an_hour, "notes_tomorrow": tomorrow_morning},
    on_open=not_urgent_unless_said, summary_buttons=summary_buttons))


async def start(app: Assistant, ctx: Ctx, req: Request) -> Outcome:
    """Open the form with what the sentence said: at the confirmation when it said it all,
    else asking only the rest (a time in the past asked again, saying why)."""
    values: dict[str, Any] = {"urgent": "yes"} if req.urgent else {}
    notices: dict[str, str] = {}
    if req.what:
        values["what"] = req.what
    if req.when is None:
        notices["when"] = ctx.t("notes.when.missing")
    else:
        try:
            values["when"] = when_value(ctx, req.when)
        except Invalid as exc:
            notices["when"] = "⚠️ " + ctx.t(exc.key, **exc.kwargs)
    # Everything said: the engine's summary ("请确认提醒：…") is the confirmation itself.
    return await app.engine.start(ctx, FORM, values, notices=notices)


@router.command("remind")
async def remind_command(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    if arg.strip() and draft is None:
        req = read_request("提醒我" + arg, ctx.local_now)
        if req is not None:
            return await start(app, ctx, req)
    return await app.open_form(ctx, draft, FORM)


@router.intent
async def notes_intent(app: Assistant, ctx: Ctx, text: str) -> Outcome | None:
    if is_list_request(text):
        return await show_list(ctx)
    req = read_request(text, ctx.local_now)
    return None if req is None else await start(app, ctx, req)


@router.request_reader
async def reads_as_reminder(ctx: Ctx, text: str) -> bool:
    """Inside another form: '明天8点提醒我抄表' (a time and the words) is a new request."""
    req = read_request(text, ctx.local_now)
    return is_list_request(text) or (req is not None and req.when is not None)


# --- 我的提醒 -------------------------------------------------------------------------
def _when(ctx: Ctx, r: store.FreeReminder) -> str:
    return format_time(r.remind_at.astimezone(ctx.tz), ctx.locale)


async def show_list(ctx: Ctx) -> Outcome:
    rows, count = await ctx.services.db.fetch_many_point([  # one read (issue #12)
        store.open_ones_read(ctx.user.id, limit=LISTED), store.count_open_read(ctx.user.id)])
    shown = store.reminders_of(rows)
    if not shown:
        return Outcome().add(ctx.t("notes.list_none"))
    lines = [ctx.t("notes.list_title", count=store.count_in(count))]
    buttons = []
    for i, r in enumerate(shown, 1):
        mark = ctx.t("notes.urgent_mark") if r.urgent else ""
        lines.append(ctx.t("notes.list_line", n=i, when=_when(ctx, r), what=r.what, mark=mark))
        buttons.append([Button(ctx.t("btn.notes_cancel", n=i, what=r.what)[:40],
                               router.callback("cancel", r.id))])
    return Outcome().add("\n".join(lines), buttons)


async def _close(ctx: Ctx, arg: str, state: str) -> Outcome:
    if not arg.isdigit():
        return stale_reply(ctx)
    what = await store.close(ctx.services.db, ctx.user.id, int(arg), state, ctx.now)
    if what is None:
        return Outcome(toast=ctx.t("notes.gone_toast")).add(ctx.t("notes.gone"))
    return Outcome(toast=ctx.t(f"notes.{state}_toast")).add(ctx.t(f"notes.{state}", what=what))


@router.button("done")
async def done_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await _close(ctx, arg, store.DONE)


@router.button("cancel")
async def cancel_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await _close(ctx, arg, store.CANCELLED)


@router.button("list")
async def list_button(app: Assistant, ctx: Ctx, draft: Draft | None, arg: str) -> Outcome:
    return await show_list(ctx)


# --- the push, /todo and the digest ---------------------------------------------------
def _done_button(ctx: Ctx, r: store.FreeReminder) -> Button:
    return Button(ctx.t("btn.notes_done"), router.callback("done", r.id))


async def render(ctx: Ctx, row: Reminder) -> Reply | None:
    r = await store.get(ctx.services.db, row.user_id, row.subject_id)
    if r is None or r.state != store.OPEN:
        return None  # done or cancelled meanwhile
    return Reply(ctx.t("notes.push", what=r.what, when=_when(ctx, r)), [[_done_button(ctx, r)]])


async def describe(ctx: Ctx, row: Reminder) -> str:
    r = await store.get(ctx.services.db, row.user_id, row.subject_id)
    return ctx.t("notes.item", what=r.what) if r else ""


def todo_reads(ctx: Ctx) -> list[Read]:
    """One's own open reminders due by the end of today (and those past, until 完成)."""
    return [store.open_ones_read(ctx.user.id, by=ctx.local_now.replace(hour=23, minute=59,
                                                                         second=59))]


async def todo(ctx: Ctx, rows: list[list[Row]]) -> list[TodoItem]:
    return [TodoItem(due=r.remind_at.astimezone(ctx.tz),
                     text=ctx.t("notes.todo", what=r.what, when=_when(ctx, r)),
                     button=Button(ctx.t("btn.notes_done_what", what=r.what)[:40],
                                   router.callback("done", r.id)),
                     urgent=r.urgent)
            for r in store.reminders_of(rows[0])]


router.reminder_kind(store.SUBJECT, ReminderKind(render=render, todo=TodoRead(todo_reads, todo),
                                                 describe=describe))
router.help_lines.append("help.notes")
