"""A channel's inbox on the shared store (issue #11): what the platform sent, recorded before
its 200, then handled per person, in arrival order, one instance at a time. Telegram's webhook
(telegram_inbox) and WeCom's callbacks (wecom_inbox) both work this way.

Recorded once: the table is unique on the platform's id (update_id, WeCom's MsgId or event
key), so a redelivery is a no-op. Handled once per person at a time: whoever handles a
person's earliest unhandled row holds a claim on it (a lease, FOR UPDATE on PostgreSQL so two
instances never both take it); the others leave that person alone until it is done or the
claim has run out. The holder goes on with the person's next row, so one person's rows are
handled in order whichever instance received them. Each of these is one statement, a round
trip on PostgreSQL (issue #12): record, claim, and done with the next claimed (and with the
answer queued, for WeCom); before, three transactions and a statement, 11 round trips. An
instance that dies leaves its claim to expire; every instance's sweep then finds the person
waiting. As with the reminders, the one row in flight when a process dies may be handled
twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.lanes import Lanes
from bot.storage.db import Backend, Row, iso
from bot.storage.leases import instance_name

log = logging.getLogger(__name__)
# How long an instance holds a person's row while handling it: longer than any one step
# takes (TAIQU_INBOX_CLAIM_SECONDS); when an instance dies its claims expire.
CLAIM_LEASE = timedelta(minutes=2)
# Every so often each instance looks for rows nobody is handling (recorded by another
# instance that was busy, claimed by one that died, or failed once and due again).
SWEEP_SECONDS = 5.0
MAX_ATTEMPTS = 3  # a row that fails this often is set aside (dead letter), not retried


@dataclass(frozen=True)
class InboxTable:
    """A channel's inbox table: its name and the columns that differ between channels."""

    name: str
    key: str  # the platform's id of what was sent (unique)
    person: str  # whose it is: the order is kept per person
    payload: str  # what was sent; emptied once handled


@dataclass(frozen=True)
class Entry:
    id: int
    key: Any
    person: str
    payload: str
    attempts: int


# A statement and its parameters.
Statement = tuple[str, Sequence[Any]]


def _entry(rows: list[Row]) -> Entry | None:
    return Entry(*rows[0]) if rows else None


class LeasedInbox:
    """Record once, then hand out one person's rows in order, to one instance at a time
    (the claim on the person's earliest row is the per-person lock)."""

    def __init__(self, db: Backend, table: InboxTable, owner: str | None = None,
                 lease: timedelta = CLAIM_LEASE) -> None:
        self.db = db
        self.table = table
        self.owner = owner or instance_name()
        self.lease = lease

    async def record(self, key: Any, person: str, payload: str, now: datetime) -> bool:
        """True when it is new; False for a redelivery (already recorded). One statement."""
        t = self.table
        return bool(await self.db.write_returning(
            f"INSERT INTO {t.name}({t.key}, {t.person}, {t.payload}, received_at) "
            f"VALUES (?, ?, ?, ?) ON CONFLICT({t.key}) DO NOTHING RETURNING id",
            (key, person, payload, iso(now))))

    def _claim(self, person: str, now: datetime, skip: int | None = 0) -> Statement:
        """Claims the person's earliest unhandled row (but not row `skip`; None: not the row
        the WITH `done` marks) unless another live instance holds it, returning it: one
        statement, so a claim costs one round trip. On PostgreSQL the row is locked (FOR
        UPDATE, not SKIP LOCKED: the person's order must hold) and checked again once
        another claimer or the holder's done is through."""
        t = self.table
        return (f"UPDATE {t.name} SET claimed_by = ?, claim_until = ? WHERE id = ("
                f"SELECT id FROM {t.name} WHERE {t.person} = ? AND state = 'new' AND id NOT "
                f"IN ({'SELECT id FROM done' if skip is None else '?'}) ORDER BY id LIMIT 1"
                f"{self.db.for_update}) AND state = 'new' AND (claimed_by IS NULL OR "
                "claimed_by = ? OR claim_until IS NULL OR claim_until <= ?) "
                f"RETURNING id, {t.key}, {t.person}, {t.payload}, attempts",
                (self.owner, iso(now + self.lease), person,
                 *(() if skip is None else (skip,)), self.owner, iso(now)))

    async def next_in(self, person: str, now: datetime) -> Entry | None:
        """The person's earliest unhandled row, claimed for this instance; None when there
        is none or another live instance is handling this person."""
        return _entry(await self.db.write_returning(*self._claim(person, now)))

    async def finish(self, entry: Entry, now: datetime,
                     also: Statement | None = None) -> Entry | None:
        """Mark `entry` handled, together with `also` (what handling it produced: WeCom
        queues the answer), and claim the person's next row, returned (None: there is none,
        or another live instance holds it; either way this instance holds nothing of the
        person's any more). On PostgreSQL one statement, so a handled row costs one round
        trip, its release and the next claim included; SQLite has no data-modifying WITH:
        a statement each (one writer at a time: nothing comes between them)."""
        done = (self.done_sql, (iso(now), entry.id))
        if self.db.dialect != "sqlite":
            # The claim reads `done`, so the row is marked (and locked) first, not after the
            # claim as an unread WITH would be. This statement sees the rows recorded before
            # it began; another instance's claim that meets the row locked waits, then sees
            # it done and takes a row recorded since. Only a claim in the microseconds
            # between this statement's start and that lock can miss both: its row waits for
            # a sweep (SWEEP_SECONDS), in order, never lost.
            claim = self._claim(entry.person, now, skip=None)
            writes = [*([("queued", also)] if also else []),
                      ("done", (done[0] + " RETURNING id", done[1]))]
            sql = ("WITH " + ", ".join(f"{name} AS ({w[0]})" for name, w in writes) + " "
                   + claim[0])
            return _entry(await self.db.write_returning(
                sql, [p for _, (_, params) in writes for p in params] + list(claim[1])))
        claim = self._claim(entry.person, now, skip=entry.id)
        if also is None:
            await self.db.execute(*done)
            return _entry(await self.db.write_returning(*claim))
        async with self.db.tx() as tx:
            await tx.execute(*also)
            await tx.execute(*done)
            return _entry(await tx.fetchall(*claim))

    async def waiting_people(self, now: datetime) -> list[str]:
        """People with rows no live instance is handling, the longest waiting first."""
        t = self.table
        # Not a person whose row another instance holds: their later rows wait for it.
        rows = await self.db.fetchall(
            f"SELECT {t.person} FROM {t.name} WHERE state = 'new' GROUP BY {t.person} "
            "HAVING max(CASE WHEN claimed_by != ? AND claim_until > ? THEN 1 ELSE 0 END) = 0 "
            "ORDER BY min(id)", (self.owner, iso(now)))
        return [r[0] for r in rows]

    @property
    def done_sql(self) -> str:
        """Marks a row handled (parameters: now, id), for a transaction that also writes
        what handling it produced (WeCom queues the answer with it)."""
        # What people sent is not kept once handled: only the key (for redeliveries).
        return (f"UPDATE {self.table.name} SET state = 'done', {self.table.payload} = '', "
                "done_at = ?, claimed_by = NULL, claim_until = NULL WHERE id = ?")

    async def done(self, row_id: int, now: datetime) -> None:
        await self.db.execute(self.done_sql, (iso(now), row_id))

    async def set_aside(self, row_id: int, now: datetime, attempted: bool = False) -> None:
        """Never to be handled (unreadable, or failed too often): kept as 'failed', its
        payload dropped as a handled row's is; `attempted` counts the last attempt."""
        await self.db.execute(
            f"UPDATE {self.table.name} SET state = 'failed', {self.table.payload} = '', "
            "done_at = ?, attempts = attempts + ?, claimed_by = NULL, claim_until = NULL "
            "WHERE id = ?", (iso(now), int(attempted), row_id))

    async def attempt_failed(self, entry: Entry, now: datetime) -> bool:
        """Count a failed attempt; True when the row is now set aside for good (the caller
        has the entry for its dead letter)."""
        if entry.attempts + 1 >= MAX_ATTEMPTS:
            await self.set_aside(entry.id, now, attempted=True)
            return True
        await self.db.execute(f"UPDATE {self.table.name} SET attempts = attempts + 1, "
                              "claimed_by = NULL, claim_until = NULL WHERE id = ?", (entry.id,))
        return False

    async def release(self) -> None:
        """A clean stop: what this instance claimed but did not handle is free at once."""
        await self.db.execute(
            f"UPDATE {self.table.name} SET claimed_by = NULL, claim_until = NULL "
            "WHERE claimed_by = ? AND state = 'new'", (self.owner,))

    async def forget_before(self, cutoff: datetime) -> None:
        """Handled rows older than the platform's redelivery window are no longer needed."""
        await self.db.execute(f"DELETE FROM {self.table.name} WHERE state != 'new' "
                              "AND received_at < ?", (iso(cutoff),))


# Does the work and returns the person's next row (LeasedInbox.finish).
Handle = Callable[[Entry], Awaitable[Entry | None]]
SetAside = Callable[[Entry, Exception], Awaitable[None]]


async def _log_only(entry: Entry, exc: Exception) -> None:
    log.error("inbox row %s of %s set aside after %d attempts: %s", entry.id, entry.person,
              MAX_ATTEMPTS, exc)


class InboxDrain:
    """Handles a LeasedInbox: per person, the earliest row first, whichever instance
    received it. `handle(entry)` does the work, marks the row done and claims the person's
    next (LeasedInbox.finish, alone or in the transaction of the work) and returns that
    next; a row whose handling raises is counted and tried again by a later sweep, and
    after MAX_ATTEMPTS set aside (`set_aside`)."""

    def __init__(self, inbox: LeasedInbox, handle: Handle, clock: Callable[[], datetime],
                 set_aside: SetAside = _log_only, workers: int = 0,
                 what: str = "inbox") -> None:
        self.inbox = inbox
        self.handle = handle
        self.set_aside = set_aside
        self.clock = clock
        self.what = what
        self.lanes = Lanes(self.drain, workers, what=what)
        self._sweeper: asyncio.Task[None] | None = None

    def poke(self, person: str) -> None:
        self.lanes.poke(person)

    async def resume(self) -> int:
        """Handle every row recorded and not being handled by a live instance (after a
        start, and on every sweep); how many people were waiting."""
        waiting = await self.inbox.waiting_people(self.clock())
        for person in waiting:
            self.poke(person)
        return len(waiting)

    def start_sweeping(self, seconds: float = SWEEP_SECONDS) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(seconds))

    async def _sweep(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.resume()
            except Exception:  # the database may be briefly away: the next sweep retries
                log.exception("sweeping the %s failed", self.what)

    async def stop_sweeping(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    async def close(self) -> None:
        """Stop: no more sweeps, the work in hand cancelled, this instance's claims freed
        for the other instances (or the next start) at once."""
        await self.stop_sweeping()
        await self.lanes.close()
        await self.inbox.release()

    async def drain(self, person: str) -> None:
        entry = await self.inbox.next_in(person, self.clock())
        while entry is not None:
            try:
                entry = await self.handle(entry)
            except Exception as exc:
                log.exception("%s row %s of %s failed", self.what, entry.id, person)
                if await self.inbox.attempt_failed(entry, self.clock()):
                    await self.set_aside(entry, exc)
                    entry = await self.inbox.next_in(person, self.clock())
                    continue
                return  # a later sweep tries it again; the person's later rows wait, in order
        # Nothing left that this instance may take: if another instance holds this person,
        # it drains what follows (and the sweeps catch anything recorded in between).
