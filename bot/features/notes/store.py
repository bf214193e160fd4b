"""free_reminders rows, each with its push as a reminders row (planned in one transaction:
a reminder saved is a reminder sent, once; see 0022_visits_free_reminders.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.models import User
from bot.storage.db import Database, Read, Row, from_iso, iso
from bot.storage.reminders import Reminders

SUBJECT = "free_reminder"
OPEN, DONE, CANCELLED = "open", "done", "cancelled"


@dataclass(frozen=True)
class FreeReminder:
    id: int
    user_id: int
    what: str
    remind_at: datetime
    urgent: bool
    state: str


def _row(r: Row) -> FreeReminder:
    return FreeReminder(r["id"], r["user_id"], r["what"], from_iso(r["remind_at"]),
                        bool(r["urgent"]), r["state"])


async def add(db: Database, user: User, what: str, at: datetime, urgent: bool, now: datetime,
              token: str) -> int:
    """Save it and plan its push; a second save of the same form returns the first id."""
    async with db.tx() as tx:
        await tx.execute(
            "INSERT INTO free_reminders(team_id, user_id, what, remind_at, urgent, created_at, "
            "form_token) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (form_token) DO NOTHING",
            (user.team_id, user.id, what, iso(at), int(urgent), iso(now), token))
        row = await tx.fetchone("SELECT id FROM free_reminders WHERE form_token = ?", (token,))
        assert row is not None
        rid = int(row[0])
        await Reminders.plan(tx, team_id=user.team_id, user_id=user.id, subject=SUBJECT,
                             subject_id=rid, kind="due", due_at=at, now=now, urgent=urgent)
    return rid


async def get(db: Database, user_id: int, rid: int) -> FreeReminder | None:
    """One's own reminder only: nobody else's id opens anything."""
    row = await db.fetchone("SELECT * FROM free_reminders WHERE id = ? AND user_id = ?",
                            (rid, user_id))
    return _row(row) if row else None


async def open_ones(db: Database, user_id: int, by: datetime | None = None,
                    limit: int = 100) -> list[FreeReminder]:
    """The person's open reminders, soonest first (those due by `by`, if given)."""
    return reminders_of(await db.fetchall(*open_ones_read(user_id, by, limit)))


def open_ones_read(user_id: int, by: datetime | None = None, limit: int = 100) -> Read:
    until = "" if by is None else " AND remind_at <= ?"
    params: tuple[object, ...] = (user_id, OPEN) + (() if by is None else (iso(by),))
    return (f"SELECT * FROM free_reminders WHERE user_id = ? AND state = ?{until} "
            "ORDER BY remind_at, id LIMIT ?", (*params, limit))


def reminders_of(rows: list[Row]) -> list[FreeReminder]:
    return [_row(r) for r in rows]


def count_open_read(user_id: int) -> Read:
    return "SELECT count(*) FROM free_reminders WHERE user_id = ? AND state = ?", (user_id, OPEN)


async def close(db: Database, user_id: int, rid: int, state: str, now: datetime) -> bool:
    """完成 or 取消 one's own open reminder; its pending push (or snooze) goes with it.
    False when it is not open (pressed twice, or someone else's id)."""
    async with db.tx() as tx:
        await tx.execute(
            "UPDATE free_reminders SET state = ?, closed_at = ? WHERE id = ? AND user_id = ? "
            "AND state = ?", (state, iso(now), rid, user_id, OPEN))
        if not tx.rowcount:  # (not SQLite's changes(): the same on PostgreSQL)
            return False
        # A row held for the digest stays: it renders as nothing once the reminder is closed.
        await Reminders.cancel(tx, SUBJECT, rid)
    return True
