"""Send budgets in the database (migration 0028), shared by every instance on the store: one
row per budget, one statement per booking (issue #11): a push's one send, or a block of a few
consecutive slots that an instance's replies (then its pushes) spend locally (bot.sendbudget,
issue #12).

The row is a GCRA ("generic cell rate algorithm") cell: `tat` is when the next send is due
if sends are evenly spaced at the budget's rate. Taking a send moves it on by one interval;
a burst of `b` lets a send go up to (b - 1) intervals before its due time. A reply is always
given a slot, possibly a little in the future (the sender sleeps until then): replies are
answered in order, never refused. A push takes a slot only if one is free now, so it never
books time ahead of a reply that arrives a moment later on another instance, except every
`push_every`-th send (TAIQU_PUSH_MIN_SHARE), which a waiting push may book like a reply.
A refused push learns when the next slot frees and sleeps until then: no polling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.storage.db import Backend

# The slot a send may take, as the existing row sees it (send_budgets.tat is the row's).
_START = "CASE WHEN send_budgets.tat > ? THEN send_budgets.tat ELSE ? END"
_TAKE = ("INSERT INTO send_budgets(name, tat, since_push, ticket) VALUES (?, ?, ?, ?) "
         "ON CONFLICT(name) DO UPDATE SET "
         "tat = CASE WHEN {ok} THEN " + _START + " + ? ELSE send_budgets.tat END, "
         "since_push = CASE WHEN {ok} THEN {since} ELSE send_budgets.since_push END, "
         "ticket = CASE WHEN {ok} THEN excluded.ticket ELSE send_budgets.ticket END "
         "RETURNING tat, ticket")
# Replies book `slots` consecutive slots at once (a block), each counted as a reply.
_REPLY = _TAKE.format(ok="1 = 1", since="send_budgets.since_push + ?")
# A push: a slot free now (within the burst), or its share is due.
_PUSH_OK = "(send_budgets.tat - ? <= ? OR send_budgets.since_push >= ?)"
_PUSH = _TAKE.format(ok=_PUSH_OK, since="0")
# A paid send counted against the day's cap (migration 0036): no row comes back at the cap.
_PAID = ("INSERT INTO paid_sends(name, day, sent) VALUES (?, ?, 1) ON CONFLICT(name, day) "
         "DO UPDATE SET sent = paid_sends.sent + 1 WHERE paid_sends.sent < ? RETURNING sent")


@dataclass(frozen=True)
class Rate:
    """A budget's pace: `interval` seconds between sends, bursts of `burst`."""

    interval: float
    burst: int = 1

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


@dataclass(frozen=True)
class Block:
    """Slots booked together by one instance: sends evenly spaced from `start` until `end`
    (epoch seconds) are its own; the row's next booking starts at `end` or later."""

    start: float
    end: float


@dataclass(frozen=True)
class Slot:
    """A grant (`at`: when the send may go, epoch seconds) or a refusal (`at`: when to ask
    again)."""

    granted: bool
    at: float


class SendBudgets:
    def __init__(self, db: Backend) -> None:
        self.db = db

    async def take(self, name: str, rate: Rate, now: float, *, push: bool,
                   push_every: int, ticket: str) -> Slot:
        """One send in budget `name` at `now` (epoch seconds): one statement."""
        if not push:
            block = await self.book(name, rate, now, 1, ticket=ticket)
            return Slot(True, max(now, block.start - rate.tolerance))
        ok = (rate.tolerance, now, max(0, push_every - 1) if push_every else 1 << 62)
        row = await self.db.fetchone(_PUSH, (name, now + rate.interval, 0, ticket, *ok,
                                             now, now, rate.interval, *ok, *ok))
        assert row is not None  # an upsert always returns its row
        tat = float(row[0])
        if row[1] != ticket:  # refused: the next slot frees `tolerance` before `tat`
            return Slot(False, tat - rate.tolerance)
        return Slot(True, max(now, tat - rate.interval - rate.tolerance))

    async def book(self, name: str, rate: Rate, now: float, slots: int, *,
                   ticket: str) -> Block:
        """`slots` consecutive reply slots in budget `name` at `now`, in one statement:
        always granted, from the row's next free slot on (perhaps a moment ahead)."""
        span = slots * rate.interval
        row = await self.db.fetchone(_REPLY, (name, now + span, slots, ticket,
                                              now, now, span, slots))
        assert row is not None  # an upsert always returns its row
        end = float(row[0])
        return Block(end - span, end)

    async def pause(self, name: str, until: float) -> None:
        """The platform said "too many" (Telegram's 429): no instance sends before `until`."""
        await self.db.execute(
            "INSERT INTO send_budgets(name, tat) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
            "SET tat = CASE WHEN send_budgets.tat > excluded.tat THEN send_budgets.tat "
            "ELSE excluded.tat END", (name, until))

    async def count_paid(self, name: str, day: str, cap: int) -> bool:
        """One paid send for budget `name` on `day` (local date), if fewer than `cap` were
        made that day by any instance: one statement. False: the cap is reached."""
        return bool(await self.db.write_returning(_PAID, (name, day, cap)))

    async def paid_on(self, name: str, day: str) -> int:
        """Paid sends counted for `name` on `day`."""
        row = await self.db.fetchone("SELECT sent FROM paid_sends WHERE name = ? AND day = ?",
                                     (name, day))
        return int(row[0]) if row else 0

    async def prune(self, prefix: str, before: float) -> None:
        """Rows of `prefix` not used since `before` (a WeCom member's lock row)."""
        await self.db.execute("DELETE FROM send_budgets WHERE name LIKE ? AND tat < ?",
                              (f"{prefix}%", before))


class Executes(Protocol):
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int | None: ...


class Reads(Protocol):
    """The store or a transaction: what reads a count inside or outside one."""

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...


async def hold_row(tx: Executes, name: str, now: float) -> None:
    """Inside a transaction: the row `name` locked until the transaction ends (PostgreSQL's
    row lock; SQLite's one writer already serialises), so another instance counting the
    same budget waits, then reads what this one wrote."""
    await tx.execute("INSERT INTO send_budgets(name, tat) VALUES (?, ?) ON CONFLICT(name) "
                     "DO UPDATE SET tat = excluded.tat", (name, now))
