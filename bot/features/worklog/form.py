"""The 工作日志 form: the paper log's fields, asked one at a time."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from bot.events import GLOBAL_TOKEN, Button, Outcome, Reply, callback
from bot.features.worklog.intents import WorkLogIntent
from bot.forms import kinds
from bot.forms.engine import FormEngine, FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, PHOTO_NOTES, Field, FormView, Invalid, Kind
from bot.forms.kinds import (  # noqa: F401  (re-exported: the shared field kinds)
    FUTURE_TOLERANCE,
    check_not_future,
    now_value,
    parse_text,
    show_location,
    show_photos,
    time_value,
    with_default_hour,
)
from bot.forms.matching import Choice, match_choice
from bot.models import Area, WorkLog
from bot.router import card_button_reads, extra_card_buttons, feature_callback
from bot.rules import work_item_keys, work_items_in
from bot.services import Ctx
from bot.storage.batch import Batch
from bot.storage.conversations import Draft
from bot.storage.customers import Customer, Query
from bot.storage.db import Row, from_iso, iso
from bot.storage.loose_media import LooseMedia
from bot.storage.worklogs import NewWorkLog
from bot.vocab import take_area


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
# A lead's or an admin's choices are the team's 台区 (thousands in a 供电所 of a province):
# built once per team list the step reads hold (bot.storage.team_areas), not at each call of
# each step (issue #12). Shared: not to be changed.
_TEAM_CHOICES: dict[int, tuple[list[Area], list[Choice]]] = {}


async def area_choices(ctx: Ctx) -> list[Choice]:
    areas = await ctx.areas()
    if not ctx.user.sees_whole_team:
        return [Choice(str(a.id), a.name) for a in areas]
    held = _TEAM_CHOICES.get(ctx.user.team_id)
    if held is None or held[0] is not areas:
        held = _TEAM_CHOICES[ctx.user.team_id] = (areas, [Choice(str(a.id), a.name)
                                                           for a in areas])
    return held[1]


async def show_area(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    for c in await area_choices(ctx):
        if c.value == value:
            return c.label
    for a in await ctx.team_areas():  # a teammate's area
        if str(a.id) == value:
            return a.name
    return ctx.t("form.worklog.area_gone_short")


async def take_area_into(ctx: Ctx, text: str, values: dict[str, Any],
                         notices: dict[str, str], name: str = "area") -> str:
    """The 台区 a sentence names, read into `values[name]` (or a notice for its step when it
    is not one of the person's areas); returns the sentence without it. Every form that
    prefills an area from a sentence reads it this one way."""
    area_text, rest = take_area(text, (c.label for c in await area_choices(ctx)))
    if area_text:
        area, note = await resolve_area(ctx, area_text)
        if area:
            values[name] = area
        elif note:
            notices[name] = "⚠️ " + note
    return rest


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


# --- further 台区 of one entry -------------------------------------------------------
_AREA_LIST = re.compile(r"[\s和与及跟、,，;；]+")


async def parse_more_areas(text: str, ctx: Ctx, form: FormView = NO_FORM) -> list[str]:
    """'5号台区、7号台区': the further areas of this entry (not the first one again)."""
    found: list[str] = []
    for part in (p for p in _AREA_LIST.split(text.strip()) if p):
        area, _ = await resolve_area(ctx, part)
        if area is None:
            raise Invalid("form.worklog.more_areas.unknown", text=part,
                          options="、".join(c.label for c in await area_choices(ctx)))
        if area != form.values.get("area") and area not in found:
            found.append(area)
    if not found:
        raise Invalid("form.worklog.more_areas.same")
    return found


async def show_more_areas(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return "、".join([await show_area(a, ctx) for a in value])


# --- 关联工单号 --------------------------------------------------------------------------
async def parse_ticket(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    ticket = re.sub(r"\s+", "", text).removeprefix("工单号").lstrip(":：")
    if not re.fullmatch(ctx.services.settings.ticket_no_pattern, ticket):
        raise Invalid("form.worklog.ticket.bad", text=text)
    return ticket


# --- time, free text, photos, location: the engine's field kinds (re-exported: the record
# forms and other features import them from here) ------------------------------------------
parse_when = kinds.parse_past_time
show_when = kinds.show_time


# --- photos and a location sent just before the form ------------------------------------
LOOSE = "loose"  # meta: what was attached that way, so one tap can take it out again
_LOOSE_SAID = {frozenset({"photos"}): "form.worklog.loose_photos",
               frozenset({"location"}): "form.worklog.loose_location",
               frozenset({"photos", "location"}): "form.worklog.loose_photos_location"}


async def attach_loose(ctx: Ctx, draft: Draft) -> Reply | None:
    """Photos / a location sent with no form open in the last minutes go into this log, said
    at once with a button to take them out: no tap when wanted, no surprise when not."""
    if ctx.loose_media is False:  # the step's read found none kept: no transaction
        return None
    window = timedelta(minutes=ctx.services.settings.loose_media_minutes)
    loose = await LooseMedia(ctx.services.db).take(ctx.user.id, ctx.now, window)
    if loose is None:
        return None
    values, attached = draft.state.values, {}
    if loose.photos:
        values["photos"] = [*(values.get("photos") or []), *loose.photos]
        values.setdefault(PHOTO_NOTES, {}).update(loose.notes)
        attached["photos"] = loose.photos
    if loose.location is not None and not values.get("location"):
        values["location"] = attached["location"] = list(loose.location)
    draft.state.meta[LOOSE] = attached
    if not attached:  # only a location, and the log has one already
        return None
    return Reply(ctx.t(_LOOSE_SAID[frozenset(attached)], count=len(loose.photos)),
                 [[Button(ctx.t("btn.loose_drop"), callback(draft.token, "loose_drop"))]])


async def drop_loose(engine: FormEngine, ctx: Ctx, draft: Draft, arg: str) -> Outcome:
    """The 不附 button: take out what attach_loose put in, keep everything else."""
    attached = draft.state.meta.pop(LOOSE, None)
    if not attached:
        return await engine.reprompt(ctx, draft)
    values = draft.state.values
    refs = set(attached.get("photos") or [])
    values["photos"] = [p for p in values.get("photos") or [] if p not in refs]
    values[PHOTO_NOTES] = {k: v for k, v in (values.get(PHOTO_NOTES) or {}).items()
                           if k not in refs}
    if attached.get("location") and values.get("location") == attached["location"]:
        values["location"] = None
    return await engine.reprompt(ctx, draft, ctx.t("form.worklog.loose_dropped"))


# --- a visit to a registered special customer ---------------------------------------------
VISIT = "visit"
LINK_CHOICES = 4  # namesakes offered as buttons; more than that: too vague to offer any
_NAME_END = re.compile(r"[\s,，。、;；:：]")


def visit_of(ctx: Ctx, customer: Customer, area_ids: set[str]) -> tuple[dict[str, Any], str]:
    """What a log counted as `customer`'s visit starts with (the card's 记录走访 and a linked
    sentence alike): the item, the customer's area if it is one of ours, and the heading."""
    values: dict[str, Any] = {"items": [VISIT]}
    if str(customer.area_id) in area_ids:
        values["area"] = str(customer.area_id)
    return values, ctx.t("customer.visiting", name=customer.name, account=customer.account_no)


async def _named_customers(ctx: Ctx, draft: Draft) -> list[Customer]:
    """The registered customers a visit sentence names first (`走访 李奶奶，…`), exactly."""
    values = draft.state.values
    name = _NAME_END.split((values.get("content") or "").strip(), maxsplit=1)[0]
    name = name.removesuffix("家")  # 走访王大爷家: 王大爷 is the name
    if not name:
        return []
    _, found = await ctx.services.customers.search(ctx.user, Query("text", name), ctx.now,
                                                   limit=LINK_CHOICES * 2)
    area = values.get("area")
    return [c for c in found if c.name == name and (area is None or str(c.area_id) == area)]


async def offer_visit_link(ctx: Ctx, draft: Draft) -> Reply | None:
    """`走访 李奶奶` naming a registered special customer: offer (one tap) to count the log as
    that customer's visit. Nobody registered by that name: the log goes on as it is."""
    st = draft.state
    if VISIT not in (st.values.get("items") or []) or linked_customer(st.values, st.meta):
        return None
    found = await _named_customers(ctx, draft)
    if not found or len(found) > LINK_CHOICES:
        return None
    if len(found) == 1:
        c = found[0]
        return Reply(ctx.t("form.worklog.visit_offer", name=c.name),
                     [[Button(ctx.t("btn.visit_link", name=c.name),
                              callback(draft.token, "link_cust", c.id))]])
    return Reply(ctx.t("form.worklog.visit_pick", name=found[0].name, count=len(found)),
                 pick_buttons(ctx, draft.token, found))


async def link_customer(engine: FormEngine, ctx: Ctx, draft: Draft, arg: str) -> Outcome:
    """The offer taken: the log now counts as the customer's visit (saved with its id)."""
    customer = await ctx.services.customers.get(ctx.user, int(arg)) if arg.isdigit() else None
    if customer is None or not customer.active:
        return await engine.reprompt(ctx, draft, ctx.t("customer.not_found"))
    st = draft.state
    st.meta["customer_id"] = st.values["customer"] = customer.id
    if st.step == "customer":  # a namesake picked for the 涉及客户 question: answered
        return await engine.on_action(ctx, draft, "keep", "")
    values, heading = visit_of(ctx, customer, {c.value for c in await area_choices(ctx)})
    if not st.values.get("area") and "area" in values:
        st.values["area"] = values["area"]
        if st.step == "area":  # the area just filled is the question on screen: move on
            out = await engine.on_action(ctx, draft, "keep", "")
            out.replies[0].text = heading + "\n" + out.replies[0].text
            return out
    return await engine.reprompt(ctx, draft, heading)


def linked_customer(values: Mapping[str, Any], meta: Mapping[str, Any]) -> int | None:
    """The log's 涉及客户: the field's value; a draft from before there was one: its meta."""
    if "customer" in values:
        return int(values["customer"]) if values["customer"] else None
    return meta.get("customer_id")


def pick_buttons(ctx: Ctx, token: str, found: list[Customer]) -> list[list[Button]]:
    """Namesakes, one button each: name, 台区 and the 户号's last digits tell them apart."""
    return [[Button(ctx.t("btn.visit_link_one", name=c.name, area=c.area_name,
                          tail=c.account_no[-4:]),
                    callback(token, "link_cust", c.id))] for c in found]


async def parse_customer(text: str, ctx: Ctx, form: FormView = NO_FORM) -> int:
    """涉及客户 by 户号 (or its start) or by name: one match is it; namesakes are offered as
    buttons; nobody: said so, with what was typed."""
    typed = text.strip().removeprefix("户号").strip(" :：")
    query = Query("account", typed) if typed.isdigit() else Query("text", typed)
    _, found = await ctx.services.customers.search(ctx.user, query, ctx.now,
                                                   limit=LINK_CHOICES * 2)
    exact = [c for c in found if typed in (c.name, c.account_no)]
    found = exact or found
    if len(found) == 1:
        return found[0].id
    if not found:
        raise Invalid("form.worklog.customer.unknown", text=typed)
    if len(found) > LINK_CHOICES:
        raise Invalid("form.worklog.customer.vague", text=typed, count=len(found))
    raise Invalid("form.worklog.customer.pick", buttons=pick_buttons(ctx, form.token, found),
                  text=typed, count=len(found))


async def show_customer(value: int, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return customer_shown(ctx, await ctx.services.customers.get(ctx.user, int(value)))


def customer_shown(ctx: Ctx, c: Customer | None) -> str:
    if c is None:
        return ctx.t("form.worklog.customer_gone")
    return ctx.t("worklog.customer_shown", name=c.name, area=c.area_name,
                 tail=c.account_no[-4:])


async def _account_customer(ctx: Ctx, account: str) -> int | None:
    """The one registered customer whose 户号 the sentence said, if exactly one."""
    _, found = await ctx.services.customers.search(ctx.user, Query("account", account),
                                                   ctx.now, limit=2)
    return found[0].id if len(found) == 1 else None


async def on_open(ctx: Ctx, draft: Draft) -> Reply | None:
    """What a new log says before its first question: photos attached, a customer to link."""
    st = draft.state
    if st.meta.get("customer_id") and not st.values.get("customer"):
        st.values["customer"] = st.meta["customer_id"]  # the customer card's 记录走访
    said = [r for r in (await attach_loose(ctx, draft), await offer_visit_link(ctx, draft)) if r]
    if not said:
        return None
    return Reply("\n".join(r.text for r in said), [row for r in said for row in r.buttons])


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
    await _prefill_more_areas(ctx, intent, values, notices)
    if intent.ticket:
        with contextlib.suppress(Invalid):  # a malformed one is left for the ➕ button
            values["ticket"] = await parse_ticket(intent.ticket, ctx)
    if intent.account and (customer := await _account_customer(ctx, intent.account)):
        values["customer"] = customer
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
    with contextlib.suppress(Invalid):
        if intent.result:
            values["result"] = await parse_text(intent.result, ctx)
    return values, notices


async def _prefill_more_areas(ctx: Ctx, intent: WorkLogIntent, values: dict[str, Any],
                              notices: dict[str, str]) -> None:
    """'巡视 3号台区和5号台区': the areas after the first, each as the first is read."""
    more: list[str] = []
    for text in intent.more_area_texts:
        area, note = await resolve_area(ctx, text)
        if area is None:  # said at the first question still to ask, or on its ➕
            step = next((f for f in ASKED_FIRST if f not in values), "more_areas")
            notices[step] = "\n".join(n for n in (notices.get(step), "⚠️ " + (note or "")) if n)
        elif area != values.get("area") and area not in more:
            more.append(area)
    if more:
        values["more_areas"] = more


ASKED_FIRST = ("items", "area", "time", "content")  # the required steps, in order
# Never asked one by one: offered as ➕ on the summary (no tap added in the common case).
EXTRAS = ("more_areas", "result", "customer", "ticket")
# Asked one by one unless the sentence said all was well: then offered on the summary.
ALL_CLEAR_OFFER = ("problems", "photos", "location")


def offer(intent: WorkLogIntent) -> tuple[str, ...]:
    return ALL_CLEAR_OFFER if intent.all_clear else ()


# --- saving ---------------------------------------------------------------------------
CARD = "worklog"  # the name other features add buttons under (router.adds_to_card)

def values_of(w: WorkLog) -> dict[str, Any]:
    """A saved entry as form values, to edit it with the same form."""
    return {"items": list(w.items), "area": str(w.area_id),
            "time": {"at": iso(w.occurred_at), "has_time": w.has_time},
            "content": w.content, "problems": w.problems, "photos": list(w.photos),
            "photo_notes": dict(w.photo_notes),
            "location": ([w.latitude, w.longitude]
                         if w.latitude is not None and w.longitude is not None else None),
            "more_areas": [str(a) for a in w.area_ids[1:]], "result": w.result,
            "customer": w.customer_id, "ticket": w.ticket_no}


def _entry(ctx: Ctx, values: dict[str, Any], meta: dict[str, Any],
           areas: set[str]) -> NewWorkLog:
    """The form's answers as an entry; the 台区 must still be the user's (`areas`)."""
    if values.get("area") not in areas:
        raise Invalid("form.worklog.area_gone")
    if any(a not in areas for a in values.get("more_areas") or []):
        raise Invalid("form.worklog.area_gone")
    when = values["time"]
    loc = values.get("location") or [None, None]
    return NewWorkLog(
        area_id=int(values["area"]), items=tuple(values["items"]),
        occurred_at=from_iso(when["at"]), has_time=bool(when["has_time"]),
        content=values["content"], problems=values.get("problems") or None,
        latitude=loc[0], longitude=loc[1], photos=tuple(values.get("photos") or ()),
        customer_id=linked_customer(values, meta), photo_notes=values.get("photo_notes"),
        more_area_ids=tuple(int(a) for a in values.get("more_areas") or []),
        result=values.get("result") or None, ticket_no=values.get("ticket") or None)


async def write(ctx: Ctx, values: dict[str, Any], token: str,
                meta: dict[str, Any]) -> Writing:
    """A new entry, or an edit of a saved one (`edit_id`: still there and the user's, else
    nothing is written and the user told), as writes, saved with the form's close in one
    round trip."""
    entry = _entry(ctx, values, meta, {str(a.id) for a in await ctx.areas()})
    batch = Batch()
    if meta.get("edit_id"):
        wid = int(meta["edit_id"])
        ctx.services.worklogs.update_into(batch, ctx.user, wid, entry, ctx.now)
        # What the buttons other features add under the card need, read with the write
        added = [batch.read_rows(*read) for read in card_button_reads(ctx, CARD, wid)]

        async def edited(_: int | None) -> Saved:
            return await _saved(ctx, values, wid, "form.worklog.updated",
                                read=[r.value for r in added])

        return Writing(batch, wid, edited, Invalid("logs.not_found"))
    ref = ctx.services.worklogs.add_to(batch, ctx.user, entry, ctx.now, form_token=token)

    async def saved(wid: int | None) -> Saved:
        assert wid is not None
        return await _saved(ctx, values, wid, "form.worklog.saved")

    return Writing(batch, ref, saved)


async def _saved(ctx: Ctx, values: dict[str, Any], wid: int, key: str,
                 read: list[list[Row]] | None = None) -> Saved:
    """The saved card, from the form's answers (nothing read back); an edit's (`read`: what
    the buttons other features add need, read with its write)."""
    new = read is None
    last_row = [Button(ctx.t("btn.menu_logs"), callback(GLOBAL_TOKEN, "cmd", "logs"))]
    if new and ctx.services.settings.log_undo_minutes:  # saved by mistake: 撤销 for a while
        last_row.append(Button(ctx.t("btn.log_undo"),
                               feature_callback("worklog", "logdel", wid)))
    shown_areas = await show_more_areas([values["area"], *(values.get("more_areas") or [])],
                                        ctx)
    rows = [[Button(ctx.t("btn.view"), feature_callback("worklog", "log", wid)),
             Button(ctx.t("btn.log_another"), callback(GLOBAL_TOKEN, "cmd", "log"))],
            last_row]
    # e.g. 转为隐患, from another feature; a new entry's answers say what it needs to know
    extra = await extra_card_buttons(ctx, CARD, wid, values, read)
    return Saved(
        ctx.t(key, id=wid, area=shown_areas, items=await show_items(values["items"], ctx),
              when=await show_when(values["time"], ctx)),
        [extra, *rows] if extra else rows, record_id=wid)


WORKLOG = FormSpec(
    name="worklog",
    title="form.worklog.title",
    fields=(
        kinds.ticks("items", "field.items", "form.worklog.items", item_choices,
                    parse=parse_items, show=show_items),
        kinds.choice("area", "field.area", "form.worklog.area", area_choices, show=show_area,
                     fill_sole=True),
        Field("more_areas", "field.log_more_areas", "form.worklog.more_areas", Kind.TEXT,
              required=False, parse=parse_more_areas, show=show_more_areas),
        kinds.time("time", "field.time", "form.worklog.time", hint="form.worklog.time.hint"),
        kinds.text("content", "field.content", "form.worklog.content"),
        kinds.text("problems", "field.problems", "form.worklog.problems", required=False),
        kinds.text("result", "field.log_result", "form.worklog.result", required=False),
        Field("customer", "field.log_customer", "form.worklog.customer", Kind.TEXT,
              required=False, parse=parse_customer, show=show_customer),
        Field("ticket", "field.log_ticket", "form.worklog.ticket", Kind.TEXT, required=False,
              parse=parse_ticket),
        kinds.photos("photos", "field.photos", "form.worklog.photos", required=False,
                     notes=PHOTO_NOTES),
        kinds.location("location", "field.location", "form.worklog.location", required=False),
    ),
    save=None,
    write=write,
    quick={"now": now_value},
    actions={"loose_drop": drop_loose, "link_cust": link_customer},
    on_open=on_open,
    extras=EXTRAS,
)
