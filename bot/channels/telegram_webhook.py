"""Telegram by webhook, for several identical instances behind a load balancer (issue #11).

Telegram POSTs each update to TAIQU_TELEGRAM_WEBHOOK_URL with the secret token in a header.
Any instance may receive any update: it checks the secret, records the update in the
`telegram_inbox` table (unique on update_id) and only then answers 200. Handling happens
after, one person's updates in arrival order: a crash after the 200 loses nothing (the next
start handles what is still 'new') and a redelivered update is recorded once, handled once.
Several instances share the inbox: whoever handles a person's earliest update holds a claim
on it (a lease), so one person's updates are handled one at a time, in order, whichever
instance received them; a dead instance's claims expire and another takes over. As with the
reminders, the one update in flight when a process dies may be answered twice.

PTB has its own webhook server (Updater.start_webhook), but it answers 200 before anything is
stored and keeps updates in memory only, so this small aiohttp endpoint does the recording."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.lanes import Lanes
from bot.storage.db import Database, iso

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024  # an update is a few KB; a photo is a file_id, not the bytes
MAX_ATTEMPTS = 3  # an update that fails this often is set aside (dead letter), not retried
# How long an instance holds a person's update while handling it: longer than any one step
# takes; when an instance dies its claims expire and another takes over (the channel passes
# TAIQU_TELEGRAM_INBOX_CLAIM_SECONDS, whose default this is).
CLAIM_LEASE = timedelta(minutes=2)
# Every so often each instance looks for updates nobody is handling (recorded by another
# instance that was busy, or claimed by one that died).
SWEEP_SECONDS = 5.0
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


@dataclass(frozen=True)
class InboxRow:
    id: int
    update_id: int
    person: str
    payload: str
    attempts: int


def instance_name() -> str:
    """Who holds a claim: host, process and a random part (a restarted process is new)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class TelegramInbox:
    """The telegram_inbox table: record once, then hand out one person's rows in order, to
    one instance at a time (the claim on the person's earliest row is the per-person lock)."""

    def __init__(self, db: Database, owner: str | None = None,
                 lease: timedelta = CLAIM_LEASE) -> None:
        self.db = db
        self.owner = owner or instance_name()
        self.lease = lease

    async def record(self, update_id: int, person: str, payload: str, now: datetime) -> bool:
        """True when the update is new; False for a redelivery (already recorded)."""
        async with self.db.tx() as tx:
            if await tx.fetchone("SELECT 1 FROM telegram_inbox WHERE update_id = ?",
                                 (update_id,)):
                return False
            await tx.execute(
                "INSERT INTO telegram_inbox(update_id, person, payload, received_at) "
                "VALUES (?, ?, ?, ?)", (update_id, person, payload, iso(now)))
        return True

    async def next_in(self, person: str, now: datetime) -> InboxRow | None:
        """The person's earliest unhandled update, claimed for this instance; None when
        there is none or another live instance is handling this person."""
        async with self.db.tx() as tx:
            row = await tx.fetchone(
                "SELECT id, update_id, person, payload, attempts, claimed_by, claim_until "
                "FROM telegram_inbox WHERE person = ? AND state = 'new' ORDER BY id LIMIT 1"
                + self.db.for_update,  # not SKIP LOCKED: the person's order must hold
                (person,))
            if row is None:
                return None
            if (row["claimed_by"] not in (None, self.owner)
                    and row["claim_until"] is not None and row["claim_until"] > iso(now)):
                return None
            await tx.execute("UPDATE telegram_inbox SET claimed_by = ?, claim_until = ? "
                             "WHERE id = ?", (self.owner, iso(now + self.lease), row["id"]))
        return InboxRow(row["id"], row["update_id"], row["person"], row["payload"],
                        row["attempts"])

    async def waiting_people(self, now: datetime) -> list[str]:
        """People with updates no live instance is handling."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT person FROM telegram_inbox WHERE state = 'new' "
            "AND (claim_until IS NULL OR claim_until <= ? OR claimed_by = ?)",
            (iso(now), self.owner))
        return [r["person"] for r in rows]

    async def done(self, row_id: int, now: datetime) -> None:
        # The text people typed is not kept once handled: only the update_id (for dedupe).
        await self.db.execute("UPDATE telegram_inbox SET state = 'done', payload = '', "
                              "done_at = ?, claimed_by = NULL, claim_until = NULL WHERE id = ?",
                              (iso(now), row_id))

    async def attempt_failed(self, row: InboxRow, now: datetime) -> bool:
        """Count a failed attempt; True when the row is now set aside for good."""
        last = row.attempts + 1 >= MAX_ATTEMPTS
        await self.db.execute(
            "UPDATE telegram_inbox SET attempts = attempts + 1, state = ?, done_at = ?, "
            "claimed_by = NULL, claim_until = NULL WHERE id = ?",
            ("failed" if last else "new", iso(now) if last else None, row.id))
        return last

    async def release(self) -> None:
        """A clean stop: what this instance claimed but did not handle is free at once."""
        await self.db.execute("UPDATE telegram_inbox SET claimed_by = NULL, claim_until = NULL "
                              "WHERE claimed_by = ? AND state = 'new'", (self.owner,))

    async def forget_before(self, cutoff: datetime) -> None:
        """Handled rows older than Telegram's redelivery window (24 h) are no longer needed."""
        await self.db.execute("DELETE FROM telegram_inbox WHERE state != 'new' "
                              "AND received_at < ?", (iso(cutoff),))


Handle = Callable[[dict[str, Any]], Awaitable[None]]
DeadLetter = Callable[[int, dict[str, Any], Exception], Awaitable[None]]


class WebhookEndpoint:
    """The HTTP side: secret checked, update recorded, 200; then handled per person."""

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
        self.lanes = Lanes(self._drain, workers, what="Telegram inbox")
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None

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
        self._sweeper = asyncio.create_task(self._sweep())

    async def resume(self) -> int:
        """Handle every update recorded but not handled by anyone (after a start, and on
        every sweep: another instance's, or a dead instance's expired claims)."""
        waiting = await self.inbox.waiting_people(self.clock())
        for person in waiting:
            self.lanes.poke(person)
        return len(waiting)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.resume()
            except Exception:  # the database may be briefly away: the next sweep retries
                log.exception("sweeping the Telegram inbox failed")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._runner is not None:  # no new updates; those recorded wait for a start
            await self._runner.cleanup()
            self._runner = None
        await self.lanes.idle()
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
            self.lanes.poke(person)
        return web.Response(status=200)

    async def _drain(self, person: str) -> None:
        while (row := await self.inbox.next_in(person, self.clock())) is not None:
            update = json.loads(row.payload)
            try:
                await self.handle(update)
            except Exception as exc:
                log.exception("Telegram update %s failed", row.update_id)
                if await self.inbox.attempt_failed(row, self.clock()):
                    await self.dead_letter(row.update_id, update, exc)
                    continue
                return  # the next start tries it again; later ones wait, in order
            await self.inbox.done(row.id, self.clock())
        # Nothing left that this instance may take: if another instance holds this person,
        # it drains what follows (and the sweep catches anything recorded in between).
