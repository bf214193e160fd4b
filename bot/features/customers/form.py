"""The 特殊客户 forms: register / edit a special customer, and deactivate one with a reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from bot import validators
from bot.events import GLOBAL_TOKEN, Button, Outcome, callback
from bot.features.worklog.form import area_choices, resolve_area, show_area
from bot.forms import kinds
from bot.forms.engine import Again, FormEngine, FormSpec, Saved, Writing
from bot.forms.fields import NO_FORM, Field, FormView, Invalid, Kind
from bot.forms.kinds import parse_account_no, parse_phone, parse_text
from bot.forms.matching import Choice
from bot.privacy import mask_phone
from bot.router import feature_callback
from bot.rules import categories, categories_in, measures
from bot.services import Ctx
from bot.storage.batch import Batch
from bot.storage.conversations import Draft
from bot.storage.customers import Customer, CustomerData, Customers, still_as_kept
from bot.storage.db import Read, Row

KEPT = "kept"  # an edit's meta: the record's values as the form opened on it (no read at 保存)

# --- 户号 (the kind's rule, re-exported here with parse_phone and parse_text) ------------
__all__ = ["parse_account_no", "parse_phone", "parse_text"]


async def parse_account(text: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    """A 户号 for a new register entry: one already in the team offers its record instead."""
    value = await parse_account_no(text, ctx, form)
    existing = await ctx.services.customers.by_account(ctx.user.team_id, value)
    if existing is not None and existing.id != form.meta.get("edit_id"):
        raise Invalid("customer.account.duplicate", account=value, name=existing.name,
                      area=existing.area_name,
                      buttons=[[Button(ctx.t("btn.open_existing"),
                                       callback(form.token or GLOBAL_TOKEN, "dup_open",
                                                existing.id))]])
    return value


# --- phones ---------------------------------------------------------------------------
async def show_phone(value: str, ctx: Ctx, form: FormView = NO_FORM) -> str:
    # A stored record's numbers stay masked while editing (only 显示电话 reveals them, with an
    # audit row); a number the user has just typed is shown so they can check it.
    return mask_phone(value) if value in form.meta.get("stored_phones", []) else value


# --- categories and measures ----------------------------------------------------------
async def category_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(c.key, ctx.t(f"category.{c.key}")) for c in categories()]


async def parse_categories(text: str, ctx: Ctx, form: FormView = NO_FORM) -> list[str]:
    found = categories_in(text)
    if not found:
        raise Invalid("customer.categories.unknown", text=text, options="、".join(
            ctx.t(f"category.{c.key}") for c in categories()))
    return found


async def show_categories(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return "、".join(ctx.t(f"category.{k}") for k in value)


async def measure_choices(ctx: Ctx) -> list[Choice]:
    return [Choice(m.key, ctx.t(f"measure.{m.key}")) for m in measures()]


async def parse_measures(text: str, ctx: Ctx, form: FormView = NO_FORM) -> list[str]:
    low = text.lower()
    found = [m.key for m in measures() if any(s in low for s in m.synonyms)]
    if not found:
        raise Invalid("customer.measures.unknown", text=text, options="、".join(
            ctx.t(f"measure.{m.key}") for m in measures()))
    return found


async def show_measures(value: list[str], ctx: Ctx, form: FormView = NO_FORM) -> str:
    return "、".join(ctx.t(f"measure.{k}") for k in value)


async def parse_days(text: str, ctx: Ctx, form: FormView = NO_FORM) -> int:
    days = validators.check_visit_days(text)
    if isinstance(days, validators.Rejected):
        raise Invalid(days.key, **days.kwargs)
    return days


async def show_days(value: int, ctx: Ctx, form: FormView = NO_FORM) -> str:
    return ctx.t("customer.every_days", days=value)


# --- prefill from a sentence: 登记特殊客户 3号台区 李四 -----------------------------------
async def prefill(ctx: Ctx, rest: str,
                  area_names: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    notices: dict[str, str] = {}
    words = rest.split()
    for word in list(words):
        if word in area_names or word.endswith("台区"):
            area, note = await resolve_area(ctx, word)
            if area:
                values["area"] = area
            elif note:
                notices["area"] = "⚠️ " + note
            words.remove(word)
            break
    for word in list(words):  # a mobile number is the customer's phone, never a 户号
        number = validators.mobile(word)
        if number is not None:
            values["phone"] = number
            words.remove(word)
            break
    for word in list(words):
        digits = validators.digits_only(word)
        if digits.isdigit() and len(digits) >= 6 and validators.mobile(word) is None:
            try:
                values["account_no"] = await parse_account(word, ctx)
            except Invalid as exc:  # asked again at its step, saying why
                notices["account_no"] = "⚠️ " + ctx.t(exc.key, **exc.kwargs)
            words.remove(word)
            break
    name = " ".join(words).strip()
    if name and len(name) <= 30:
        values["name"] = name
    return values, notices


# --- values <-> records ---------------------------------------------------------------
def values_of(c: Customer) -> dict[str, Any]:
    return {"account_no": c.account_no, "name": c.name, "area": str(c.area_id),
            "address": c.address, "phone": c.phone, "categories": list(c.categories),
            "situation": c.situation, "emergency_name": c.emergency_name,
            "emergency_phone": c.emergency_phone, "visit_every_days": c.visit_every_days,
            "measures": [k for k, on in (("notify_first", c.notify_first),
                                         ("proxy_pay", c.proxy_pay)) if on]}


def data_of(values: dict[str, Any]) -> CustomerData:
    picked = set(values.get("measures") or [])
    return CustomerData(
        account_no=values["account_no"], name=values["name"], area_id=int(values["area"]),
        address=values["address"], phone=values["phone"],
        categories=tuple(values["categories"]), situation=values.get("situation") or None,
        emergency_name=values.get("emergency_name") or None,
        emergency_phone=values.get("emergency_phone") or None,
        visit_every_days=values.get("visit_every_days"),
        notify_first="notify_first" in picked, proxy_pay="proxy_pay" in picked)


def card_buttons(ctx: Ctx, customer_id: int) -> list[list[Button]]:
    return [[Button(ctx.t("btn.customer_card"), feature_callback("customers", "cust", customer_id)),
             Button(ctx.t("btn.customer_new"), callback(GLOBAL_TOKEN, "cmd", "customer"))]]


async def checked_data(ctx: Ctx, values: dict[str, Any],
                       meta: dict[str, Any]) -> CustomerData:
    areas = {str(a.id) for a in await ctx.areas()}
    # A manager may update a teammate's customer (the team's register) without moving it.
    if values.get("area") not in areas and values.get("area") != meta.get("area"):
        raise Invalid("form.worklog.area_gone")
    return data_of(values)


async def write(ctx: Ctx, values: dict[str, Any], token: str,
                meta: dict[str, Any]) -> Writing:
    """A new record, or an edit, as writes, saved with the form's close in one round trip,
    with nothing read before it (issue #12): a 户号 registered meanwhile (by another manager)
    inserts nothing; an edit is guarded on the record as its form opened on it (the audit
    names what changed from that). A change made meanwhile is known from the tap's own read
    (save_reads: whose the 户号 is, the record as it is now): the 户号's owner is named with
    nothing written, an edit made over someone else's since is written over the record as
    it is now. One made within the step itself refuses the write, which reads why with it
    (Batch.read_if_refused) and says so, or writes the edit again."""
    data = await checked_data(ctx, values, meta)
    db = ctx.services.db
    if meta.get("edit_id"):
        cid = int(meta["edit_id"])
        kept = meta.get(KEPT)
        if not isinstance(kept, dict):  # a form opened before its record was kept with it
            again = await edit_again(ctx, cid, data)
            if isinstance(again, Invalid):
                raise again
            return again.writing
        now_rows = db.served(Customers.get_read(ctx.user, cid))
        current = Customers.found(now_rows) if now_rows is not None else None
        if current is not None and not still_as_kept(current, data_of(kept)):
            # changed since the form opened, seen by the tap's read: as when its guard refuses
            again = await edit_again(ctx, cid, data, now_rows)
            if isinstance(again, Invalid):
                raise again
            return replace(again.writing, refused=again.then)
        batch = Batch()
        Customers.edit_into(batch, ctx.user, cid, data_of(kept), data, ctx.now)
        now = batch.read_if_refused(*Customers.get_read(ctx.user, cid))
        return Writing(batch, cid, edited(ctx, cid, data),
                       lambda: edit_again(ctx, cid, data, now.value))
    batch = Batch()
    registered = Customers.owner_read(ctx.user.team_id, data.account_no)
    if found := db.served(registered):  # registered since the 户号 was typed: nothing to write
        raise await duplicate(ctx, data, token, found)
    ref = Customers.create_into(batch, ctx.user, data, ctx.now)
    taken = batch.read_if_refused(*registered)

    async def saved(cid: int | None) -> Saved:
        assert cid is not None
        return Saved(ctx.t("customer.saved", name=data.name, account=data.account_no),
                     card_buttons(ctx, cid), record_id=cid)

    return Writing(batch, ref, saved, lambda: duplicate(ctx, data, token, taken.value))


def edited(ctx: Ctx, cid: int, data: CustomerData) -> Callable[[int | None], Awaitable[Saved]]:
    async def saved(_: int | None) -> Saved:
        return Saved(ctx.t("customer.updated", name=data.name, account=data.account_no),
                     card_buttons(ctx, cid), record_id=cid)
    return saved


async def edit_again(ctx: Ctx, cid: int, data: CustomerData,
                     now: list[Row] | None = None) -> Invalid | Again:
    """Why an edit's guard refused, from the record as it is now (`now`: its rows read with
    the refused write; else read here): gone from the user's sight, deactivated meanwhile
    (read-only), or else changed since the form opened: the edit made again over the record
    as it is now (what was read before the write until issue #12's work)."""
    current = (Customers.found(now) if now is not None
               else await ctx.services.customers.get(ctx.user, cid))
    if current is None:
        return Invalid("customer.not_found")
    if not current.active:
        return Invalid("customer.readonly")
    batch = Batch()
    Customers.update_into(batch, ctx.user, current, data, ctx.now)
    return Again(Writing(batch, cid, edited(ctx, cid, data)), Invalid("customer.readonly"))


def save_reads(ctx: Ctx, values: dict[str, Any], meta: dict[str, Any]) -> list[Read]:
    """What `write` needs to know of a change made meanwhile, read with the 保存 tap's read:
    the record an edit opened on as it is now; whose a new record's 户号 is."""
    if meta.get("edit_id"):
        return [Customers.get_read(ctx.user, int(meta["edit_id"]))]
    if not values.get("account_no"):
        return []
    return [Customers.owner_read(ctx.user.team_id, str(values["account_no"]))]


async def duplicate(ctx: Ctx, data: CustomerData, token: str,
                    taken: list[Row] | None = None) -> Invalid:
    """The 户号 was registered meanwhile (another manager): whose it is (Customers.owner_read),
    read with the tap or the refused insert (`taken`; else read here)."""
    if taken is None:
        taken = await ctx.services.db.fetchall(*Customers.owner_read(ctx.user.team_id,
                                                                     data.account_no))
    if not taken:  # registered and gone again: cannot be (never deleted); say so
        return Invalid("form.save_failed")
    existing = taken[0]
    return Invalid("customer.account.duplicate", account=data.account_no, name=existing["name"],
                   area=existing["area_name"],
                   buttons=[[Button(ctx.t("btn.open_existing"),
                                    callback(token, "dup_open", existing["id"]))]])


async def open_edit(engine: FormEngine, ctx: Ctx, customer: Customer) -> Outcome:
    return await engine.start(ctx, CUSTOMER.name, values_of(customer),
                              meta={"edit_id": customer.id, "area": str(customer.area_id),
                                    "stored_phones": [customer.phone, customer.emergency_phone],
                                    KEPT: values_of(customer)},
                              heading=ctx.t("customer.editing", name=customer.name,
                                            account=customer.account_no), at_summary=True)


async def open_duplicate(engine: FormEngine, ctx: Ctx, draft: Draft, arg: str) -> Outcome:
    """The 户号 is registered already: drop the new draft and open the existing record."""
    customer = await ctx.services.customers.get(ctx.user, int(arg)) if arg.isdigit() else None
    if customer is None:
        return await engine.reprompt(ctx, draft, ctx.t("customer.not_found"))
    await ctx.services.conversations.delete(ctx.user.id)
    if not customer.active:  # read-only until reactivated: its card offers 恢复
        return Outcome().add(ctx.t("customer.readonly"), card_buttons(ctx, customer.id))
    return await open_edit(engine, ctx, customer)


CUSTOMER = FormSpec(
    name="customer",
    title="form.customer.title",
    fields=(
        kinds.account_no("account_no", "field.account_no", "form.customer.account_no",
                         parse=parse_account),
        kinds.text("name", "field.customer_name", "form.customer.name"),
        kinds.choice("area", "field.area", "form.customer.area", area_choices, show=show_area,
                     fill_sole=True),
        kinds.text("address", "field.address", "form.customer.address"),
        kinds.phone("phone", "field.phone", "form.customer.phone", show=show_phone),
        kinds.ticks("categories", "field.categories", "form.customer.categories",
                    category_choices, parse=parse_categories, show=show_categories),
        kinds.text("situation", "field.situation", "form.customer.situation"),
        kinds.text("emergency_name", "field.emergency_name", "form.customer.emergency_name",
                   required=False),
        kinds.phone("emergency_phone", "field.emergency_phone",
                    "form.customer.emergency_phone", required=False, show=show_phone),
        Field("visit_every_days", "field.visit_every_days", "form.customer.visit_every_days",
              Kind.TEXT, required=False, parse=parse_days, show=show_days),
        kinds.ticks("measures", "field.measures", "form.customer.measures", measure_choices,
                    required=False, parse=parse_measures, show=show_measures),
    ),
    save=None,
    write=write,
    save_reads=save_reads,
    quick={},
    actions={"dup_open": open_duplicate},
)


# --- deactivation ---------------------------------------------------------------------
async def may_switch_active(ctx: Ctx, c: Customer) -> bool:
    """Who may deactivate or restore a special customer: the manager of its 台区, or the
    team's lead (an admin too). Others see it, but taking it off the register would drop
    the visits and outage notices its own manager counts on."""
    if c.team_id != ctx.user.team_id:
        return False
    return ctx.user.sees_whole_team or c.area_id in {a.id for a in await ctx.areas()}


async def switch_refusal(ctx: Ctx, c: Customer) -> Outcome | None:
    """None when the user may deactivate / restore `c`; else a polite why-not, naming who can."""
    if await may_switch_active(ctx, c):
        return None
    leads = await ctx.services.people.leads_of(c.team_id)
    who = "、".join(u.name for u in leads) or ctx.t("customer.switch_lead")
    return Outcome(toast=ctx.t("customer.switch_not_yours_toast")).add(
        ctx.t("customer.switch_not_yours", area=c.area_name, leads=who),
        [[Button(ctx.t("btn.customer_card"), feature_callback("customers", "cust", c.id))]])


async def write_deactivation(ctx: Ctx, values: dict[str, Any], token: str,
                             meta: dict[str, Any]) -> Writing:
    """停用 with its audit row and the form's close in one round trip, nothing read before
    it (issue #12): guarded in SQL on the record still being the user's to take off the
    register (in their team and, for a manager, their 台区); refused, it reads why."""
    cid = int(meta["customer_id"])
    areas = None if ctx.user.sees_whole_team else [a.id for a in await ctx.areas()]
    batch = Batch()
    Customers.deactivate_into(batch, ctx.user, cid, areas, ctx.now, values["reason"])

    async def saved(_: int | None) -> Saved:
        return Saved(ctx.t("customer.deactivated"), card_buttons(ctx, cid), record_id=cid)

    async def why() -> Invalid:
        current = await ctx.services.customers.get(ctx.user, cid)
        if current is None:
            return Invalid("customer.not_found")
        # The guard is may_switch_active's: it changed back since (e.g. the 台区 reassigned)
        # only in a race, where this one's answer is the fair one.
        return Invalid("customer.switch_not_yours_short", area=current.area_name)

    return Writing(batch, cid, saved, why)


DEACTIVATE = FormSpec(
    name="customer_off",
    title="form.customer_off.title",
    fields=(kinds.text("reason", "field.reason", "form.customer_off.reason"),),
    save=None,
    write=write_deactivation,
    quick={},
)
