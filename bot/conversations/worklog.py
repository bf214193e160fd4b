"""The 工作日志 form: the paper log's fields, asked one at a time."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.conversations.engine import FormSpec, Saved
from bot.conversations.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.conversations.matching import Choice, match_choice
from bot.events import GLOBAL_TOKEN, Button, callback
from bot.handlers.intents import WorkLogIntent
from bot.models import WorkLog
from bot.rules import default_hours, work_item_keys, work_items_in
from bot.services import Ctx
from bot.storage.db import from_iso, iso
from bot.storage.worklogs import NewWorkLog
from bot.timeparse import ParsedTime, format_time, leading_time, parse_time

# A phone clock a few minutes fast must not make "now" look like the future.
FUTURE_TOLERANCE = timedelta(minutes=5)


# --- work items -----------------------------------------------------------------------
async def item_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(k, ctx.t(f"item.{k}")) for k in work_item_keys()]


async def parse_items(text: str, ctx: Ctx, form: FormView = NO_FORM) -> list[str]:
    found = work_items_in(text)
    if not found:
        raise Invalid("form.worklog.items.unknown", text=text,
                      options="、".join(ctx.t(f"item.{k}") for k in work_item_keys()))
    return found


async def show_items(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return "、".join(ctx.t(f"item.{k}") for k in value)


# --- area -----------------------------------------------------------------------------
async def area_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(str(a.id), a.name) for a in await ctx.areas()]


async def show_area(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    for c in await area_choices(ctx):
        if c.value == value:
            return c.label
    for a in await ctx.services.people.team_areas(ctx.user.team_id):  # a teammate's area
        if str(a.id) == value:
            return a.name
    return ctx.t("form.worklog.area_gone_short")


async def resolve_area(ctx: Ctx, text: str) -> tuple[str | None, str | None]:
    """(area id, None) for a clear match, else (None, a notice saying why and what is close)."""
    choices = await area_choices(ctx)
    found = match_choice(text, choices)
    if found.unambiguous:
        return found.unambiguous.value, None
    if found.suggestions:
        return None, ctx.t("form.did_you_mean", text=text,
                           options="、".join(c.label for c in found.suggestions))
    return None, ctx.t("form.worklog.area.unknown", text=text,
                       options="、".join(c.label for c in choices))


# --- time -----------------------------------------------------------------------------
def time_value(p: ParsedTime) -> dict[str, Any]:
    value: dict[str, Any] = {"at": iso(p.value), "has_time": p.has_time}
    if p.has_time and p.period:  # the hour is the part of day's default: say so on the summary
        value["part"] = p.period
    return value


def with_default_hour(ctx: Ctx, p: ParsedTime) -> ParsedTime:
    """'昨天下午' names a part of the day but no hour: it takes that part's default hour
    (data/day_parts.json) rather than dropping to a bare date; the summary shows it."""
    if p.has_time or p.period is None or (hour := default_hours().get(p.period)) is None:
        return p
    at = p.value.replace(hour=hour.hour, minute=hour.minute)
    now = ctx.local_now.replace(second=0, microsecond=0)
    if at.date() == now.date() and at > now:
        at = now  # '上午巡视了…' said at 8:30 means this morning so far, not a future 9:00
    return replace(p, value=at, has_time=True)


def check_not_future(ctx: Ctx, p: ParsedTime) -> None:
    local_now = ctx.local_now
    if p.has_time:
        future = p.value > local_now + FUTURE_TOLERANCE
    else:
        future = p.value.date() > local_now.date()
    if future:
        raise Invalid("form.worklog.time.future", when=format_time(p, ctx.locale),
                      now=format_time(local_now, ctx.locale))


async def parse_when(text: str, ctx: Ctx, form: FormView = NO_FORM) -> dict[str, Any]:
    p = parse_time(text, ctx.local_now, prefer="past") or _part_of_day_alone(ctx, text)
    if p is None:
        raise Invalid("form.worklog.time.unparsed", text=text)
    p = with_default_hour(ctx, p)
    check_not_future(ctx, p)
    return time_value(p)


def _part_of_day_alone(ctx: Ctx, text: str) -> ParsedTime | None:
    """'下午' as the whole answer: that part of today."""
    p = leading_time(text, ctx.local_now, prefer="past")
    return p if p is not None and p.phrase == text.strip() else None


def now_value(ctx: Ctx) -> dict[str, Any]:
    return {"at": iso(ctx.now.replace(second=0, microsecond=0)), "has_time": True}


async def show_when(value: dict[str, Any], ctx: Ctx, form: FormView = NO_FORM) -> str:
    shown = format_time(from_iso(value["at"]).astimezone(ctx.tz), ctx.locale,
                        has_time=value["has_time"])
    if value.get("part"):
        shown += ctx.t("form.worklog.time.default_part", part=value["part"])
    return shown


# --- free text, photos, location ------------------------------------------------------
async def parse_text(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    limit = ctx.services.settings.max_text_length
    if not text.strip():
        raise Invalid("form.empty_text")
    if len(text) > limit:
        raise Invalid("form.too_long", length=len(text), limit=limit)
    return text


async def show_photos(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t("form.photos_count", count=len(value))


async def show_location(value: list[float], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return f"{value[0]:.5f}, {value[1]:.5f}"


# --- prefill from a sentence ----------------------------------------------------------
async def prefill(ctx: Ctx, intent: WorkLogIntent) -> tuple[dict[str, Any], dict[str, str]]:
    """Form values from what the sentence said, and notices for what could not be used."""
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    if intent.items:
        values["items"] = intent.items
    if intent.area_text:
        area, note = await resolve_area(ctx, intent.area_text)
        if area:
            values["area"] = area
        elif note:
            notices["area"] = "⚠️ " + note
    if intent.time is not None:
        try:
            when = with_default_hour(ctx, intent.time)
            check_not_future(ctx, when)
            values["time"] = time_value(when)
        except Invalid as exc:
            notices["time"] = "⚠️ " + ctx.t(exc.key, **exc.kwargs)
    content = intent.content
    if content is None and intent.problems and intent.items:
        # '3号台区巡视了，发现…' says the work by its item and area: that is its content.
        content = ctx.t("form.worklog.content_from_items",
                        items=await show_items(intent.items, ctx), area=intent.area_text or "")
    with contextlib.suppress(Invalid):  # if refused, it is asked for at its own step
        if content:
            values["content"] = await parse_text(content, ctx)
        if intent.problems:
            values["problems"] = await parse_text(intent.problems, ctx)
    return values, notices


# Asked one by one unless the sentence said all was well: then offered on the summary.
ALL_CLEAR_OFFER = ("problems", "photos", "location")


def offer(intent: WorkLogIntent) -> tuple[str, ...]:
    return ALL_CLEAR_OFFER if intent.all_clear else ()


# --- saving ---------------------------------------------------------------------------
def values_of(w: WorkLog) -> dict[str, Any]:
    """A saved entry as form values, to edit it with the same form."""
    return {"items": list(w.items), "area": str(w.area_id),
            "time": {"at": iso(w.occurred_at), "has_time": w.has_time},
            "content": w.content, "problems": w.problems, "photos": list(w.photos),
            "photo_notes": dict(w.photo_notes),
            "location": ([w.latitude, w.longitude]
                         if w.latitude is not None and w.longitude is not None else None)}


async def save(ctx: Ctx, values: dict[str, Any], token: str, meta: dict[str, Any]) -> Saved:
    areas = {str(a.id) for a in await ctx.areas()}
    if values.get("area") not in areas:
        raise Invalid("form.worklog.area_gone")
    when = values["time"]
    loc = values.get("location") or [None, None]
    entry = NewWorkLog(
        area_id=int(values["area"]), items=tuple(values["items"]),
        occurred_at=from_iso(when["at"]), has_time=bool(when["has_time"]),
        content=values["content"], problems=values.get("problems") or None,
        latitude=loc[0], longitude=loc[1], photos=tuple(values.get("photos") or ()),
        customer_id=meta.get("customer_id"), photo_notes=values.get("photo_notes"))
    last_row = [Button(ctx.t("btn.menu_logs"), callback(GLOBAL_TOKEN, "cmd", "logs"))]
    if meta.get("edit_id"):
        wid = int(meta["edit_id"])
        if not await ctx.services.worklogs.update(ctx.user, wid, entry, ctx.now):
            raise Invalid("logs.not_found")
        key = "form.worklog.updated"
    else:
        wid = await ctx.services.worklogs.add(ctx.user, entry, ctx.now, form_token=token)
        key = "form.worklog.saved"
        if ctx.services.settings.log_undo_minutes:  # saved by mistake: 撤销 for a while
            last_row.append(Button(ctx.t("btn.log_undo"), callback(GLOBAL_TOKEN, "logdel", wid)))
    return Saved(
        ctx.t(key, id=wid, area=await show_area(values["area"], ctx),
              items=await show_items(values["items"], ctx), when=await show_when(when, ctx)),
        [[Button(ctx.t("btn.view"), callback(GLOBAL_TOKEN, "log", wid)),
          Button(ctx.t("btn.log_another"), callback(GLOBAL_TOKEN, "cmd", "log"))],
         last_row],
        record_id=wid)


WORKLOG = FormSpec(
    name="worklog",
    title="form.worklog.title",
    fields=(
        Field("items", "field.items", "form.worklog.items", Kind.MULTI, choices=item_choices,
              parse=parse_items, show=show_items),
        Field("area", "field.area", "form.worklog.area", Kind.CHOICE, choices=area_choices,
              show=show_area, fill_sole=True),
        Field("time", "field.time", "form.worklog.time", Kind.TIME, parse=parse_when,
              show=show_when, hint="form.worklog.time.hint", quick=("now",)),
        Field("content", "field.content", "form.worklog.content", Kind.TEXT, parse=parse_text),
        Field("problems", "field.problems", "form.worklog.problems", Kind.TEXT, required=False,
              parse=parse_text),
        Field("photos", "field.photos", "form.worklog.photos", Kind.PHOTOS, required=False,
              show=show_photos),
        Field("location", "field.location", "form.worklog.location", Kind.LOCATION,
              required=False, show=show_location),
    ),
    save=save,
    quick={"now": now_value},
)
