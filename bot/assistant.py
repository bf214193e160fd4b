"""The core: turns one incoming event into an outcome. Knows nothing of any platform."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import weakref
from datetime import datetime, timedelta
from typing import Any

import bot.records  # noqa: F401  (registers the record modules)
from bot import validators
from bot.channel import ChannelCaps
from bot.conversations.customer import CUSTOMER, DEACTIVATE, switch_refusal
from bot.conversations.customer import open_edit as open_customer_edit
from bot.conversations.customer import prefill as customer_prefill
from bot.conversations.engine import FormEngine, is_word
from bot.conversations.parking import ACTIVE_EQUIVALENT, Parking
from bot.conversations.worklog import WORKLOG, visit_of
from bot.conversations.worklog import offer as worklog_offer
from bot.conversations.worklog import prefill as worklog_prefill
from bot.conversations.worklog import values_of as worklog_values_of
from bot.events import GLOBAL_TOKEN, Button, Incoming, Outcome, Reply, callback, parse_callback
from bot.handlers import customers as customers_handler
from bot.handlers import logs as logs_handler
from bot.handlers.intents import (
    SMALL_TALK,
    is_log_request,
    reads_as_request,
    simple_intent,
    worklog_intent,
)
from bot.handlers.menu import (
    COMMANDS,
    command_lines,
    greeting,
    help_text,
    menu_buttons,
    role_buttons,
    set_language,
)
from bot.handlers.start import StartHandler
from bot.i18n import t
from bot.models import User
from bot.registry import REGISTRY
from bot.services import Ctx, Services
from bot.shaping import needs_numbering, resolve_choice, shape
from bot.storage.conversations import Draft
from bot.storage.db import is_busy
from bot.storage.loose_media import LooseMedia
from bot.storage.people import UserPrefs
from bot.textutil import clean_text, normalize_input

log = logging.getLogger(__name__)
FORM_COMMANDS = {"log": WORKLOG.name, "customer": CUSTOMER.name}
# identities.last_seen_at is written when a person switches channel, and otherwise at most
# this often: which channel they use is what matters, not a write on every message.
SEEN_EVERY = timedelta(minutes=10)
MAX_TYPED_CHOICE = 100  # characters: longer text is an answer, never a choice's label
# Meta of an open form while the "new request?" question is on screen: the request typed.
HELD_REQUEST = "held_request"
QUOTE_WIDTH = 20  # characters of a held request quoted back in the question


def cleaned(ev: Incoming) -> Incoming:
    """Typed text and profile names without control or bidi characters, whatever the
    channel: everything stored, shown in a report or put in a file name comes from here.
    Line breaks stay in typed text (log content); a display name is one line."""
    text = clean_text(ev.text) if ev.text else ev.text
    name = " ".join(clean_text(ev.display_name, multiline=False).split())
    if text == ev.text and name == ev.display_name:
        return ev
    return dataclasses.replace(ev, text=text, display_name=name)


class Assistant:
    def __init__(self, services: Services) -> None:
        self.services = services
        forms = {f.name: f for f in (WORKLOG, CUSTOMER, DEACTIVATE)}
        self.engine = FormEngine({**forms, **REGISTRY.forms})
        self.parking = Parking(self.engine, self._dispatch)
        self.start_handler = StartHandler(services)
        # One lock per chat identity: a user's updates run in arrival order, users in parallel.
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary())
        # And one per person, taken once the identity is known: one person writing on two
        # channels still has their updates handled one at a time (one account, one form).
        self._user_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary())
        self._last_seen: dict[int, tuple[tuple[str, str], datetime]] = {}
        self.caps: dict[str, ChannelCaps] = {}

    def register_channel(self, name: str, caps: ChannelCaps) -> None:
        """From now on, outcomes for `name` come shaped for `caps` (bot.shaping). Channels
        that never register (tests talking to the core directly) get outcomes as built."""
        self.caps[name] = caps

    def _lock(self, channel: str, external_id: str) -> asyncio.Lock:
        key = (channel, external_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    def _user_lock(self, user_id: int | None) -> contextlib.AbstractAsyncContextManager[Any]:
        if user_id is None:  # a stranger: nothing to share with another channel yet
            return contextlib.nullcontext()
        lock = self._user_locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._user_locks[user_id] = lock
        return lock

    async def handle(self, ev: Incoming) -> Outcome:
        ev = cleaned(ev)
        caps = self.caps.get(ev.channel)
        async with self._lock(ev.channel, ev.external_id):
            try:
                user_id = await self.services.people.user_id_for(ev.channel, ev.external_id)
                async with self._user_lock(user_id):
                    if user_id is not None:
                        await self._seen(ev, user_id)
                    if caps is None:
                        return await self._handle(ev)
                    out = await self._handle(await self._typed_choice(ev))
                    return await self._shaped(ev, out, caps)
            except Exception as exc:
                log.exception("unhandled error for %s:%s", ev.channel, ev.external_id)
                # Say what happened to this message: it was not applied (no false comfort).
                key = "error.db_busy" if is_busy(exc) else "error.internal"
                out = Outcome().add(t(await self._locale(ev), key))
                return shape(out, caps)[0] if caps is not None else out

    async def _locale(self, ev: Incoming) -> str:
        user = await self.services.people.by_identity(ev.channel, ev.external_id)
        return (user.locale if user else None) or self.services.settings.locale

    async def _seen(self, ev: Incoming, user_id: int) -> None:
        key, now = (ev.channel, ev.external_id), self.services.clock.now()
        last = self._last_seen.get(user_id)
        if last is None or last[0] != key or now - last[1] >= SEEN_EVERY:
            self.services.people.seen(ev.channel, ev.external_id, now)
            self._last_seen[user_id] = (key, now)

    async def _typed_choice(self, ev: Incoming) -> Incoming:
        """A typed `7` or label answering numbered choices becomes that button's press, as if
        the channel had shown buttons. Commands stay commands."""
        text = ev.text
        if (text is None or ev.callback is not None or ev.photo is not None
                or len(text) > MAX_TYPED_CHOICE or text.lstrip().startswith("/")):
            return ev
        pending = await self.services.pending.get(ev.channel, ev.external_id)
        data = resolve_choice(text, pending) if pending else None
        return dataclasses.replace(ev, text=None, callback=data) if data else ev

    async def _shaped(self, ev: Incoming, out: Outcome, caps: ChannelCaps) -> Outcome:
        hint = t(await self._locale(ev), "button.choose_hint") if needs_numbering(out, caps) \
            else ""
        shaped, pending = shape(out, caps, choose_hint=hint)
        # Replaced by every reply: a number typed later refers to what is on screen now.
        await self.services.pending.replace(ev.channel, ev.external_id, pending,
                                            self.services.clock.now())
        return shaped

    async def user_for(self, ev: Incoming) -> User | None:
        return await self.services.people.by_identity(ev.channel, ev.external_id)

    # --- routing ---------------------------------------------------------------------
    async def _handle(self, ev: Incoming) -> Outcome:
        text = ev.text if ev.text is not None and not ev.edited else None
        command, arg = _command(text) if text else (None, "")
        if command == "start":
            return await self.start_handler.handle(ev, arg)
        user = await self.user_for(ev)
        if user is None:
            return await self.start_handler.stranger(ev)
        ctx = Ctx(self.services, user, self.services.clock.now())
        await self._reachable_again(user)
        draft = await self.services.conversations.get(user.id)
        prefix: list[Reply] = []
        if draft is not None and self.engine.is_gone(ctx, draft):
            prefix.append(Reply(ctx.t("form.park.gone", form=await self.engine.describe(ctx, draft),
                                      hours=self.services.settings.form_park_hours)))
            await self.services.conversations.delete(user.id)
            draft = None
        elif draft is not None and self.engine.is_expired(ctx, draft):
            return await self.parking.handle(ctx, ev, draft, command)
        out = await self._route(ctx, ev, draft, command, arg)
        out.replies[:0] = prefix
        return out

    async def _dispatch(self, ctx: Ctx, ev: Incoming, draft: Draft | None) -> Outcome:
        """Route a message held while its form was parked, once the user has chosen."""
        command, arg = _command(ev.text) if ev.text else (None, "")
        return await self._route(ctx, ev, draft, command, arg)

    async def _route(self, ctx: Ctx, ev: Incoming, draft: Draft | None, command: str | None,
                     arg: str) -> Outcome:
        if ev.edited:  # an edit is not an answer: say so and how to change one instead
            if draft is not None:
                return await self.engine.reprompt(ctx, draft, ctx.t("media.edit_in_form"))
            return Outcome().add(ctx.t("media.edit_no_form"), menu_buttons(ctx.locale))
        if ev.callback is not None:
            return await self._button(ctx, draft, ev.callback)
        if command is not None:
            return await self._command(ctx, draft, command, arg)
        if ev.photo is not None:
            if draft is not None:
                return await self.engine.on_photo(ctx, draft, f"{ev.channel}:{ev.photo}",
                                                  caption=ev.text)
            return await self._keep_loose(ctx, photo=f"{ev.channel}:{ev.photo}",
                                          caption=ev.text)
        if ev.location is not None:
            if draft is not None:
                return await self.engine.on_location(ctx, draft, ev.location)
            return await self._keep_loose(ctx, point=ev.location)
        if ev.text is None:
            if draft is not None:
                return await self.engine.reprompt(ctx, draft, ctx.t("media.unsupported"))
            return Outcome().add(ctx.t("media.unsupported"), menu_buttons(ctx.locale))
        text = ev.text
        limit = self.services.settings.max_text_length
        if len(text) > limit:
            note = ctx.t("form.too_long", length=len(text), limit=limit)
            if draft is not None:
                return await self.engine.reprompt(ctx, draft, "⚠️ " + note)
            return Outcome().add(note)
        if not text.strip():
            if draft is not None:
                return await self.engine.reprompt(ctx, draft, "⚠️ " + ctx.t("form.empty_text"))
            return Outcome().add(ctx.t("form.empty_text"), menu_buttons(ctx.locale))
        if draft is not None:
            if await self._is_new_request(ctx, text):
                return await self._switch_question(ctx, draft, held=text)
            return await self.engine.on_text(ctx, draft, text)
        return await self._free_text(ctx, text)

    async def _is_new_request(self, ctx: Ctx, text: str) -> bool:
        """Typed text inside a form that as a whole is a request the free-text readers know
        (登记投诉, 记录巡视 5号台区, 查客户 李四, 我的待办), not prose that contains one's words."""
        if simple_intent(text) == "logs":
            return True
        patterns = (*REGISTRY.request_patterns, *customers_handler.REQUEST_PATTERNS)
        if any(reads_as_request(p, text) for p in patterns):
            return True
        team_areas = [a.name for a in await self.services.people.team_areas(ctx.user.team_id)]
        return is_log_request(worklog_intent(text, ctx.local_now, team_areas))

    async def _keep_loose(self, ctx: Ctx, photo: str | None = None, caption: str | None = None,
                          point: tuple[float, float] | None = None) -> Outcome:
        """A photo or location with no form open: kept for the next work log a few minutes,
        not thrown away (the worklog form attaches it when it opens)."""
        minutes = self.services.settings.loose_media_minutes
        loose, window = LooseMedia(self.services.db), timedelta(minutes=minutes)
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

    async def _free_text(self, ctx: Ctx, text: str) -> Outcome:
        simple = simple_intent(text)
        if simple == "logs":
            return await logs_handler.list_logs(ctx)
        if simple == "help":
            return Outcome().add(await help_text(ctx), role_buttons(ctx.locale, ctx.user.role))
        if simple == "greet":
            return await greeting(ctx)
        if simple in SMALL_TALK:
            return Outcome().add(ctx.t(f"menu.small_talk.{simple}", name=ctx.user.name),
                                 menu_buttons(ctx.locale))
        for intent_fn in REGISTRY.intents:
            found = await intent_fn(self, ctx, text)
            if found is not None:
                return found
        team_areas = [a.name for a in await self.services.people.team_areas(ctx.user.team_id)]
        rest = customers_handler.register_text(text)  # before search: 特殊客户登记 is not a search
        if rest is not None:
            values, notices = await customer_prefill(ctx, rest, team_areas)
            return await self.engine.start(ctx, CUSTOMER.name, values, notices)
        query = customers_handler.search_text(text)
        if query is not None:
            return await customers_handler.search(ctx, query)
        intent = worklog_intent(text, ctx.local_now, team_areas)
        if intent is not None:
            values, notices = await worklog_prefill(ctx, intent)
            return await self.engine.start(ctx, WORKLOG.name, values, notices,
                                           offer=worklog_offer(intent))
        if is_word(text, "cancel"):
            return Outcome().add(ctx.t("form.nothing_to_cancel"), menu_buttons(ctx.locale))
        return Outcome().add(ctx.t("menu.not_understood", text=normalize_input(text)[:50]),
                             menu_buttons(ctx.locale))

    async def open_form(self, ctx: Ctx, draft: Draft | None, target: str) -> Outcome:
        """For record modules: open `target` (a form name, or an opener prefix + record id),
        asking first if another form is open."""
        return await self._start_form(ctx, draft, target)

    async def with_form_reminder(self, ctx: Ctx, draft: Draft | None, out: Outcome) -> Outcome:
        """Append the open form's question after a side answer, so the form is not lost."""
        if draft is not None:
            out.replies += (await self.engine.reprompt(ctx, draft, ctx.t("help.in_form"))).replies
        return out

    async def _start_form(self, ctx: Ctx, draft: Draft | None, target: str) -> Outcome:
        """Open a form unless another is open. `target`: a form name, or an opener with a
        record id: e<id> edit a log entry, ce<id> edit / cv<id> visit / co<id> deactivate a
        special customer."""
        if draft is not None:
            return await self._switch_question(ctx, draft, target=target)
        if target in self.engine.forms:
            return await self.engine.start(ctx, target)
        m = re.fullmatch(r"([a-z]+)(\d+)", target)
        if m is None:
            return await self.engine.start(ctx, WORKLOG.name)
        kind, record_id = m.group(1), int(m.group(2))
        if kind in REGISTRY.openers:
            return await REGISTRY.openers[kind](self, ctx, record_id)
        if kind not in ("e", "ce", "cv", "co"):
            return Outcome(toast=ctx.t("button.stale")).add(ctx.t("button.stale_long"))
        if kind == "e":
            entry = await self.services.worklogs.get_for(ctx.user, record_id)
            if entry is None:
                return Outcome().add(ctx.t("logs.not_found"))
            return await self.engine.start(
                ctx, WORKLOG.name, worklog_values_of(entry), meta={"edit_id": entry.id},
                heading=ctx.t("form.worklog.editing", id=entry.id), at_summary=True)
        customer = await self.services.customers.get(ctx.user, record_id)
        if customer is None or (kind != "ce" and not customer.active):
            return Outcome().add(ctx.t("customer.not_found"))
        if not customer.active:  # a forged or old 修改 button: read-only until reactivated
            return Outcome(toast=ctx.t("button.stale")).add(
                ctx.t("customer.readonly"), [[Button(ctx.t("btn.customer_card"),
                                                     callback(GLOBAL_TOKEN, "cust", customer.id))]])
        if kind == "ce":
            return await open_customer_edit(self.engine, ctx, customer)
        if kind == "co":
            refusal = await switch_refusal(ctx, customer)
            if refusal is not None:
                return refusal
            return await self.engine.start(
                ctx, DEACTIVATE.name, meta={"customer_id": customer.id},
                heading=ctx.t("customer.deactivating", name=customer.name,
                              account=customer.account_no))
        values, heading = visit_of(ctx, customer, {str(a.id) for a in await ctx.areas()})
        return await self.engine.start(ctx, WORKLOG.name, values,
                                       meta={"customer_id": customer.id}, heading=heading)

    async def _switch_question(self, ctx: Ctx, draft: Draft, target: str = "",
                               held: str | None = None) -> Outcome:
        """Something new asked while a form is open: continue it, set it aside for the new
        thing, or discard it. `target` is a form to open (see _start_form); `held` a typed
        request, kept in the form until answered (too long for button data)."""
        form = await self.engine.describe(ctx, draft)
        if held is None:
            text = ctx.t("form.conflict", form=form)
        else:
            draft.state.meta[HELD_REQUEST] = held
            await self.engine.touch(ctx, draft)
            quote = held if len(held) <= QUOTE_WIDTH else held[:QUOTE_WIDTH - 1] + "…"
            text = ctx.t("form.switch", form=form, text=quote)
        tok = draft.token
        drop = "btn.discard_new" if held is None else "btn.park_drop"
        return Outcome().add(text, [[
            Button(ctx.t("btn.resume"), callback(tok, "resume")),
            Button(ctx.t("btn.park_new"), callback(tok, "park_new", target)),
            Button(ctx.t(drop), callback(tok, "discard_new", target))]])

    async def _switch(self, ctx: Ctx, draft: Draft, action: str, target: str) -> Outcome:
        """The question answered: do the new thing, the open form set aside or discarded."""
        held = draft.state.meta.pop(HELD_REQUEST, None)
        if not target and held is None:  # an old question, answered already
            return await self.engine.reprompt(ctx, draft)
        if action == "discard_new":
            await self.services.conversations.delete(ctx.user.id)
            out = await self._new_request(ctx, target, held)
            out.replies.insert(0, Reply(ctx.t("form.discarded")))
            return out
        await self.engine.touch(ctx, draft)
        out = await self._new_request(ctx, target, held)
        new = await self.services.conversations.get(ctx.user.id)
        if new is None or new.token == draft.token:  # a list or a search: the form just waits
            return await self.with_form_reminder(ctx, draft, out)
        self.engine.set_aside(new, draft)
        await self.services.conversations.put(new)
        out.replies.insert(0, Reply(ctx.t("form.set_aside", form=await self.engine.describe(
            ctx, draft))))
        return out

    async def _new_request(self, ctx: Ctx, target: str, held: str | None) -> Outcome:
        if target:
            return await self._start_form(ctx, None, target)
        assert held is not None
        return await self._free_text(ctx, held)

    async def _command(self, ctx: Ctx, draft: Draft | None, command: str, arg: str) -> Outcome:
        if command == "cancel":
            if draft is None:
                return Outcome().add(ctx.t("form.nothing_to_cancel"), menu_buttons(ctx.locale))
            return await self.engine.confirm_cancel(ctx, draft)
        if command == "help":
            body = await help_text(ctx)
            if draft is not None:  # help never costs the form: answer, then ask again
                out = await self.engine.reprompt(ctx, draft, ctx.t("help.in_form"))
                out.replies.insert(0, Reply(body))
                return out
            return Outcome().add(body, role_buttons(ctx.locale, ctx.user.role))
        if command in ("log", "customer"):
            return await self._start_form(ctx, draft, FORM_COMMANDS[command])
        if command == "lang":
            out = await set_language(ctx, arg)
            if draft is not None and out.commands_changed:
                fresh = await self.user_for_id(ctx.user.id)
                out.replies += (await self.engine.reprompt(Ctx(self.services, fresh, ctx.now),
                                                           draft)).replies
            return out
        if command in REGISTRY.commands:
            return await REGISTRY.commands[command](self, ctx, draft, arg)
        if command == "logs":
            out = await logs_handler.list_logs(ctx)
        elif command == "customers":
            out = await customers_handler.search(ctx, arg)
        else:
            out = Outcome().add(ctx.t("menu.unknown_command", command=command,
                                      commands=command_lines(ctx)))
        return await self.with_form_reminder(ctx, draft, out)

    async def _reachable_again(self, user: User) -> None:
        """A user who writes to us can receive pushes again (they unblocked the bot)."""
        if user.unreachable:
            await UserPrefs(self.services.db).set_unreachable(user.id, None)

    async def user_for_id(self, user_id: int) -> User:
        user = await self.services.people.user(user_id)
        assert user is not None
        return user

    async def _button(self, ctx: Ctx, draft: Draft | None, data: str) -> Outcome:
        parsed = parse_callback(data)
        if parsed is None:
            return Outcome(toast=ctx.t("button.stale")).add(ctx.t("button.stale_long"))
        token, action, arg = parsed
        if token == GLOBAL_TOKEN:
            return await self._global_button(ctx, draft, action, arg)
        if draft is None or token != draft.token:
            # 保存 of the summary, or of the park question (parking.SAVE), pressed again
            saves = action == "save" or ACTIVE_EQUIVALENT.get(action) == "save"
            out = await self._already_saved(ctx, token) if saves else None
            out = out or Outcome(toast=ctx.t("button.stale")).add(ctx.t("button.stale_long"))
            if draft is not None:
                out.replies += (await self.engine.reprompt(ctx, draft)).replies
            else:
                out.replies[0].buttons = menu_buttons(ctx.locale)
            return out
        if action in ACTIVE_EQUIVALENT:  # an old park question's button, form open again
            action = ACTIVE_EQUIVALENT[action]
        if action in ("discard_new", "park_new"):
            return await self._switch(ctx, draft, action, arg)
        return await self.engine.on_action(ctx, draft, action, arg)

    async def _already_saved(self, ctx: Ctx, token: str) -> Outcome | None:
        """保存 pressed again on a form saved earlier (its confirmation may have been lost on
        the network): say what it saved, not that the button is stale."""
        memory = timedelta(hours=self.services.settings.saved_form_memory_hours)
        done = await self.services.conversations.finished(ctx.user.id, token, ctx.now - memory)
        if done is None or done.form not in self.engine.forms:
            return None
        form = ctx.t(self.engine.forms[done.form].title)
        if done.record_id is None:
            return Outcome(toast=ctx.t("form.saved_toast")).add(
                ctx.t("form.already_saved_noid", form=form))
        return Outcome(toast=ctx.t("form.already_saved", id=done.record_id)).add(
            ctx.t("form.already_saved_long", form=form, id=done.record_id))

    async def _global_button(self, ctx: Ctx, draft: Draft | None, action: str,
                             arg: str) -> Outcome:
        if action == "cmd" and (arg in COMMANDS or arg in REGISTRY.commands):
            return await self._command(ctx, draft, arg, "")
        if action in REGISTRY.buttons:
            return await REGISTRY.buttons[action](self, ctx, draft, arg)
        if action == "logs" and arg.isdigit():
            return await logs_handler.list_logs(ctx, int(arg))
        if action == "log" and arg.isdigit():
            return await logs_handler.show_log(ctx, int(arg))
        if action == "logedit" and arg.isdigit():
            return await self._start_form(ctx, draft, f"e{arg}")
        if not arg.isdigit():
            return Outcome(toast=ctx.t("button.stale")).add(ctx.t("button.stale_long"))
        record = int(arg)
        if action == "cust":
            return await customers_handler.card(ctx, record)
        if action == "custp":
            return await customers_handler.page(ctx, record)
        if action in ("reveal", "revealE"):
            return await customers_handler.reveal(
                ctx, record, "emergency" if action == "revealE" else "phone")
        if action == "custlog":
            return await customers_handler.history(ctx, record)
        if action == "custon":
            return await customers_handler.reactivate(ctx, record)
        openers = {"custedit": "ce", "custvisit": "cv", "custoff": "co"}
        if action in openers:
            return await self._start_form(ctx, draft, f"{openers[action]}{record}")
        return Outcome(toast=ctx.t("button.stale")).add(ctx.t("button.stale_long"))


def _command(text: str) -> tuple[str | None, str]:
    """'/start@taiqu_bot CODE' -> ('start', 'CODE'); plain text -> (None, '')."""
    clean = text.strip()
    if not clean.startswith("/") or len(clean) < 2:
        return None, ""
    head, _, rest = clean[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name or not name.replace("_", "").isalnum():
        return None, ""
    return name, rest.strip()
