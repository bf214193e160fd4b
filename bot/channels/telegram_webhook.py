"""Telegram by webhook, for several identical instances behind a load balancer (issue #11).

Telegram POSTs each update to TAIQU_TELEGRAM_WEBHOOK_URL with the secret token in a header.
Any instance may receive any update: it checks the secret, records the update in the
`telegram_inbox` table (unique on update_id) and only then answers 200. Handling happens
after, one person's updates in arrival order: a crash after the 200 loses nothing (the next
start handles what is still 'new') and a redelivered update is recorded once, handled once.
Several instances share the inbox: whoever handles a person's earliest update holds a claim
on it (a lease), so one person's updates are handled one at a time, in order, whichever
instance received them; a dead instance's claims expire and another takes over. As with the
reminders, the one update in flight when a process dies may be answered twice. The claim, the
sweep and the failure counting are bot/inbox_drain.py's, shared with WeCom's callbacks.

PTB has its own webhook server (Updater.start_webhook), but it answers 200 before anything is
stored and keeps updates in memory only, so this small aiohttp endpoint does the recording."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.inbox_drain import CLAIM_LEASE, Entry, InboxDrain, InboxTable, LeasedInbox
from bot.storage.db import Backend

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024  # an update is a few KB; a photo is a file_id, not the bytes
# The kinds of update the bot reads (also what `telegram set-webhook` asks Telegram for).
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


def webhook_path(url: str) -> str:
    """The path Telegram POSTs to: the URL's own path (a proxy may strip a prefix)."""
    return urlsplit(url).path or "/"


def sender(update: dict[str, Any]) -> str:
    """Whose update it is: the person's Telegram id, '' for updates with no person."""
    for kind in ALLOWED_UPDATES:
        part = update.get(kind)
        if isinstance(part, dict) and isinstance(part.get("from"), dict):
            return str(part["from"].get("id", ""))
    return ""


TELEGRAM_INBOX = InboxTable("telegram_inbox", key="update_id", person="person",
                            payload="payload")


class TelegramInbox(LeasedInbox):
    """The telegram_inbox table: recorded once per update_id, handled per person in order."""

    def __init__(self, db: Backend, owner: str | None = None,
                 lease: timedelta = CLAIM_LEASE) -> None:
        super().__init__(db, TELEGRAM_INBOX, owner, lease)


Handle = Callable[[dict[str, Any]], Awaitable[None]]
DeadLetter = Callable[[int, dict[str, Any], Exception], Awaitable[None]]


class WebhookEndpoint:
    """The HTTP side: secret checked, update recorded, 200; then handled per person
    (bot/inbox_drain.py, as WeCom's callbacks are)."""

    KEEP = timedelta(days=2)  # Telegram gives up redelivering after 24 hours

    def __init__(self, inbox: TelegramInbox, secret: str, path: str, handle: Handle,
                 dead_letter: DeadLetter, clock: Callable[[], datetime],
                 workers: int = 32) -> None:
        self.inbox = inbox
        self.secret = secret
        self.path = path
        self.handle = handle
        self.dead_letter = dead_letter
        self.clock = clock
        self.drain = InboxDrain(inbox, self._handle_entry, clock, self._set_aside, workers,
                                what="Telegram inbox")
        self._runner: web.AppRunner | None = None

    @property
    def serving(self) -> bool:
        return self._runner is not None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(self.path, self._receive)
        return app

    async def start(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, int(port)).start()
        await self.inbox.forget_before(self.clock() - self.KEEP)
        await self.resume()
        self.drain.start_sweeping()

    async def resume(self) -> int:
        """Handle every update recorded but not handled by anyone (after a start, and on
        every sweep: another instance's, or a dead instance's expired claims)."""
        return await self.drain.resume()

    async def stop(self) -> None:
        await self.drain.stop_sweeping()
        if self._runner is not None:  # no new updates; those recorded wait for a start
            await self._runner.cleanup()
            self._runner = None
        await self.drain.lanes.idle()
        await self.inbox.release()

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("webhook request without the right secret token from %s",
                        request.remote)
            return web.Response(status=403)
        body = await request.read()
        try:
            update = json.loads(body)
            update_id = int(update["update_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("webhook body is not an update (%d bytes)", len(body))
            return web.Response(status=400)
        person = sender(update)
        if await self.inbox.record(update_id, person, body.decode("utf-8", "replace"),
                                   self.clock()):
            self.drain.poke(person)
        return web.Response(status=200)

    async def _handle_entry(self, entry: Entry) -> Entry | None:
        await self.handle(json.loads(entry.payload))
        return await self.inbox.finish(entry, self.clock())

    async def _set_aside(self, entry: Entry, exc: Exception) -> None:
        await self.dead_letter(int(entry.key), json.loads(entry.payload), exc)
