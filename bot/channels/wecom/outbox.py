"""Sending through WeCom from the outbox table: per person in order, within WeCom's
per-member budget (counted in the database), retrying what WeCom asks to retry.

WeCom drops a member's 31st message in a minute (1001st in an hour) without an error, so
the budget is ours to keep: a message that would exceed it stays queued in the database,
with `not_before` set to when there is room, and goes out then. Nothing is dropped, and a
restart neither resets the count nor loses the queue. One message can go out twice: the
one in flight when the process dies after WeCom took it but before the row was marked sent.

Several instances share the outbox (issue #11): any of them may send any person's messages.
Each message is claimed by one instance before it goes (WeComStore.claim: a lease, SKIP LOCKED
on PostgreSQL), and only a person's first unsent message may be claimed, so one person's
messages go out once each and in order. An instance that dies mid-send leaves its claim to
run out (TAIQU_INBOX_CLAIM_SECONDS); then another sends that message (the in-flight one twice,
at most, as above).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.channels.wecom.api import (
    CardButton,
    WeComAPIError,
    WeComClient,
    WeComIPNotTrusted,
    WeComRetryLater,
    WeComUnreachable,
    new_task_id,
)
from bot.channels.wecom.render import render_reply
from bot.channels.wecom.store import Queued, WeComStore
from bot.clock import Clock
from bot.events import Reply
from bot.i18n import t
from bot.lanes import Lanes
from bot.notify import Unreachable
from bot.sendbudget import Lane, SendBudget, current_lane
from bot.services import Services

log = logging.getLogger(__name__)
CHANNEL = "wecom"
# Seconds to wait after 45009 / 45033 / -1 / 5xx / a network fault, by attempt.
RETRY_BACKOFF = (2.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
IP_NOT_TRUSTED_WAIT = 300.0  # an admin must act; the log line says what to set
MEDIA_REUSE_SECONDS = 2.5 * 86400  # an uploaded media_id is valid 3 days
UNREACHABLE = "unreachable"


@dataclass
class SendStats:
    sent: int = 0
    held: int = 0
    retried: int = 0
    failed: int = 0


class Sender:
    def __init__(self, client: WeComClient, store: WeComStore, clock: Clock,
                 on_unreachable: Callable[[str], Awaitable[None]] | None = None,
                 workers: int = 0, app_budget: SendBudget | None = None) -> None:
        """`app_budget`: the app's sends a second, replies first (None: unlimited)."""
        self.client = client
        self.app_budget = app_budget
        self.store = store
        self.clock = clock
        self.stats = SendStats()
        self._on_unreachable = on_unreachable
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary())
        # Claimed pushes waiting for the app's budget outside their person's lock (drain).
        self._pushes_waiting: dict[int, asyncio.Future[None]] = {}
        self.lanes = Lanes(self.drain, workers, what="WeCom sender")
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def _lock(self, external_id: str) -> asyncio.Lock:
        lock = self._locks.get(external_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[external_id] = lock
        return lock

    # --------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        await self.lanes.close()
        await self.store.release()

    def kick(self) -> None:
        """Look at the queue again now (tests move the clock, then kick)."""
        self._wake.set()

    async def sweep(self) -> float | None:
        """Start a worker for everyone whose first message may go now; the seconds until
        the next held message may go (None: nothing is held)."""
        now = self._now()
        later: list[float] = []
        for external_id, not_before in await self.store.open_recipients(now):
            if not_before <= now:
                self.lanes.poke(external_id)
            else:
                later.append(not_before - now)
        return min(later) if later else None

    async def _sweep_forever(self) -> None:
        while True:
            try:
                wait = await self.sweep()
            except Exception:
                log.exception("WeCom outbox sweep failed")
                wait = 5.0
            # Real seconds; capped so a clock moved by hand (tests) or a missed kick is
            # noticed soon.
            delay = 5.0 if wait is None else min(max(wait, 0.05), 5.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    # ------------------------------------------------------------------ send
    async def drain(self, external_id: str) -> None:
        """Send the person's queued messages in order while the budget allows.

        A push waits for the app's budget without holding the person (issue #12): a reply
        they write meanwhile is their head (replies before pushes) and goes out with the
        next send the budget gives replies, not after the push. The claimed push is not
        sent twice: whoever finds it at the head while it waits waits for it instead."""
        while (push := await self._send_until_a_push(external_id)) is not None:
            assert self.app_budget is not None
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._pushes_waiting[push.id] = done
            try:
                await self.app_budget.acquire(Lane.PUSH)
                async with self._lock(external_id):
                    if not await self._send_one(push, self._now(), budget_taken=True):
                        return
            finally:
                del self._pushes_waiting[push.id]
                done.set_result(None)

    async def _send_until_a_push(self, external_id: str) -> Queued | None:
        """Under the person's lock, send their messages in order; a claimed push that must
        first wait for the app's budget is handed back to wait outside it (None: nothing
        more to send now)."""
        while True:
            async with self._lock(external_id):
                behind = await self._send_in_order(external_id)
            if not isinstance(behind, asyncio.Future):
                return behind
            await asyncio.shield(behind)  # then on with the rest (WeComNotifier waits for all)

    async def _send_in_order(self, external_id: str
                             ) -> Queued | asyncio.Future[None] | None:
        """The loop of _send_until_a_push, under the lock; a push claimed here that is
        waiting for the budget is at the head: its future (wait for it, then go on)."""
        while True:
            now = self._now()
            q = await self.store.head(external_id, now)
            if q is None:  # nothing to send, or another instance is sending it
                return None
            if q.id in self._pushes_waiting:
                return self._pushes_waiting[q.id]
            if q.not_before > now:
                self.kick()  # the sweep sleeps until then
                return None
            wait = await self.store.claim(q.id, external_id, now, q.lane)
            if wait is None:
                return None  # another instance took it first: it goes on with the rest
            if wait > 0:
                await self.store.hold(q.id, now, now + wait)
                self.stats.held += 1
                self.kick()
                return None
            if q.lane is Lane.PUSH and self.app_budget is not None:
                return q
            if not await self._send_one(q, now):
                return None

    async def _send_one(self, q: Queued, now: float, budget_taken: bool = False) -> bool:
        """True to go on with the person's next message."""
        try:
            if self.app_budget is not None and not budget_taken:
                await self.app_budget.acquire(q.lane)
            await self._deliver(q)
        except WeComRetryLater as exc:
            delay = RETRY_BACKOFF[min(q.attempts, len(RETRY_BACKOFF) - 1)]
            log.warning("WeCom send to %s: %s; retrying in %.0f s", q.external_id, exc, delay)
            await self.store.hold(q.id, now, now + delay, str(exc))
            self.stats.retried += 1
            self.kick()
            return False
        except WeComIPNotTrusted as exc:  # the client logged what to set, once
            await self.store.hold(q.id, now, now + IP_NOT_TRUSTED_WAIT, str(exc))
            self.kick()
            return False
        except WeComUnreachable as exc:
            ids = await self.store.fail_all(q.external_id, f"{UNREACHABLE}: {exc}",
                                            self.clock.now())
            log.warning("WeCom user %s is outside the app's visible range or gone (81013); "
                        "%d message(s) not sent", q.external_id, len(ids))
            self.stats.failed += len(ids)
            if self._on_unreachable is not None:
                await self._on_unreachable(q.external_id)
            return False
        except (WeComAPIError, ValueError) as exc:  # this message can never go: the next can
            log.error("WeCom refused a %s message to %s: %s", q.item.kind, q.external_id, exc)
            await self.store.fail(q.id, str(exc), self.clock.now())
            self.stats.failed += 1
            return True
        await self.store.sent(q.id, self.clock.now())
        self.stats.sent += 1
        return True

    async def _deliver(self, q: Queued) -> None:
        item, to = q.item, q.external_id
        p = item.payload
        if item.kind == "text":
            await self.client.send_text(to, str(p["content"]))
        elif item.kind == "card":
            buttons = [CardButton(str(k), str(label)) for k, label in p["buttons"]]
            task_id = new_task_id()  # fresh per attempt: WeCom refuses a task_id twice
            await self.store.card_sent(task_id, to, {b.key: b.text for b in buttons},
                                       self.clock.now())
            await self.client.send_button_card(to, title=str(p["title"]), buttons=buttons,
                                               sub_title=str(p.get("sub", "")),
                                               task_id=task_id)
        elif item.kind == "file":
            assert item.data is not None
            media_id = await self.client.upload_media("file", str(p["filename"]), item.data)
            await self.client.send_file(to, media_id)
        elif "media" in p:  # a picture a user sent, shown again (a log entry's photo)
            await self.client.send_image(to, await self._media_id(int(p["media"])))
        else:
            assert item.data is not None
            media_id = await self.client.upload_media("image", str(p["filename"]), item.data,
                                                      "image/png")
            await self.client.send_image(to, media_id)

    async def _media_id(self, media_row: int) -> str:
        found = await self.store.media(media_row)
        if found is None:
            raise ValueError(f"picture {media_row} is not stored")
        content, content_type, media_id, uploaded_at = found
        now = self._now()
        if media_id and uploaded_at and now - uploaded_at < MEDIA_REUSE_SECONDS:
            return media_id
        ext = "png" if content_type == "image/png" else "jpg"
        media_id = await self.client.upload_media("image", f"photo-{media_row}.{ext}",
                                                  content, content_type)
        await self.store.media_uploaded(media_row, media_id, now)
        return media_id


class WeComNotifier:
    """Pushes (reminders, digests, reports) to a WeCom member. A push is queued in the
    database and sent at once when the budget allows; if WeCom says the member is outside
    the app's visible range (81013) it raises Unreachable, so the reminder goes to the lead.
    Once queued it is never reported as failed-to-retry: the outbox delivers it."""

    channel = CHANNEL

    def __init__(self, services: Services, sender: Sender) -> None:
        self.services = services
        self.sender = sender

    async def push(self, external_id: str, reply: Reply) -> None:
        user = await self.services.people.by_identity(CHANNEL, external_id)
        locale = (user.locale if user else None) or self.services.settings.locale
        items = render_reply(reply, t(locale, "wecom.card_title"))
        ids = await self.sender.store.handled(None, external_id, items,
                                              self.services.clock.now(), current_lane())
        await self.sender.drain(external_id)
        states = await self.sender.store.states(ids)
        if any(state == "failed" and error.startswith(UNREACHABLE)
               for state, error in states.values()):
            raise Unreachable(f"WeCom user {external_id} is outside the app's visible range")
