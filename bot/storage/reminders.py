"""Reminder rows: the database is the source of truth for what is sent, to whom, and when."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.storage.db import Database, Row, Tx, from_iso, iso

# last_error of a row whose last push may have reached the user (an answer lost, or a process
# that died mid-push): its next push says it may be a repeat. Kept through later retries.
MAYBE_SENT = "outcome unknown"


@dataclass(frozen=True)
class Reminder:
    id: int
    team_id: int
    user_id: int
    subject: str
    subject_id: int
    kind: str
    due_at: datetime
    urgent: bool
    state: str
    attempts: int
    detail: dict[str, Any]
    maybe_sent: bool = False  # an earlier push of it may have arrived


def _reminder(r: Row) -> Reminder:
    return Reminder(r["id"], r["team_id"], r["user_id"], r["subject"], r["subject_id"],
                    r["kind"], from_iso(r["due_at"]), bool(r["urgent"]), r["state"],
                    r["attempts"], json.loads(r["detail"]),
                    (r["last_error"] or "").startswith(MAYBE_SENT))


class Reminders:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def plan(tx: Tx, *, team_id: int, user_id: int, subject: str, subject_id: int,
                   kind: str, due_at: datetime, now: datetime, urgent: bool = False,
                   key: str | None = None, detail: dict[str, Any] | None = None) -> bool:
        """Add a reminder unless one with the same key exists (planning twice plans once)."""
        dedupe = key or f"{subject}:{subject_id}:{kind}:{user_id}"
        await tx.execute(
            "INSERT INTO reminders(team_id, user_id, subject, subject_id, kind, due_at, "
            "urgent, dedupe_key, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (team_id, user_id, subject, subject_id, kind, iso(due_at), int(urgent), dedupe,
             json.dumps(detail or {}, ensure_ascii=False), iso(now)))
        return tx.rowcount > 0

    @staticmethod
    async def cancel(tx: Tx, subject: str, subject_id: int, kind_prefix: str = "") -> None:
        """Drop the pending reminders of a record (all, or those whose kind starts so)."""
        await tx.execute(
            "UPDATE reminders SET state = 'cancelled' WHERE subject = ? AND subject_id = ? "
            "AND state = 'pending' AND kind LIKE ?", (subject, subject_id, kind_prefix + "%"))

    async def due(self, now: datetime, limit: int = 1000) -> list[Reminder]:
        """Pending rows whose time has come (urgent ones first). Never 'sending' ones: a live
        process may be pushing them (see recover). Two index ranges (urgent, then the rest)
        rather than one sort of all due rows; the IN term repeats the partial index's WHERE
        so SQLite still uses reminders_due."""
        rows: list[Row] = []
        for urgent in (1, 0):
            rows += await self.db.fetchall(
                "SELECT * FROM reminders WHERE state IN ('pending', 'sending') "
                "AND state = 'pending' AND urgent = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?",
                (urgent, iso(now), limit - len(rows)))
            if len(rows) >= limit:
                break
        return [_reminder(r) for r in rows]

    async def get(self, reminder_id: int) -> Reminder | None:
        row = await self.db.fetchone("SELECT * FROM reminders WHERE id = ?", (reminder_id,))
        return _reminder(row) if row else None

    async def claim(self, reminder_id: int) -> bool:
        """Mark one row in flight; False if another scan got it or it was settled meanwhile.
        A 'sending' row is never claimed again: only recover() (at start-up) frees it."""
        async with self.db.tx() as tx:
            await tx.execute(
                "UPDATE reminders SET state = 'sending', attempts = attempts + 1 "
                "WHERE id = ? AND state = 'pending'", (reminder_id,))
            return tx.rowcount > 0

    async def recover(self) -> int:
        """At start-up of the database's lease holder only: rows left 'sending' by a process
        that stopped mid-push go back to 'pending', marked as possibly sent already."""
        async with self.db.tx() as tx:
            await tx.execute(
                "UPDATE reminders SET state = 'pending', last_error = ? WHERE state = 'sending'",
                (f"{MAYBE_SENT}: interrupted while sending",))
            return tx.rowcount

    async def settle(self, reminder_id: int, state: str, now: datetime,
                     error: str | None = None) -> None:
        await self.db.execute(
            "UPDATE reminders SET state = ?, sent_at = ?, last_error = ? WHERE id = ?",
            (state, iso(now) if state in ("sent", "digested") else None, error, reminder_id))

    async def retry_at(self, reminder_id: int, when: datetime, error: str) -> None:
        """Back to 'pending' at `when`; a possibly-sent mark survives a later plain error.
        A row already settled ('sent' ...) stays so: an error after the push must not
        send it again."""
        await self.db.execute(
            "UPDATE reminders SET state = 'pending', due_at = ?, last_error = CASE "
            "WHEN last_error LIKE ? || '%' AND ? NOT LIKE ? || '%' THEN ? || '; ' || ? "
            "ELSE ? END WHERE id = ? AND state IN ('pending', 'sending')",
            (iso(when), MAYBE_SENT, error, MAYBE_SENT, MAYBE_SENT, error, error, reminder_id))

    async def snooze(self, user_id: int, reminder_id: int, until: datetime) -> Reminder | None:
        """Send this reminder again at `until` (only its recipient may snooze it)."""
        async with self.db.tx() as tx:
            await tx.execute(
                "UPDATE reminders SET state = 'pending', due_at = ?, sent_at = NULL "
                "WHERE id = ? AND user_id = ? AND state IN ('sent', 'digested', 'pending', 'held')",
                (iso(until), reminder_id, user_id))
            changed = tx.rowcount > 0
        return await self.get(reminder_id) if changed else None

    async def hold(self, reminder_id: int) -> None:
        """Quiet hours: keep it for the recipient's next morning digest."""
        await self.db.execute("UPDATE reminders SET state = 'held' WHERE id = ?", (reminder_id,))

    async def release_held_of_deactivated(self) -> int:
        """Rows held for the morning digest of a user deactivated since: that user gets no
        digest any more, so they go back to 'pending' and are forwarded to the lead."""
        held = "state = 'held' AND user_id IN (SELECT id FROM users WHERE active = 0)"
        if await self.db.fetchone(f"SELECT 1 FROM reminders WHERE {held} LIMIT 1") is None:
            return 0  # the usual case, read on the reader: no write per scan
        async with self.db.tx() as tx:
            await tx.execute(f"UPDATE reminders SET state = 'pending' WHERE {held}")
            return tx.rowcount

    async def held_for(self, user_id: int) -> list[Reminder]:
        rows = await self.db.fetchall(
            "SELECT * FROM reminders WHERE user_id = ? AND state = 'held' ORDER BY due_at, id",
            (user_id,))
        return [_reminder(r) for r in rows]
