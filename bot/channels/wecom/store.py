"""The WeCom channel's tables (migrations 0013, 0027): inbox, outbox, the per-person send
budget, sent cards, received pictures, greetings and team robots.

Several instances share them (issue #11): the inbox is a LeasedInbox (bot/inbox_drain.py, as
Telegram's webhook inbox), and a person's next outgoing message is claimed by one instance
before it is sent (a lease; SKIP LOCKED on PostgreSQL), so it goes out once, in order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.inbox_drain import CLAIM_LEASE, Entry, InboxTable, LeasedInbox, Statement
from bot.sendbudget import Lane
from bot.storage.db import Backend, iso
from bot.storage.leases import instance_name
from bot.storage.send_budgets import Reads, hold_row

WECOM_INBOX = InboxTable("wecom_inbox", key="dedupe_key", person="external_id", payload="xml")
# An outgoing message no live instance holds: never claimed, its claim run out, or ours.
_FREE = "(claimed_by IS NULL OR claimed_by = ? OR claim_until <= ?)"

OutKind = Literal["text", "card", "file", "image"]
MEMBER_BUDGET = "wecom.member:"  # + userid: the row held while a member's send is counted


@dataclass(frozen=True)
class OutItem:
    """One WeCom message to send: text {"content"}, card {"title", "sub", "buttons":
    [[key, label], ...]}, file/image {"filename"} with the bytes in `data`, or image
    {"media": <wecom_media id>} for a picture a user sent."""

    kind: OutKind
    payload: dict[str, Any]
    data: bytes | None = None


@dataclass(frozen=True)
class Queued:
    id: int
    external_id: str
    item: OutItem
    state: str
    not_before: float
    attempts: int
    lane: Lane = Lane.REPLY


@dataclass(frozen=True)
class Budget:
    """WeCom's per-member limits for one app (settings), with a margin in seconds for the
    clock difference between our count and WeCom's."""

    per_minute: int = 30
    per_hour: int = 1000
    margin: float = 1.0
    # Of each minute's sends to one member, pushes leave this many to replies (issue #12).
    reply_reserve: int = 0

    def minute_limit(self, lane: Lane) -> int:
        if lane is Lane.REPLY:
            return self.per_minute
        return max(1, self.per_minute - self.reply_reserve)  # pushes never starve


@dataclass
class WeComStore:
    db: Backend
    budget: Budget = field(default_factory=Budget)
    owner: str = field(default_factory=instance_name)  # this instance, holding its claims
    claim_seconds: float = CLAIM_LEASE.total_seconds()

    def __post_init__(self) -> None:
        self.inbox = LeasedInbox(self.db, WECOM_INBOX, self.owner,
                                 timedelta(seconds=self.claim_seconds))

    # ----------------------------------------------------------------- outbox
    async def handled(self, row_id: int | None, external_id: str, items: list[OutItem],
                      now: datetime, lane: Lane = Lane.REPLY) -> list[int]:
        """Queue messages (and mark the callback `row_id` handled, if one), in one
        transaction; their ids in the items' order."""
        async with self.db.tx() as tx:
            ids: list[int] = []
            if items:
                sql, params = self._queue(external_id, items, now, lane)
                # RETURNING gives no order: ids are given in the VALUES' order.
                ids = sorted(int(r[0]) for r in await tx.fetchall(sql + " RETURNING id",
                                                                   params))
            if row_id is not None:
                await tx.execute(self.inbox.done_sql, (iso(now), row_id))
        return ids

    async def answered(self, entry: Entry, items: list[OutItem],
                       now: datetime) -> Entry | None:
        """Queue a callback's answer and mark the callback handled, together: a restart
        after this sends the answer, a restart before it handles the callback again;
        neither loses it. The person's next callback is claimed with it and returned
        (LeasedInbox.finish: on PostgreSQL all of it one statement)."""
        return await self.inbox.finish(
            entry, now, self._queue(entry.person, items, now, Lane.REPLY) if items else None)

    @staticmethod
    def _queue(external_id: str, items: list[OutItem], now: datetime,
               lane: Lane) -> Statement:
        """The messages' rows in one statement, however many (one round trip)."""
        return ("INSERT INTO wecom_outbox(external_id, kind, payload, data, created_at, push) "
                "VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(items)),
                [v for item in items for v in (
                    external_id, item.kind, json.dumps(item.payload, ensure_ascii=False),
                    item.data, iso(now), int(lane is Lane.PUSH))])

    async def head(self, external_id: str, at: float) -> Queued | None:
        """The person's next message: replies before pushes, each lane strictly in order;
        None when there is none, or another live instance is sending it."""
        row = await self.db.fetchone(
            "SELECT id, external_id, kind, payload, data, state, not_before, attempts, push, "
            "claimed_by, claim_until FROM wecom_outbox "
            "WHERE external_id = ? AND state IN ('queued', 'sending') "
            "ORDER BY push, id LIMIT 1", (external_id,))
        if row is None or (row["claimed_by"] not in (None, self.owner)
                           and row["claim_until"] is not None and row["claim_until"] > at):
            return None
        item = OutItem(row["kind"], json.loads(row["payload"]), row["data"])
        return Queued(row["id"], row["external_id"], item, row["state"], row["not_before"],
                      row["attempts"], Lane(row["push"]))

    async def open_recipients(self, at: float) -> list[tuple[str, float]]:
        """Everyone with something unsent that no live instance is sending, and when their
        next message (head) may go."""
        rows = await self.db.fetchall(
            "SELECT external_id, not_before FROM ("
            " SELECT external_id, not_before, claimed_by, claim_until, row_number() OVER ("
            "  PARTITION BY external_id ORDER BY push, id) AS n FROM wecom_outbox"
            f" WHERE state IN ('queued', 'sending')) AS heads WHERE n = 1 AND {_FREE}",
            (self.owner, at))
        return [(r[0], float(r[1])) for r in rows]

    async def claim(self, row_id: int, external_id: str, at: float,
                    lane: Lane = Lane.REPLY) -> float | None:
        """Take a message to send it if the person's budget has room for one more in `lane`:
        held by this instance for claim_seconds, marked as going out and counted against the
        budget, together, and 0 returned (counted before the call, so a crash after WeCom
        took it cannot leave it uncounted). Else the seconds until there is room (nothing
        marked), or None when another instance has it (SKIP LOCKED: one taking it right now
        is not waited for). Instances on one PostgreSQL count a member one at a time (the
        member's row in send_budgets is held meanwhile): two cannot both take the last
        place of a minute (SQLite's one writer already does that)."""
        async with self.db.tx() as tx:
            if await tx.fetchone(
                    "SELECT id FROM wecom_outbox WHERE id = ? AND state IN ('queued', "
                    f"'sending') AND {_FREE}" + self.db.skip_locked,
                    (row_id, self.owner, at)) is None:
                return None
            if self.db.dialect != "sqlite":
                await hold_row(tx, MEMBER_BUDGET + external_id, at)
            wait = await self._wait_in(tx, external_id, at, lane)
            if wait > 0:
                return wait
            await tx.execute("UPDATE wecom_outbox SET state = 'sending', attempts = "
                             "attempts + 1, claimed_by = ?, claim_until = ? WHERE id = ?",
                             (self.owner, at + self.claim_seconds, row_id))
            await tx.execute("INSERT INTO wecom_sends(external_id, at) VALUES (?, ?)",
                             (external_id, at))
        return 0.0

    async def release(self) -> None:
        """A clean stop: the messages this instance holds are free for the others at once
        (one cut off in flight may then go twice, as after a crash)."""
        await self.db.execute(
            "UPDATE wecom_outbox SET claimed_by = NULL, claim_until = NULL "
            "WHERE claimed_by = ? AND state IN ('queued', 'sending')", (self.owner,))

    async def sent(self, row_id: int, now: datetime) -> None:
        await self.db.execute("UPDATE wecom_outbox SET state = 'sent', data = NULL, sent_at = ?, "
                              "error = NULL, claimed_by = NULL, claim_until = NULL WHERE id = ?",
                              (iso(now), row_id))

    async def hold(self, row_id: int, at: float, not_before: float,
                   error: str | None = None) -> None:
        """Keep a message queued until `not_before` (the budget, a back-off); not one that
        another live instance has claimed since this one read it."""
        await self.db.execute("UPDATE wecom_outbox SET state = 'queued', not_before = ?, "
                              "error = coalesce(?, error), claimed_by = NULL, "
                              f"claim_until = NULL WHERE id = ? AND {_FREE}",
                              (not_before, error, row_id, self.owner, at))

    async def fail(self, row_id: int, error: str, now: datetime) -> None:
        await self.db.execute("UPDATE wecom_outbox SET state = 'failed', data = NULL, "
                              "sent_at = ?, error = ?, claimed_by = NULL, claim_until = NULL "
                              "WHERE id = ?",
                              (iso(now), error[:300], row_id))

    async def fail_all(self, external_id: str, error: str, now: datetime) -> list[int]:
        """Everything still queued for someone WeCom says is gone (81013)."""
        rows = await self.db.fetchall(
            "SELECT id FROM wecom_outbox WHERE external_id = ? AND state IN ('queued', "
            "'sending')", (external_id,))
        await self.db.execute(
            "UPDATE wecom_outbox SET state = 'failed', data = NULL, sent_at = ?, error = ?, "
            "claimed_by = NULL, claim_until = NULL "
            "WHERE external_id = ? AND state IN ('queued', 'sending')",
            (iso(now), error[:300], external_id))
        return [r[0] for r in rows]

    async def states(self, ids: list[int]) -> dict[int, tuple[str, str]]:
        """(state, error) of the given messages."""
        if not ids:
            return {}
        rows = await self.db.fetchall(
            "SELECT id, state, coalesce(error, '') FROM wecom_outbox "
            f"WHERE id IN ({','.join('?' * len(ids))})", ids)
        return {r[0]: (r[1], r[2]) for r in rows}

    # ----------------------------------------------------------------- budget
    async def wait_for_room(self, external_id: str, at: float,
                            lane: Lane = Lane.REPLY) -> float:
        """Seconds until `external_id` may be sent one more message in `lane` (0: now)."""
        return await self._wait_in(self.db, external_id, at, lane)

    async def _wait_in(self, reader: Reads, external_id: str, at: float, lane: Lane) -> float:
        b = self.budget
        minute, hour = 60.0 + b.margin, 3600.0 + b.margin
        rows = await reader.fetchall(
            "SELECT at FROM wecom_sends WHERE external_id = ? AND at > ? ORDER BY at",
            (external_id, at - hour))
        times = [float(r[0]) for r in rows]
        recent = [t for t in times if t > at - minute]
        wait = 0.0
        per_minute = b.minute_limit(lane)
        if len(recent) >= per_minute:
            wait = max(wait, recent[len(recent) - per_minute] + minute - at)
        if len(times) >= b.per_hour:
            wait = max(wait, times[len(times) - b.per_hour] + hour - at)
        return wait

    async def sends_between(self, external_id: str, start: float, end: float) -> int:
        row = await self.db.fetchone(
            "SELECT count(*) FROM wecom_sends WHERE external_id = ? AND at >= ? AND at < ?",
            (external_id, start, end))
        return int(row[0]) if row else 0

    # ------------------------------------------------------------ housekeeping
    async def prune(self, now: datetime, at: float, keep_days: int) -> None:
        """Old handled callbacks (their keys), sent messages, counts and cards."""
        cutoff = iso(datetime.fromtimestamp(at - keep_days * 86400, tz=now.tzinfo))
        async with self.db.tx() as tx:
            await tx.execute("DELETE FROM wecom_inbox WHERE state != 'new' AND received_at < ?",
                             (cutoff,))
            await tx.execute("DELETE FROM wecom_outbox WHERE state IN ('sent', 'failed') "
                             "AND created_at < ?", (cutoff,))
            await tx.execute("DELETE FROM wecom_sends WHERE at < ?", (at - 3700,))
            await tx.execute("DELETE FROM send_budgets WHERE name LIKE ? AND tat < ?",
                             (MEMBER_BUDGET + "%", at - 3700))
            await tx.execute("DELETE FROM wecom_cards WHERE created_at < ?", (cutoff,))

    # ------------------------------------------------------------------ cards
    async def card_sent(self, task_id: str, external_id: str, buttons: dict[str, str],
                        now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO wecom_cards(task_id, external_id, buttons, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(task_id) DO UPDATE SET "
            "external_id = excluded.external_id, buttons = excluded.buttons, "
            "created_at = excluded.created_at",
            (task_id, external_id, json.dumps(buttons, ensure_ascii=False), iso(now)))

    async def card_label(self, task_id: str, external_id: str, key: str) -> str | None:
        row = await self.db.fetchone(
            "SELECT buttons FROM wecom_cards WHERE task_id = ? AND external_id = ?",
            (task_id, external_id))
        if row is None:
            return None
        label = json.loads(row[0]).get(key)
        return str(label) if label is not None else None

    # ------------------------------------------------------------------ media
    async def keep_media(self, external_id: str, content: bytes, content_type: str,
                         now: datetime) -> int:
        return int(await self.db.execute(
            "INSERT INTO wecom_media(external_id, content, content_type, received_at) "
            "VALUES (?, ?, ?, ?)", (external_id, content, content_type, iso(now))) or 0)

    async def media(self, media_row: int) -> tuple[bytes, str, str | None, float | None] | None:
        row = await self.db.fetchone(
            "SELECT content, content_type, media_id, uploaded_at FROM wecom_media WHERE id = ?",
            (media_row,))
        if row is None:
            return None
        return bytes(row[0]), row[1], row[2], row[3]

    async def media_uploaded(self, media_row: int, media_id: str, at: float) -> None:
        await self.db.execute("UPDATE wecom_media SET media_id = ?, uploaded_at = ? WHERE id = ?",
                              (media_id, at, media_row))

    # -------------------------------------------------------------- greetings
    async def first_open(self, external_id: str, now: datetime) -> bool:
        """True the first time someone opens the app (enter_agent), never again."""
        async with self.db.tx() as tx:
            await tx.execute(
                "INSERT INTO wecom_greeted(external_id, at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (external_id, iso(now)))
            return tx.rowcount == 1
