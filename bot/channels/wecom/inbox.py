"""Handling recorded callbacks: the inbox table, per person in arrival order.

A callback is recorded (and acknowledged) by the server before anything is done with it;
here it becomes a core event, the core's answer is queued in the outbox and the callback is
marked handled, in one transaction. After a restart, whatever is still 'new' is handled.
Claiming a person's next callback across instances, the sweep for callbacks nobody is
handling and the counting of failures are bot/inbox_drain.py's (as for Telegram's webhook)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.assistant import Assistant
from bot.channels.wecom.api import (
    Media,
    WeComAPIError,
    WeComClient,
    WeComResponseCodeSpent,
    WeComRetryLater,
)
from bot.channels.wecom.messages import (
    ClickEvent,
    EnterAgentEvent,
    FileMessage,
    ImageMessage,
    LocationMessage,
    MediaMessage,
    Message,
    MessageParseError,
    TemplateCardEvent,
    TextMessage,
    parse_message,
)
from bot.channels.wecom.outbox import CHANNEL, Sender
from bot.channels.wecom.render import render
from bot.channels.wecom.store import OutItem, WeComStore
from bot.events import Incoming
from bot.i18n import t
from bot.inbox_drain import Entry, InboxDrain
from bot.services import Services

log = logging.getLogger(__name__)
MENU_KEY_PREFIX = "cmd:"  # app menu click keys: "cmd:log" works like /log
MEDIA_RETRIES = (0.5, 1.0, 2.0)  # seconds between media/get attempts


@dataclass(frozen=True)
class Step:
    """What one callback asks of the core: an event, and the card tap to acknowledge."""

    event: Incoming | None
    tap: TemplateCardEvent | None = None
    note: str | None = None  # a locale key answered directly (no core event)


async def fetch_media(client: WeComClient, media_id: str) -> Media:
    """media/get, tried again a few times while WeCom says later; WeComAPIError if not had."""
    for delay in MEDIA_RETRIES:
        try:
            return await client.get_media(media_id)
        except WeComRetryLater:
            await asyncio.sleep(delay)
    return await client.get_media(media_id)


class InboxWorker:
    def __init__(self, assistant: Assistant, services: Services, client: WeComClient,
                 store: WeComStore, sender: Sender, workers: int = 0) -> None:
        self.assistant = assistant
        self.services = services
        self.client = client
        self.store = store
        self.sender = sender
        self.drain = InboxDrain(store.inbox, self._one, services.clock.now,
                                workers=workers, what="WeCom inbox")
        self.lanes = self.drain.lanes
        self.handled = 0

    def poke(self, external_id: str) -> None:
        self.drain.poke(external_id)

    async def resume(self) -> int:
        """Handle every callback recorded and not being handled (after a start: those
        received before it; on every sweep: another instance's, or a dead one's)."""
        return await self.drain.resume()

    async def _one(self, entry: Entry) -> Entry | None:
        now = self.services.clock.now()
        try:
            msg = parse_message(entry.payload)
        except MessageParseError as exc:  # checked when recorded: only a damaged row
            log.error("WeCom callback %s unreadable: %s", entry.id, exc)
            await self.store.inbox.set_aside(entry.id, now)
            return await self.store.inbox.next_in(entry.person, now)
        step = await self._step(msg)
        items: list[OutItem] = []
        if step.event is not None:
            out = await self.assistant.handle(step.event)
            items = render(out, await self._card_title(entry.person))
        elif step.note is not None:
            locale = await self._locale(entry.person)
            items = [OutItem("text", {"content": t(locale, step.note)})]
        following = await self.store.answered(entry, items, self.services.clock.now())
        self.handled += 1
        if items:
            self.sender.lanes.poke(entry.person)
        if step.tap is not None:
            await self._acknowledge(step.tap)
        return following

    async def _locale(self, external_id: str) -> str:
        user = await self.services.people.by_identity(CHANNEL, external_id)
        return (user.locale if user else None) or self.services.settings.locale

    async def _card_title(self, external_id: str) -> str:
        return t(await self._locale(external_id), "wecom.card_title")

    async def _step(self, msg: Message) -> Step:
        base = {"channel": CHANNEL, "external_id": msg.from_user,
                # WeCom callbacks carry no name: the UserID names a user whose invite
                # did not (the admin sees the same id in the directory).
                "display_name": msg.from_user}
        if isinstance(msg, TextMessage):
            return Step(Incoming(**base, text=msg.content))
        if isinstance(msg, ImageMessage):
            media_row = await self._fetch_image(msg)
            if media_row is None:
                return Step(None, note="wecom.image_failed")
            return Step(Incoming(**base, photo=str(media_row)))
        if isinstance(msg, LocationMessage):
            return Step(Incoming(**base, location=(msg.latitude, msg.longitude)))
        if isinstance(msg, FileMessage):  # fetched only if a reader may want it
            return Step(Incoming(**base, document=msg.media_id, filename=msg.filename or None))
        if isinstance(msg, MediaMessage):
            return Step(Incoming(**base, other=msg.kind))
        if isinstance(msg, EnterAgentEvent):
            # Opening the app is an event on every open: greet (or explain the invite code
            # to a stranger) the first time only.
            if await self.store.first_open(msg.from_user, self.services.clock.now()):
                return Step(Incoming(**base, text="/start"))
            return Step(None)
        if isinstance(msg, ClickEvent):
            if msg.event_key.startswith(MENU_KEY_PREFIX):
                command = msg.event_key.removeprefix(MENU_KEY_PREFIX)
                return Step(Incoming(**base, text=f"/{command}"))
            log.warning("WeCom menu key %r is not ours: push the menu again "
                        "(taiqu-bot wecom menu)", msg.event_key)
            return Step(None)
        if isinstance(msg, TemplateCardEvent):
            return Step(Incoming(**base, callback=msg.event_key), tap=msg)
        return Step(None)  # other events (subscribe, location reports ...): nothing to do

    async def _fetch_image(self, msg: ImageMessage) -> int | None:
        """The picture's bytes, kept in the database (a MediaId dies after 3 days)."""
        try:
            media = await fetch_media(self.client, msg.media_id)
        except WeComAPIError as exc:
            log.warning("WeCom picture from %s not fetched: %s", msg.from_user, exc)
            return None
        return await self.store.keep_media(msg.from_user, media.content,
                                           media.content_type, self.services.clock.now())

    async def _acknowledge(self, tap: TemplateCardEvent) -> None:
        """Show which button was pressed and take the card's buttons away (the event's
        response code works once; a redelivered tap finds it spent, which is fine)."""
        if not tap.response_code:
            return
        try:
            label = await self.store.card_label(tap.task_id, tap.from_user, tap.event_key)
            locale = await self._locale(tap.from_user)
            await self.client.update_template_card(
                [tap.from_user], tap.response_code,
                replace_name=t(locale, "wecom.chosen", label=label or "…"))
        except WeComResponseCodeSpent:
            pass
        # Cosmetic, and the callback is already marked done with the person's next one
        # claimed (store.answered): a failure here must not fail the callback.
        except Exception as exc:
            log.info("WeCom card update for %s failed: %s", tap.from_user, exc)
