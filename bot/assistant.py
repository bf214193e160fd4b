"""The core: turns one incoming event into an outcome. Knows nothing of any platform."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TypeVar

from bot.channel import ChannelCaps, FileSource
from bot.events import (
    GLOBAL_TOKEN,
    Button,
    Incoming,
    Outcome,
    Reply,
    cleaned,
    command_of,
    parse_callback,
)
from bot.forms.engine import FormEngine, is_word
from bot.forms.parking import ACTIVE_EQUIVALENT, Parking
from bot.forms.switching import SWITCH_ACTIONS, Switching
from bot.handlers import menu
from bot.handlers.menu import COMMANDS, menu_buttons
from bot.handlers.start import StartHandler
from bot.i18n import t
from bot.models import User
from bot.router import Router, app_router, stale_reply
from bot.services import Ctx, Services
from bot.shaping import MAX_TYPED_CHOICE, by_label, shape, shaped, typed_choice
from bot.storage.conversations import Draft
from bot.storage.db import Read, is_busy
from bot.storage.people import UserPrefs
from bot.storage.steps import StepRead, read_step
from bot.storage.walsync import NotDurable
from bot.textutil import normalize_input
from bot.uploads import offer_file
from bot.vocab import reads_as_any_request

log = logging.getLogger(__name__)
# identities.last_seen_at is written when a person switches channel, and otherwise at most
# this often: which channel they use is what matters, not a write on every message.
SEEN_EVERY = timedelta(minutes=10)
# People whose latest answer's buttons are kept for a typed label (Assistant._shown): the
# most recent ones; anyone older types text that is read as text, as before.
SHOWN_PEOPLE = 5_000
K = TypeVar("K")


def _ids(arg: str) -> tuple[int, ...] | None:
    """A button's data as the ids it carries (12, 3:7), or None when it is anything else.
    (str.isdigit alone takes other scripts' digits; a regex took ~9 µs a tap.)"""
    parts = arg.split(":")
    if not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
        return None
    return tuple(map(int, parts))


def _unpressed(ev: Incoming, out: Outcome) -> Outcome:
    """`out` for a message typed, not a button pressed: an edit (a page turned by typing
    「下一页」) has no pressed message to replace, so it is a new reply."""
    if ev.callback is None and out.edit is not None:
        out.replies.insert(0, out.edit)
        out.edit = None
    return out


def _lock_in(locks: weakref.WeakValueDictionary[K, asyncio.Lock], key: K) -> asyncio.Lock:
    """The lock for `key`, made on first use; gone once nobody holds or waits for it."""
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    return lock


class Assistant:
    def __init__(self, services: Services, router: Router | None = None) -> None:
        self.services = services
        # The core's own commands (/cancel, /help, /lang) first, then the features'.
        self.router = Router().include_router(menu.router).include_router(router or app_router())
        self.engine = FormEngine(self.router.forms)
        self.parking = Parking(self.engine, self._dispatch)
        self.switching = Switching(self.engine, lambda ctx, target: self._start_form(
            ctx, None, target), self._free_text)
        self.start_handler = StartHandler(services)
        # One lock per chat identity: a user's updates run in arrival order, users in parallel.
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary())
        # And one per person, taken once the identity is known: one person writing on two
        # channels still has their updates handled one at a time (one account, one form).
        self._user_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = (
            weakref.WeakValueDictionary())
        # Steps finished so far, and the count at each person's last: a step read before
        # another of the same person finished reads again (_as_person).
        self._releases = 0
        self._released: dict[int, int] = {}
        self._last_seen: dict[int, tuple[tuple[str, str], datetime]] = {}
        # Who each chat identity was at its last step: whose reads a tapped button declares
        # (_declared_reads). A guess only: a read is served only to the exact SELECT and
        # parameters the handler, knowing who it is, then runs.
        self._was: dict[tuple[str, str], User] = {}
        # The buttons of each person's latest answer, for a label typed with no form open
        # that no feature reads (a preview's 取消, a delete's 确定删除): pressed, as on WeCom
        # and the local chat a person types what he sees. In this process only, like _was:
        # after a restart (or on another instance) such text is not understood, as before.
        # A form keeps what it offers with its draft instead (FormEngine.offer).
        self._shown: OrderedDict[int, list[Button]] = OrderedDict()
        self.caps: dict[str, ChannelCaps] = {}
        self.files: dict[str, FileSource] = {}

    def register_channel(self, name: str, caps: ChannelCaps,
                         files: FileSource | None = None) -> None:
        """From now on, outcomes for `name` come shaped for `caps` (bot.shaping). Channels
        that never register (tests talking to the core directly) get outcomes as built.
        `files`: how files users send on this channel are fetched (Incoming.document)."""
        self.caps[name] = caps
        if files is not None:
            self.files[name] = files

    @contextlib.asynccontextmanager
    async def _as_person(self, ev: Incoming, more: list[Read]) -> AsyncIterator[StepRead]:
        """The step's one read (who, their form, their areas, and `more`: what the button
        tapped reads first), then the person's lock. The read comes first, as it says whose
        identity this is; should another update of the same person (on another channel) have
        run meanwhile, or still run, the read is done again once it is over, so a step never
        works on a form (or a record) older than the last one."""
        mark = self._releases
        step = await self._read(ev, more)
        if step.user_id is None:  # a stranger: nothing to share with another channel yet
            yield step
            return
        user_id = step.user_id
        lock = _lock_in(self._user_locks, user_id)
        overtaken = lock.locked() or self._released.get(user_id, -1) > mark
        async with lock:
            try:
                yield await self._read(ev, more) if overtaken else step
            finally:
                self._releases += 1
                self._released[user_id] = self._releases

    async def _read(self, ev: Incoming, more: list[Read]) -> StepRead:
        return await read_step(self.services.db, self.services.pending, ev.channel,
                               ev.external_id, more)

    def _declared_reads(self, ev: Incoming) -> list[Read]:
        """What the button tapped declared it reads first (Router.button(reads=...)), for the
        person this identity was at its last step (None: not seen since the start), or the
        intents for text typed (Router.intent_reads) and the button its label may press
        (_shown); none for anything else (a form's button but 保存, data that is not ids)."""
        if ev.callback is None and ev.text and not ev.edited:
            return self._text_reads(ev, ev.text) + self._typed_button_reads(ev, ev.text)
        return self._button_reads(ev, ev.callback)

    def _typed_button_reads(self, ev: Incoming, text: str) -> list[Read]:
        """What the button of the latest answer that `text` names declared it reads (a
        label typed costs the round trips a tap does); none for any other text."""
        was = self._was.get((ev.channel, ev.external_id))
        shown = self._shown.get(was.id) if was and len(text) <= MAX_TYPED_CHOICE else None
        b = by_label(text, shown) if shown else None
        return self._button_reads(ev, b.data) if b else []

    def _button_reads(self, ev: Incoming, data: str | None) -> list[Read]:
        parsed = parse_callback(data) if data is not None else None
        if parsed is None or ev.edited:
            return []
        if parsed[0] != GLOBAL_TOKEN:  # a form's 保存: what its write needs (save_reads)
            was = self._was.get((ev.channel, ev.external_id))
            return self.engine.save_reads(was.id, parsed[0]) \
                if was is not None and parsed[1] == "save" else []
        _, action, arg = parsed
        reads = self.router.reads_of_button(action)
        ids = _ids(arg)
        if reads is None or ids is None:
            return []
        was = self._was.get((ev.channel, ev.external_id))
        ctx = Ctx(self.services, was, self.services.clock.now()) if was else None
        return list(reads(ctx, ids))

    def _text_reads(self, ev: Incoming, text: str) -> list[Read]:
        """What the intents declared they read first for this text (Router.intent_reads),
        for the person this identity was at its last step; none for a chat not seen since
        the start. Text that turns out to be a form's answer leaves them unused."""
        if not self.router.text_reads:
            return []
        was = self._was.get((ev.channel, ev.external_id))
        if was is None:
            return []
        return self.router.reads_of_text(Ctx(self.services, was, self.services.clock.now()),
                                         text)

    async def handle(self, ev: Incoming) -> Outcome:
        ev = cleaned(ev)
        caps = self.caps.get(ev.channel)
        with self.services.db.step():
            return await self._handle_in_order(ev, caps)

    async def _handle_in_order(self, ev: Incoming, caps: ChannelCaps | None) -> Outcome:
        key = (ev.channel, ev.external_id)
        async with _lock_in(self._locks, key):
            try:
                more = self._declared_reads(ev)
                async with self._as_person(ev, more) as step:
                    if step.user_id is not None:
                        self._seen(ev, step.user_id, step.seen_at)
                    if step.user is None:
                        self._was.pop(key, None)
                    else:
                        self._was[key] = step.user
                    with self.services.db.prefetched(more, step.more):
                        if caps is None:
                            return _unpressed(ev, await self._handle(ev, step))
                        out = _unpressed(ev, await self._handle(
                            await typed_choice(self.services, ev), step))
                    return await shaped(self.services, ev, out, caps,
                                        lambda: self._text(ev, "button.choose_hint"))
            except Exception as exc:
                log.exception("unhandled error for %s:%s", ev.channel, ev.external_id)
                # Say what happened to this message: it was not applied (no false comfort).
                key = ("error.db_busy" if is_busy(exc) else "error.not_durable"
                       if isinstance(exc, NotDurable) else "error.internal")
                out = Outcome().add(await self._text(ev, key))
                return shape(out, caps)[0] if caps is not None else out

    async def _text(self, ev: Incoming, key: str) -> str:
        """`key` in the sender's language (the default for a stranger)."""
        user = await self.services.people.by_identity(ev.channel, ev.external_id)
        return t((user.locale if user else None) or self.services.settings.locale, key)

    def _seen(self, ev: Incoming, user_id: int, seen_at: datetime | None) -> None:
        """`seen_at`: when this identity was last used, if it is the one pushes go to (the
        step's read): the first step after a restart writes only if the file says it is due."""
        key, now = (ev.channel, ev.external_id), self.services.clock.now()
        last = self._last_seen.get(user_id)
        if last is None and seen_at is not None:
            last = self._last_seen[user_id] = (key, seen_at)
        if last is None or last[0] != key or now - last[1] >= SEEN_EVERY:
            self.services.people.seen(ev.channel, ev.external_id, now)
            self._last_seen[user_id] = (key, now)

    async def user_for(self, ev: Incoming) -> User | None:
        return await self.services.people.by_identity(ev.channel, ev.external_id)

    # --- routing ---------------------------------------------------------------------
    async def _handle(self, ev: Incoming, step: StepRead) -> Outcome:
        text = ev.text if ev.text is not None and not ev.edited else None
        command, arg = command_of(text) if text else (None, "")
        if command == "start":
            return await self.start_handler.handle(ev, arg, step)
        user = step.user
        if user is None:
            return await self.start_handler.stranger(ev)
        ctx = Ctx(self.services, user, self.services.clock.now(), step.areas, step.team_areas,
                  step.loose_media, step.calendar_version, last_search=step.last_search,
                  _team_managers=step.team_managers)
        await self._reachable_again(user)
        draft = self.services.conversations.current(user.id, step.draft)
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
        self._keep_shown(user.id, out)
        return out

    def _keep_shown(self, user_id: int, out: Outcome) -> None:
        """`out`'s buttons as the ones on screen for `user_id` (an answer without any leaves
        those before it: a card stays tappable under a line said after it)."""
        shown = [b for r in ([out.edit] if out.edit else []) + out.replies
                 for row in r.buttons for b in row]
        if shown:
            self._shown[user_id] = shown
            self._shown.move_to_end(user_id)
            if len(self._shown) > SHOWN_PEOPLE:
                self._shown.popitem(last=False)

    async def _dispatch(self, ctx: Ctx, ev: Incoming, draft: Draft | None) -> Outcome:
        """Route a message held while its form was parked, once the user has chosen."""
        command, arg = command_of(ev.text) if ev.text else (None, "")
        return await self._route(ctx, ev, draft, command, arg)

    async def _route(self, ctx: Ctx, ev: Incoming, draft: Draft | None, command: str | None,
                     arg: str) -> Outcome:
        if ev.edited:  # an edit is not an answer: say so and how to change one instead
            return await self._not_an_answer(ctx, draft, ctx.t("media.edit_in_form"),
                                             ctx.t("media.edit_no_form"))
        if ev.callback is not None:
            return await self._button(ctx, draft, ev.callback)
        if command is not None:
            return await self._command(ctx, draft, command, arg)
        if ev.document is not None:
            return await self._file(ctx, ev, draft)
        if ev.photo is not None or ev.location is not None:
            return await self._media(ctx, ev, draft)
        if ev.text is None:
            note = ctx.t("media.unsupported")
            return await self._not_an_answer(ctx, draft, note, note)
        text = ev.text
        limit = self.services.settings.max_text_length
        if len(text) > limit:
            note = ctx.t("form.too_long", length=len(text), limit=limit)
            return await self._not_an_answer(ctx, draft, "⚠️ " + note, note, menu=False)
        if not text.strip():
            note = ctx.t("form.empty_text")
            return await self._not_an_answer(ctx, draft, "⚠️ " + note, note)
        if draft is not None:
            # A button the form offered besides its keyboard (a refusal's, a page's ▶️),
            # its label typed: pressed, as on a channel that shows it as text (WeCom, the
            # local chat) the person types what it says.
            if (data := self.engine.offered_button(draft, text)) is not None:
                return await self._button(ctx, draft, data)
            if await self._is_new_request(ctx, text):
                return await self.switching.ask(ctx, draft, held=text)
            return await self.engine.on_text(ctx, draft, text)
        return await self._free_text(ctx, text)

    async def _not_an_answer(self, ctx: Ctx, draft: Draft | None, in_form: str, no_form: str,
                             menu: bool = True) -> Outcome:
        """A message that answers nothing: said above the open form's question, else alone
        (with the menu)."""
        if draft is not None:
            return await self.engine.reprompt(ctx, draft, in_form)
        return Outcome().add(no_form, menu_buttons(ctx.locale) if menu else None)

    async def _media(self, ctx: Ctx, ev: Incoming, draft: Draft | None) -> Outcome:
        """A photo or location: the open form's, else the feature that keeps loose ones'."""
        photo = f"{ev.channel}:{ev.photo}" if ev.photo is not None else None
        if draft is not None:
            if photo is not None:
                return await self.engine.on_photo(ctx, draft, photo, caption=ev.text)
            assert ev.location is not None
            return await self.engine.on_location(ctx, draft, ev.location)
        if self.router.loose_media is not None:
            return await self.router.loose_media(ctx, photo, ev.text, ev.location)
        return Outcome().add(ctx.t("media.not_kept"), menu_buttons(ctx.locale))

    async def _file(self, ctx: Ctx, ev: Incoming, draft: Draft | None) -> Outcome:
        """A file: the first feature reader that recognises it takes it; an open form is
        asked again after the answer (a file never answers a form step)."""
        readers = self.router.file_readers
        if not readers:
            note = ctx.t("media.unsupported")
            return await self._not_an_answer(ctx, draft, note, note)
        got = await offer_file(ctx, ev, readers, self.files.get(ev.channel))
        if isinstance(got, str):
            return await self._not_an_answer(ctx, draft, got, got)
        return await self.with_form_reminder(ctx, draft, got)

    async def _is_new_request(self, ctx: Ctx, text: str) -> bool:
        """Typed text inside a form that as a whole is a request the free-text readers know
        (登记投诉, 记录巡视 5号台区, 查客户 李四, 我的待办), not prose that contains one's words."""
        if reads_as_any_request(self.router.request_patterns, text):
            return True
        for reads in self.router.request_readers:
            if await reads(ctx, text):
                return True
        return False

    async def _free_text(self, ctx: Ctx, text: str) -> Outcome:
        for intent_fn in self.router.intents:  # in the composition root's order
            found = await intent_fn(self, ctx, text)
            if found is not None:
                return found
        shown = self._shown.get(ctx.user.id) if len(text) <= MAX_TYPED_CHOICE else None
        if shown and (b := by_label(text, shown)) is not None:  # read by no feature
            return await self._button(ctx, None, b.data)
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
        return await self.engine.with_reminder(ctx, draft, out)

    async def _start_form(self, ctx: Ctx, draft: Draft | None, target: str) -> Outcome:
        """Open a form unless another is open. `target`: a form name, or a feature's opener
        prefix with a record id (e12: edit log entry 12)."""
        if draft is not None:
            return await self.switching.ask(ctx, draft, target=target)
        if target in self.engine.forms:
            return await self.engine.start(ctx, target)
        m = re.fullmatch(r"([a-z]+)(\d+)", target)
        if m is None:
            return await self.engine.start(ctx, self.router.default_form)
        opener = self.router.openers.get(m.group(1))
        if opener is None:
            return stale_reply(ctx)
        return await opener(self, ctx, int(m.group(2)))

    async def _command(self, ctx: Ctx, draft: Draft | None, command: str, arg: str) -> Outcome:
        if command in self.router.commands:
            return await self.router.commands[command](self, ctx, draft, arg)
        out = Outcome().add(ctx.t("menu.unknown_command", command=command,
                                  commands=menu.command_lines(ctx)))
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
            return stale_reply(ctx)
        token, action, arg = parsed
        if token == GLOBAL_TOKEN:
            return await self._global_button(ctx, draft, action, arg)
        if draft is None or token != draft.token:
            # 保存 of the summary, or of the park question (parking.SAVE), pressed again
            saves = action == "save" or ACTIVE_EQUIVALENT.get(action) == "save"
            out = await self.engine.already_saved(ctx, token) if saves else None
            out = out or stale_reply(ctx)
            if draft is not None:
                out.replies += (await self.engine.reprompt(ctx, draft)).replies
            else:
                out.replies[0].buttons = menu_buttons(ctx.locale)
            return out
        if action in ACTIVE_EQUIVALENT:  # an old park question's button, form open again
            action = ACTIVE_EQUIVALENT[action]
        if action in SWITCH_ACTIONS:
            return await self.switching.answer(ctx, draft, action, arg)
        return await self.engine.on_action(ctx, draft, action, arg)

    async def _global_button(self, ctx: Ctx, draft: Draft | None, action: str,
                             arg: str) -> Outcome:
        if action == "cmd" and (arg in COMMANDS or arg in self.router.commands):
            return await self._command(ctx, draft, arg, "")
        handler = self.router.button_handler(action)
        if handler is None:
            return stale_reply(ctx)
        return await handler(self, ctx, draft, arg)

